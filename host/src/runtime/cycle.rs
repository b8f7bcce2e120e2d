//! Running one call into a module in a fresh store, under its limits, and saying precisely
//! why it failed when it does.

use std::sync::Arc;

use serde_json::Value;
use wasmtime::{Store, Trap, UpdateDeadline};

use super::engine::TICK;
use super::limits::Limits;
use super::store::{CycleCtx, StoreData};
use super::{LoadedModule, Runtime};
use crate::bindings::{CycleInput, ModuleInfo, WorkerPre};
use crate::capabilities::Grants;
use crate::services::Services;

/// Why a cycle produced nothing. A failed cycle commits no state.
#[derive(Debug, Clone, thiserror::Error, PartialEq)]
pub enum CycleError {
    #[error("CPU budget of {0} ms exceeded (module looping?)")]
    Cpu(u64),
    #[error("wall-clock limit of {0} ms exceeded")]
    Wall(u64),
    #[error("{0}")]
    Memory(String),
    #[error("stack overflow (unbounded recursion?)")]
    Stack,
    #[error("trapped: {0}")]
    Trap(String),
    #[error("module returned an error: {0}")]
    Module(String),
    #[error("{0}")]
    Output(String),
    #[error("instantiation failed: {0}")]
    Instantiate(String),
}

/// The returned value of a successful cycle, parsed and within limits.
#[derive(Debug, Clone, PartialEq)]
pub struct CycleOutcome {
    pub state: Option<Value>,
    pub result: Option<Value>,
    pub emitted: u32,
    pub cpu_ms: u64,
    pub log_dropped: u32,
    /// Records the cycle submitted while holding (see `CycleCtx::holding`), in order.
    pub held: Vec<crate::outbox::Emitted>,
}

#[derive(Debug)]
struct CpuExceeded;
impl std::fmt::Display for CpuExceeded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("cpu budget exceeded")
    }
}
impl std::error::Error for CpuExceeded {}

fn new_store(rt: &Runtime, cx: CycleCtx) -> Store<StoreData> {
    let budget = std::time::Duration::from_millis(cx.limits.cpu_ms.max(1));
    let mut store = Store::new(rt.engine(), StoreData::new(cx));
    store.limiter(|d| &mut d.limiter);
    // Charges the time guest code actually ran. The callback fires at the first epoch check
    // after each tick; it charges the time since the guest was last resumed, capped at one
    // tick, so
    // - a guest blocked for seconds in a host call costs at most one tick, not hundreds;
    // - a guest that waited in the executor's run queue behind other cycles (2 cores, many
    //   busy modules) is not charged for the wait: right after a resume it is let run to the
    //   next tick instead of yielding again at once.
    // Otherwise it yields every tick, so the wall-clock timeout and other tasks make progress
    // even while a guest spins.
    store.epoch_deadline_callback(move |mut ctx| {
        let d = ctx.data_mut();
        let ran = {
            let resumed = d.resumed_at.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            std::time::Instant::now().saturating_duration_since(*resumed)
        };
        d.cpu_used += ran.min(TICK);
        if d.cpu_used > budget {
            return Err(wasmtime::Error::new(CpuExceeded));
        }
        if ran < TICK / 2 {
            return Ok(UpdateDeadline::Continue(1));
        }
        let resumed_at = d.resumed_at.clone();
        Ok(UpdateDeadline::YieldCustom(
            1,
            Box::pin(async move {
                tokio::task::yield_now().await;
                *resumed_at.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = std::time::Instant::now();
            }),
        ))
    });
    store.set_epoch_deadline(1);
    store
}

/// The last non-empty lines of guest stderr: usually the panic message behind a trap. Taken
/// from the stream's tail, so it is there even when earlier output filled the kept head.
fn stderr_tail(store: &Store<StoreData>) -> String {
    let bytes = store.data().stderr.tail();
    let text = String::from_utf8_lossy(&bytes);
    // Rust's "note: run with `RUST_BACKTRACE=1`…" says nothing here: no backtrace to show.
    let lines: Vec<&str> =
        text.lines().filter(|l| !l.trim().is_empty() && !l.starts_with("note: run with `RUST_BACKTRACE")).collect();
    lines[lines.len().saturating_sub(3)..].join(" | ")
}

fn classify(e: wasmtime::Error, store: &Store<StoreData>) -> CycleError {
    if let Some(r) = &store.data().limiter.refused {
        return CycleError::Memory(r.clone());
    }
    if e.downcast_ref::<CpuExceeded>().is_some() {
        return CycleError::Cpu(store.data().cx.limits.cpu_ms);
    }
    let tail = stderr_tail(store);
    let with_tail = |m: String| if tail.is_empty() { m } else { format!("{m}; guest stderr: {tail}") };
    match e.downcast_ref::<Trap>() {
        Some(Trap::StackOverflow) => CycleError::Stack,
        Some(Trap::UnreachableCodeReached) => CycleError::Trap(with_tail("guest panicked or aborted".into())),
        Some(t) => CycleError::Trap(with_tail(t.to_string())),
        None => CycleError::Trap(with_tail(format!("{e:#}"))),
    }
}

/// Forwards guest stdout/stderr into the log, tagged, after the call (bounded by the pipe:
/// the first `stdio_bytes` of each stream, then one warning counting what was dropped).
fn drain_stdio(store: &Store<StoreData>) {
    let d = store.data();
    for (stream, pipe) in [("stdout", &d.stdout), ("stderr", &d.stderr)] {
        let bytes = pipe.contents();
        for line in String::from_utf8_lossy(&bytes).lines().filter(|l| !l.trim().is_empty()) {
            tracing::info!(module = %d.cx.module, task = %d.cx.task, stream, "{line}");
        }
        let dropped = pipe.dropped();
        if dropped > 0 {
            tracing::warn!(module = %d.cx.module, task = %d.cx.task, stream, dropped_bytes = dropped,
                limit_bytes = pipe.capacity(), "guest output beyond the stdio limit dropped");
        }
    }
}

/// Calls `describe()` with log as the only capability and tight limits.
pub(super) async fn describe(rt: &Runtime, pre: &WorkerPre, services: Arc<Services>) -> Result<ModuleInfo, CycleError> {
    let limits = Limits { cpu_ms: 2_000, wall_ms: 5_000, ..Limits::default() };
    let cx = CycleCtx::new("(describe)", "", "describe", services, Grants::none(), limits);
    let wall = cx.limits.wall_ms;
    let mut store = new_store(rt, cx);
    let run = async {
        let worker = pre.instantiate_async(&mut store).await.map_err(Stage::Instantiate)?;
        worker.call_describe(&mut store).await.map_err(Stage::Call)
    };
    let r = tokio::time::timeout(std::time::Duration::from_millis(wall), run).await;
    drain_stdio(&store);
    match r {
        Err(_) => Err(CycleError::Wall(wall)),
        Ok(Err(e)) => Err(e.classify(&store)),
        Ok(Ok(info)) => Ok(info),
    }
}

/// Where a call failed. Instantiation runs guest start code too, so limit breaches there keep
/// their own error; anything else is reported as an instantiation failure, not a trap.
enum Stage {
    Instantiate(wasmtime::Error),
    Call(wasmtime::Error),
}

impl Stage {
    fn classify(self, store: &Store<StoreData>) -> CycleError {
        match self {
            Stage::Call(e) => classify(e, store),
            Stage::Instantiate(e) => match classify(e, store) {
                CycleError::Trap(m) => CycleError::Instantiate(m),
                other => other,
            },
        }
    }
}

fn parse_output(what: &str, text: Option<String>, max: usize) -> Result<Option<Value>, CycleError> {
    let Some(text) = text else { return Ok(None) };
    if text.len() > max {
        return Err(CycleError::Output(format!("{what} of {} bytes exceeds the limit of {max} bytes", text.len())));
    }
    serde_json::from_str(&text).map(Some).map_err(|e| CycleError::Output(format!("{what} is not valid JSON: {e}")))
}

impl Runtime {
    /// Runs one cycle of `module` in a fresh instance. The cycle context carries grants,
    /// limits and the deadline; nothing from this call survives it except the outcome.
    pub async fn run_cycle(
        &self,
        module: &LoadedModule,
        input: CycleInput,
        cx: CycleCtx,
    ) -> Result<CycleOutcome, CycleError> {
        let limits = cx.limits.clone();
        let deadline = cx.deadline;
        let mut store = new_store(self, cx);
        let run = async {
            let worker = module.pre.instantiate_async(&mut store).await.map_err(Stage::Instantiate)?;
            worker.call_run_cycle(&mut store, &input).await.map_err(Stage::Call)
        };
        let r = tokio::time::timeout_at(deadline, run).await;
        drain_stdio(&store);
        let out = match r {
            Err(_) => return Err(CycleError::Wall(limits.wall_ms)),
            Ok(Err(e)) => return Err(e.classify(&store)),
            Ok(Ok(Err(msg))) => return Err(CycleError::Module(msg)),
            Ok(Ok(Ok(out))) => out,
        };
        let held = store.data_mut().cx.held.take().unwrap_or_default();
        let d = store.data();
        Ok(CycleOutcome {
            state: parse_output("state", out.state, limits.max_state_bytes)?,
            result: parse_output("result", out.result, limits.max_result_bytes)?,
            emitted: d.cx.emitted.max(out.emitted),
            cpu_ms: d.cpu_used.as_millis() as u64,
            log_dropped: d.cx.log_dropped,
            held,
        })
    }
}

//! Running one call into a module in a fresh store, under its limits, and saying precisely
//! why it failed when it does.

use std::sync::Arc;

use serde_json::Value;
use wasmtime::{CallHook, Store, StoreContextMut, Trap, UpdateDeadline};

use super::cpu::{AfterHook, CpuExceeded};
use super::engine::TICK;
use super::limits::Limits;
use super::{LoadedModule, Runtime};
use crate::bindings::{CycleInput, ModuleInfo, WorkerPre};
use crate::capability::services::Services;
use crate::policy::grants::Grants;
use crate::store::{CycleCtx, StoreData};

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
    /// Effects the cycle made while holding (see `CycleCtx::holding`), in order per lane.
    pub held: Vec<crate::outbox::Effect>,
}

/// Runs at every guest/host transition (wasmtime's call hooks): gives the execution slot
/// back when the guest leaves for the host and takes one (fair FIFO) before it re-enters,
/// so a cycle waiting on a backend or in a WASI sleep holds no slot; and keeps the CPU
/// clock (runtime/cpu.rs), which starts only once the slot is held, so waiting for it is
/// not charged either.
struct Transitions;

#[async_trait::async_trait]
impl wasmtime::CallHookHandler<StoreData> for Transitions {
    async fn handle_call_event(
        &self,
        mut store: StoreContextMut<'_, StoreData>,
        hook: CallHook,
    ) -> wasmtime::Result<()> {
        let entering = matches!(hook, CallHook::CallingWasm | CallHook::ReturningFromHost);
        if entering {
            let d = &mut store.data_mut().sandbox;
            let wanted = if d.slot.is_none() { d.slots.clone() } else { None };
            if let Some(slots) = wanted {
                // A free slot is taken without awaiting: `acquire` counts against tokio's
                // cooperative budget and would park the guest every 128 host calls even
                // when no one else wants a slot. tokio hands a released permit to a queued
                // waiter first, so this never jumps the queue.
                let permit = match slots.clone().try_acquire_owned() {
                    Ok(p) => p,
                    Err(_) => slots.acquire_owned().await.map_err(wasmtime::Error::new)?,
                };
                store.data_mut().sandbox.slot = Some(permit);
            }
        } else {
            store.data_mut().sandbox.slot = None;
        }
        let after = store.data_mut().sandbox.cpu.on_hook(hook, TICK).map_err(wasmtime::Error::new)?;
        if after == AfterHook::RearmDeadline {
            store.set_epoch_deadline(1);
        }
        Ok(())
    }
}

fn new_store(rt: &Runtime, cx: CycleCtx) -> Store<StoreData> {
    let mut store = Store::new(rt.engine(), StoreData::new(cx));
    store.limiter(|d| &mut d.sandbox.limiter);
    store.call_hook_async(Transitions);
    // Runs at the first epoch check after each tick of guest execution (inside the host
    // bracket: the clock is stopped). Over budget, the cycle ends here, within one tick of
    // its budget. Otherwise, once the guest has run half a tick since it last gave its thread
    // back, it yields to tokio, so a spinning guest neither starves other tasks nor escapes
    // the wall-clock timeout; time spent waiting in the run queue is not charged.
    store.epoch_deadline_callback(|mut ctx| {
        let clock = &mut ctx.data_mut().sandbox.cpu;
        clock.check().map_err(wasmtime::Error::new)?;
        if !clock.should_yield(TICK) {
            return Ok(UpdateDeadline::Continue(1));
        }
        Ok(UpdateDeadline::YieldCustom(1, Box::pin(tokio::task::yield_now())))
    });
    store.set_epoch_deadline(1);
    store
}

/// The last non-empty lines of guest stderr: usually the panic message behind a trap. Taken
/// from the stream's tail, so it is there even when earlier output filled the kept head.
fn stderr_tail(store: &Store<StoreData>) -> String {
    let bytes = store.data().sandbox.stderr.tail();
    let text = String::from_utf8_lossy(&bytes);
    // Rust's "note: run with `RUST_BACKTRACE=1`…" says nothing here: no backtrace to show.
    let lines: Vec<&str> =
        text.lines().filter(|l| !l.trim().is_empty() && !l.starts_with("note: run with `RUST_BACKTRACE")).collect();
    lines[lines.len().saturating_sub(3)..].join(" | ")
}

fn classify(e: wasmtime::Error, store: &Store<StoreData>) -> CycleError {
    if let Some(r) = &store.data().sandbox.limiter.refused {
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
    for (stream, pipe) in [("stdout", &d.sandbox.stdout), ("stderr", &d.sandbox.stderr)] {
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
pub(super) async fn describe(
    rt: &Runtime,
    pre: &WorkerPre<StoreData>,
    services: Arc<Services>,
) -> Result<ModuleInfo, CycleError> {
    let limits = Limits { cpu_ms: 2_000, wall_ms: 5_000, ..Limits::default() };
    let cx = CycleCtx::new("(describe)", "", "describe", services, Grants::none(), limits);
    let wall = cx.cx.limits.wall_ms;
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
        let limits = cx.cx.limits.clone();
        let deadline = cx.cx.deadline;
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
        let done = store.data_mut().finish();
        Ok(CycleOutcome {
            state: parse_output("state", out.state, limits.max_state_bytes)?,
            result: parse_output("result", out.result, limits.max_result_bytes)?,
            emitted: done.emitted.max(out.emitted),
            cpu_ms: store.data().sandbox.cpu.used().as_millis() as u64,
            log_dropped: done.log_dropped,
            held: done.held,
        })
    }
}

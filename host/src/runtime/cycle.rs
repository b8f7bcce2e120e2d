//! Running one call into a module in a fresh store, under its limits, and saying precisely
//! why it failed when it does.

use serde_json::Value;
use wasmtime::{CallHook, Store, StoreContextMut, Trap, UpdateDeadline};

use super::cpu::{charged, AfterHook, CpuExceeded};
use super::engine::TICK;
use super::sandbox::{CycleData, Sandbox};
use super::task_state::TaskState;
use super::{LoadedModule, Runtime};
use crate::bindings::{CycleInput, ModuleInfo, WorkerPre};
use crate::policy::limits::Limits;

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

impl CycleError {
    /// A bounded name for metrics (`error_class`).
    pub fn class(&self) -> &'static str {
        match self {
            CycleError::Cpu(_) => "cpu",
            CycleError::Wall(_) => "wall",
            CycleError::Memory(_) => "memory",
            CycleError::Stack => "stack",
            CycleError::Trap(_) => "trap",
            CycleError::Module(_) => "module",
            CycleError::Output(_) => "output",
            CycleError::Instantiate(_) => "instantiate",
        }
    }
}

/// The returned value of a successful cycle, parsed and within limits.
#[derive(Debug, Clone, PartialEq)]
pub struct CycleOutcome<H> {
    pub state: Option<TaskState>,
    pub result: Option<Value>,
    pub emitted: u32,
    pub cpu_ms: u64,
    /// The cycle's peak footprint in the host: its guest's linear memory plus the effects it
    /// held for the commit. What the memory budget (policy/memory.rs) admits cycles by.
    pub memory_bytes: usize,
    pub log_dropped: u32,
    /// Effects the cycle held for its commit (the store data's, see [`CycleData::finish`]).
    pub held: H,
}

/// Runs at every guest/host transition (wasmtime's call hooks): gives the execution slot
/// back when the guest leaves for the host and takes one (fair FIFO) before it re-enters,
/// so a cycle waiting on a backend or in a WASI sleep holds no slot; and keeps the CPU
/// clock (runtime/cpu.rs), which starts only once the slot is held, so waiting for it is
/// not charged either.
struct Transitions;

#[async_trait::async_trait]
impl<T: CycleData> wasmtime::CallHookHandler<T> for Transitions {
    async fn handle_call_event(&self, mut store: StoreContextMut<'_, T>, hook: CallHook) -> wasmtime::Result<()> {
        let entering = matches!(hook, CallHook::CallingWasm | CallHook::ReturningFromHost);
        if entering {
            let d = store.data_mut().sandbox();
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
                store.data_mut().sandbox().slot = Some(permit);
            }
        } else {
            store.data_mut().sandbox().slot = None;
        }
        let after = clock(store.data_mut().sandbox()).on_hook(hook, TICK).map_err(wasmtime::Error::new)?;
        if after == AfterHook::RearmDeadline {
            store.set_epoch_deadline(1);
        }
        Ok(())
    }
}

fn clock(sandbox: &Sandbox) -> std::sync::MutexGuard<'_, super::cpu::GuestClock> {
    sandbox.cpu.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// A store, and the epoch ticker held ticking for as long as the caller keeps the guard.
fn new_store<T: CycleData>(rt: &Runtime<T>, data: T) -> (Store<T>, super::engine::Ticking) {
    let ticking = rt.ticker.hold();
    let mut store = Store::new(rt.engine(), data);
    store.limiter(|d| &mut d.sandbox().limiter);
    store.call_hook_async(Transitions);
    // Runs at the first epoch check after each tick of guest execution (inside the host
    // bracket: the clock is stopped). Over budget, the cycle ends here, within one tick of
    // its budget. Otherwise, once the guest has run half a tick since it last gave its thread
    // back, it yields to tokio, so a spinning guest neither starves other tasks nor escapes
    // the wall-clock timeout; time spent waiting in the run queue is not charged.
    store.epoch_deadline_callback(|mut ctx| {
        let mut clock = clock(ctx.data_mut().sandbox());
        clock.check().map_err(wasmtime::Error::new)?;
        if !clock.should_yield(TICK) {
            return Ok(UpdateDeadline::Continue(1));
        }
        Ok(UpdateDeadline::YieldCustom(1, Box::pin(tokio::task::yield_now())))
    });
    store.set_epoch_deadline(1);
    (store, ticking)
}

/// The last non-empty lines of guest stderr: usually the panic message behind a trap. Taken
/// from the stream's tail, so it is there even when earlier output filled the kept head.
fn stderr_tail<T: CycleData>(store: &Store<T>) -> String {
    let bytes = store.data().sandbox_ref().stderr.tail();
    let text = String::from_utf8_lossy(&bytes);
    // Rust's "note: run with `RUST_BACKTRACE=1`…" says nothing here: no backtrace to show.
    let lines: Vec<&str> =
        text.lines().filter(|l| !l.trim().is_empty() && !l.starts_with("note: run with `RUST_BACKTRACE")).collect();
    lines[lines.len().saturating_sub(3)..].join(" | ")
}

fn classify<T: CycleData>(e: wasmtime::Error, store: &Store<T>) -> CycleError {
    if let Some(r) = &store.data().sandbox_ref().limiter.refused {
        return CycleError::Memory(r.clone());
    }
    if e.downcast_ref::<CpuExceeded>().is_some() {
        return CycleError::Cpu(store.data().limits().cpu_ms);
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
fn drain_stdio<T: CycleData>(store: &Store<T>) {
    let (module, task) = store.data().who();
    let sandbox = store.data().sandbox_ref();
    for (stream, pipe) in [("stdout", &sandbox.stdout), ("stderr", &sandbox.stderr)] {
        let bytes = pipe.contents();
        for line in String::from_utf8_lossy(&bytes).lines().filter(|l| !l.trim().is_empty()) {
            tracing::info!(module = %module, task = %task, stream, "{line}");
        }
        let dropped = pipe.dropped();
        if dropped > 0 {
            tracing::warn!(module = %module, task = %task, stream, dropped_bytes = dropped,
                limit_bytes = pipe.capacity(), "guest output beyond the stdio limit dropped");
        }
    }
}

/// Calls `describe()` with log as the only capability and tight limits.
pub(super) async fn describe<T: CycleData>(
    rt: &Runtime<T>,
    pre: &WorkerPre<T>,
    env: T::Env,
) -> Result<ModuleInfo, CycleError> {
    let limits = Limits { cpu_ms: 2_000, wall_ms: 5_000, ..Limits::default() };
    let wall = limits.wall_ms;
    let (mut store, _ticking) = new_store(rt, T::describing(env, limits));
    let cpu = store.data().sandbox_ref().cpu.clone();
    let run = charged(
        async {
            let worker = pre.instantiate_async(&mut store).await.map_err(Stage::Instantiate)?;
            worker.call_describe(&mut store).await.map_err(Stage::Call)
        },
        cpu,
    );
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
    fn classify<T: CycleData>(self, store: &Store<T>) -> CycleError {
        match self {
            Stage::Call(e) => classify(e, store),
            Stage::Instantiate(e) => match classify(e, store) {
                CycleError::Trap(m) => CycleError::Instantiate(m),
                other => other,
            },
        }
    }
}

/// The guest's JSON text, within `max` bytes, validated by `parse` (the result into a tree, the
/// state kept as text: see [`TaskState`]).
fn parse_output<V>(
    what: &str,
    text: Option<String>,
    max: usize,
    parse: impl FnOnce(String) -> serde_json::Result<V>,
) -> Result<Option<V>, CycleError> {
    let Some(text) = text else { return Ok(None) };
    if text.len() > max {
        return Err(CycleError::Output(format!("{what} of {} bytes exceeds the limit of {max} bytes", text.len())));
    }
    parse(text).map(Some).map_err(|e| CycleError::Output(format!("{what} is not valid JSON: {e}")))
}

impl<T: CycleData> Runtime<T> {
    /// Runs one cycle of `module` in a fresh instance. The store data carries grants,
    /// limits and the deadline; nothing from this call survives it except the outcome.
    pub async fn run_cycle(
        &self,
        module: &LoadedModule<T>,
        input: CycleInput,
        data: T,
    ) -> Result<CycleOutcome<T::Held>, CycleError> {
        let limits = data.limits().clone();
        let deadline = data.deadline();
        let (mut store, _ticking) = new_store(self, data);
        let cpu = store.data().sandbox_ref().cpu.clone();
        let run = charged(
            async {
                let t = std::time::Instant::now();
                let worker = module.pre.instantiate_async(&mut store).await.map_err(Stage::Instantiate)?;
                crate::telemetry::instantiated(t.elapsed());
                worker.call_run_cycle(&mut store, &input).await.map_err(Stage::Call)
            },
            cpu,
        );
        let r = tokio::time::timeout_at(deadline, run).await;
        drain_stdio(&store);
        let out = match r {
            Err(_) => return Err(CycleError::Wall(limits.wall_ms)),
            Ok(Err(e)) => return Err(e.classify(&store)),
            Ok(Ok(Err(msg))) => return Err(CycleError::Module(msg)),
            Ok(Ok(Ok(out))) => out,
        };
        let cpu_ms = clock(store.data().sandbox_ref()).used().as_millis() as u64;
        let guest_memory = store.data().sandbox_ref().limiter.memory_in_use;
        let done = store.data_mut().finish();
        if let Some(why) = done.refused {
            return Err(CycleError::Output(why));
        }
        Ok(CycleOutcome {
            state: parse_output("state", out.state, limits.max_state_bytes, TaskState::parse)?,
            result: parse_output("result", out.result, limits.max_result_bytes, |t| serde_json::from_str(&t))?,
            emitted: done.emitted.max(out.emitted),
            cpu_ms,
            memory_bytes: guest_memory + done.held_bytes,
            log_dropped: done.log_dropped,
            held: done.held,
        })
    }
}

//! A cycle's store data, composed: the runtime's sandbox (limiter, CPU clock, execution
//! slot, stdio), the context every room shares (who calls, grants, limits, deadline, tape)
//! and each room's own per-cycle state. It sits above both `runtime/` and `capability/` so
//! neither imports the other's half; `link.rs` binds every served contract version's imports
//! to it, one room at a time, through the rooms' projections (capability/mod.rs's `View`).

pub mod link;

use std::sync::Arc;

use tokio::sync::Semaphore;
use wasmtime_wasi::{WasiCtxView, WasiView};

use crate::capability::Services;
use crate::capability::{Ctx, HasRooms, Rooms};
use crate::outbox::Effect;
use crate::policy::grants::Grants;
use crate::policy::limits::Limits;
use crate::runtime::sandbox::{CycleData, Finished, Sandbox};

/// The runtime, a loaded module and a cycle's outcome, over this store data.
pub type Runtime = crate::runtime::Runtime<StoreData>;
pub type LoadedModule = crate::runtime::LoadedModule<StoreData>;
pub type CycleOutcome = crate::runtime::cycle::CycleOutcome<Vec<Effect>>;

/// The host's runtime: every served contract version linked to [`StoreData`].
pub fn runtime(cache_dir: Option<std::path::PathBuf>) -> anyhow::Result<Arc<Runtime>> {
    crate::runtime::Runtime::new(cache_dir, |engine| Ok(link::linker(engine)?))
}

/// What a cycle is started with: who runs, with what rights, and how its effects leave.
pub struct CycleCtx {
    pub cx: Ctx,
    pub services: Arc<Services>,
    /// The host's execution slots (`--max-concurrent-cycles`); None: unlimited (CLI runs).
    pub slots: Option<Arc<Semaphore>>,
    /// Randomness seeded from the cycle (HA: runtime/seeded.rs); None: the real one.
    pub seed: Option<crate::runtime::seeded::Seed>,
}

impl CycleCtx {
    /// A context for one call, with its deadline `limits.wall_ms` from now.
    pub fn new(
        module: &str,
        version: &str,
        task: &str,
        services: Arc<Services>,
        grants: Grants,
        limits: Limits,
    ) -> Self {
        CycleCtx { cx: Ctx::new(module, version, task, grants, limits), services, slots: None, seed: None }
    }

    /// Holds the cycle's effects for the outbox's commit instead of sending them.
    pub fn holding(mut self) -> Self {
        self.cx.holding = true;
        self
    }
}

pub struct StoreData {
    pub sandbox: Sandbox,
    pub cx: Ctx,
    pub rooms: Rooms,
}

impl StoreData {
    pub fn new(c: CycleCtx) -> Self {
        let (tape, seed) = (c.cx.tape.clone(), c.seed);
        let sandbox = Sandbox::new(&c.cx.limits, c.slots, |wasi| {
            if let Some(seed) = seed {
                crate::runtime::seeded::pin(wasi, seed);
            }
            if let Some(tape) = &tape {
                tape.pin_sandbox(wasi);
            }
        });
        let rooms = Rooms::new(&c.services, &c.cx);
        StoreData { sandbox, cx: c.cx, rooms }
    }
}

impl CycleData for StoreData {
    type Env = Arc<Services>;
    /// Core's effects, then the arbiter's (separate lanes), each in call order.
    type Held = Vec<Effect>;

    fn describing(services: Arc<Services>, limits: Limits) -> Self {
        StoreData::new(CycleCtx::new("(describe)", "", "describe", services, Grants::none(), limits))
    }

    fn sandbox(&mut self) -> &mut Sandbox {
        &mut self.sandbox
    }

    fn sandbox_ref(&self) -> &Sandbox {
        &self.sandbox
    }

    fn who(&self) -> (&str, &str) {
        (&self.cx.module, &self.cx.task)
    }

    fn limits(&self) -> &Limits {
        &self.cx.limits
    }

    fn deadline(&self) -> tokio::time::Instant {
        self.cx.deadline
    }

    /// Takes what the rooms kept for the cycle's commit and counted.
    fn finish(&mut self) -> Finished<Vec<Effect>> {
        let core = std::mem::take(&mut self.rooms.core.held.effects);
        let arbiter = std::mem::take(&mut self.rooms.arbiter.held.effects);
        Finished {
            held_bytes: self.rooms.core.held.bytes + self.rooms.arbiter.held.bytes,
            emitted: self.rooms.core.emitted + arbiter.len() as u32,
            held: core.into_iter().chain(arbiter).collect(),
            log_dropped: self.rooms.log.dropped,
            refused: self.rooms.core.held.refused.take().or_else(|| self.rooms.arbiter.held.refused.take()),
        }
    }
}

impl HasRooms for StoreData {
    fn rooms(&mut self) -> (&mut Rooms, &mut Ctx) {
        (&mut self.rooms, &mut self.cx)
    }
}

impl WasiView for StoreData {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        self.sandbox.wasi()
    }
}

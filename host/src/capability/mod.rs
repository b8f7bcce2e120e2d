//! One room per capability: each folder holds the host side of its WIT interface
//! (`import.rs`), its flags (`config.rs`) and the [`Unit`] that ties them to its backend's
//! client (in `backend/`) (`mod.rs`). The one table of capabilities (policy/table.rs, which
//! also makes the `Capability` enum there) is expanded here by [`capabilities!`] into the
//! flags of `serve`/`gate`/`run`, the backends every cycle shares ([`Backends`], inside
//! [`Services`]), each cycle's room states ([`Rooms`]) and the linking of every room under
//! every served contract version ([`link`]). Adding a capability is its folder, its client,
//! its WIT and one table line (docs/ARCHITECTURE.md, "Adding a capability").
//!
//! `log` has a room (its import and its counters) but no line: it needs no backend and no
//! flag, and every module has it. `shared/` is what the rooms have in common: the cycle's
//! shared context and the steps every import takes. `sink.rs`: where one-shot commands'
//! records go.

pub mod log;
pub mod shared;
pub mod sink;

use std::marker::PhantomData;
use std::sync::Arc;
use std::time::Duration;

use wasmtime::component::{HasData, Linker, LinkerInstance};

use crate::outbox::Outbox;
use crate::tape::RecordTo;
use crate::wake::WakeBus;
pub use shared::context::Ctx;
use sink::RecordSink;

/// What a room's import is implemented on: the room's own per-cycle state and the cycle's
/// shared context, borrowed from the store for the length of one call.
pub struct View<'a, S> {
    pub state: &'a mut S,
    pub cx: &'a mut Ctx,
}

/// The `HasData` projection of a room whose state is `S` (wasmtime-wasi's `WasiCtxView`
/// pattern): the linker hands its `Host` implementation a [`View`] instead of the whole
/// store data.
pub struct Room<S>(PhantomData<S>);

impl<S: 'static> HasData for Room<S> {
    type Data<'a> = View<'a, S>;
}

/// What a capability room gives the host: flags to parse, the backend its import calls, and
/// the state one cycle's calls share. Modelled on Spin's factors: each room owns its
/// per-cycle state (`State`, built from the shared backends and the cycle's context) and
/// implements its WIT interface's `Host` on a [`View`] of it — the room's state plus the
/// shared [`Ctx`] — linked through wasmtime's `HasData` projection ([`Room`]). Associated
/// types rather than `Box<dyn Any>` keep each backend and state statically typed, so an
/// import reads `self.state.client` with no downcast.
pub trait Unit {
    /// The room's flags, flattened into the commands' arguments (`ServeArgs`). Flag names,
    /// `env` names and defaults are the reference's and must not change.
    type Config: clap::Args + clap::FromArgMatches + Clone + std::fmt::Debug;
    /// What the import calls, built once and shared by every cycle.
    type Backend: Send + Sync;

    /// What one cycle's calls of this room share (held effects, counters, budgets).
    type State: Send + 'static;

    fn build(cfg: &Self::Config, shared: &Shared) -> anyhow::Result<Self::Backend>;

    /// A fresh state for one cycle.
    fn state(services: &Arc<Services>, cx: &Ctx) -> Self::State;

    /// Links the room's `Host` implementation into one instance of the linker (the room's
    /// interface under one served contract version's name).
    fn link<T: Send + 'static>(
        inst: &mut LinkerInstance<'_, T>,
        get: fn(&mut T) -> View<'_, Self::State>,
    ) -> wasmtime::Result<()>;

    /// The same configuration pointed at no backend: for commands that must not reach one
    /// (`check`, `run-once`, whose answers come from fixtures) and for tests. The default
    /// keeps the configuration, for a room with nothing remote to reach; every room so far
    /// overrides it (URLs emptied or pointed at the discard port, the LLM's provider dropped).
    fn offline(cfg: &Self::Config) -> Self::Config {
        cfg.clone()
    }
}

/// What every room's constructor may use.
#[derive(Debug, Clone)]
pub struct Shared {
    /// Per-request timeout of the plain HTTP clients (core, Prometheus, Tempo): the
    /// reference's 30 s.
    pub http_timeout: Duration,
}

impl Default for Shared {
    fn default() -> Self {
        Shared { http_timeout: Duration::from_secs(30) }
    }
}

/// What the one table of capabilities (policy/table.rs) expands to here: each line's
/// `room::Unit` — the room's folder (declared here, and the field in [`CapabilityArgs`] and
/// [`Backends`]) and its [`Unit`]. The variant and name make the `Capability` enum there.
macro_rules! capabilities {
    ($($variant:ident => $name:literal, $field:ident :: $unit:ident;)+) => {
        $(pub mod $field;)+

        /// Every room's flags.
        #[derive(Debug, Clone, clap::Args)]
        pub struct CapabilityArgs {
            $(#[command(flatten)] pub $field: <$field::$unit as Unit>::Config,)+
        }

        impl CapabilityArgs {
            /// Every room's [`Unit::offline`] configuration.
            pub fn offline(&self) -> Self {
                CapabilityArgs { $($field: <$field::$unit as Unit>::offline(&self.$field),)+ }
            }
        }

        /// Every room's backend, one field per line of the table.
        pub struct Backends {
            $(pub $field: <$field::$unit as Unit>::Backend,)+
        }

        impl Backends {
            pub fn build(args: &CapabilityArgs, shared: &Shared) -> anyhow::Result<Self> {
                Ok(Backends { $($field: <$field::$unit as Unit>::build(&args.$field, shared)?,)+ })
            }
        }

        /// Every room's per-cycle state, one field per line of the table, and `log`'s.
        pub struct Rooms {
            $(pub $field: <$field::$unit as Unit>::State,)+
            pub log: log::State,
        }

        impl Rooms {
            pub fn new(services: &Arc<Services>, cx: &Ctx) -> Self {
                Rooms { $($field: <$field::$unit as Unit>::state(services, cx),)+ log: log::State::default() }
            }
        }

        /// Store data that carries the rooms: each room's [`View`] is projected from it.
        pub trait HasRooms: Send + 'static {
            fn rooms(&mut self) -> (&mut Rooms, &mut Ctx);

            $(fn $field(&mut self) -> View<'_, <$field::$unit as Unit>::State> {
                let (rooms, cx) = self.rooms();
                View { state: &mut rooms.$field, cx }
            })+

            fn log(&mut self) -> View<'_, log::State> {
                let (rooms, cx) = self.rooms();
                View { state: &mut rooms.log, cx }
            }
        }

        /// Links every room's import under one contract version's interface names
        /// (`nthlayer:worker/<room>@<version>`), skipping rooms the version does not have.
        pub fn link<T: HasRooms>(linker: &mut Linker<T>, version: &str, has: &[&str]) -> wasmtime::Result<()> {
            let name = |room: &str| format!("nthlayer:worker/{room}@{version}");
            $(if has.contains(&$name) {
                <$field::$unit as Unit>::link(&mut linker.instance(&name($name))?, |t: &mut T| t.$field())?;
            })+
            if has.contains(&"log") {
                log::link(&mut linker.instance(&name("log"))?, |t: &mut T| t.log())?;
            }
            Ok(())
        }
    };
}

crate::policy::table::capability_table!(capabilities);

/// The backends behind the imports and what every cycle shares, built once per host.
pub struct Services {
    /// One backend per capability (the table, policy/table.rs): `backends.core`,
    /// `backends.tempo`, ….
    pub backends: Backends,
    /// Where the `core` import posts records of cycles that do not hold them (one-shot
    /// commands: gate, run). Scheduled cycles hold theirs for the outbox instead.
    pub records: Arc<dyn RecordSink>,
    /// The durable outbox (`serve` only): commits of scheduled cycles, the sender's queue,
    /// task state without core, the last good manifests. Set once, after loading.
    pub outbox: std::sync::OnceLock<Arc<Outbox>>,
    /// Who wakes on which submitted records (contract 0.2.0).
    pub wake: Arc<WakeBus>,
    /// `--record DIR`: every cycle's import calls are written there as fixtures.
    pub record: Option<Arc<RecordTo>>,
}

impl Services {
    /// Every command and test builds its backends here, from the capability flags (use
    /// [`CapabilityArgs::offline`] for a host that must reach none).
    pub fn build(caps: &CapabilityArgs) -> anyhow::Result<Self> {
        let backends = Backends::build(caps, &Shared::default())?;
        Ok(Services {
            records: Arc::new(backends.core.clone()),
            backends,
            outbox: Default::default(),
            wake: Default::default(),
            record: None,
        })
    }

    /// Services reaching no backend, with every flag at its default.
    pub fn offline() -> anyhow::Result<Self> {
        Self::build(&CapabilityArgs::offline_defaults())
    }
}

impl CapabilityArgs {
    /// Every flag's default (and environment), pointed at no backend: `check`, benches and
    /// tests, which have no command line of their own.
    pub fn offline_defaults() -> Self {
        #[derive(clap::Parser)]
        struct Defaults {
            #[command(flatten)]
            caps: CapabilityArgs,
        }
        <Defaults as clap::Parser>::parse_from(["nthlayer-host"]).caps.offline()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offline_reaches_nothing() {
        let caps = CapabilityArgs::offline_defaults();
        assert_eq!(caps.prometheus.prometheus_url, "");
        assert!(caps.tempo.tempo_endpoint.is_none() && caps.arbiter.arbiter_url.is_none());
        let b = Backends::build(&caps, &Shared::default()).unwrap();
        assert!(b.tempo.is_none() && b.arbiter.is_none());
    }
}

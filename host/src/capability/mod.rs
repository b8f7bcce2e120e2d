//! One room per capability: each folder holds a backend's client (`client.rs`), the host
//! side of its WIT interface (`import.rs`), its flags (`config.rs`) and the [`Unit`] that
//! ties them together (`mod.rs`). The [`capabilities!`] table below is the only list of
//! capabilities: the `Capability` enum, its names and parsing, the `--grant` help, the
//! fixture files of a recording, the flags of `serve`/`gate`/`run` and the backends every
//! cycle shares ([`Backends`], inside `Services`) all come from it. Adding a capability is
//! its folder, its WIT and one line here (docs/ARCHITECTURE.md, "Adding a capability").
//!
//! `log` has a room (its import) but no line: it needs no backend and no flag, and every
//! module has it. `shared/` is the plumbing the rooms have in common (client errors,
//! retries, core's breaker, the CloudEvents envelope, the import steps).

pub mod log;
pub mod services;
pub mod shared;

use std::time::Duration;

/// What a capability room gives the host: flags to parse and, from them, the backend its
/// import calls. Modelled on Spin's factors, cut down to the two things every room has: a
/// room needs no hook into instantiation (its import is a plain `Host` impl on the store
/// data, linked by `bindings`), and no per-cycle state beyond what `CycleCtx` already
/// carries, so a trait of one config type, one backend type and one constructor is enough.
/// Associated types rather than `Box<dyn Any>` keep each backend statically typed in
/// `Services`, so an import reads `services.backends.tempo` with no downcast.
pub trait Unit {
    /// The room's flags, flattened into the commands' arguments (`ServeArgs`). Flag names,
    /// `env` names and defaults are the reference's and must not change.
    type Config: clap::Args + clap::FromArgMatches + Clone + std::fmt::Debug;
    /// What the import calls, built once and shared by every cycle.
    type Backend: Send + Sync;

    fn build(cfg: &Self::Config, shared: &Shared) -> anyhow::Result<Self::Backend>;

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

/// The one table of capabilities. Each line: the enum variant, the name modules put in
/// `needs` and operators in `--grant`, and `room::Unit`: the room's folder (declared here,
/// and the field in [`CapabilityArgs`] and [`Backends`]) and its [`Unit`].
macro_rules! capabilities {
    ($($variant:ident => $name:literal, $field:ident :: $unit:ident;)+) => {
        $(pub mod $field;)+

        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum Capability { $($variant),+ }

        impl Capability {
            pub const ALL: &'static [Capability] = &[$(Capability::$variant),+];
            /// The names, in table order (also the order `run-once` reports fixture files).
            pub const NAMES: &'static [&'static str] = &[$($name),+];

            pub fn name(self) -> &'static str {
                match self { $(Capability::$variant => $name),+ }
            }
        }

        /// `--grant`'s help, listing every capability.
        pub const GRANT_HELP: &str = concat!(
            "Capabilities and record kinds for a module (repeatable): MODULE=",
            $($name, ",",)+
            "assessment:KIND,verdict:TYPE or MODULE=none (`assessment:*` / `verdict:*`: any). Overrides \
             what trusted code declares; the only way untrusted code gets any capability, or may post any \
             record kind"
        );

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
    };
}

capabilities! {
    Core => "core", core::Core;
    Prometheus => "prometheus", prometheus::Prometheus;
    Tempo => "tempo", tempo::Tempo;
    Llm => "llm", llm::Llm;
    Arbiter => "arbiter", arbiter::Arbiter;
}

impl Capability {
    /// Parses a `needs` entry. `log` is accepted and always granted (`Some(None)`).
    pub fn parse(s: &str) -> Option<Option<Capability>> {
        if s == "log" {
            return Some(None);
        }
        Capability::ALL.iter().find(|c| c.name() == s).map(|c| Some(*c))
    }

    /// `core, prometheus, tempo, llm, arbiter`: for help texts and error messages.
    pub fn known() -> String {
        Capability::NAMES.join(", ")
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
    fn the_table_is_the_only_list() {
        // A new line in the table extends these lists; it never needs them edited.
        assert!(Capability::known().starts_with("core, prometheus, tempo, llm, arbiter"));
        assert!(GRANT_HELP.contains(&format!("MODULE={},assessment:KIND", Capability::NAMES.join(","))));
        for c in Capability::ALL {
            assert_eq!(Capability::parse(c.name()), Some(Some(*c)));
        }
    }

    #[test]
    fn offline_reaches_nothing() {
        let caps = CapabilityArgs::offline_defaults();
        assert_eq!(caps.prometheus.prometheus_url, "");
        assert!(caps.tempo.tempo_endpoint.is_none() && caps.arbiter.arbiter_url.is_none());
        let b = Backends::build(&caps, &Shared::default()).unwrap();
        assert!(b.tempo.is_none() && b.arbiter.is_none());
    }
}

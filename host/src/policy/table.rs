//! The one table of capabilities. It sits in policy, the lowest room that speaks of
//! capabilities, and is expanded twice: here into the [`Capability`] enum that grants, the
//! tape and error messages name (with its names, parsing and the `--grant` help), and in
//! capability/mod.rs into the rooms (their folders, flags, backends, per-cycle states and
//! linking). Adding a capability is one line here plus its room.

/// Hands the table to `$then!`. Each line: the enum variant, the name modules put in
/// `needs` and operators in `--grant`, and `room::Unit`, the room's folder and its `Unit`.
macro_rules! capability_table {
    ($then:ident) => {
        $then! {
            Core => "core", core::Core;
            Prometheus => "prometheus", prometheus::Prometheus;
            Tempo => "tempo", tempo::Tempo;
            Llm => "llm", llm::Llm;
            Arbiter => "arbiter", arbiter::Arbiter;
        }
    };
}
pub(crate) use capability_table;

/// The table's names: the enum, its lists and the `--grant` help.
macro_rules! names {
    ($($variant:ident => $name:literal, $field:ident :: $unit:ident;)+) => {
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
    };
}

capability_table!(names);

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
}

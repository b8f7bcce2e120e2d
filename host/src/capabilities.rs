//! Which module may call what.
//!
//! A module lists what it `needs`; the operator decides. The five built-in modules get what
//! they declare unless the operator says otherwise; any other module gets `log` only until
//! granted (`--grant mymod=core,prometheus`). A denied call returns `host-error::denied`
//! naming the flag to add, so the fix is in the error message.

use std::collections::HashMap;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Capability {
    Core,
    Prometheus,
    Tempo,
    Llm,
}

impl Capability {
    pub const ALL: [Capability; 4] = [Capability::Core, Capability::Prometheus, Capability::Tempo, Capability::Llm];

    /// Parses a `needs` entry. `log` is accepted and always granted.
    pub fn parse(s: &str) -> Option<Option<Capability>> {
        match s {
            "core" => Some(Some(Capability::Core)),
            "prometheus" => Some(Some(Capability::Prometheus)),
            "tempo" => Some(Some(Capability::Tempo)),
            "llm" => Some(Some(Capability::Llm)),
            "log" => Some(None),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Capability::Core => "core",
            Capability::Prometheus => "prometheus",
            Capability::Tempo => "tempo",
            Capability::Llm => "llm",
        }
    }
}

/// Modules whose declared needs are granted without operator action.
pub const BUILTIN_MODULES: [&str; 5] = ["observe", "measure", "correlate", "respond", "learn"];

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Grants {
    bits: u8,
}

impl Grants {
    pub fn none() -> Self {
        Grants { bits: 0 }
    }
    pub fn with(self, c: Capability) -> Self {
        Grants { bits: self.bits | (1 << c as u8) }
    }
    pub fn allows(self, c: Capability) -> bool {
        self.bits & (1 << c as u8) != 0
    }
    pub fn names(self) -> Vec<&'static str> {
        Capability::ALL.into_iter().filter(|c| self.allows(*c)).map(Capability::name).collect()
    }
}

/// Operator grants from `--grant NAME=cap,cap` (or `NAME=none`).
#[derive(Debug, Clone, Default)]
pub struct GrantPolicy {
    explicit: HashMap<String, Grants>,
}

impl GrantPolicy {
    pub fn parse(specs: &[String]) -> anyhow::Result<Self> {
        let mut explicit = HashMap::new();
        for spec in specs {
            let (name, caps) = spec
                .split_once('=')
                .ok_or_else(|| anyhow::anyhow!("--grant {spec:?}: expected MODULE=cap[,cap…] or MODULE=none"))?;
            let mut g = Grants::none();
            for cap in caps.split(',').map(str::trim).filter(|c| !c.is_empty() && *c != "none") {
                match Capability::parse(cap) {
                    Some(Some(c)) => g = g.with(c),
                    Some(None) => {}
                    None => {
                        anyhow::bail!("--grant {spec:?}: unknown capability {cap:?} (core, prometheus, tempo, llm)")
                    }
                }
            }
            explicit.insert(name.to_string(), g);
        }
        Ok(GrantPolicy { explicit })
    }

    pub fn resolve(&self, module: &str, needs: &[String]) -> Grants {
        if let Some(g) = self.explicit.get(module) {
            return *g;
        }
        if !BUILTIN_MODULES.contains(&module) {
            return Grants::none();
        }
        needs.iter().filter_map(|n| Capability::parse(n).flatten()).fold(Grants::none(), Grants::with)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtins_get_their_needs_strangers_get_nothing() {
        let p = GrantPolicy::parse(&["mine=core,llm".into(), "observe=none".into()]).unwrap();
        let needs = vec!["core".to_string(), "prometheus".to_string()];
        assert_eq!(p.resolve("measure", &needs).names(), ["core", "prometheus"]);
        assert_eq!(p.resolve("stranger", &needs).names(), Vec::<&str>::new());
        assert_eq!(p.resolve("mine", &[]).names(), ["core", "llm"]);
        assert_eq!(p.resolve("observe", &needs).names(), Vec::<&str>::new());
        assert!(GrantPolicy::parse(&["x=disk".into()]).is_err());
        assert!(GrantPolicy::parse(&["nonsense".into()]).is_err());
    }
}

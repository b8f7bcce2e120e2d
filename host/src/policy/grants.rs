//! Which module may call what.
//!
//! A module lists what it `needs` (and, from contract 0.3.0, what it `emits`:
//! emissions.rs); the operator decides. What a module gets without
//! operator action depends on *what the code is*, never on the name it gives itself:
//! - trusted code — the components embedded in this binary, a file byte-identical to one of
//!   them (same sha256), or a file under a `--trusted-dir` — gets what it declares;
//! - anything else gets `log` only.
//!
//! `--grant NAME=cap,…` overrides both for whatever serves under NAME. A denied call returns
//! `host-error::denied` naming the flag to add, so the fix is in the error message.
//! docs/SANDBOX.md is the operator's version of this.

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use crate::policy::emissions::{Emission, EmitRights, Emits};
pub use crate::policy::table::Capability;

/// A set of capabilities, and the records the module may emit (emissions.rs).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Grants {
    caps: BTreeSet<Capability>,
    pub emits: EmitRights,
}

impl Grants {
    pub fn none() -> Self {
        Grants::default()
    }
    pub fn with(mut self, c: Capability) -> Self {
        self.caps.insert(c);
        self
    }
    pub fn emitting(mut self, emits: EmitRights) -> Self {
        self.emits = emits;
        self
    }
    pub fn allows(&self, c: Capability) -> bool {
        self.caps.contains(&c)
    }
    pub fn names(&self) -> Vec<&'static str> {
        self.caps.iter().map(|c| c.name()).collect()
    }
    /// What `self` has that `other` lacks.
    pub fn minus(&self, other: &Grants) -> Vec<&'static str> {
        self.caps.difference(&other.caps).map(|c| c.name()).collect()
    }
}

/// Why the host does (or does not) trust a component's code.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Trust {
    /// Embedded in this binary.
    Embedded,
    /// A file whose sha256 equals that of an embedded component.
    SameAsEmbedded,
    /// A file under a directory the operator marked with `--trusted-dir`.
    TrustedDir(PathBuf),
    /// Anything else: explicit `--grant`s only.
    Untrusted,
}

impl Trust {
    pub fn trusted(&self) -> bool {
        !matches!(self, Trust::Untrusted)
    }
}

/// Operator grants (`--grant NAME=cap,cap,assessment:KIND,verdict:TYPE` or `NAME=none`) and
/// trusted directories.
///
/// The `--grant` lines sit in one swappable home shared by every clone (the watcher's, the
/// admin API's), so a config reload ([`GrantPolicy::adopt`]) reaches every later resolve.
/// Trusted directories are not swapped: trust is decided when a file loads.
#[derive(Debug, Clone, Default)]
pub struct GrantPolicy {
    rules: std::sync::Arc<arc_swap::ArcSwap<Rules>>,
    trusted_dirs: Vec<PathBuf>,
}

#[derive(Debug, Default, PartialEq)]
struct Rules {
    explicit: HashMap<String, Grants>,
    /// Modules whose `--grant` named emissions (or `none`): those replace the trust-based set.
    explicit_emits: HashMap<String, Emits>,
}

impl GrantPolicy {
    pub fn parse(specs: &[String]) -> anyhow::Result<Self> {
        let (mut explicit, mut explicit_emits) = (HashMap::new(), HashMap::new());
        for spec in specs {
            let (name, caps) = spec
                .split_once('=')
                .ok_or_else(|| anyhow::anyhow!("--grant {spec:?}: expected MODULE=cap[,cap…] or MODULE=none"))?;
            let mut g = Grants::none();
            let mut emits: Option<Emits> = None;
            for cap in caps.split(',').map(str::trim).filter(|c| !c.is_empty()) {
                if cap == "none" {
                    emits.get_or_insert_with(Emits::default);
                    continue;
                }
                if let Some(e) = Emission::parse(cap) {
                    let e = e.map_err(|m| anyhow::anyhow!("--grant {spec:?}: {m}"))?;
                    emits = Some(emits.unwrap_or_default().with(e));
                    continue;
                }
                match Capability::parse(cap) {
                    Some(Some(c)) => g = g.with(c),
                    Some(None) => {}
                    None => anyhow::bail!(
                        "--grant {spec:?}: unknown capability {cap:?} ({}, or assessment:KIND / verdict:TYPE)",
                        Capability::known()
                    ),
                }
            }
            if let Some(e) = emits {
                explicit_emits.insert(name.to_string(), e);
            }
            explicit.insert(name.to_string(), g);
        }
        let rules = Rules { explicit, explicit_emits };
        Ok(GrantPolicy { rules: std::sync::Arc::new(arc_swap::ArcSwap::from_pointee(rules)), trusted_dirs: Vec::new() })
    }

    /// Makes `other`'s `--grant` lines this policy's (and every clone's) from the next
    /// resolve on; a version already resolved keeps its grants until re-resolved.
    pub fn adopt(&self, other: &GrantPolicy) {
        self.rules.store(other.rules.load_full());
    }

    /// Whether the two policies hold the same `--grant` lines.
    pub fn same_grants(&self, other: &GrantPolicy) -> bool {
        *self.rules.load() == *other.rules.load()
    }

    /// Adds `--trusted-dir`s. Each must exist: it is resolved now (symlinks included), so
    /// a later symlink flip of the directory itself does not widen trust.
    pub fn with_trusted_dirs(mut self, dirs: &[PathBuf]) -> anyhow::Result<Self> {
        for d in dirs {
            let c = d.canonicalize().map_err(|e| anyhow::anyhow!("--trusted-dir {}: {e}", d.display()))?;
            self.trusted_dirs.push(c);
        }
        Ok(self)
    }

    /// What the code at `path` with `sha256` is. Embedded components are identified by the
    /// caller (they have no file).
    pub fn identify(&self, path: &Path, sha256: &str) -> Trust {
        if crate::policy::builtin::is_embedded_sha256(sha256) {
            return Trust::SameAsEmbedded;
        }
        if let Ok(real) = path.canonicalize() {
            if let Some(d) = self.trusted_dirs.iter().find(|d| real.starts_with(d)) {
                return Trust::TrustedDir(d.clone());
            }
        }
        Trust::Untrusted
    }

    /// Capabilities: the `--grant` line, else what trusted code declares, else none.
    /// Emissions granted: the `--grant` line's, else for trusted code what it declares in
    /// `emits` (`declared`: contract 0.3.0 on) or, if it cannot declare, the built-in set of
    /// its name, else none; it may emit the granted ones it declared (emissions.rs).
    pub fn resolve(&self, module: &str, needs: &[String], declared: Option<&Emits>, trust: &Trust) -> Grants {
        let rules = self.rules.load();
        let caps = match rules.explicit.get(module) {
            Some(g) => g.clone(),
            None if !trust.trusted() => Grants::none(),
            None => needs.iter().filter_map(|n| Capability::parse(n).flatten()).fold(Grants::none(), Grants::with),
        };
        let granted = match (rules.explicit_emits.get(module), declared) {
            (Some(e), _) => e.clone(),
            (None, _) if !trust.trusted() => Emits::default(),
            (None, Some(d)) => d.clone(),
            (None, None) => Emits::builtin(module),
        };
        caps.emitting(EmitRights::new(granted, declared.cloned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::emissions::Record;

    #[test]
    fn trusted_code_gets_its_needs_strangers_get_nothing_whatever_their_name() {
        let p = GrantPolicy::parse(&["mine=core,llm".into(), "measure=none".into()]).unwrap();
        let needs = vec!["core".to_string(), "prometheus".to_string()];
        assert_eq!(p.resolve("observe", &needs, None, &Trust::Embedded).names(), ["core", "prometheus"]);
        // The name `observe` buys nothing: only the code's identity does.
        assert_eq!(p.resolve("observe", &needs, None, &Trust::Untrusted).names(), Vec::<&str>::new());
        assert_eq!(p.resolve("stranger", &needs, None, &Trust::Untrusted).names(), Vec::<&str>::new());
        assert_eq!(p.resolve("mine", &[], None, &Trust::Untrusted).names(), ["core", "llm"]);
        assert_eq!(p.resolve("measure", &needs, None, &Trust::Embedded).names(), Vec::<&str>::new());
        assert!(GrantPolicy::parse(&["x=disk".into()])
            .unwrap_err()
            .to_string()
            .contains("core, prometheus, tempo, llm, arbiter"));
        assert!(GrantPolicy::parse(&["nonsense".into()]).is_err());
    }

    #[test]
    fn trusted_dirs_and_embedded_hashes_identify_code() {
        let dir = tempfile::tempdir().unwrap();
        let inside = dir.path().join("m.wasm");
        std::fs::write(&inside, b"x").unwrap();
        let other = tempfile::tempdir().unwrap();
        let outside = other.path().join("m.wasm");
        std::fs::write(&outside, b"x").unwrap();
        let p = GrantPolicy::default().with_trusted_dirs(&[dir.path().to_path_buf()]).unwrap();
        assert!(matches!(p.identify(&inside, "00"), Trust::TrustedDir(_)));
        assert_eq!(p.identify(&outside, "00"), Trust::Untrusted);
        // `..` does not escape the check: paths are resolved first.
        let sneaky = dir.path().join("..").join(other.path().file_name().unwrap()).join("m.wasm");
        assert_eq!(p.identify(&sneaky, "00"), Trust::Untrusted);
        for e in crate::policy::builtin::all() {
            assert_eq!(p.identify(&outside, e.sha256()), Trust::SameAsEmbedded);
        }
        assert!(GrantPolicy::default().with_trusted_dirs(&[PathBuf::from("/nonexistent/dir")]).is_err());
    }

    #[test]
    fn grants_are_a_set_with_room_to_grow() {
        let all = Capability::ALL.iter().fold(Grants::none(), |g, c| g.with(*c));
        assert_eq!(all.names().len(), Capability::ALL.len());
        assert_eq!(all.minus(&Grants::none().with(Capability::Core)), Capability::NAMES[1..]);
        assert_eq!(Capability::parse("log"), Some(None));
        assert_eq!(Capability::parse("tempo"), Some(Some(Capability::Tempo)));
    }

    #[test]
    fn emissions_follow_the_code_and_the_operator_not_the_name() {
        let p = GrantPolicy::parse(&[
            "mine=core,assessment:burn_rate,verdict:triage".into(),
            "observe=core,prometheus".into(),
            "measure=none".into(),
        ])
        .unwrap();
        let mine = p.resolve("mine", &[], None, &Trust::Untrusted);
        assert!(mine.allows(Capability::Core));
        assert_eq!(mine.emits.labels(), ["assessment:burn_rate", "verdict:triage"]);
        // Embedded observe keeps its kinds when the line names capabilities only …
        assert!(p.resolve("observe", &[], None, &Trust::Embedded).emits.allows(Record::Assessment, "portfolio_status"));
        // … a stranger calling itself observe gets none of them, whatever the line says.
        assert_eq!(p.resolve("observe", &[], None, &Trust::Untrusted).emits.effective, Emits::default());
        assert_eq!(p.resolve("measure", &[], None, &Trust::Embedded).emits.effective, Emits::default());
        assert!(GrantPolicy::parse(&["x=record:y".into()]).unwrap_err().to_string().contains("assessment:KIND"));
    }

    fn emits(labels: &[&str]) -> Emits {
        labels.iter().map(|l| Emission::parse(l).unwrap().unwrap()).fold(Emits::default(), Emits::with)
    }

    #[test]
    fn a_declaring_module_emits_the_granted_part_of_its_declaration() {
        let p = GrantPolicy::parse(&[
            "mine=core,assessment:x,assessment:y".into(),
            "wide=core,assessment:*".into(),
            "observe=core".into(),
        ])
        .unwrap();
        let declared = emits(&["assessment:x", "verdict:v"]);
        // Granted x and y, declares x and v: x only. y is granted but undeclared; v the reverse.
        let mine = p.resolve("mine", &[], Some(&declared), &Trust::Untrusted).emits;
        assert_eq!(mine.labels(), ["assessment:x"]);
        assert_eq!(mine.missing().labels(), ["verdict:v"]);
        // A wildcard grant narrows to the declared kinds of its record.
        let wide = p.resolve("wide", &[], Some(&declared), &Trust::Untrusted).emits;
        assert_eq!(wide.labels(), ["assessment:x"]);
        // Trusted code with no line is granted what it declares — not the built-in table of
        // its name, which serves only modules that cannot declare.
        let own = emits(&["assessment:slo_status"]);
        let observe = p.resolve("observe", &[], Some(&own), &Trust::Embedded).emits;
        assert_eq!(observe.labels(), ["assessment:slo_status"]);
        assert!(observe.missing().is_empty());
        assert_eq!(p.resolve("observe", &[], None, &Trust::Embedded).emits.labels().len(), 5);
        // Untrusted code with no line: its declaration grants nothing.
        let stranger = p.resolve("stranger", &[], Some(&declared), &Trust::Untrusted).emits;
        assert!(stranger.effective.is_empty());
        assert_eq!(stranger.missing(), declared);
    }

    #[test]
    fn the_arbiter_is_granted_like_any_capability() {
        let needs = vec!["core".to_string(), "llm".to_string(), "arbiter".to_string()];
        let p = GrantPolicy::parse(&["mine=arbiter".into()]).unwrap();
        assert!(p.resolve("respond", &needs, None, &Trust::Embedded).allows(Capability::Arbiter));
        assert!(!p.resolve("respond", &needs, None, &Trust::Untrusted).allows(Capability::Arbiter));
        assert_eq!(p.resolve("mine", &[], None, &Trust::Untrusted).names(), ["arbiter"]);
    }
}

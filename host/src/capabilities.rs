//! Which module may call what.
//!
//! A module lists what it `needs`; the operator decides. What a module gets without
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

/// The one table of capabilities: parsing, listing, the `--grant` help and error messages
/// all come from here. A new capability is one line (plus its import and WIT).
macro_rules! capabilities {
    ($($variant:ident => $name:literal),+ $(,)?) => {
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum Capability { $($variant),+ }

        impl Capability {
            pub const ALL: &'static [Capability] = &[$(Capability::$variant),+];

            pub fn name(self) -> &'static str {
                match self { $(Capability::$variant => $name),+ }
            }
        }
    };
}

capabilities! {
    Core => "core",
    Prometheus => "prometheus",
    Tempo => "tempo",
    Llm => "llm",
    Arbiter => "arbiter",
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
        Capability::ALL.iter().map(|c| c.name()).collect::<Vec<_>>().join(", ")
    }
}

/// A set of capabilities.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Grants(BTreeSet<Capability>);

impl Grants {
    pub fn none() -> Self {
        Grants::default()
    }
    pub fn with(mut self, c: Capability) -> Self {
        self.0.insert(c);
        self
    }
    pub fn allows(&self, c: Capability) -> bool {
        self.0.contains(&c)
    }
    pub fn names(&self) -> Vec<&'static str> {
        self.0.iter().map(|c| c.name()).collect()
    }
    /// What `self` has that `other` lacks.
    pub fn minus(&self, other: &Grants) -> Vec<&'static str> {
        self.0.difference(&other.0).map(|c| c.name()).collect()
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

/// Operator grants (`--grant NAME=cap,cap` or `NAME=none`) and trusted directories.
#[derive(Debug, Clone, Default)]
pub struct GrantPolicy {
    explicit: HashMap<String, Grants>,
    trusted_dirs: Vec<PathBuf>,
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
                    None => anyhow::bail!("--grant {spec:?}: unknown capability {cap:?} ({})", Capability::known()),
                }
            }
            explicit.insert(name.to_string(), g);
        }
        Ok(GrantPolicy { explicit, trusted_dirs: Vec::new() })
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
        if crate::builtin::is_embedded_sha256(sha256) {
            return Trust::SameAsEmbedded;
        }
        if let Ok(real) = path.canonicalize() {
            if let Some(d) = self.trusted_dirs.iter().find(|d| real.starts_with(d)) {
                return Trust::TrustedDir(d.clone());
            }
        }
        Trust::Untrusted
    }

    pub fn resolve(&self, module: &str, needs: &[String], trust: &Trust) -> Grants {
        if let Some(g) = self.explicit.get(module) {
            return g.clone();
        }
        if !trust.trusted() {
            return Grants::none();
        }
        needs.iter().filter_map(|n| Capability::parse(n).flatten()).fold(Grants::none(), Grants::with)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trusted_code_gets_its_needs_strangers_get_nothing_whatever_their_name() {
        let p = GrantPolicy::parse(&["mine=core,llm".into(), "measure=none".into()]).unwrap();
        let needs = vec!["core".to_string(), "prometheus".to_string()];
        assert_eq!(p.resolve("observe", &needs, &Trust::Embedded).names(), ["core", "prometheus"]);
        // The name `observe` buys nothing: only the code's identity does.
        assert_eq!(p.resolve("observe", &needs, &Trust::Untrusted).names(), Vec::<&str>::new());
        assert_eq!(p.resolve("stranger", &needs, &Trust::Untrusted).names(), Vec::<&str>::new());
        assert_eq!(p.resolve("mine", &[], &Trust::Untrusted).names(), ["core", "llm"]);
        assert_eq!(p.resolve("measure", &needs, &Trust::Embedded).names(), Vec::<&str>::new());
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
        for e in crate::builtin::all() {
            assert_eq!(p.identify(&outside, e.sha256()), Trust::SameAsEmbedded);
        }
        assert!(GrantPolicy::default().with_trusted_dirs(&[PathBuf::from("/nonexistent/dir")]).is_err());
    }

    #[test]
    fn grants_are_a_set_with_room_to_grow() {
        let all = Capability::ALL.iter().fold(Grants::none(), |g, c| g.with(*c));
        assert_eq!(all.names().len(), Capability::ALL.len());
        assert_eq!(all.minus(&Grants::none().with(Capability::Core)), ["prometheus", "tempo", "llm", "arbiter"]);
        assert_eq!(Capability::parse("log"), Some(None));
        assert_eq!(Capability::parse("tempo"), Some(Some(Capability::Tempo)));
    }

    #[test]
    fn the_arbiter_is_granted_like_any_capability() {
        let needs = vec!["core".to_string(), "llm".to_string(), "arbiter".to_string()];
        let p = GrantPolicy::parse(&["mine=arbiter".into()]).unwrap();
        assert!(p.resolve("respond", &needs, &Trust::Embedded).allows(Capability::Arbiter));
        assert!(!p.resolve("respond", &needs, &Trust::Untrusted).allows(Capability::Arbiter));
        assert_eq!(p.resolve("mine", &[], &Trust::Untrusted).names(), ["arbiter"]);
    }
}

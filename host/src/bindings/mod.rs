//! Host-side bindings for `wit/`, one module per published contract version.
//!
//! Every published version of `nthlayer:worker` lives frozen in `wit/nthlayer-worker@X.Y.Z/`
//! (a test pins the text; see `frozen`). The imports are implemented once, against
//! [`latest`]; each older version gets a thin layer (`since_v0_1`, `since_v0_2`) that links those
//! implementations under its own interface names and converts the records that changed.
//! wasmtime treats `0.1.0` and `0.2.0` as incompatible names, so a component gets exactly
//! the version it imports. The loader reads that version from the component's imports
//! ([`contract_of`]) before anything is instantiated. Zed serves its extension API versions
//! the same way (`wasm_host/wit/since_v0_X_Y.rs`). Policy: docs/CONTRACT.md.

mod frozen;
mod since_v0_1;
mod since_v0_2;
mod since_v0_3;

use wasmtime::component::{Component, InstancePre};
use wasmtime::{Engine, Store};

/// The newest contract version: the one the imports implement and the SDK is built from.
pub mod latest {
    wasmtime::component::bindgen!({
        world: "worker",
        path: "../wit/nthlayer-worker@0.4.0",
        imports: { default: async },
        exports: { default: async },
    });
}

pub use latest::nthlayer::worker::types::{
    CycleInput, CycleOutput, Emission, FieldTest, HostError, MatchOp, ModuleInfo, RecordKind, Rejection, Task, WakeOn,
};

/// Contract versions this host serves, oldest first. The last one is [`latest`].
pub const SERVED: [Contract; 4] = [Contract::V0_1, Contract::V0_2, Contract::V0_3, Contract::V0_4];

/// A contract version this host serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
pub enum Contract {
    #[serde(rename = "0.1.0")]
    V0_1,
    #[serde(rename = "0.2.0")]
    V0_2,
    #[serde(rename = "0.3.0")]
    V0_3,
    #[serde(rename = "0.4.0")]
    V0_4,
}

impl Contract {
    pub fn version(self) -> &'static str {
        match self {
            Contract::V0_1 => "0.1.0",
            Contract::V0_2 => "0.2.0",
            Contract::V0_3 => "0.3.0",
            Contract::V0_4 => "0.4.0",
        }
    }

    /// The interfaces with functions this version's `worker` world imports (besides `types`),
    /// each linked to the newest implementation under this version's name (store/link.rs).
    pub fn interfaces(self) -> &'static [&'static str] {
        match self {
            Contract::V0_1 => &["core", "prometheus", "tempo", "llm", "log"],
            Contract::V0_2 | Contract::V0_3 | Contract::V0_4 => {
                &["core", "prometheus", "tempo", "llm", "log", "arbiter"]
            }
        }
    }

    /// Whether `describe()` of this version carries an `emits` declaration (0.3.0 on).
    /// Before, a module declares nothing and gets exactly what it is granted.
    pub fn declares_emissions(self) -> bool {
        self >= Contract::V0_3
    }

    /// `0.x.y` matches the served `0.x.*` (wasmtime links a patch release to the same
    /// interfaces; a minor bump of a 0.x version is a different contract).
    fn parse(version: &str) -> Option<Contract> {
        let mut parts = version.split('.');
        let (major, minor) = (parts.next()?, parts.next()?);
        SERVED.into_iter().find(|c| {
            let mut p = c.version().split('.');
            p.next() == Some(major) && p.next() == Some(minor)
        })
    }
}

fn served_list() -> String {
    SERVED.map(Contract::version).join(", ")
}

/// The `nthlayer:worker` version a component was built against, read from the names of the
/// interfaces it imports (`nthlayer:worker/types@0.2.0`, …). `Err` says what is wrong in a
/// sentence that names the versions found and the versions served.
pub fn contract_of(component: &Component, engine: &Engine) -> Result<Contract, String> {
    let ty = component.component_type();
    let names: Vec<String> = ty.imports(engine).map(|(name, _)| name.to_string()).collect();
    contract_of_imports(names.iter().map(String::as_str))
}

/// [`contract_of`] from import names alone, so a load can refuse an unserved version from
/// the wasm's import section before paying for a compile.
pub fn contract_of_imports<'a>(names: impl Iterator<Item = &'a str>) -> Result<Contract, String> {
    let mut found: Vec<String> = Vec::new();
    let mut foreign: Vec<&str> = Vec::new();
    for name in names {
        let Some(rest) = name.strip_prefix("nthlayer:worker/") else {
            if !name.starts_with("wasi:") {
                foreign.push(name);
            }
            continue;
        };
        let version = rest.split_once('@').map(|(_, v)| v.to_string()).unwrap_or_else(|| "(unversioned)".into());
        if !found.contains(&version) {
            found.push(version);
        }
    }
    match found.as_slice() {
        [] => Err(format!(
            "imports no nthlayer:worker interface, so it was not built against the worker contract{} \
             (this host serves nthlayer:worker {})",
            match foreign.as_slice() {
                [] => String::new(),
                f => format!("; it imports {}, which this host does not provide", f.join(", ")),
            },
            served_list()
        )),
        [one] => Contract::parse(one).ok_or_else(|| {
            format!("built against nthlayer:worker@{one}; this host serves nthlayer:worker {}", served_list())
        }),
        many => Err(format!(
            "imports several nthlayer:worker versions ({}); a component must be built against one",
            many.join(", ")
        )),
    }
}

/// A component pre-instantiated against the bindings of the version it imports.
/// Generic over the store data, so the generated types sit below whatever composes it.
pub enum WorkerPre<T: 'static> {
    V0_1(since_v0_1::WorkerPre<T>),
    V0_2(since_v0_2::WorkerPre<T>),
    V0_3(since_v0_3::WorkerPre<T>),
    V0_4(latest::WorkerPre<T>),
}

/// One instance of a component, in its version's bindings.
pub enum Worker {
    V0_1(since_v0_1::Worker),
    V0_2(since_v0_2::Worker),
    V0_3(since_v0_3::Worker),
    V0_4(latest::Worker),
}

impl<T: Send + 'static> WorkerPre<T> {
    /// Checks the exports of `pre` against `contract`'s world.
    pub fn new(contract: Contract, pre: InstancePre<T>) -> wasmtime::Result<Self> {
        Ok(match contract {
            Contract::V0_1 => WorkerPre::V0_1(since_v0_1::WorkerPre::new(pre)?),
            Contract::V0_2 => WorkerPre::V0_2(since_v0_2::WorkerPre::new(pre)?),
            Contract::V0_3 => WorkerPre::V0_3(since_v0_3::WorkerPre::new(pre)?),
            Contract::V0_4 => WorkerPre::V0_4(latest::WorkerPre::new(pre)?),
        })
    }

    pub fn contract(&self) -> Contract {
        match self {
            WorkerPre::V0_1(_) => Contract::V0_1,
            WorkerPre::V0_2(_) => Contract::V0_2,
            WorkerPre::V0_3(_) => Contract::V0_3,
            WorkerPre::V0_4(_) => Contract::V0_4,
        }
    }

    pub async fn instantiate_async(&self, store: &mut Store<T>) -> wasmtime::Result<Worker> {
        Ok(match self {
            WorkerPre::V0_1(p) => Worker::V0_1(p.instantiate_async(store).await?),
            WorkerPre::V0_2(p) => Worker::V0_2(p.instantiate_async(store).await?),
            WorkerPre::V0_3(p) => Worker::V0_3(p.instantiate_async(store).await?),
            WorkerPre::V0_4(p) => Worker::V0_4(p.instantiate_async(store).await?),
        })
    }
}

impl Worker {
    /// `describe()`, in the newest version's types.
    pub async fn call_describe<T: Send>(&self, store: &mut Store<T>) -> wasmtime::Result<ModuleInfo> {
        match self {
            Worker::V0_1(w) => Ok(since_v0_1::module_info(w.call_describe(store).await?)),
            Worker::V0_2(w) => Ok(since_v0_2::module_info(w.call_describe(store).await?)),
            Worker::V0_3(w) => Ok(since_v0_3::module_info(w.call_describe(store).await?)),
            Worker::V0_4(w) => w.call_describe(store).await,
        }
    }

    /// `run-cycle()`, in the newest version's types.
    pub async fn call_run_cycle<T: Send>(
        &self,
        store: &mut Store<T>,
        input: &CycleInput,
    ) -> wasmtime::Result<Result<CycleOutput, String>> {
        match self {
            Worker::V0_1(w) => {
                Ok(w.call_run_cycle(store, &since_v0_1::cycle_input(input)).await?.map(since_v0_1::cycle_output))
            }
            Worker::V0_2(w) => {
                Ok(w.call_run_cycle(store, &since_v0_2::cycle_input(input)).await?.map(since_v0_2::cycle_output))
            }
            Worker::V0_3(w) => {
                Ok(w.call_run_cycle(store, &since_v0_3::cycle_input(input)).await?.map(since_v0_3::cycle_output))
            }
            Worker::V0_4(w) => w.call_run_cycle(store, input).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn contract_of_wat(wat: &str) -> Result<Contract, String> {
        let engine = Engine::default();
        let c = Component::new(&engine, wat).expect("valid component text");
        contract_of(&c, &engine)
    }

    #[test]
    fn the_contract_is_read_from_the_imported_interface_names() {
        let v1 = r#"(component (import "nthlayer:worker/types@0.1.0" (instance)))"#;
        let v2 = r#"(component (import "wasi:cli/stdout@0.2.6" (instance)) (import "nthlayer:worker/log@0.2.0" (instance)))"#;
        assert_eq!(contract_of_wat(v1), Ok(Contract::V0_1));
        assert_eq!(contract_of_wat(v2), Ok(Contract::V0_2));
        let patch = r#"(component (import "nthlayer:worker/types@0.2.3" (instance)))"#;
        assert_eq!(contract_of_wat(patch), Ok(Contract::V0_2));
        let v3 = r#"(component (import "nthlayer:worker/core@0.3.0" (instance)))"#;
        assert_eq!(contract_of_wat(v3), Ok(Contract::V0_3));
        assert!(Contract::V0_3.declares_emissions() && !Contract::V0_2.declares_emissions());
    }

    /// The rooms linked under each version's names (store/link.rs) are exactly what that
    /// version's world imports: one too few and its components fail to pre-instantiate; one
    /// too many and a name no published contract has would be served.
    #[test]
    fn each_version_links_exactly_the_interfaces_its_world_imports() {
        for c in SERVED {
            let path = format!("{}/../wit/nthlayer-worker@{}/world.wit", env!("CARGO_MANIFEST_DIR"), c.version());
            let world = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
            let mut imported: Vec<&str> =
                world.lines().filter_map(|l| l.trim().strip_prefix("import ")?.strip_suffix(';')).collect();
            let mut linked = c.interfaces().to_vec();
            imported.sort();
            linked.sort();
            assert_eq!(linked, imported, "{}", c.version());
        }
    }

    #[test]
    fn unknown_mixed_or_missing_versions_are_refused_with_the_served_list() {
        let future = r#"(component (import "nthlayer:worker/types@0.9.0" (instance)))"#;
        let e = contract_of_wat(future).unwrap_err();
        assert!(
            e.contains("nthlayer:worker@0.9.0") && e.contains("serves nthlayer:worker 0.1.0, 0.2.0, 0.3.0, 0.4.0"),
            "{e}"
        );
        let mixed = r#"(component (import "nthlayer:worker/types@0.1.0" (instance)) (import "nthlayer:worker/log@0.2.0" (instance)))"#;
        assert!(contract_of_wat(mixed).unwrap_err().contains("several nthlayer:worker versions (0.1.0, 0.2.0)"));
        let none = r#"(component (import "wasi:cli/stdout@0.2.6" (instance)))"#;
        assert!(contract_of_wat(none).unwrap_err().contains("imports no nthlayer:worker interface"));
        let evil = r#"(component (import "evil:host/filesystem" (instance)))"#;
        assert!(contract_of_wat(evil).unwrap_err().contains("it imports evil:host/filesystem, which this host"));
    }
}

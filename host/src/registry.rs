//! The loaded modules, each behind a handle whose current version can be replaced while
//! cycles run: a cycle holds the `Arc<LoadedModule>` it started with, so it finishes on the
//! old version while the next cycle picks up the new one.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

use arc_swap::ArcSwap;
use serde_json::{json, Value};

use crate::capabilities::Grants;
use crate::runtime::limits::Limits;
use crate::runtime::LoadedModule;

pub struct ModuleSlot {
    current: ArcSwap<LoadedModule>,
    pub grants: Grants,
    pub limits: Limits,
}

impl ModuleSlot {
    pub fn new(module: Arc<LoadedModule>, grants: Grants, limits: Limits) -> Self {
        ModuleSlot { current: ArcSwap::new(module), grants, limits }
    }

    pub fn current(&self) -> Arc<LoadedModule> {
        self.current.load_full()
    }

    /// Installs a new version; returns the one it replaced.
    pub fn swap(&self, module: Arc<LoadedModule>) -> Arc<LoadedModule> {
        self.current.swap(module)
    }
}

#[derive(Default)]
pub struct Registry {
    slots: RwLock<BTreeMap<String, Arc<ModuleSlot>>>,
}

impl Registry {
    pub fn insert(&self, name: &str, slot: Arc<ModuleSlot>) -> Option<Arc<ModuleSlot>> {
        self.slots.write().expect("registry lock").insert(name.to_string(), slot)
    }

    pub fn get(&self, name: &str) -> Option<Arc<ModuleSlot>> {
        self.slots.read().expect("registry lock").get(name).cloned()
    }

    pub fn remove(&self, name: &str) -> Option<Arc<ModuleSlot>> {
        self.slots.write().expect("registry lock").remove(name)
    }

    pub fn all(&self) -> Vec<(String, Arc<ModuleSlot>)> {
        self.slots.read().expect("registry lock").iter().map(|(k, v)| (k.clone(), v.clone())).collect()
    }

    /// Which version of each module is serving: for heartbeats, logs and `check`.
    pub fn versions(&self) -> Value {
        Value::Array(
            self.all()
                .into_iter()
                .map(|(_, slot)| {
                    let m = slot.current();
                    json!({
                        "name": m.meta.name,
                        "version": m.meta.version,
                        "sha256": m.sha256,
                        "loaded_at": m.loaded_at,
                        "path": m.path.display().to_string(),
                    })
                })
                .collect(),
        )
    }
}

//! Writing live cycles as fixtures (`--record DIR`).

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use serde_json::Value;

use super::format::{self, CycleFile, Entry};
use crate::bindings::HostError;

/// Where recordings go: one directory per cycle, `DIR/<task>/<n>/`, n counting from 1 per
/// task in this process (a directory already there is overwritten).
pub struct RecordTo {
    root: PathBuf,
    counters: Mutex<HashMap<String, u32>>,
}

impl RecordTo {
    pub fn new(root: PathBuf) -> Self {
        RecordTo { root, counters: Default::default() }
    }

    fn dir_for(&self, task: &str) -> PathBuf {
        let mut c = self.counters.lock().expect("record counters");
        let n = c.entry(task.to_string()).or_insert(0);
        *n += 1;
        self.root.join(task).join(n.to_string())
    }
}

/// One cycle's tape while it runs.
pub struct Recorder {
    entries: Mutex<BTreeMap<&'static str, Vec<Entry>>>,
    pub(super) clock_ns: Arc<Mutex<Vec<u64>>>,
    pub(super) random: Arc<Mutex<Vec<u8>>>,
    pub(super) insecure_seed: u128,
}

impl Default for Recorder {
    fn default() -> Self {
        Recorder {
            entries: Default::default(),
            clock_ns: Default::default(),
            random: Default::default(),
            insecure_seed: rand::random(),
        }
    }
}

impl Recorder {
    pub fn push(&self, interface: &'static str, call: &str, args: Value, answer: Result<Value, HostError>) {
        let mut e = self.entries.lock().expect("recorder lock");
        e.entry(interface).or_default().push(Entry::new(call, args, &answer));
    }

    /// Writes the cycle's fixture files; a failure is logged, never fails the cycle.
    pub fn finish(&self, to: &RecordTo, task: &str, state: Option<&Value>, args: Option<&Value>) {
        let dir = to.dir_for(task);
        if let Err(e) = self.write(&dir, task, state, args) {
            tracing::warn!(task, dir = %dir.display(), error = %e, "could not write the cycle's recording");
        } else {
            tracing::debug!(task, dir = %dir.display(), "cycle recorded");
        }
    }

    fn write(&self, dir: &Path, task: &str, state: Option<&Value>, args: Option<&Value>) -> std::io::Result<()> {
        std::fs::create_dir_all(dir)?;
        let cycle = CycleFile {
            task: Some(task.to_string()),
            state: state.cloned(),
            args: args.cloned(),
            clock_ns: self.clock_ns.lock().expect("clock lock").clone(),
            random: hex::encode(&*self.random.lock().expect("random lock")),
            insecure_seed: Some(self.insecure_seed.to_string()),
        };
        std::fs::write(dir.join(format::CYCLE_FILE), serde_json::to_vec_pretty(&cycle)?)?;
        for (interface, entries) in self.entries.lock().expect("recorder lock").iter() {
            std::fs::write(dir.join(format::interface_file(interface)), serde_json::to_vec_pretty(entries)?)?;
        }
        Ok(())
    }
}

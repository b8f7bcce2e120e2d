//! Answering a cycle's imports from a fixture directory (`run-once --fixtures`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use anyhow::{bail, Result};
use serde_json::{json, Value};

use super::format::{self, CycleFile, Entry, INTERFACES};
use super::{Answer, Write};
use crate::bindings::HostError;

pub struct Replay {
    dir: PathBuf,
    pub cycle: CycleFile,
    /// Per interface: the entries and how many times each has answered.
    files: BTreeMap<&'static str, Mutex<Vec<(Entry, u32)>>>,
    submitted: Mutex<Submitted>,
    unmatched: Mutex<Vec<Value>>,
}

#[derive(Default, serde::Serialize)]
pub struct Submitted {
    pub assessments: Vec<Value>,
    pub verdicts: Vec<Value>,
    pub cases: Vec<Value>,
    pub outcomes: Vec<Value>,
    pub autonomy: Vec<Value>,
}

impl Replay {
    /// Reads and checks every fixture file; an error names the file and the entry.
    pub fn load(dir: &Path) -> Result<Self> {
        if !dir.is_dir() {
            bail!("fixtures {}: not a directory (format: docs/modules.md)", dir.display());
        }
        let cycle = format::read_json::<CycleFile>(&dir.join(format::CYCLE_FILE))?.unwrap_or_default();
        let cycle_file = dir.join(format::CYCLE_FILE);
        if hex::decode(&cycle.random).is_err() {
            bail!("fixture {}: \"random\" is not hex", cycle_file.display());
        }
        if cycle.insecure_seed.as_deref().is_some_and(|s| s.parse::<u128>().is_err()) {
            bail!("fixture {}: \"insecure_seed\" is not a decimal u128", cycle_file.display());
        }
        let mut files = BTreeMap::new();
        for &interface in INTERFACES {
            let path = dir.join(format::interface_file(interface));
            let entries: Vec<Entry> = format::read_json(&path)?.unwrap_or_default();
            for (i, e) in entries.iter().enumerate() {
                if let Err(why) = e.answer() {
                    bail!("fixture {} entry {i} ({}): {why}", path.display(), e.call);
                }
            }
            files.insert(interface, Mutex::new(entries.into_iter().map(|e| (e, 0)).collect()));
        }
        Ok(Replay {
            dir: dir.to_path_buf(),
            cycle,
            files,
            submitted: Default::default(),
            unmatched: Default::default(),
        })
    }

    pub fn random_bytes(&self) -> Vec<u8> {
        hex::decode(&self.cycle.random).expect("checked at load")
    }

    pub fn insecure_seed(&self) -> u128 {
        self.cycle.insecure_seed.as_deref().and_then(|s| s.parse().ok()).unwrap_or(0)
    }

    /// The first matching entry not used yet, else the last matching one.
    pub fn lookup(&self, interface: &str, call: &str, args: &Value) -> Option<Result<Value, HostError>> {
        let mut entries = self.files.get(interface)?.lock().expect("fixture lock");
        let matching: Vec<usize> = entries
            .iter()
            .enumerate()
            .filter(|(_, (e, _))| e.call == call && format::same(&e.args, args))
            .map(|(i, _)| i)
            .collect();
        let i = matching.iter().copied().find(|&i| entries[i].1 == 0).or(matching.last().copied())?;
        entries[i].1 += 1;
        Some(entries[i].0.answer().expect("checked at load"))
    }

    /// Turns a fixture answer into the import's type; a wrong shape counts as unmatched.
    pub fn decode<T: Answer>(
        &self,
        interface: &str,
        call: &str,
        args: &Value,
        answer: Result<Value, HostError>,
    ) -> Result<T, HostError> {
        let v = answer?;
        T::from_json(&v).map_err(|why| {
            let file = self.file(interface);
            self.unmatched
                .lock()
                .expect("unmatched lock")
                .push(json!({"interface": interface, "call": call, "args": args, "file": file, "reason": why}));
            HostError::Invalid(format!("fixture {file} answers {interface}.{call} with the wrong shape: {why}"))
        })
    }

    /// Notes a call no entry answers and returns the error the module sees.
    pub fn miss(&self, interface: &str, call: &str, args: Value) -> HostError {
        let file = self.file(interface);
        let e = HostError::Unavailable(format!("no fixture for {interface}.{call} {args} in {file}"));
        self.unmatched
            .lock()
            .expect("unmatched lock")
            .push(json!({"interface": interface, "call": call, "args": args, "file": file}));
        e
    }

    pub fn capture(&self, what: Write, value: Value) {
        let mut s = self.submitted.lock().expect("submitted lock");
        match what {
            Write::Assessment => s.assessments.push(value),
            Write::Verdict => s.verdicts.push(value),
            Write::Case => s.cases.push(value),
            Write::Outcome => s.outcomes.push(value),
            Write::Autonomy => s.autonomy.push(value),
        }
    }

    pub fn submitted(&self) -> Value {
        serde_json::to_value(&*self.submitted.lock().expect("submitted lock")).unwrap_or(Value::Null)
    }

    pub fn unmatched(&self) -> Vec<Value> {
        self.unmatched.lock().expect("unmatched lock").clone()
    }

    fn file(&self, interface: &str) -> String {
        self.dir.join(format::interface_file(interface)).display().to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir_with(files: &[(&str, Value)]) -> tempfile::TempDir {
        let d = tempfile::tempdir().unwrap();
        for (name, v) in files {
            std::fs::write(d.path().join(name), v.to_string()).unwrap();
        }
        d
    }

    #[test]
    fn entries_answer_in_order_then_the_last_repeats_and_misses_name_the_file() {
        let d = dir_with(&[(
            "prometheus.json",
            json!([
                {"call": "query", "args": {"promql": "up", "at": 1}, "ok": {"n": 1}},
                {"call": "query", "args": {"promql": "up", "at": 1.0}, "ok": {"n": 2}},
                {"call": "query", "args": {"promql": "down", "at": null}, "error": {"timeout": "slow"}},
            ]),
        )]);
        let r = Replay::load(d.path()).unwrap();
        let args = json!({"promql": "up", "at": 1.0});
        let n = |r: &Replay| r.lookup("prometheus", "query", &args).unwrap().unwrap()["n"].as_i64().unwrap();
        assert_eq!([n(&r), n(&r), n(&r)], [1, 2, 2]);
        let down = r.lookup("prometheus", "query", &json!({"promql": "down", "at": null})).unwrap();
        assert!(matches!(down, Err(HostError::Timeout(m)) if m == "slow"));
        assert!(r.lookup("core", "get-manifests", &json!({})).is_none());
        let e = r.miss("core", "get-manifests", json!({}));
        assert!(
            matches!(&e, HostError::Unavailable(m) if m.contains("core.get-manifests") && m.ends_with("core.json"))
        );
        assert_eq!(r.unmatched()[0]["call"], "get-manifests");
    }

    #[test]
    fn a_malformed_fixture_is_refused_naming_file_and_entry() {
        let d = dir_with(&[("core.json", json!([{"call": "get-manifests", "args": {}, "error": {"nope": 1}}]))]);
        let e = Replay::load(d.path()).err().unwrap().to_string();
        assert!(e.contains("core.json entry 0 (get-manifests)"), "{e}");
        let d = dir_with(&[("llm.json", json!({"not": "a list"}))]);
        assert!(Replay::load(d.path()).err().unwrap().to_string().contains("llm.json"));
        assert!(Replay::load(Path::new("/nonexistent/fixtures")).is_err());
    }
}

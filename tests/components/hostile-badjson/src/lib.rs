//! hostile-badjson: returns invalid JSON as state. The SDK serialises `Value`s, so this one
//! is written against the raw WIT bindings. Cycle 1 returns the valid `{"n":1}`; every later
//! cycle returns `{not json`.

// The generated import wrappers take one argument per record field.
#![allow(clippy::too_many_arguments)]

wit_bindgen::generate!({ world: "worker", path: "../../../wit/nthlayer-worker@0.1.0" });

use nthlayer::worker::log::{log, Level};
use nthlayer::worker::types::Task;

struct BadJson;

impl Guest for BadJson {
    fn describe() -> ModuleInfo {
        ModuleInfo {
            name: "hostile-badjson".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            tasks: vec![Task {
                name: "hostile-badjson".into(),
                interval_seconds: 1,
                summary: "returns invalid JSON as state".into(),
            }],
            needs: vec![],
        }
    }

    fn run_cycle(input: CycleInput) -> Result<CycleOutput, String> {
        let state = if input.state.is_none() {
            log(Level::Info, "first cycle: behaving", &[]);
            "{\"n\":1}"
        } else {
            log(Level::Info, "misbehaving", &[]);
            "{not json"
        };
        Ok(CycleOutput { state: Some(state.into()), result: None, emitted: 0 })
    }
}

export!(BadJson);

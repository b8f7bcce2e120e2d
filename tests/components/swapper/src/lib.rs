//! Hot-swap test module: one task every second that counts cycles and measures, from its
//! own state, the largest gap between two cycles. Built in three variants (version 1.0.0,
//! 2.0.0, and 3.0.0-trap which panics every cycle) so tests can swap between them. 2.0.0
//! also declares an emission (`assessment:swap_note`, never posted), so a swap changes what
//! the module may emit with the version (host/tests/runtime.rs).

use nthlayer_sdk::serde_json::json;
use nthlayer_sdk::{CycleInput, CycleOutput, Host, Module, ModuleInfo, Task};

const VERSION: &str = if cfg!(feature = "trap") {
    "3.0.0-trap"
} else if cfg!(feature = "v2") {
    "2.0.0"
} else {
    "1.0.0"
};

struct Swapper;

impl Module for Swapper {
    fn describe() -> ModuleInfo {
        ModuleInfo {
            name: "swapper".into(),
            version: VERSION.into(),
            tasks: vec![Task::new("swapper", 1, "counts cycles across versions")],
            needs: vec![],
            emits: if cfg!(feature = "v2") { vec![nthlayer_sdk::Emission::assessment("swap_note")] } else { vec![] },
        }
    }

    fn run_cycle(host: &dyn Host, input: CycleInput) -> Result<CycleOutput, String> {
        if cfg!(feature = "trap") {
            panic!("swapper {VERSION} traps on every cycle");
        }
        let prev = input.state.unwrap_or(json!({}));
        let n = prev["n"].as_u64().unwrap_or(0) + 1;
        let now_ms = (host.now() * 1000.0) as u64;
        let gap = prev["last_ms"].as_u64().map(|l| now_ms.saturating_sub(l)).unwrap_or(0);
        let max_gap = prev["max_gap_ms"].as_u64().unwrap_or(0).max(gap);
        let mut versions: Vec<String> =
            prev["versions"].as_array().map(|a| a.iter().filter_map(|v| v.as_str().map(String::from)).collect()).unwrap_or_default();
        if versions.last().map(String::as_str) != Some(VERSION) {
            versions.push(VERSION.to_string());
        }
        host.log(nthlayer_sdk::Level::Info, &format!("swapper {VERSION} cycle {n}"), &[]);
        Ok(CycleOutput {
            state: Some(json!({"n": n, "last_ms": now_ms, "max_gap_ms": max_gap, "versions": versions})),
            result: None,
            emitted: 0,
        })
    }
}

nthlayer_sdk::export_module!(Swapper);

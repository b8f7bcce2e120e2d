//! hostile-bigversion: `describe()` returns a 2 MiB version string. Before the contract was
//! bounded it was copied into every log line and every heartbeat; now the file is refused
//! at load ("version of 2097152 bytes exceeds the cap of 64 bytes", naming the file) and the
//! rest of the modules keep serving. Part of the hostile-module suite (tests/tests/sandbox.rs).

use nthlayer_sdk::{export_module, CycleInput, CycleOutput, Host, Module, ModuleInfo, Task};

pub struct BigVersion;

impl Module for BigVersion {
    fn describe() -> ModuleInfo {
        ModuleInfo {
            name: "hostile-bigversion".into(),
            version: "9".repeat(2 << 20),
            tasks: vec![Task::new("hostile-bigversion", 1, "never runs")],
            needs: vec![],
            emits: vec![],
        }
    }

    fn run_cycle(_host: &dyn Host, _input: CycleInput) -> Result<CycleOutput, String> {
        Err("hostile-bigversion must never be loaded".into())
    }
}

export_module!(BigVersion);

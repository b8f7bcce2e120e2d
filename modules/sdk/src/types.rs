//! Plain-Rust mirrors of the WIT records, with JSON payloads already parsed.

use serde_json::Value;

use crate::Host;

#[derive(Debug, Clone, PartialEq)]
pub struct Task {
    pub name: String,
    /// 0 = on demand only (run by the CLI, never by the scheduler).
    pub interval_seconds: u32,
    pub summary: String,
}

impl Task {
    pub fn new(name: &str, interval_seconds: u32, summary: &str) -> Self {
        Task { name: name.into(), interval_seconds, summary: summary.into() }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct ModuleInfo {
    pub name: String,
    pub version: String,
    pub tasks: Vec<Task>,
    pub needs: Vec<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct CycleInput {
    pub task: String,
    pub state: Option<Value>,
    pub config: Value,
    pub args: Option<Value>,
}

impl CycleInput {
    /// A config value as u64, e.g. `config_u64("expiry_threshold_days")`.
    pub fn config_u64(&self, key: &str) -> Option<u64> {
        self.config.get(key).and_then(Value::as_u64)
    }
    pub fn config_str(&self, key: &str) -> Option<&str> {
        self.config.get(key).and_then(Value::as_str)
    }
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct CycleOutput {
    /// None keeps the previous state.
    pub state: Option<Value>,
    pub result: Option<Value>,
    pub emitted: u32,
}

/// What a module implements. Both functions are called in a fresh instance every time, so
/// nothing survives between calls except what `run_cycle` returns as state.
pub trait Module {
    fn describe() -> ModuleInfo;
    fn run_cycle(host: &dyn Host, input: CycleInput) -> Result<CycleOutput, String>;
}

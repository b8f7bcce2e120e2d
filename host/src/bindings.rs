//! Host-side bindings for `wit/`, one module per contract version.
//!
//! Only `nthlayer:worker@0.1.0` exists today. When 0.2.0 lands it gets its own `v0_2` module
//! beside this one and the loader picks by the version a component imports, so components
//! built against 0.1.0 keep loading (Zed keeps one bindings module per extension API
//! version for the same reason).

pub mod v0_1 {
    wasmtime::component::bindgen!({
        world: "worker",
        path: "../wit",
        imports: { default: async },
        exports: { default: async },
    });
}

pub use v0_1::nthlayer::worker::types::{CycleInput, CycleOutput, HostError, ModuleInfo, Rejection};
pub use v0_1::Worker;

/// The contract version this host speaks, checked against what `describe()` reports.
pub const WIT_VERSION: &str = "0.1.0";

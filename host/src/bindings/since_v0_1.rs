//! `nthlayer:worker@0.1.0`, served to components built against it.
//!
//! Imports: 0.1.0's interfaces (core, prometheus, tempo, llm, log) have exactly the shape of
//! the newest version's, so their implementations are linked under the 0.1.0 names as they
//! are (store/link.rs, by [`super::Contract::interfaces`]): no code per function, and
//! nothing here to drift. wasmtime type-checks each import
//! structurally at pre-instantiation, so a shape that did differ would be refused at load,
//! naming the function. When a later version changes an import, that import gets a
//! forwarding `Host` impl in this file instead.
//!
//! Exports: 0.1.0's `task` has no `wake` list and its `module-info` no `emits` (0.3.0); its
//! records are converted to the newest ones.

use super::latest;

wasmtime::component::bindgen!({
    world: "worker",
    path: "../wit/nthlayer-worker@0.1.0",
    imports: { default: async },
    exports: { default: async },
    with: {
        "nthlayer:worker/core@0.1.0": crate::bindings::latest::nthlayer::worker::core,
        "nthlayer:worker/prometheus@0.1.0": crate::bindings::latest::nthlayer::worker::prometheus,
        "nthlayer:worker/tempo@0.1.0": crate::bindings::latest::nthlayer::worker::tempo,
        "nthlayer:worker/llm@0.1.0": crate::bindings::latest::nthlayer::worker::llm,
        "nthlayer:worker/log@0.1.0": crate::bindings::latest::nthlayer::worker::log,
    },
});

use nthlayer::worker::types as v0_1;

/// 0.1.0 tasks wake on nothing (interval only) and declare no emissions (the loader knows
/// from the contract that the empty `emits` means "cannot declare").
pub(super) fn module_info(m: v0_1::ModuleInfo) -> latest::nthlayer::worker::types::ModuleInfo {
    latest::nthlayer::worker::types::ModuleInfo {
        name: m.name,
        version: m.version,
        tasks: m
            .tasks
            .into_iter()
            .map(|t| super::Task {
                name: t.name,
                interval_seconds: t.interval_seconds,
                summary: t.summary,
                wake: Vec::new(),
            })
            .collect(),
        needs: m.needs,
        emits: Vec::new(),
    }
}

pub(super) fn cycle_input(i: &super::CycleInput) -> v0_1::CycleInput {
    v0_1::CycleInput { task: i.task.clone(), state: i.state.clone(), config: i.config.clone(), args: i.args.clone() }
}

pub(super) fn cycle_output(o: v0_1::CycleOutput) -> super::CycleOutput {
    super::CycleOutput { state: o.state, result: o.result, emitted: o.emitted }
}

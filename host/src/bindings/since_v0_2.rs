//! `nthlayer:worker@0.2.0`, served to components built against it.
//!
//! Imports: 0.2.0's interfaces (core, prometheus, tempo, llm, log, arbiter) have exactly the
//! shape of the newest version's, so their implementations are linked under the 0.2.0 names
//! as they are (store/link.rs; see since_v0_1.rs for why that is safe: wasmtime type-checks every import
//! structurally at pre-instantiation).
//!
//! Exports: 0.2.0's `module-info` has no `emits` list, so a 0.2.0 module declares nothing and
//! its emissions are what the operator (or its trust) grants (policy/grants.rs). Its `task`,
//! `cycle-input` and `cycle-output` have the newest shapes but are distinct Rust types, so
//! they are converted field by field.

use super::latest::nthlayer::worker::types as new;

wasmtime::component::bindgen!({
    world: "worker",
    path: "../wit/nthlayer-worker@0.2.0",
    imports: { default: async },
    exports: { default: async },
    with: {
        "nthlayer:worker/core@0.2.0": crate::bindings::latest::nthlayer::worker::core,
        "nthlayer:worker/prometheus@0.2.0": crate::bindings::latest::nthlayer::worker::prometheus,
        "nthlayer:worker/tempo@0.2.0": crate::bindings::latest::nthlayer::worker::tempo,
        "nthlayer:worker/llm@0.2.0": crate::bindings::latest::nthlayer::worker::llm,
        "nthlayer:worker/log@0.2.0": crate::bindings::latest::nthlayer::worker::log,
        "nthlayer:worker/arbiter@0.2.0": crate::bindings::latest::nthlayer::worker::arbiter,
    },
});

use nthlayer::worker::types as v0_2;

/// A 0.2.0 module declares no emissions: `emits` is empty, and the loader knows from the
/// contract that empty here means "not declared", not "declares nothing".
pub(super) fn module_info(m: v0_2::ModuleInfo) -> new::ModuleInfo {
    new::ModuleInfo {
        name: m.name,
        version: m.version,
        tasks: m.tasks.into_iter().map(task).collect(),
        needs: m.needs,
        emits: Vec::new(),
    }
}

fn task(t: v0_2::Task) -> new::Task {
    new::Task {
        name: t.name,
        interval_seconds: t.interval_seconds,
        summary: t.summary,
        wake: t.wake.into_iter().map(wake_on).collect(),
    }
}

fn wake_on(w: v0_2::WakeOn) -> new::WakeOn {
    new::WakeOn {
        record: match w.record {
            v0_2::RecordKind::Assessment => new::RecordKind::Assessment,
            v0_2::RecordKind::Verdict => new::RecordKind::Verdict,
        },
        kind: w.kind,
        where_: w
            .where_
            .into_iter()
            .map(|t| new::FieldTest {
                path: t.path,
                op: match t.op {
                    v0_2::MatchOp::AnyOf => new::MatchOp::AnyOf,
                    v0_2::MatchOp::NoneOf => new::MatchOp::NoneOf,
                },
                values: t.values,
            })
            .collect(),
    }
}

pub(super) fn cycle_input(i: &new::CycleInput) -> v0_2::CycleInput {
    v0_2::CycleInput { task: i.task.clone(), state: i.state.clone(), config: i.config.clone(), args: i.args.clone() }
}

pub(super) fn cycle_output(o: v0_2::CycleOutput) -> new::CycleOutput {
    new::CycleOutput { state: o.state, result: o.result, emitted: o.emitted }
}

//! `nthlayer:worker@0.3.0`, served to components built against it.
//!
//! Imports: 0.4.0 only added functions (core's `submit-batch`, prometheus's `query-at-batch`
//! and `query-range-batch`), so 0.3.0's interfaces are subsets of the newest ones and their
//! implementations are linked under the 0.3.0 names as they are (store/link.rs; wasmtime
//! type-checks each import structurally at pre-instantiation, and a component never sees a
//! function its version does not import).
//!
//! Exports: 0.3.0's `module-info`, `task`, `cycle-input` and `cycle-output` have the newest
//! shapes but are distinct Rust types, so they are converted field by field; `emits` is
//! carried over (0.3.0 introduced it).

use super::latest::nthlayer::worker::types as new;

wasmtime::component::bindgen!({
    world: "worker",
    path: "../wit/nthlayer-worker@0.3.0",
    imports: { default: async },
    exports: { default: async },
    with: {
        "nthlayer:worker/core@0.3.0": crate::bindings::latest::nthlayer::worker::core,
        "nthlayer:worker/prometheus@0.3.0": crate::bindings::latest::nthlayer::worker::prometheus,
        "nthlayer:worker/tempo@0.3.0": crate::bindings::latest::nthlayer::worker::tempo,
        "nthlayer:worker/llm@0.3.0": crate::bindings::latest::nthlayer::worker::llm,
        "nthlayer:worker/log@0.3.0": crate::bindings::latest::nthlayer::worker::log,
        "nthlayer:worker/arbiter@0.3.0": crate::bindings::latest::nthlayer::worker::arbiter,
    },
});

use nthlayer::worker::types as v0_3;

/// A 0.3.0 module declares its emissions as a 0.4.0 one does; the list is a distinct Rust
/// type of the same shape, converted entry by entry.
pub(super) fn module_info(m: v0_3::ModuleInfo) -> new::ModuleInfo {
    new::ModuleInfo {
        name: m.name,
        version: m.version,
        tasks: m.tasks.into_iter().map(task).collect(),
        needs: m.needs,
        emits: m.emits.into_iter().map(|e| new::Emission { record: record_kind(e.record), kind: e.kind }).collect(),
    }
}

fn record_kind(r: v0_3::RecordKind) -> new::RecordKind {
    match r {
        v0_3::RecordKind::Assessment => new::RecordKind::Assessment,
        v0_3::RecordKind::Verdict => new::RecordKind::Verdict,
    }
}

fn task(t: v0_3::Task) -> new::Task {
    new::Task {
        name: t.name,
        interval_seconds: t.interval_seconds,
        summary: t.summary,
        wake: t.wake.into_iter().map(wake_on).collect(),
    }
}

fn wake_on(w: v0_3::WakeOn) -> new::WakeOn {
    new::WakeOn {
        record: record_kind(w.record),
        kind: w.kind,
        where_: w
            .where_
            .into_iter()
            .map(|t| new::FieldTest {
                path: t.path,
                op: match t.op {
                    v0_3::MatchOp::AnyOf => new::MatchOp::AnyOf,
                    v0_3::MatchOp::NoneOf => new::MatchOp::NoneOf,
                },
                values: t.values,
            })
            .collect(),
    }
}

pub(super) fn cycle_input(i: &new::CycleInput) -> v0_3::CycleInput {
    v0_3::CycleInput { task: i.task.clone(), state: i.state.clone(), config: i.config.clone(), args: i.args.clone() }
}

pub(super) fn cycle_output(o: v0_3::CycleOutput) -> new::CycleOutput {
    new::CycleOutput { state: o.state, result: o.result, emitted: o.emitted }
}

//! `nthlayer:worker@0.3.0`, served to components built against it.
//!
//! Opened from since_v0_2.rs when 0.4.0 superseded 0.3.0: the imports are
//! the newest implementations linked under the 0.3.0 names, and the records are
//! converted field by field (distinct Rust types of the same shape until 0.4.0
//! changes one; then the conversion of that record says what the change means).

use wasmtime::component::{HasSelf, Linker};

use super::latest::nthlayer::worker::types as new;
use crate::runtime::store::StoreData;

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

/// Only types; nothing to implement.
impl v0_3::Host for StoreData {}

/// Links the newest implementations under the 0.3.0 interface names.
pub(super) fn add_to_linker(linker: &mut Linker<StoreData>) -> wasmtime::Result<()> {
    use super::latest::nthlayer::worker::{arbiter, core, llm, log, prometheus, tempo};
    type D = HasSelf<StoreData>;
    core::add_to_linker_instance::<StoreData, D>(&mut linker.instance("nthlayer:worker/core@0.3.0")?, |s| s)?;
    prometheus::add_to_linker_instance::<StoreData, D>(
        &mut linker.instance("nthlayer:worker/prometheus@0.3.0")?,
        |s| s,
    )?;
    tempo::add_to_linker_instance::<StoreData, D>(&mut linker.instance("nthlayer:worker/tempo@0.3.0")?, |s| s)?;
    llm::add_to_linker_instance::<StoreData, D>(&mut linker.instance("nthlayer:worker/llm@0.3.0")?, |s| s)?;
    log::add_to_linker_instance::<StoreData, D>(&mut linker.instance("nthlayer:worker/log@0.3.0")?, |s| s)?;
    arbiter::add_to_linker_instance::<StoreData, D>(&mut linker.instance("nthlayer:worker/arbiter@0.3.0")?, |s| s)?;
    v0_3::add_to_linker::<StoreData, D>(linker, |s| s)
}

/// A 0.3.0 module's declaration, carried over record by record.
pub(super) fn module_info(m: v0_3::ModuleInfo) -> new::ModuleInfo {
    new::ModuleInfo {
        name: m.name,
        version: m.version,
        tasks: m.tasks.into_iter().map(task).collect(),
        needs: m.needs,
        emits: m.emits.into_iter().map(emission).collect(),
    }
}

fn emission(e: v0_3::Emission) -> new::Emission {
    let record = match e.record {
        v0_3::RecordKind::Assessment => new::RecordKind::Assessment,
        v0_3::RecordKind::Verdict => new::RecordKind::Verdict,
    };
    new::Emission { record, kind: e.kind }
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
        record: match w.record {
            v0_3::RecordKind::Assessment => new::RecordKind::Assessment,
            v0_3::RecordKind::Verdict => new::RecordKind::Verdict,
        },
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

//! The host's event counters, on the bottom floor: the places where things happen (the
//! scheduler's cycle, the runtime's instantiation, an import's host call or denial, the
//! outbox's commit and delivery, a swap) each add one line here, and `/metrics` (ops/)
//! registers these families. Nothing here imports the crate, so every floor may call it
//! without an arrow running up; state that already lives somewhere (backlog, versions,
//! LLM usage) is read at scrape time instead of being copied here.
//!
//! Labels are bounded by construction: module, task, interface, grant, record kind, error
//! class, model and version are finite sets; record ids and service names never appear.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, LazyLock};
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

mod scope;
pub use scope::{current, cycle_span, in_cycle, Cycle};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CycleLabels {
    pub module: String,
    pub task: String,
    pub outcome: String,
    pub error_class: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TaskLabels {
    pub module: String,
    pub task: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindLabels {
    pub module: String,
    pub task: String,
    pub kind: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CallLabels {
    pub module: String,
    pub task: String,
    pub interface: String,
    pub outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DenialLabels {
    pub module: String,
    pub task: String,
    pub grant: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SwapLabels {
    pub module: String,
    pub event: String,
    pub version: String,
    pub sha256: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct WhatLabels {
    pub what: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct BackendLabels {
    pub backend: String,
}

type Hist<L> = Family<L, Histogram, fn() -> Histogram>;

/// Seconds, 1 ms .. ~33 s: cycles range from sub-millisecond checks to topology scans.
fn seconds() -> Histogram {
    Histogram::new(exponential_buckets(0.001, 2.0, 16))
}

/// Seconds, 10 µs .. ~0.3 s: instantiation from a pre-instantiated component is µs-scale.
fn short_seconds() -> Histogram {
    Histogram::new(exponential_buckets(0.000_01, 2.0, 16))
}

/// Every family the host records events into. Cloning a family clones a handle to the
/// same series, so the registry and the recorders share them.
pub struct Families {
    pub cycles: Family<CycleLabels, Counter>,
    pub cycle_seconds: Hist<TaskLabels>,
    pub guest_cpu_seconds: Family<TaskLabels, Counter<f64>>,
    pub instantiate_seconds: Hist<TaskLabels>,
    pub records: Family<KindLabels, Counter>,
    pub host_calls: Family<CallLabels, Counter>,
    pub denials: Family<DenialLabels, Counter>,
    pub swaps: Family<SwapLabels, Counter>,
    pub rejected_files: Counter,
    pub delivered: Family<WhatLabels, Counter>,
    pub set_aside: Family<WhatLabels, Counter>,
    pub breaker_open: Family<BackendLabels, Gauge>,
}

static ON: AtomicBool = AtomicBool::new(true);

static FAMILIES: LazyLock<Arc<Families>> = LazyLock::new(|| {
    Arc::new(Families {
        cycles: Family::default(),
        cycle_seconds: Family::new_with_constructor(seconds),
        guest_cpu_seconds: Family::default(),
        instantiate_seconds: Family::new_with_constructor(short_seconds),
        records: Family::default(),
        host_calls: Family::default(),
        denials: Family::default(),
        swaps: Family::default(),
        rejected_files: Counter::default(),
        delivered: Family::default(),
        set_aside: Family::default(),
        breaker_open: Family::default(),
    })
});

/// Turns recording off (`serve --no-metrics`): every recorder becomes one atomic load.
pub fn set_enabled(on: bool) {
    ON.store(on, Ordering::Relaxed);
}

pub fn enabled() -> bool {
    ON.load(Ordering::Relaxed)
}

fn families() -> Option<&'static Families> {
    enabled().then(|| FAMILIES.as_ref())
}

/// One finished cycle. A failed one without a cycle error's class failed at its commit.
pub fn cycle(module: &str, task: &str, ok: bool, error_class: Option<&str>, took: Duration, cpu_ms: Option<u64>) {
    let Some(f) = families() else { return };
    let (outcome, error_class) = if ok { ("ok", "none") } else { ("failed", error_class.unwrap_or("commit")) };
    f.cycles
        .get_or_create(&CycleLabels {
            module: module.into(),
            task: task.into(),
            outcome: outcome.into(),
            error_class: error_class.into(),
        })
        .inc();
    let t = TaskLabels { module: module.into(), task: task.into() };
    f.cycle_seconds.get_or_create(&t).observe(took.as_secs_f64());
    if let Some(ms) = cpu_ms {
        f.guest_cpu_seconds.get_or_create(&t).inc_by(ms as f64 / 1000.0);
    }
}

/// A cycle's fresh instance was created (inside a cycle's scope; elsewhere not counted).
pub fn instantiated(took: Duration) {
    let (Some(f), Some(c)) = (families(), current()) else { return };
    f.instantiate_seconds.get_or_create(&c.task_labels()).observe(took.as_secs_f64());
}

/// Records and other effects a cycle committed, by kind (assessment, verdict, outcome, …).
pub fn committed(module: &str, task: &str, kind: &str, n: u64) {
    let Some(f) = families() else { return };
    f.records.get_or_create(&KindLabels { module: module.into(), task: task.into(), kind: kind.into() }).inc_by(n);
}

/// One host call to a backend from the running cycle; `outcome` is "ok" or the host
/// error's kind.
pub fn host_call(interface: &str, outcome: &str) {
    let (Some(f), Some(c)) = (families(), current()) else { return };
    f.host_calls
        .get_or_create(&CallLabels {
            module: c.module.to_string(),
            task: c.task.to_string(),
            interface: interface.into(),
            outcome: outcome.into(),
        })
        .inc();
}

/// A call refused for want of a grant.
pub fn denied(module: &str, task: &str, grant: &str) {
    let Some(f) = families() else { return };
    f.denials.get_or_create(&DenialLabels { module: module.into(), task: task.into(), grant: grant.into() }).inc();
}

/// A version change: `swap` (new version on probation), `promote`, `rollback` (labels
/// name the version restored), `install`, `unload`.
pub fn swap(module: &str, event: &str, version: &str, sha256: &str) {
    let Some(f) = families() else { return };
    f.swaps
        .get_or_create(&SwapLabels {
            module: module.into(),
            event: event.into(),
            version: version.into(),
            sha256: sha256.into(),
        })
        .inc();
}

/// A module file refused (unreadable, invalid, not loadable).
pub fn rejected_file() {
    if let Some(f) = families() {
        f.rejected_files.inc();
    }
}

/// A spooled entry core took (`what`: assessment, verdict, state, outcome, case, …).
pub fn delivered(what: &str) {
    if let Some(f) = families() {
        f.delivered.get_or_create(&WhatLabels { what: what.into() }).inc();
    }
}

/// A spooled entry set aside for the operator.
pub fn set_aside(what: &str) {
    if let Some(f) = families() {
        f.set_aside.get_or_create(&WhatLabels { what: what.into() }).inc();
    }
}

/// A backend's circuit breaker opened (`true`) or closed.
pub fn breaker(backend: &str, open: bool) {
    if let Some(f) = families() {
        f.breaker_open.get_or_create(&BackendLabels { backend: backend.into() }).set(open as i64);
    }
}

/// Registers every family under `nthlayer_` (names and meanings: docs/OPERATIONS.md).
pub fn register(r: &mut Registry) {
    let f = FAMILIES.as_ref();
    r.register("nthlayer_cycles", "Cycles finished, by outcome and error class", f.cycles.clone());
    r.register("nthlayer_cycle_duration_seconds", "Wall time of a cycle, commit included", f.cycle_seconds.clone());
    r.register("nthlayer_guest_cpu_seconds", "Guest CPU time of successful cycles", f.guest_cpu_seconds.clone());
    r.register(
        "nthlayer_instantiate_duration_seconds",
        "Time to create a cycle's fresh instance",
        f.instantiate_seconds.clone(),
    );
    r.register("nthlayer_records_committed", "Effects committed by cycles, by kind", f.records.clone());
    r.register("nthlayer_host_calls", "Host calls to backends, by interface and outcome", f.host_calls.clone());
    r.register("nthlayer_denials", "Calls refused for want of a grant", f.denials.clone());
    r.register("nthlayer_module_swaps", "Module version events (swap, promote, rollback, …)", f.swaps.clone());
    r.register("nthlayer_rejected_files", "Module files refused", f.rejected_files.clone());
    r.register("nthlayer_outbox_delivered", "Spooled entries core took, by kind", f.delivered.clone());
    r.register("nthlayer_outbox_set_aside", "Spooled entries set aside for the operator", f.set_aside.clone());
    r.register("nthlayer_breaker_open", "1 while a backend's circuit breaker is open", f.breaker_open.clone());
}

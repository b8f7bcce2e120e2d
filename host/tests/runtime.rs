//! The runtime in-process on a real component (dist/test-components/swapper-v1.wasm, built
//! by scripts/build-modules): a cycle runs and returns state; a memory limit below the
//! component's initial memory fails at instantiation with the limit named, not as a trap.

use nthlayer_host::lifecycle::registry::Serving;
use nthlayer_host::lifecycle::scheduler::run_once;
use nthlayer_host::policy::limits::Limits;
use nthlayer_host::runtime::CycleError;
use nthlayer_host::test_support;
use nthlayer_test_paths::components;
use serde_json::json;

#[tokio::test]
async fn a_cycle_runs_in_a_fresh_instance_and_returns_state() {
    let env = test_support::run_env();
    let m = env.runtime.load(&components::SWAPPER_V1.built(), env.services.clone()).await.unwrap();
    assert_eq!((m.meta.name.as_str(), m.meta.version.as_str()), ("swapper", "1.0.0"));
    let serving = Serving::bare(m.clone());
    let out = run_once(&env, &serving, "swapper", Some(&json!({"n": 41}).into()), None).await.unwrap();
    assert_eq!(out.state.unwrap().to_value()["n"], 42);
}

#[tokio::test]
async fn memory_limit_below_initial_memory_fails_instantiation_by_name() {
    let env = test_support::run_env();
    let m = env.runtime.load(&components::SWAPPER_V1.built(), env.services.clone()).await.unwrap();
    let tiny = Limits { memory_bytes: 64 << 10, ..Limits::default() };
    let serving = Serving { limits: tiny, ..Serving::bare(m.clone()) };
    let err = run_once(&env, &serving, "swapper", None, None).await.unwrap_err();
    assert!(matches!(&err, CycleError::Memory(msg) if msg.contains("memory limit of 0.06 MiB")), "{err:?}");
}

/// Probation in-process: a swapped-in version that fails its first cycles is rolled back,
/// and the rights that come back are the restored version's, not the failed one's.
#[tokio::test]
async fn probation_rolls_back_with_the_last_good_versions_rights() {
    use nthlayer_host::lifecycle::registry::{ModuleSlot, SlotChange};
    use nthlayer_host::policy::grants::{Capability, Grants, Trust};
    let env = test_support::run_env();
    let v1 = env.runtime.load(&components::SWAPPER_V1.built(), env.services.clone()).await.unwrap();
    let v2 = env.runtime.load(&components::SWAPPER_V2.built(), env.services.clone()).await.unwrap();
    let good =
        Serving { grants: Grants::none().with(Capability::Core), trust: Trust::Embedded, ..Serving::bare(v1.clone()) };
    let slot = ModuleSlot::new(good, 2);
    assert_eq!(slot.record(&v1, false), SlotChange::Nothing, "not on probation: failures change nothing");

    slot.swap(Serving::bare(v2.clone()));
    assert!(slot.on_probation());
    assert!(!slot.serving().grants.allows(Capability::Core), "the new version's rights, not the old one's");
    assert_eq!(slot.record(&v1, false), SlotChange::Nothing, "a cycle on the old version says nothing");
    assert_eq!(slot.record(&v2, false), SlotChange::Nothing, "one failure of two");
    match slot.record(&v2, false) {
        SlotChange::RolledBack { failures: 2, restored, failed } => {
            assert!(restored.contains("1.0.0") && failed.contains("2.0.0"), "{restored} / {failed}")
        }
        other => panic!("expected a rollback, got {other:?}"),
    }
    assert!(std::sync::Arc::ptr_eq(&slot.current(), &v1));
    assert!(slot.serving().grants.allows(Capability::Core), "the restored version's rights");
    assert!(!slot.on_probation());

    // One success ends probation.
    slot.swap(Serving::bare(v2.clone()));
    assert_eq!(slot.record(&v2, true), SlotChange::Promoted);
    assert_eq!(slot.record(&v2, false), SlotChange::Nothing);
    assert!(std::sync::Arc::ptr_eq(&slot.current(), &v2));
}

/// Emissions belong to a version: each is resolved from its own declaration, so a swap to a
/// version declaring more widens what the module may emit (within the grant), the swap log
/// says so, and a rollback narrows it again.
#[tokio::test]
async fn emissions_follow_the_versions_declaration_across_a_swap_and_a_rollback() {
    use nthlayer_host::lifecycle::registry::{ModuleSlot, SlotChange};
    use nthlayer_host::policy::emissions::Record;
    use nthlayer_host::policy::grants::{GrantPolicy, Trust};
    let env = test_support::run_env();
    let policy = GrantPolicy::parse(&["swapper=core,assessment:*".into()]).unwrap();
    let serving = |m: &std::sync::Arc<nthlayer_host::store::LoadedModule>| Serving {
        grants: policy.resolve(&m.meta.name, &m.meta.needs, m.meta.emits.as_ref(), &Trust::Untrusted),
        ..Serving::bare(m.clone())
    };
    let v1 = env.runtime.load(&components::SWAPPER_V1.built(), env.services.clone()).await.unwrap();
    let v2 = env.runtime.load(&components::SWAPPER_V2.built(), env.services.clone()).await.unwrap();
    let slot = ModuleSlot::new(serving(&v1), 1);
    assert!(!slot.serving().grants.emits.allows(Record::Assessment, "swap_note"), "v1 declares nothing");
    let old = slot.swap(serving(&v2));
    let new = slot.serving();
    assert_eq!(new.grants.emits.labels(), ["assessment:swap_note"], "v2's declaration, narrowed from assessment:*");
    assert_eq!(new.rights_change(&old).as_deref(), Some("may emit assessment:swap_note"));
    assert!(matches!(slot.record(&v2, false), SlotChange::RolledBack { .. }));
    assert!(slot.serving().grants.emits.labels().is_empty(), "the restored version's (empty) declaration");
}

/// Honest CPU in-process: `patient`'s 1,000 WASI clock waits of 10 ms (a host call each,
/// ~10 s of waiting) are not charged against a 1 s budget; a spinning guest is still stopped
/// with the CPU error, not the wall-clock one.
#[tokio::test]
async fn waiting_in_host_calls_is_not_charged_and_a_spin_is_stopped_at_its_budget() {
    let env = test_support::run_env();
    let patient = env.runtime.load(&components::PATIENT.built(), env.services.clone()).await.unwrap();
    let limits = Limits { cpu_ms: 1000, wall_ms: 120_000, ..Limits::default() };
    let serving = Serving { limits, ..Serving::bare(patient) };
    let out = run_once(&env, &serving, "patient", None, None).await.unwrap();
    let state = out.state.unwrap().to_value();
    assert_eq!(state["waits"], 1000, "{state}");
    assert!(state["seconds"].as_f64().unwrap() >= 10.0, "{state}");
    eprintln!("patient: {} s of waits charged {} ms of guest CPU", state["seconds"], out.cpu_ms);
    assert!(out.cpu_ms < 1000, "charged {} ms", out.cpu_ms);

    let spin = env.runtime.load(&components::HOSTILE_LOOP.built(), env.services.clone()).await.unwrap();
    let limits = Limits { cpu_ms: 300, wall_ms: 120_000, ..Limits::default() };
    let serving = Serving { limits, ..Serving::bare(spin) };
    let err = run_once(&env, &serving, "hostile-loop", Some(&json!({"n": 1}).into()), None).await.unwrap_err();
    assert_eq!(err, CycleError::Cpu(300));
}

//! Contract versions in-process (docs/CONTRACT.md): the loader picks the bindings by the
//! `nthlayer:worker` version a component imports, and refuses a version it does not serve
//! with the file and the served versions named. Components from dist/test-components
//! (scripts/build-modules).

use nthlayer_host::backend::envelope::RecordKind as Record;
use nthlayer_host::bindings::Contract;
use nthlayer_host::lifecycle::registry::Serving;
use nthlayer_host::lifecycle::scheduler::run_once;
use nthlayer_host::runtime::LoadError;
use nthlayer_host::test_support;
use nthlayer_host::wake::{FieldTest, WakeRule};
use nthlayer_test_paths::components;
use serde_json::json;

#[tokio::test]
async fn a_component_built_from_the_frozen_0_1_0_wit_loads_on_the_0_1_0_bindings() {
    let env = test_support::run_env();
    let m = env.runtime.load(&components::CONTRACT_V010.built(), env.services.clone()).await.unwrap();
    assert_eq!(m.contract(), Contract::V0_1);
    assert_eq!(m.meta.name, "contract-v010");
    assert!(m.meta.tasks.iter().all(|t| t.wake.is_empty()), "0.1.0 tasks are interval-only");
    // A 0.1.0 cycle runs through the 0.1.0 layer: with nothing granted, its first import
    // call is denied by the newest implementation and the module says so.
    let serving = Serving::bare(m.clone());
    let err = run_once(&env, &serving, "contract-v010", None, None).await.unwrap_err().to_string();
    assert!(err.contains("prometheus query failed") && err.contains("--grant contract-v010=prometheus"), "{err}");
}

#[tokio::test]
async fn a_component_built_from_the_frozen_0_2_0_wit_keeps_its_wakes_and_declares_no_emissions() {
    let env = test_support::run_env();
    let m = env.runtime.load(&components::CONTRACT_V020.built(), env.services.clone()).await.unwrap();
    assert_eq!(m.contract(), Contract::V0_2);
    let want = WakeRule { record: Record::Assessment, kind: "contract_probe".into(), tests: vec![] };
    assert_eq!(m.meta.tasks[0].wake, vec![want]);
    assert_eq!(m.meta.emits, None, "0.2.0 cannot declare emissions");
    // Its cycle runs through the 0.2.0 layer: with nothing granted, core is denied by name.
    let err = run_once(&env, &Serving::bare(m.clone()), "contract-v020", None, None).await.unwrap_err().to_string();
    assert!(err.contains("--grant contract-v020=core"), "{err}");
}

#[tokio::test]
async fn an_sdk_component_speaks_0_4_0_and_declares_its_wakes_and_emissions() {
    let env = test_support::run_env();
    let m = env.runtime.load(&components::WAKE_SUBSCRIBER.built(), env.services.clone()).await.unwrap();
    assert_eq!(m.contract(), Contract::V0_4);
    assert_eq!(m.meta.emits.as_ref().map(|e| e.labels()), Some(vec!["assessment:correlation_snapshot".to_string()]));
    let want = WakeRule {
        record: Record::Verdict,
        kind: "quality_breach".into(),
        tests: vec![FieldTest { path: "data.severity".into(), none_of: false, values: vec!["high".into()] }],
    };
    assert_eq!(m.meta.tasks[0].wake, vec![want]);
    let ticker = env.runtime.load(&components::TICKER.built(), env.services.clone()).await.unwrap();
    assert_eq!(ticker.contract(), Contract::V0_4);
    assert_eq!(ticker.meta.emits, Some(Default::default()), "declares that it emits nothing");
    let serving = Serving::bare(ticker.clone());
    let out = run_once(&env, &serving, "ticker", Some(&json!({"n": 1}).into()), None).await.unwrap();
    assert_eq!(out.state.unwrap().to_value()["n"], 2);
}

#[tokio::test]
async fn a_version_this_host_does_not_serve_is_refused_by_name() {
    let env = test_support::run_env();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("future.wasm");
    let wasm = wat::parse_str(r#"(component (import "nthlayer:worker/types@0.9.0" (instance)))"#).unwrap();
    std::fs::write(&path, wasm).unwrap();
    let err = env.runtime.load(&path, env.services.clone()).await.err().expect("refused");
    assert!(matches!(err, LoadError::Version { .. }), "{err:?}");
    let msg = err.to_string();
    assert!(msg.starts_with(&path.display().to_string()), "{msg}");
    assert!(
        msg.contains(
            "built against nthlayer:worker@0.9.0; this host serves nthlayer:worker 0.1.0, 0.2.0, 0.3.0, 0.4.0"
        ),
        "{msg}"
    );
}

/// Every embedded built-in is a 0.3.0 component declaring exactly the kinds emissions.rs
/// `BUILTIN` lists for it (the table trusted 0.1.0/0.2.0 code of those names still gets).
#[tokio::test]
async fn the_builtins_declare_exactly_the_kinds_they_emit() {
    let env = test_support::run_env();
    for e in nthlayer_host::policy::builtin::all() {
        let m = env.runtime.load_bytes(&e.path(), e.bytes.to_vec(), env.services.clone()).await.unwrap();
        assert_eq!(m.contract(), Contract::V0_4, "{}", e.name);
        let table = nthlayer_host::policy::emissions::Emits::builtin(e.name);
        assert!(!table.is_empty(), "{} has no BUILTIN entry", e.name);
        assert_eq!(
            m.meta.emits.as_ref(),
            Some(&table),
            "{}: describe() emits differs from emissions.rs BUILTIN",
            e.name
        );
    }
}

//! The runtime in-process on a real component (dist/test-components/swapper-v1.wasm, built
//! by scripts/build-modules): a cycle runs and returns state; a memory limit below the
//! component's initial memory fails at instantiation with the limit named, not as a trap.

use std::path::PathBuf;
use std::sync::Arc;

use nthlayer_host::capabilities::Grants;
use nthlayer_host::config::HostConfig;
use nthlayer_host::registry::ModuleSlot;
use nthlayer_host::runtime::limits::Limits;
use nthlayer_host::runtime::{CycleError, Runtime};
use nthlayer_host::scheduler::{run_once, RunEnv};
use nthlayer_host::serve::build_services;
use serde_json::json;

fn component() -> PathBuf {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../dist/test-components/swapper-v1.wasm");
    assert!(p.exists(), "{} missing: run scripts/build-modules", p.display());
    p
}

async fn env() -> RunEnv {
    let services = Arc::new(build_services("http://127.0.0.1:9", "", None, Default::default()).unwrap());
    let config =
        Arc::new(HostConfig { intervals: Default::default(), limits: Default::default(), module_config: json!({}) });
    RunEnv { runtime: Runtime::new(None).unwrap(), services, config }
}

#[tokio::test]
async fn a_cycle_runs_in_a_fresh_instance_and_returns_state() {
    let env = env().await;
    let m = env.runtime.load(&component(), env.services.clone()).await.unwrap();
    assert_eq!((m.meta.name.as_str(), m.meta.version.as_str()), ("swapper", "1.0.0"));
    let slot = ModuleSlot::new(m.clone(), Grants::none(), Limits::default(), 3);
    let out = run_once(&env, &slot, &m, "swapper", Some(&json!({"n": 41})), None).await.unwrap();
    assert_eq!(out.state.unwrap()["n"], 42);
}

#[tokio::test]
async fn memory_limit_below_initial_memory_fails_instantiation_by_name() {
    let env = env().await;
    let m = env.runtime.load(&component(), env.services.clone()).await.unwrap();
    let tiny = Limits { memory_bytes: 64 << 10, ..Limits::default() };
    let slot = ModuleSlot::new(m.clone(), Grants::none(), tiny, 3);
    let err = run_once(&env, &slot, &m, "swapper", None, None).await.unwrap_err();
    assert!(matches!(&err, CycleError::Memory(msg) if msg.contains("memory limit of 0.06 MiB")), "{err:?}");
}

//! In-process measurements for `scripts/bench`: per-cycle host overhead of a trivial module
//! (fresh instance + state in/out + call) and module load time, cold compile vs cached
//! artifact. Prints one JSON object. Never run by tests.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use nthlayer_host::config::HostConfig;
use nthlayer_host::registry::Serving;
use nthlayer_host::runtime::Runtime;
use nthlayer_host::scheduler::{run_once, RunEnv};
use nthlayer_host::serve::build_services;
use serde_json::json;

fn pct(sorted: &[Duration], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i].as_secs_f64() * 1e6
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let trivial = root.join("dist/test-components/swapper-v1.wasm");
    let observe = root.join("dist/modules/observe.wasm");
    let cycles: usize = std::env::var("BENCH_CYCLES").ok().and_then(|v| v.parse().ok()).unwrap_or(2000);
    let services = Arc::new(build_services("http://127.0.0.1:9", "", None, Default::default())?);

    // Load times: no cache (compiles every time) vs a warm cache directory.
    let cache = tempfile::tempdir()?;
    let cold_rt = Runtime::new(None)?;
    let t = Instant::now();
    cold_rt.load(&observe, services.clone()).await?;
    let cold = t.elapsed();
    let warm_rt = Runtime::new(Some(cache.path().to_path_buf()))?;
    warm_rt.load(&observe, services.clone()).await?; // fills the cache
    let t = Instant::now();
    let cached_module = warm_rt.load(&observe, services.clone()).await?;
    let cached = t.elapsed();
    assert_eq!(cached_module.origin, nthlayer_host::runtime::cache::Origin::Cached);

    // Per-cycle overhead on the trivial module.
    let rt = Runtime::new(Some(cache.path().to_path_buf()))?;
    let module = rt.load(&trivial, services.clone()).await?;
    let serving = Serving::bare(module.clone());
    let config =
        Arc::new(HostConfig { intervals: Default::default(), limits: Default::default(), module_config: json!({}) });
    let env = RunEnv { runtime: rt.clone(), services: services.clone(), config };
    let mut state = Some(json!({"n": 0}));
    let mut times = Vec::with_capacity(cycles);
    for _ in 0..cycles {
        let t = Instant::now();
        let out = run_once(&env, &serving, "swapper", state.as_ref(), None).await?;
        times.push(t.elapsed());
        state = out.state;
    }
    times.sort();
    let mean = times.iter().sum::<Duration>().as_secs_f64() * 1e6 / cycles as f64;
    println!(
        "{}",
        json!({
            "cycle_overhead_us": {"module": "swapper-v1 (log + state in/out)", "cycles": cycles,
                "p50": pct(&times, 0.5), "p99": pct(&times, 0.99), "mean": mean},
            "load_ms": {"module": "observe.wasm", "bytes": std::fs::metadata(&observe)?.len(),
                "cold_compile": cold.as_secs_f64() * 1e3, "cached": cached.as_secs_f64() * 1e3},
        })
    );
    Ok(())
}

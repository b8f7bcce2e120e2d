//! In-process measurements of the operations surface for `scripts/bench metrics`: what
//! recording metrics adds to a cycle (the trivial module's cycle with the recorders on vs
//! `--no-metrics`, alternating blocks so drift hits both alike), and how long `/metrics`
//! takes to render with 20 modules loaded (3 tasks each, every family populated). Prints
//! one JSON object. Never run by tests.

use std::sync::Arc;
use std::time::{Duration, Instant};

use nthlayer_host::backend::llm::LlmService;
use nthlayer_host::capability::Services;
use nthlayer_host::lifecycle::config::{HostConfig, LiveConfig};
use nthlayer_host::lifecycle::registry::{ModuleSlot, Registry, Serving};
use nthlayer_host::lifecycle::scheduler::{run_once, RunEnv};
use nthlayer_host::lifecycle::status::HostStatus;
use nthlayer_host::ops::Ops;
use nthlayer_host::telemetry;
use serde_json::json;

fn stats(mut t: Vec<Duration>) -> serde_json::Value {
    t.sort();
    let us = |d: Duration| (d.as_secs_f64() * 1e7).round() / 10.0;
    let mean = t.iter().sum::<Duration>() / t.len() as u32;
    json!({"n": t.len(), "p50_us": us(t[t.len() / 2]), "p99_us": us(t[t.len() * 99 / 100]), "mean_us": us(mean)})
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let trivial = nthlayer_test_paths::components::SWAPPER_V1.built();
    let cycles: usize = std::env::var("BENCH_CYCLES").ok().and_then(|v| v.parse().ok()).unwrap_or(2000);
    let services = Arc::new(Services::offline()?);
    let cache = tempfile::tempdir()?;
    let rt = nthlayer_host::store::runtime(Some(cache.path().to_path_buf()))?;
    let module = rt.load(&trivial, services.clone()).await?;
    let serving = Serving::bare(module.clone());
    let env =
        RunEnv { runtime: rt.clone(), services: services.clone(), config: LiveConfig::shared(HostConfig::default()) };

    // A cycle as the scheduler records it: the recorders inside (instantiation, host calls)
    // plus the cycle's own line after it.
    let (mut on, mut off) = (Vec::new(), Vec::new());
    let mut state = Some(json!({"n": 0}).into());
    for block in 0..cycles / 100 {
        let enabled = block % 2 == 0;
        telemetry::set_enabled(enabled);
        for _ in 0..100 {
            let t = Instant::now();
            let out = run_once(&env, &serving, "swapper", state.as_ref(), None).await?;
            telemetry::cycle("swapper", "swapper", true, None, t.elapsed(), Some(out.cpu_ms));
            let took = t.elapsed();
            if enabled { &mut on } else { &mut off }.push(took);
            state = out.state;
        }
    }
    telemetry::set_enabled(true);

    // 20 modules, 3 tasks each, every event family with series for each.
    let registry = Arc::new(Registry::default());
    for i in 0..20 {
        let mut m = Arc::into_inner(rt.load(&trivial, services.clone()).await?).expect("a fresh load");
        m.meta.name = format!("module{i:02}");
        let name = m.meta.name.clone();
        registry.insert(&name, Arc::new(ModuleSlot::new(Serving::bare(Arc::new(m)), 3)));
        for t in 0..3 {
            let task = format!("{name}.task{t}");
            for ok in [true, false] {
                telemetry::cycle(&name, &task, ok, Some("trap"), Duration::from_millis(12), Some(3));
            }
            telemetry::committed(&name, &task, "assessment", 10);
            telemetry::in_cycle(&name, &task, async {
                telemetry::instantiated(Duration::from_micros(60));
                for i in ["core", "prometheus", "tempo"] {
                    telemetry::host_call(i, "ok");
                    telemetry::host_call(i, "timeout");
                }
            })
            .await;
        }
    }
    let status = HostStatus::new(registry, LlmService::default());
    status.set_outbox(json!({"records": 0, "entries": 0, "bytes": 0, "rejected": 0, "retrying": 0, "full": null}));
    let ops = Ops::default();
    ops.attach(status);
    let mut scrapes = Vec::new();
    let mut text = String::new();
    for _ in 0..200 {
        let t = Instant::now();
        text = nthlayer_host::ops::metrics::render(&ops)?;
        scrapes.push(t.elapsed());
    }
    println!(
        "{}",
        json!({
            "cycle_with_metrics": stats(on),
            "cycle_without_metrics": stats(off),
            "scrape_20_modules": {"render": stats(scrapes), "bytes": text.len(), "lines": text.lines().count()},
        })
    );
    Ok(())
}

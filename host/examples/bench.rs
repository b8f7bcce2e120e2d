//! In-process measurements for `scripts/bench`: per-cycle host overhead of a trivial module
//! (fresh instance + state in/out + call), module load time (cold compile vs cached
//! artifact), and what the outbox adds to a cycle with core up (one fsynced commit of the
//! cycle's records and state) and spool bytes per 1,000 records. Prints one JSON object.
//! Never run by tests.

use std::sync::Arc;
use std::time::{Duration, Instant};

use nthlayer_host::backend::envelope::Emitted;
use nthlayer_host::backend::envelope::RecordKind;
use nthlayer_host::capability::Services;
use nthlayer_host::lifecycle::config::{HostConfig, LiveConfig};
use nthlayer_host::lifecycle::registry::Serving;
use nthlayer_host::lifecycle::scheduler::{run_once, RunEnv};
use nthlayer_host::outbox::{Outbox, OutboxConfig};

use serde_json::json;

fn pct(sorted: &[Duration], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i].as_secs_f64() * 1e6
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let trivial = nthlayer_test_paths::components::SWAPPER_V1.built();
    let observe = nthlayer_test_paths::modules::OBSERVE.built();
    let cycles: usize = std::env::var("BENCH_CYCLES").ok().and_then(|v| v.parse().ok()).unwrap_or(2000);
    let services = Arc::new(Services::offline()?);

    // Load times: no cache (compiles every time) vs a warm cache directory.
    let cache = tempfile::tempdir()?;
    let cold_rt = nthlayer_host::store::runtime(None)?;
    let t = Instant::now();
    cold_rt.load(&observe, services.clone()).await?;
    let cold = t.elapsed();
    let warm_rt = nthlayer_host::store::runtime(Some(cache.path().to_path_buf()))?;
    warm_rt.load(&observe, services.clone()).await?; // fills the cache
    let t = Instant::now();
    let cached_module = warm_rt.load(&observe, services.clone()).await?;
    let cached = t.elapsed();
    assert_eq!(cached_module.origin, nthlayer_host::runtime::cache::Origin::Cached);

    // Per-cycle overhead on the trivial module.
    let rt = nthlayer_host::store::runtime(Some(cache.path().to_path_buf()))?;
    let module = rt.load(&trivial, services.clone()).await?;
    let serving = Serving::bare(module.clone());
    let config = LiveConfig::shared(HostConfig::default());
    let env = RunEnv { runtime: rt.clone(), services: services.clone(), config };
    let mut state = Some(json!({"n": 0}).into());
    let mut times = Vec::with_capacity(cycles);
    for _ in 0..cycles / 10 {
        run_once(&env, &serving, "swapper", state.as_ref(), None).await?; // warm the pool
    }
    let (switches_before, cpu_before) = (context_switches(), process_cpu());
    for _ in 0..cycles {
        let t = Instant::now();
        let out = run_once(&env, &serving, "swapper", state.as_ref(), None).await?;
        times.push(t.elapsed());
        state = out.state;
    }
    let (switches_after, cpu_after) = (context_switches(), process_cpu());
    let per_cycle = |a: u64, b: u64| (b - a) as f64 / cycles as f64;
    times.sort();
    let mean = times.iter().sum::<Duration>().as_secs_f64() * 1e6 / cycles as f64;
    // BENCH_SPOOL=0: the per-cycle figures only (`scripts/bench cycle`).
    let spool = if std::env::var("BENCH_SPOOL").as_deref() == Ok("0") { json!(null) } else { spool_bench().await? };
    println!(
        "{}",
        json!({
            "spool": spool,
            "cycle_overhead_us": {"module": "swapper-v1 (log + state in/out)", "cycles": cycles,
                "p50": pct(&times, 0.5), "p99": pct(&times, 0.99), "mean": mean,
                "process_cpu_us_per_cycle": (cpu_after - cpu_before).as_secs_f64() * 1e6 / cycles as f64,
                "voluntary_switches_per_cycle": per_cycle(switches_before.0, switches_after.0),
                "nonvoluntary_switches_per_cycle": per_cycle(switches_before.1, switches_after.1)},
            "profile": PROFILE,
            "load_ms": {"module": "observe.wasm", "bytes": std::fs::metadata(&observe)?.len(),
                "cold_compile": cold.as_secs_f64() * 1e3, "cached": cached.as_secs_f64() * 1e3},
        })
    );
    Ok(())
}

/// The cargo profile this bench was built with (`scripts/bench` reports it with each figure).
const PROFILE: &str = if cfg!(debug_assertions) { "dev" } else { "release" };

/// (voluntary, nonvoluntary) context switches of every thread of this process, summed over
/// /proc/self/task/*/status (/proc/self/status counts the main thread only).
fn context_switches() -> (u64, u64) {
    let (mut v, mut n) = (0, 0);
    for task in std::fs::read_dir("/proc/self/task").into_iter().flatten().flatten() {
        let Ok(status) = std::fs::read_to_string(task.path().join("status")) else { continue };
        for line in status.lines() {
            let num = |l: &str| l.split_whitespace().nth(1).and_then(|x| x.parse::<u64>().ok()).unwrap_or(0);
            if line.starts_with("voluntary_ctxt_switches:") {
                v += num(line);
            } else if line.starts_with("nonvoluntary_ctxt_switches:") {
                n += num(line);
            }
        }
    }
    (v, n)
}

/// CPU time of the whole process (every thread: the executor's workers and the epoch ticker).
fn process_cpu() -> Duration {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: a valid, writable timespec; CLOCK_PROCESS_CPUTIME_ID exists on Linux.
    unsafe { libc::clock_gettime(libc::CLOCK_PROCESS_CPUTIME_ID, &mut ts) };
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

/// An slo_status as observe makes it (same keys, typical values).
fn slo_status(i: usize) -> Emitted {
    let id = format!("asm-2026-12-01-5f3a9c21-{i:05}");
    let record = json!({
        "id": id, "created_at": "2026-12-01T21:00:00.123456+00:00", "kind": "slo_status",
        "service": format!("service-{:04}", i / 2), "producer": "nthlayer-observe",
        "data": {"slo_name": "availability", "slo_type": "availability", "target": 99.9, "window": "30d",
            "current_value": 99.9731, "error_budget_remaining": 0.731, "status": "HEALTHY",
            "query": "sum(rate(http_requests_total{service=\"service-0001\",code!~\"5..\"}[5m])) / sum(rate(http_requests_total{service=\"service-0001\"}[5m])) * 100",
            "evaluated_at": "2026-12-01T21:00:00.123456+00:00"},
    });
    let serde_json::Value::Object(record) = record else { unreachable!() };
    debug_assert_eq!(record["id"], id.as_str());
    Emitted::new(RecordKind::Assessment, "observe".into(), record)
}

fn dir_bytes(dir: &std::path::Path) -> u64 {
    std::fs::read_dir(dir).map(|d| d.flatten().filter_map(|e| e.metadata().ok()).map(|m| m.len()).sum()).unwrap_or(0)
}

/// Commit time per cycle (10 records + state, and a 1,000-service collect: 1,400 records)
/// on this machine's disk, and spool bytes per 1,000 records.
async fn spool_bench() -> anyhow::Result<serde_json::Value> {
    let dir = tempfile::tempdir()?;
    let config = OutboxConfig {
        dir: dir.path().to_path_buf(),
        max_bytes: u64::MAX,
        max_age: Duration::from_secs(86400),
        retry_window: Duration::from_secs(86400),
    };
    let outbox = Outbox::open(config)?;
    let state = json!({"seq": 12345, "note": "a typical small state"}).into();
    let mut small = Vec::new();
    for c in 0..200 {
        let held: Vec<Emitted> = (0..10).map(|i| slo_status(c * 10 + i)).collect();
        let t = Instant::now();
        outbox.commit("bench.small", "bench", "1", Some(&state), held).await.map_err(anyhow::Error::msg)?;
        small.push(t.elapsed());
    }
    small.sort();
    let records_before = outbox.backlog();
    let bytes_before = dir_bytes(dir.path());
    let mut large = Vec::new();
    for c in 0..5 {
        let held: Vec<Emitted> = (0..1400).map(|i| slo_status(100_000 + c * 1400 + i)).collect();
        let t = Instant::now();
        outbox.commit("bench.large", "bench", "1", Some(&state), held).await.map_err(anyhow::Error::msg)?;
        large.push(t.elapsed());
    }
    large.sort();
    let b = outbox.backlog();
    let per_1000 = (dir_bytes(dir.path()).saturating_sub(bytes_before)) as f64 * 1000.0
        / (b.records - records_before.records) as f64;
    let body_per_1000 = (b.bytes - records_before.bytes) as f64 * 1000.0 / (b.records - records_before.records) as f64;
    Ok(json!({
        "commit_10_records_us": {"p50": pct(&small, 0.5), "p99": pct(&small, 0.99), "cycles": small.len()},
        "commit_1400_records_ms": {"p50": pct(&large, 0.5) / 1e3, "max": pct(&large, 1.0) / 1e3, "cycles": large.len()},
        "spool_file_bytes_per_1000_records": per_1000.round(),
        "record_body_bytes_per_1000_records": body_per_1000.round(),
    }))
}

//! A standing test bed for demos and benchmarks: real nthlayer-core serving the scenario
//! manifests and a real Prometheus scraping the scenario exporter (with 30 days of drift
//! history backfilled). Writes `CORE_URL=…` / `PROMETHEUS_URL=…` to `--env-file` once ready
//! and runs until `--stop-file` appears (or `--max-seconds` pass); children stop with it.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use nthlayer_tests::core::Core;
use nthlayer_tests::scenario::{self, Observe};

fn arg(name: &str) -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1).cloned())
}

fn main() {
    let env_file = PathBuf::from(arg("--env-file").expect("--env-file PATH"));
    let stop_file = PathBuf::from(arg("--stop-file").expect("--stop-file PATH"));
    let max = Duration::from_secs(arg("--max-seconds").and_then(|s| s.parse().ok()).unwrap_or(3600));
    let manifests = arg("--manifests").map(PathBuf::from).unwrap_or_else(scenario::manifests_dir);

    let core = Core::start(&manifests);
    let observe = Observe::start();
    let env = format!("CORE_URL={}\nPROMETHEUS_URL={}\n", core.url(), observe.prometheus_url());
    std::fs::write(&env_file, env).expect("write env file");
    eprintln!("testbed ready: core {} prometheus {}", core.url(), observe.prometheus_url());

    let started = Instant::now();
    while !stop_file.exists() && started.elapsed() < max {
        std::thread::sleep(Duration::from_millis(200));
    }
    drop(observe);
    drop(core);
}

//! What observe.collect holds at once, counted by the allocator: at 1,000 services it held
//! the catalogue three times over (the manifests parsed whole, every SLO copied out of them,
//! the copies kept to the end): 17 times the manifest list's JSON. Now the manifests keep
//! only the fields observe reads and the SLOs are moved, then let go once parsed.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};

use nthlayer_sdk::testing::FakeHost;
use nthlayer_sdk::{CycleInput, Host, HostError, Level, Module};
use serde_json::{json, Value};

struct Counting;
static NOW: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

// SAFETY: forwards to the system allocator; only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        PEAK.fetch_max(NOW.fetch_add(l.size(), Relaxed) + l.size(), Relaxed);
        System.alloc(l)
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        NOW.fetch_sub(l.size(), Relaxed);
        System.dealloc(p, l)
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, n: usize) -> *mut u8 {
        if n > l.size() {
            PEAK.fetch_max(NOW.fetch_add(n - l.size(), Relaxed) + n - l.size(), Relaxed);
        } else {
            NOW.fetch_sub(l.size() - n, Relaxed);
        }
        System.realloc(p, l, n)
    }
}

#[global_allocator]
static COUNTING: Counting = Counting;

/// Core's answer as text (what the guest receives), Prometheus from the fake.
struct Catalogue {
    text: String,
    prometheus: FakeHost,
    submitted: std::cell::Cell<u32>,
}

impl Host for Catalogue {
    fn get_manifests_text(&self) -> Result<String, HostError> {
        Ok(self.text.clone())
    }
    fn prom_query_batch(&self, queries: &[String], at: Option<f64>) -> Vec<Result<Value, HostError>> {
        self.prometheus.prom_query_batch(queries, at)
    }
    fn submit_assessment(&self, record: &Value, _: Option<&str>) -> Result<String, HostError> {
        self.submitted.set(self.submitted.get() + 1);
        Ok(record["id"].as_str().unwrap_or_default().to_string())
    }
    fn log(&self, _: Level, _: &str, _: &[(&str, &str)]) {}
    fn now(&self) -> f64 {
        self.prometheus.now()
    }
    fn random_u64(&self) -> u64 {
        self.prometheus.random_u64()
    }
}

/// 1,000 services in core's shape (the soak's catalogue: three SLOs, two dependencies).
fn catalogue(prometheus: &FakeHost) -> String {
    let manifests: Vec<Value> = (0..1000)
        .map(|i| {
            let name = format!("svc-{i:04}");
            let slos: Vec<Value> = [("availability", 99.9), ("latency", 99.0), ("errors", 99.5)]
                .iter()
                .map(|(slo, target)| {
                    let query = format!("test_sli{{service=\"$service\",slo=\"{slo}\"}}");
                    prometheus.set_scalar(&query.replace("$service", &name), "0.9995");
                    json!({"name": slo, "target": target, "slo_type": slo, "window": "30d", "indicator_query": query})
                })
                .collect();
            json!({"name": name, "team": format!("t{}", i % 10), "tier": "standard", "type": "api",
                   "namespace": "default", "source_format": "srm_v1", "slos": slos, "judgment_thresholds": [],
                   "dependencies": [{"name": format!("svc-{:04}", (i + 1) % 1000), "type": "api", "critical": true}]})
        })
        .collect();
    Value::Array(manifests).to_string()
}

#[test]
fn collect_holds_a_few_times_the_catalogue_not_seventeen() {
    let prometheus = FakeHost::new();
    let text = catalogue(&prometheus);
    let host = Catalogue { text, prometheus, submitted: Default::default() };
    let input = CycleInput { task: "observe.collect".into(), state: None, config: json!({}), args: None };
    let base = NOW.load(Relaxed);
    PEAK.store(base, Relaxed);
    let out = nthlayer_observe::Observe::run_cycle(&host, input).unwrap();
    let peak = PEAK.load(Relaxed) - base;
    assert_eq!((out.emitted, host.submitted.get()), (3001, 3001), "every slo_status and the portfolio");
    let times = peak as f64 / host.text.len() as f64;
    // Measured: 6.6 times now; 15.3 with the SLOs copied out of the (lean) manifests, 17.2
    // with the manifests read whole as well.
    assert!(
        times < 9.0,
        "collect held {:.1} MB at once, {times:.1} times the catalogue's JSON",
        peak as f64 / 1048576.0
    );
}

//! The hostile-module suite: one real `nthlayer-host serve` (the real binary) runs the
//! well-behaved `ticker` next to modules that each try one thing a sandbox must contain,
//! against the real nthlayer-core. Each hostile module behaves in its first cycle (state
//! `{"n": 1}`) and misbehaves from the second on, so "previous state kept" is observable in
//! core. See docs/SANDBOX.md for the limits and the observed errors.
//!
//! Needs `target/debug/nthlayer-host` (or `$NTHLAYER_HOST_BIN`) and the components built by
//! `scripts/build-modules` in `dist/test-components/`.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use nthlayer_tests::core::Core;
use nthlayer_tests::host::HostProcess;
use nthlayer_tests::util::{fixtures_dir, workspace_root};
use nthlayer_tests::wait::wait_until;
use serde_json::{json, Value};

/// Module loading (first start compiles ~14 components) and the first cycles.
const START: Duration = Duration::from_secs(60);
/// The window over which the ticker's schedule is measured and the hostile modules misbehave.
const WINDOW: Duration = Duration::from_secs(20);
/// Extra time for an outcome that did not show up within the window.
const LATE: Duration = Duration::from_secs(20);
const SHUTDOWN: Duration = Duration::from_secs(20);

const TIGHT: &str = r#"{"cpu_ms":500,"memory_bytes":67108864,"wall_ms":5000}"#;
/// The SDK serialises a 100 MB value into a doubling buffer (~300 MB peak), so these two get
/// memory enough to reach the state/result limit they are here to test.
const BIG: &str = r#"{"cpu_ms":5000,"memory_bytes":536870912,"wall_ms":10000}"#;
const LOG_LINES: usize = 50;

/// (module, --limits JSON). The task of each module has the module's name.
fn modules() -> Vec<(&'static str, String)> {
    let flood = format!(r#"{{"log_lines":{LOG_LINES},"cpu_ms":30000,"wall_ms":30000}}"#);
    vec![
        ("ticker", String::new()),
        ("hostile-loop", TIGHT.into()),
        ("hostile-alloc", TIGHT.into()),
        ("hostile-recursion", TIGHT.into()),
        ("hostile-bigstring", BIG.into()),
        ("hostile-bigstate", BIG.into()),
        ("hostile-file", TIGHT.into()),
        ("hostile-socket", TIGHT.into()),
        ("hostile-env", TIGHT.into()),
        ("hostile-ungranted", TIGHT.into()),
        ("hostile-logflood", flood),
        ("hostile-trap", TIGHT.into()),
        ("hostile-badjson", TIGHT.into()),
        ("hostile-stdout", r#"{"cpu_ms":5000,"wall_ms":10000}"#.into()),
    ]
}

/// Modules whose cycles must fail from the second on, and the text their error must carry.
const MUST_FAIL: [(&str, &[&str]); 7] = [
    ("hostile-loop", &["CPU budget of 500 ms exceeded"]),
    ("hostile-alloc", &["memory limit of 64 MiB exceeded"]),
    ("hostile-recursion", &["stack overflow"]),
    ("hostile-bigstring", &["result of 100000002 bytes exceeds the limit of 8388608 bytes"]),
    ("hostile-bigstate", &["state of ", " bytes exceeds the limit of 8388608 bytes"]),
    ("hostile-trap", &["guest panicked or aborted", "hostile-trap panics on purpose"]),
    ("hostile-badjson", &["state is not valid JSON"]),
];

fn component(name: &str) -> PathBuf {
    let p = workspace_root().join("dist/test-components").join(format!("{name}.wasm"));
    assert!(p.exists(), "{} missing: run scripts/build-modules", p.display());
    p
}

/// The host's `--log-format json` lines.
fn events(log: &str) -> Vec<Value> {
    log.lines().filter_map(|l| serde_json::from_str::<Value>(l).ok()).collect()
}

fn f<'a>(e: &'a Value, key: &str) -> &'a str {
    e["fields"][key].as_str().unwrap_or_default()
}

/// Errors of the failed cycles of `task`, in order.
fn failures(ev: &[Value], task: &str) -> Vec<String> {
    ev.iter()
        .filter(|e| f(e, "message") == "cycle failed; previous state kept" && f(e, "task") == task)
        .map(|e| f(e, "error").to_string())
        .collect()
}

/// Lines a module logged through the `log` import.
fn module_logs<'a>(ev: &'a [Value], module: &str) -> Vec<&'a Value> {
    ev.iter().filter(|e| e["target"] == "nthlayer_host::imports::log" && f(e, "module") == module).collect()
}

/// The task's state as persisted in core (`hysteresis_state.state`).
fn persisted(core: &Core, task: &str) -> Option<Value> {
    let row = core.component_state(task)?;
    let s = row.get("hysteresis_state")?.get("state")?;
    (!s.is_null()).then(|| s.clone())
}

fn n_of(v: &Option<Value>) -> u64 {
    v.as_ref().and_then(|s| s["n"].as_u64()).unwrap_or(0)
}

/// Every hostile outcome this suite expects, checked against the log and core. `Err` names
/// what is missing or wrong (so the caller can keep waiting, then report).
fn check(core: &Core, ev: &[Value]) -> Result<Vec<String>, String> {
    let mut seen = Vec::new();
    for (task, want) in MUST_FAIL {
        let errs = failures(ev, task);
        let Some(first) = errs.first() else { return Err(format!("{task}: no failed cycle logged yet")) };
        for e in &errs {
            if !want.iter().all(|w| e.contains(w)) {
                return Err(format!("{task}: error {e:?} does not say {want:?}"));
            }
        }
        let st = persisted(core, task);
        if st != Some(json!({"n": 1})) {
            return Err(format!("{task}: persisted state is {st:?}, want the first good {{\"n\":1}}"));
        }
        seen.push(format!("{task}: {} failed cycles, e.g. {first}", errs.len()));
    }

    // Contained inside the guest: the cycle succeeds and reports what it was denied.
    for task in
        ["hostile-file", "hostile-socket", "hostile-env", "hostile-ungranted", "hostile-logflood", "hostile-stdout"]
    {
        let errs = failures(ev, task);
        if !errs.is_empty() {
            return Err(format!("{task}: cycles failed: {errs:?}"));
        }
        if n_of(&persisted(core, task)) < 2 {
            return Err(format!("{task}: no misbehaving cycle persisted yet"));
        }
    }
    let file = persisted(core, "hostile-file").unwrap();
    if file["denied"] != json!(true) || file["read"]["denied"] != json!(true) || file["create"]["denied"] != json!(true)
    {
        return Err(format!("hostile-file: file access not denied: {file}"));
    }
    seen.push(format!("hostile-file: read {} / create {}", file["read"]["error"], file["create"]["error"]));

    let sock = persisted(core, "hostile-socket").unwrap();
    if sock["denied"] != json!(true) || sock["connect"]["addr"] != json!(format!("127.0.0.1:{}", core.port())) {
        return Err(format!("hostile-socket: connection to core not denied: {sock}"));
    }
    seen.push(format!("hostile-socket: connect {} -> {}", sock["connect"]["addr"], sock["connect"]["error"]));

    let env = persisted(core, "hostile-env").unwrap();
    if env["vars"] != json!([]) || env["args"] != json!([]) {
        return Err(format!("hostile-env: the guest saw something: {env}"));
    }
    seen.push(format!("hostile-env: vars {} args {} cwd {}", env["vars"], env["args"], env["cwd"]));

    let ung = persisted(core, "hostile-ungranted").unwrap();
    for (call, cap) in
        [("core", "core"), ("core_submit", "core"), ("prometheus", "prometheus"), ("tempo", "tempo"), ("llm", "llm")]
    {
        let o = &ung["calls"][call];
        let msg = o["error"].as_str().unwrap_or_default();
        if o["denied"] != json!(true) || !msg.contains(&format!("--grant hostile-ungranted={cap}")) {
            return Err(format!("hostile-ungranted: {call} not denied with the flag to add: {o}"));
        }
    }
    seen.push(format!("hostile-ungranted: {}", ung["calls"]["core"]["error"]));

    // Log flood: at most LOG_LINES "flood" lines per cycle, and a warning counting the rest.
    let mut per_cycle: BTreeMap<String, usize> = BTreeMap::new();
    for e in module_logs(ev, "hostile-logflood").into_iter().filter(|e| f(e, "message") == "flood") {
        *per_cycle.entry(f(e, "fields").to_string()).or_default() += 1;
    }
    if let Some((c, k)) = per_cycle.iter().find(|(_, k)| **k > LOG_LINES) {
        return Err(format!("hostile-logflood: {k} lines logged in one cycle ({c}), limit {LOG_LINES}"));
    }
    // Each flooding cycle makes 1 "misbehaving" line + 1,000,000 "flood" calls.
    let dropped: Vec<u64> = ev
        .iter()
        .filter(|e| f(e, "task") == "hostile-logflood" && f(e, "message").contains("lines dropped"))
        .filter_map(|e| e["fields"]["dropped"].as_u64())
        .collect();
    if dropped.is_empty() || dropped.iter().any(|d| *d != 1_000_001 - LOG_LINES as u64) {
        return Err(format!("hostile-logflood: lines-dropped warnings {dropped:?}, per-cycle lines {per_cycle:?}"));
    }
    seen.push(format!("hostile-logflood: per-cycle lines {per_cycle:?}, dropped {dropped:?}"));

    // stdout flood: the first 64 KiB are logged, the rest dropped with one warning; the
    // guest's print! never fails.
    let out = ev
        .iter()
        .find(|e| {
            f(e, "module") == "hostile-stdout"
                && f(e, "stream") == "stdout"
                && f(e, "message").contains("guest output beyond the stdio limit dropped")
        })
        .ok_or("hostile-stdout: no 'stdio limit' warning yet")?;
    let d = out["fields"]["dropped_bytes"].as_u64().unwrap_or(0);
    if d != 10_000_000 - 65_536 {
        return Err(format!("hostile-stdout: dropped {d} bytes, want {}", 10_000_000 - 65_536));
    }
    seen.push(format!("hostile-stdout: {d} bytes of stdout dropped"));
    Ok(seen)
}

/// Start times of the ticker's cycles ("tick n" lines), as (n, unix seconds).
fn ticks(ev: &[Value]) -> Vec<(u64, f64)> {
    module_logs(ev, "ticker")
        .into_iter()
        .filter_map(|e| {
            let n = f(e, "message").strip_prefix("tick ")?.parse().ok()?;
            let t = chrono::DateTime::parse_from_rfc3339(e["timestamp"].as_str()?).ok()?;
            Some((n, t.timestamp_micros() as f64 / 1e6))
        })
        .collect()
}

#[test]
fn hostile_modules_are_contained_and_the_ticker_keeps_its_schedule() {
    let mods = modules();
    let files: Vec<String> = mods.iter().map(|(m, _)| component(m).display().to_string()).collect();
    let files: Vec<&str> = files.iter().map(String::as_str).collect();
    let core = Core::start(&fixtures_dir().join("manifests"));
    // hostile-socket reads its target port from the trailing digits of the instance id.
    let instance = format!("sandbox-{}", core.port());
    let mut extra: Vec<String> = ["--log-format", "json", "--max-concurrent-cycles", "16"].map(String::from).to_vec();
    for (m, l) in &mods {
        if !l.is_empty() {
            extra.extend(["--limits".to_string(), format!("{m}={l}")]);
        }
    }
    let extra: Vec<&str> = extra.iter().map(String::as_str).collect();
    let mut host = HostProcess::serve_modules(&core.url(), "http://127.0.0.1:9", &instance, &files, &extra);

    // Every module has run its first (good) cycle.
    wait_until("every module's first cycle persisted", START, || {
        assert!(host.is_running(), "host exited during start-up");
        mods.iter().all(|(m, _)| persisted(&core, m).is_some()).then_some(())
    });

    // The window: hostile modules misbehave, the ticker must keep its 1 s schedule.
    let n0 = n_of(&persisted(&core, "ticker"));
    let t0 = Instant::now();
    while t0.elapsed() < WINDOW {
        assert!(host.is_running(), "host exited while hostile modules ran:\n{}", host.log_tail(40));
        std::thread::sleep(Duration::from_millis(250));
    }
    let n1 = n_of(&persisted(&core, "ticker"));
    let ev = events(&host.log());
    let tk = ticks(&ev);
    let gaps: Vec<f64> = tk.windows(2).map(|w| w[1].1 - w[0].1).collect();
    let max_gap = gaps.iter().copied().fold(0.0, f64::max);
    let mean_gap = gaps.iter().sum::<f64>() / gaps.len().max(1) as f64;
    eprintln!(
        "ticker: n {n0} -> {n1} in {:?}; {} ticks logged, mean gap {mean_gap:.2} s, max gap {max_gap:.2} s",
        t0.elapsed(),
        tk.len()
    );
    assert!(n1 >= n0 + 15, "ticker advanced only {} cycles in {WINDOW:?} (interval 1 s)", n1 - n0);
    assert!(tk.windows(2).all(|w| w[1].0 == w[0].0 + 1), "ticker lost or repeated a state: {tk:?}");

    // Every hostile outcome (waiting a little longer for slow ones, e.g. 3 s log floods).
    let mut last = String::new();
    let seen = nthlayer_tests::wait::try_wait_until(LATE, Duration::from_millis(500), || {
        assert!(host.is_running(), "host exited:\n{}", host.log_tail(40));
        match check(&core, &events(&host.log())) {
            Ok(seen) => Some(seen),
            Err(e) => {
                last = e;
                None
            }
        }
    })
    .unwrap_or_else(|| panic!("hostile outcome not as expected: {last}"));
    for s in &seen {
        eprintln!("observed: {s}");
    }

    // Still up, still serving: the ticker kept going through all of it, and shutdown is clean.
    assert!(host.is_running());
    wait_until("ticker still advancing", Duration::from_secs(5), || {
        (n_of(&persisted(&core, "ticker")) > n1).then_some(())
    });
    let st = host.terminate(SHUTDOWN);
    assert!(st.success(), "exit status {st}");
}

//! The hostile-module suite: one real `nthlayer-host serve` (the real binary) runs the
//! well-behaved `ticker` next to modules that each try one thing a sandbox must contain,
//! against the real nthlayer-core. Each hostile module behaves in its first cycle (state
//! `{"n": 1}`) and misbehaves from the second on, so "previous state kept" is observable in
//! core. See docs/SANDBOX.md for the limits and the observed errors.
//!
//! Needs `target/debug/nthlayer-host` (or `$NTHLAYER_HOST_BIN`) and the components built by
//! `scripts/build-modules` in `dist/test-components/`.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use nthlayer_tests::core::Core;
use nthlayer_tests::host::{observe_module, HostProcess};
use nthlayer_tests::scenario::{self, Observe};
use nthlayer_tests::util::fixtures_dir;
use nthlayer_tests::wait::wait_until;
use nthlayer_tests::{components, Component};
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
fn modules() -> Vec<(Component, String)> {
    let flood = format!(r#"{{"log_lines":{LOG_LINES},"cpu_ms":30000,"wall_ms":30000}}"#);
    vec![
        (components::TICKER, String::new()),
        // CPU is the guest's own thread time (host/src/runtime/cpu.rs): on a loaded machine a
        // spinning guest gets a fraction of a core, so its 500 ms of CPU can take longer than
        // TIGHT's 5 s of wall clock. A wall limit that cannot come first keeps the error the
        // CPU one.
        (components::HOSTILE_LOOP, r#"{"cpu_ms":500,"memory_bytes":67108864,"wall_ms":120000}"#.into()),
        (components::HOSTILE_ALLOC, TIGHT.into()),
        (components::HOSTILE_RECURSION, TIGHT.into()),
        (components::HOSTILE_BIGSTRING, BIG.into()),
        (components::HOSTILE_BIGSTATE, BIG.into()),
        (components::HOSTILE_FILE, TIGHT.into()),
        (components::HOSTILE_SOCKET, TIGHT.into()),
        (components::HOSTILE_ENV, TIGHT.into()),
        (components::HOSTILE_UNGRANTED, TIGHT.into()),
        (components::HOSTILE_LOGFLOOD, flood),
        (components::HOSTILE_TRAP, TIGHT.into()),
        (components::HOSTILE_BADJSON, TIGHT.into()),
        (components::HOSTILE_STDOUT, r#"{"cpu_ms":5000,"wall_ms":10000}"#.into()),
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
        .filter(|e| f(e, "message").starts_with("cycle failed; previous state kept") && f(e, "task") == task)
        .map(|e| f(e, "error").to_string())
        .collect()
}

/// Lines a module logged through the `log` import.
fn module_logs<'a>(ev: &'a [Value], module: &str) -> Vec<&'a Value> {
    ev.iter().filter(|e| e["target"] == "nthlayer_host::module" && f(e, "module") == module).collect()
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

/// One host at a time: the two tests of this suite each start a host with a dozen modules,
/// and running them at once on a loaded machine would only measure each other.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn one_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    ONE_AT_A_TIME.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[test]
fn hostile_modules_are_contained_and_the_ticker_keeps_its_schedule() {
    let _one = one_at_a_time();
    let mods = modules();
    let files: Vec<String> = mods.iter().map(|(m, _)| m.built().display().to_string()).collect();
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
        mods.iter().all(|(m, _)| persisted(&core, m.name()).is_some()).then_some(())
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

/// `cycle ok` lines of `task`: (unix seconds, guest cpu_ms).
fn cycles_ok(ev: &[Value], task: &str) -> Vec<(f64, u64)> {
    ev.iter()
        .filter(|e| f(e, "message") == "cycle ok" && f(e, "task") == task)
        .filter_map(|e| {
            let t = chrono::DateTime::parse_from_rfc3339(e["timestamp"].as_str()?).ok()?;
            Some((t.timestamp_micros() as f64 / 1e6, e["fields"]["cpu_ms"].as_u64()?))
        })
        .collect()
}

fn largest_gap(times: &[f64]) -> f64 {
    times.windows(2).map(|w| w[1] - w[0]).fold(0.0, f64::max)
}

/// The `error` of the log line that refused `file` at load.
fn refusal(ev: &[Value], file: &str) -> Option<String> {
    ev.iter()
        .filter(|e| f(e, "message") == "module not loaded" && f(e, "file").ends_with(file))
        .map(|e| f(e, "error").to_string())
        .next()
}

/// Observe, the ticker and a patient module (1,000 host calls of 10 ms per cycle) next to a
/// sleeper (8 tasks sleeping 30 s in WASI clock waits), 64 busy tasks, a module declaring
/// 5,000 tasks, a 2 MiB describe() version, oversize contract values, a forger and a module
/// granted more record kinds than it declares (hostile-undeclared). Observe's
/// collect (every 2 s) and the ticker keep their schedules (cycle counts with generous slack;
/// the largest gap is reported), the patient module is charged its guest CPU only, and
/// every offender is refused with its specific error, with nothing forged in core.
#[test]
fn neighbours_keep_their_share_cpu_is_honest_and_the_contract_is_bounded() {
    let _one = one_at_a_time();
    let obs = Observe::start_with(false);
    let core = Core::start(&scenario::manifests_dir());
    let observe = observe_module().display().to_string();
    let mut files = vec![observe];
    for m in [
        components::TICKER,
        components::PATIENT,
        components::HOSTILE_SLEEPER,
        components::HOSTILE_MANY,
        components::HOSTILE_MANY_5000,
        components::HOSTILE_BIGVERSION,
        components::HOSTILE_CONTRACT,
        components::HOSTILE_FORGER,
        components::HOSTILE_UNDECLARED,
    ] {
        files.push(m.built().display().to_string());
    }
    let files: Vec<&str> = files.iter().map(String::as_str).collect();
    let extra = [
        "--log-format",
        "json",
        "--interval",
        "observe.collect=2",
        "--limits",
        r#"patient={"cpu_ms":1000,"wall_ms":120000}"#,
        "--grant",
        "hostile-contract=prometheus",
        "--grant",
        "hostile-forger=core,assessment:forger_note",
        "--grant",
        "hostile-undeclared=core,assessment:note_declared,assessment:note_undeclared",
    ];
    let instance = "sandbox-shares";
    let mut host = HostProcess::serve_modules(&core.url(), &obs.prometheus_url(), instance, &files, &extra);

    wait_until("observe, ticker and the hostile modules ran their first cycles", START, || {
        assert!(host.is_running(), "host exited during start-up:\n{}", host.log_tail(40));
        let first = [
            "observe.collect",
            "ticker",
            "hostile-contract",
            "hostile-forger",
            "hostile-undeclared",
            "hostile-many.t0",
        ];
        first.iter().all(|t| persisted(&core, t).is_some()).then_some(())
    });
    let t0 = Instant::now();
    let window_start = nthlayer_tests::util::unix_now();
    let window = Duration::from_secs(30);
    while t0.elapsed() < window {
        assert!(host.is_running(), "host exited while the neighbours ran:\n{}", host.log_tail(40));
        std::thread::sleep(Duration::from_millis(250));
    }
    let ev = events(&host.log());
    let in_window =
        |c: Vec<(f64, u64)>| -> Vec<f64> { c.into_iter().map(|(t, _)| t).filter(|t| *t >= window_start).collect() };

    // Fair shares: observe's collect every 2 s and the ticker every 1 s keep going.
    let collect = in_window(cycles_ok(&ev, "observe.collect"));
    let ticker = in_window(cycles_ok(&ev, "ticker"));
    let many: usize = (0..64).map(|i| in_window(cycles_ok(&ev, &format!("hostile-many.t{i}"))).len()).sum();
    eprintln!(
        "in {window:?}: observe.collect {} cycles (largest gap {:.2} s), ticker {} (largest gap {:.2} s), hostile-many {many} cycles",
        collect.len(),
        largest_gap(&collect),
        ticker.len(),
        largest_gap(&ticker)
    );
    assert!(collect.len() >= 7, "observe.collect ran {} cycles in {window:?} (interval 2 s)", collect.len());
    assert!(ticker.len() >= 15, "ticker ran {} cycles in {window:?} (interval 1 s)", ticker.len());

    // The sleeper holds its share (max_concurrent 4) of its own cycles, never more: before
    // its first cycle ended (30 s of sleep), at most 4 had started.
    let first_done = (0..8)
        .map(|i| if i == 0 { "hostile-sleeper".to_string() } else { format!("hostile-sleeper.t{i}") })
        .filter_map(|t| cycles_ok(&ev, &t).first().map(|c| c.0))
        .fold(f64::MAX, f64::min);
    let started = ev
        .iter()
        .filter(|e| f(e, "module") == "hostile-sleeper" && f(e, "message") == "sleeping")
        .filter_map(|e| chrono::DateTime::parse_from_rfc3339(e["timestamp"].as_str()?).ok())
        .filter(|t| (t.timestamp_micros() as f64 / 1e6) < first_done)
        .count();
    eprintln!("hostile-sleeper: {started} cycles in flight before the first one ended");
    assert!((1..=4).contains(&started), "{started} sleeper cycles at once (share 4)");

    // Task cap: the 5,000-task module is refused at load, naming the module and the cap.
    let e = refusal(&ev, "hostile-many-5000.wasm").expect("hostile-many-5000 refused at load");
    assert!(e.contains("\"hostile-many-5000\" declares 5000 tasks; the limit is 64"), "{e}");
    // describe() caps: the 2 MiB version refuses the file, and never reaches the log.
    let e = refusal(&ev, "hostile-bigversion.wasm").expect("hostile-bigversion refused at load");
    assert!(
        e.contains("hostile-bigversion.wasm") && e.contains("version of 2097152 bytes exceeds the cap of 64 bytes"),
        "{e}"
    );
    let longest = host.log().lines().map(str::len).max().unwrap_or(0);
    assert!(longest < 64 << 10, "a log line of {longest} bytes");
    let hb = core.heartbeat("workers", instance).expect("heartbeat");
    let rejected = hb.state["rejected"].to_string();
    assert!(rejected.contains("hostile-many-5000") && rejected.contains("hostile-bigversion"), "{rejected}");

    // Honest CPU: 1,000 waits of 10 ms per cycle, charged guest CPU only (budget 1 s).
    let st = wait_until("a patient cycle persisted", LATE, || persisted(&core, "patient"));
    assert_eq!(st["waits"], 1000, "{st}");
    let ev = events(&host.log());
    let patient = cycles_ok(&ev, "patient");
    assert!(failures(&ev, "patient").is_empty(), "patient failed: {:?}", failures(&ev, "patient"));
    let cpu: Vec<u64> = patient.iter().map(|c| c.1).collect();
    eprintln!(
        "patient: {} cycles of 1,000 x 10 ms waits ({} s each), guest cpu_ms {cpu:?}",
        patient.len(),
        st["seconds"]
    );
    assert!(!cpu.is_empty() && cpu.iter().all(|c| *c < 1000), "{cpu:?}");
    let hb = wait_until("the heartbeat reports the patient's guest CPU", LATE, || {
        core.heartbeat("workers", instance).filter(|h| h.state["tasks"]["patient"]["last_cpu_ms"].is_u64())
    });
    let hb_cpu = &hb.state["tasks"]["patient"]["last_cpu_ms"];
    assert!(hb_cpu.as_u64().is_some_and(|c| c < 1000), "heartbeat tasks.patient: {}", hb.state["tasks"]["patient"]);

    // Bounded contract: each oversize value is refused with `invalid` naming the cap; the long
    // but legal query is answered (sent as a POST form body).
    let c = wait_until("hostile-contract misbehaved", LATE, || {
        persisted(&core, "hostile-contract").filter(|s| n_of(&Some(s.clone())) >= 2)
    });
    let calls = &c["calls"];
    for q in ["huge_query", "huge_range"] {
        assert_eq!(
            calls[q]["error"],
            json!("invalid: PromQL of 5000000 bytes exceeds the cap of 262144 bytes"),
            "{q}: {c}"
        );
    }
    assert_eq!(calls["batch"]["errors"], 257, "{c}");
    assert_eq!(calls["batch"]["first"], json!("invalid: query batch: 257 entries exceed the cap of 256"), "{c}");
    assert_eq!(calls["long_query"]["outcome"]["ok"], json!(true), "{c}");
    assert_eq!(calls["long_query"]["outcome"]["result"][0]["value"][1], json!("1"), "{c}");
    let ev = events(&host.log());
    let logged: Vec<&Value> =
        module_logs(&ev, "hostile-contract").into_iter().filter(|e| f(e, "message").starts_with("mmmm")).collect();
    assert!(!logged.is_empty(), "the huge log line was not logged at all");
    for e in &logged {
        assert!(f(e, "message").len() < 4200 && f(e, "message").ends_with("bytes cut]"), "{}", &f(e, "message")[..100]);
        assert!(f(e, "fields").len() < 4300, "fields of {} bytes", f(e, "fields").len());
    }
    eprintln!("hostile-contract: {}", calls["huge_query"]["error"]);

    // Emission grants: nothing forged lands in core; the honest record carries the stamp.
    let fg = persisted(&core, "hostile-forger").filter(|s| n_of(&Some(s.clone())) >= 2).expect("forger misbehaved");
    let posts = &fg["posts"];
    for (what, want) in [
        ("portfolio_status", "may not emit assessment \"portfolio_status\"; start the host with --grant hostile-forger=core,assessment:forger_note,assessment:portfolio_status"),
        ("verdict", "may not emit verdict \"triage\""),
        ("producer", "record names producer \"nthlayer-observe\"; a record from module hostile-forger may only name \"nthlayer-hostile-forger\""),
    ] {
        let p = &posts[what];
        assert!(p["denied"] == json!(true) && p["error"].as_str().unwrap_or("").contains(want), "{what}: {p}");
    }
    assert_eq!(posts["honest"]["accepted"], json!(true), "{posts}");
    for kind in ["portfolio_status", "forger_note"] {
        let bad: Vec<String> = core
            .assessments(None, Some(kind))
            .into_iter()
            .map(|a| a.id)
            .filter(|id| id.starts_with("forged-"))
            .collect();
        assert!(bad.is_empty(), "forged {kind} assessments in core: {bad:?}");
    }
    let verdicts = core.verdicts(None, None);
    assert!(!verdicts.iter().any(|v| v.id.starts_with("forged-")), "a forged verdict landed in core");
    let notes = core.assessments(None, Some("forger_note"));
    assert!(!notes.is_empty(), "the honest forger_note did not land");
    for a in &notes {
        assert_eq!(a.extra.get("emitted_by"), Some(&json!({"module": "hostile-forger", "version": "0.1.0"})), "{a:?}");
    }
    // portfolio_status is declared but not granted: one load warning names the whole line.
    let want = "module hostile-forger@0.1.0 declares emissions it is not granted; those records will be denied \
                (grant with --grant hostile-forger=core,assessment:forger_note,assessment:portfolio_status)";
    let warned: Vec<&Value> = ev.iter().filter(|e| f(e, "message") == want).collect();
    assert_eq!(warned.len(), 1, "want one load warning {want:?}; got {warned:?}");
    assert_eq!(warned[0]["level"], "WARN", "{}", warned[0]);

    // Granted note_undeclared but declaring only note_declared: the host refuses it by the
    // declaration, and nothing of it reaches core, while the declared kind lands.
    let ud = persisted(&core, "hostile-undeclared").filter(|s| n_of(&Some(s.clone())) >= 2).expect("undeclared ran");
    assert_eq!(ud["posts"]["declared"]["accepted"], json!(true), "{ud}");
    let refused = &ud["posts"]["undeclared"];
    assert_eq!(refused["denied"], json!(true), "{ud}");
    let why = refused["error"].as_str().unwrap_or_default();
    assert!(
        why.contains(
            "may not emit assessment \"note_undeclared\": it did not declare it in describe() emits \
                      (declares: assessment:note_declared)"
        ),
        "{why}"
    );
    assert!(core.assessments(None, Some("note_undeclared")).is_empty(), "an undeclared record reached core");
    assert!(!core.assessments(None, Some("note_declared")).is_empty(), "the declared record did not land");
    eprintln!("hostile-undeclared: {why}");

    let obs_rec = core.assessments(None, Some("slo_status")).into_iter().next().expect("observe posted slo_status");
    assert_eq!(obs_rec.extra["emitted_by"]["module"], "observe", "{obs_rec:?}");
    eprintln!("hostile-forger: {}", posts["portfolio_status"]["error"]);

    assert!(host.is_running());
    let st = host.terminate(SHUTDOWN);
    assert!(st.success(), "exit status {st}");
}

#[path = "sandbox/flood.rs"]
mod flood;

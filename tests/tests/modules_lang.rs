//! Custom modules in Rust and Python, with the real binary (issue #12, docs/modules.md):
//! - `check` refuses a component importing what the host lacks before compiling it, and
//!   reports the examples (name, contract, tasks, size, compile time, cache state);
//! - `run-once` answers a cycle from fixture files and names every call they lack;
//! - the burn-rate examples, built from source (scripts/build-examples), against real
//!   nthlayer-core and a real Prometheus (backfilled history + live scrapes): Rust and Python
//!   post identical `burn_rate` records for the same data, a `--record`ed cycle replays to
//!   the same records byte for byte, and `serve` runs both beside the built-ins while the
//!   18 MB Python component compiles in the background;
//! - `new --lang rust|python` writes projects whose own test.sh passes.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{json, Value};

use nthlayer_tests::components;
use nthlayer_tests::core::{Assessment, Core};
use nthlayer_tests::exporter::Exporter;
use nthlayer_tests::host::{example_module, host_bin, host_command, HostProcess};
use nthlayer_tests::prometheus::{History, PromOpts, Prometheus};
use nthlayer_tests::scenario::{self, CHECKOUT, FRAUD, HISTORY_GAP_SECS, PAYMENT, SLI_METRIC};
use nthlayer_tests::util::{self, workspace_root};
use nthlayer_tests::wait::wait_until;

const RUST: &str = "burn-rate-rust";
const PYTHON: &str = "burn-rate-python";
const WAIT: Duration = Duration::from_secs(180);

fn json_lines(out: &str) -> Vec<Value> {
    out.lines().filter(|l| l.starts_with('{')).map(|l| serde_json::from_str(l).expect("JSON line")).collect()
}

#[test]
fn check_refuses_foreign_imports_before_compiling_and_reports_modules() {
    let cache = tempfile::tempdir().unwrap();
    let cache_dir = cache.path().display().to_string();
    let bad = components::BAD_IMPORT.built().display().to_string();
    let out = host_command(&["check", bad.as_str(), "--cache-dir", cache_dir.as_str()]);
    assert_eq!(out.code, 1, "{}{}", out.stdout, out.stderr);
    let line = &json_lines(&out.stdout)[0];
    let error = line["error"].as_str().unwrap();
    assert!(error.contains("evil:host/filesystem") && error.contains("refused before compiling"), "{line}");
    // Refused from its declarations: nothing was compiled, so nothing was cached.
    assert!(line.get("compile_ms").is_none() && line["precheck_ms"].is_number(), "{line}");
    assert_eq!(std::fs::read_dir(cache.path()).map(|d| d.count()).unwrap_or(0), 0, "no artifact written");

    // The examples pass; the second check finds the artifact the first one cached.
    let files: Vec<String> = [RUST, PYTHON].iter().map(|n| example_module(n).display().to_string()).collect();
    let mut args = vec!["check"];
    args.extend(files.iter().map(String::as_str));
    args.extend(["--cache-dir", cache_dir.as_str()]);
    let first = host_command(&args);
    assert_eq!(first.code, 0, "{}{}", first.stdout, first.stderr);
    let reports = json_lines(&first.stdout);
    for (r, name) in reports.iter().zip([RUST, PYTHON]) {
        assert_eq!((r["name"].as_str(), r["contract"].as_str()), (Some(name), Some("0.4.0")), "{r}");
        // Declared in describe(), granted nothing (a stranger's file, no --grant): check
        // names the line that would grant it.
        let want = json!({"declared": ["assessment:burn_rate"], "granted": [], "effective": [],
            "missing": ["assessment:burn_rate"], "trust": "untrusted", "grant": format!("--grant {name}=core,prometheus,assessment:burn_rate")});
        assert_eq!(r["emits"], want, "{r}");
        assert_eq!(r["tasks"], json!([{"name": name, "interval_seconds": 60, "summary": r["tasks"][0]["summary"]}]));
        assert_eq!(r["needs"], json!(["core", "prometheus"]));
        assert_eq!(r["cache"], "compiled (now cached)", "{r}");
        assert!(r["compile_ms"].is_u64() && r["size_bytes"].as_u64() > Some(100_000), "{r}");
    }
    // componentize-py bundles CPython: an interpreted guest is tens of times larger.
    assert!(reports[1]["size_bytes"].as_u64() > Some(10 * reports[0]["size_bytes"].as_u64().unwrap()));
    // With the operator's grants (one wider than the declaration) nothing is missing, and the
    // effective set is the declared part of the grant.
    let grants =
        [format!("{RUST}=core,prometheus,assessment:*"), format!("{PYTHON}=core,assessment:burn_rate,verdict:x")];
    for g in &grants {
        args.extend(["--grant", g.as_str()]);
    }
    let again = host_command(&args);
    let reports = json_lines(&again.stdout);
    assert!(reports.iter().all(|r| r["cache"] == "cached"), "{}", again.stdout);
    assert_eq!(reports[0]["emits"]["granted"], json!(["assessment:*"]), "{}", again.stdout);
    assert_eq!(reports[1]["emits"]["granted"], json!(["assessment:burn_rate", "verdict:x"]), "{}", again.stdout);
    for r in &reports {
        assert_eq!(r["emits"]["effective"], json!(["assessment:burn_rate"]), "{r}");
        assert_eq!((&r["emits"]["missing"], &r["emits"]["grant"]), (&json!([]), &Value::Null), "{r}");
    }
}

/// A fixture directory holding `files` (name, JSON).
fn fixtures(files: &[(&str, Value)]) -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    for (name, v) in files {
        std::fs::write(d.path().join(name), serde_json::to_vec_pretty(v).unwrap()).unwrap();
    }
    d
}

/// `run-once` with the grants an operator would give the example (it emits `burn_rate`).
fn run_once(module: &Path, task: &str, dir: &Path) -> (i32, Value, String) {
    let (m, d) = (module.display().to_string(), dir.display().to_string());
    let grant = format!("{task}=core,prometheus,assessment:burn_rate");
    let out =
        host_command(&["run-once", m.as_str(), "--task", task, "--fixtures", d.as_str(), "--grant", grant.as_str()]);
    let report = serde_json::from_str(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}{}", out.stdout, out.stderr));
    (out.code, report, out.stderr)
}

#[test]
fn run_once_answers_from_fixtures_and_names_what_is_missing() {
    for (name, module) in [(RUST, example_module(RUST)), (PYTHON, example_module(PYTHON))] {
        let dir = workspace_root().join("examples").join(name).join("fixtures");
        let (code, report, err) = run_once(&module, name, &dir);
        assert_eq!(code, 0, "{report}\n{err}");
        let posted = report["submitted"]["assessments"].as_array().unwrap();
        let statuses: Vec<&str> = posted.iter().map(|a| a["record"]["data"]["status"].as_str().unwrap()).collect();
        assert_eq!(statuses, ["PAGE", "NO_DATA"], "{report}");
        // The fixture's clock: ids, timestamps and the evaluation time are the recorded ones.
        assert_eq!(posted[0]["record"]["created_at"], "2026-01-01T00:00:30.000000+00:00", "{report}");
        assert_eq!(posted[0]["record"]["data"]["evaluated_at"], 1_767_225_600);
        assert_eq!(report["state"], json!({"seq": 3}));
        assert_eq!(report["unmatched"], json!([]));
    }

    // Manifests but no Prometheus answers: the module degrades (an ERROR record), but the
    // run fails, naming each call and the file it looked in.
    let core = json!([{"call": "get-manifests", "args": {}, "ok": [{"name": "svc", "slos": [
        {"name": "availability", "target": 99.9, "indicator_query": "up"}]}]}]);
    let dir = fixtures(&[("core.json", core)]);
    let (code, report, err) = run_once(&example_module(RUST), RUST, dir.path());
    assert_eq!(code, 1, "{report}");
    assert_eq!(report["ok"], false);
    assert_eq!(report["unmatched"].as_array().unwrap().len(), 7, "one per window: {report}");
    let file = dir.path().join("prometheus.json").display().to_string();
    assert!(err.contains("unmatched: prometheus.query") && err.contains(&file), "{err}");
    assert_eq!(report["submitted"]["assessments"][0]["record"]["data"]["status"], "ERROR");

    // A malformed fixture is refused before anything runs, naming file and entry.
    let dir = fixtures(&[("core.json", json!([{"call": "get-manifests", "args": {}, "error": {"boom": "x"}}]))]);
    let (m, d) = (example_module(RUST).display().to_string(), dir.path().display().to_string());
    let out = host_command(&["run-once", m.as_str(), "--task", RUST, "--fixtures", d.as_str()]);
    assert_eq!(out.code, 1);
    assert!(out.stderr.contains("core.json entry 0 (get-manifests)"), "{}", out.stderr);
}

/// SLIs of the canonical scenario, with checkout-api/latency burning fast (20x its 1%
/// budget): checkout availability 0.5x, payment 0.1x, fraud-detect's reversal rate 5.33x.
fn slis() -> BTreeMap<(String, String), f64> {
    let mut s = scenario::default_slis();
    s.insert((CHECKOUT.into(), "latency".into()), 0.8);
    s
}

/// The same SLIs hourly over the 4 days before the history gap, so the 6 h, 1 d and 3 d
/// windows have data; the windows up to 2 h see the live scrapes.
fn history(slis: &BTreeMap<(String, String), f64>) -> History {
    let end = (util::unix_now() as i64).div_euclid(3600) * 3600 - HISTORY_GAP_SECS;
    let mut h = History::new();
    for ((service, slo), v) in slis {
        h.series_fn(SLI_METRIC, &[("service", service), ("slo", slo)], end - 4 * 86400, end, 3600, |_| *v);
    }
    h
}

struct Stack {
    // Drop order: Prometheus stops scraping before the exporter goes.
    prometheus: Prometheus,
    _exporter: Exporter,
    core: Core,
}

impl Stack {
    fn start() -> Stack {
        let slis = slis();
        let exporter = Exporter::start(scenario::exporter_text(&slis));
        let prometheus = Prometheus::start(PromOpts {
            history: Some(history(&slis)),
            scrape_targets: vec![exporter.target()],
            wait_for: vec![SLI_METRIC.into()],
            ..PromOpts::default()
        });
        let core = Core::start(&scenario::manifests_dir());
        Stack { prometheus, _exporter: exporter, core }
    }

    /// Waits until a minute boundary has a live sample (the short windows' subqueries
    /// evaluate on minute boundaries) and returns the last full minute.
    fn minute_with_data(&self) -> i64 {
        let q = format!("avg_over_time({SLI_METRIC}{{service=\"{CHECKOUT}\",slo=\"latency\"}}[5m:1m])");
        let v = wait_until("a live sample on a minute boundary", Duration::from_secs(150), || {
            self.prometheus.query_value(&q).filter(|v| (*v - 0.8).abs() < 1e-9)
        });
        assert!((v - 0.8).abs() < 1e-9);
        (util::unix_now() as i64).div_euclid(60) * 60
    }

    fn run(&self, module: &str, at: i64, extra: &[&str]) {
        let file = example_module(module).display().to_string();
        let (core, prom) = (self.core.url(), self.prometheus.url());
        let grant = format!("{module}=core,prometheus,assessment:burn_rate");
        let at = json!({ "at": at }).to_string();
        let mut args = vec!["run", "--task", module, "--args", at.as_str(), "--core-url", core.as_str()];
        args.extend([
            "--prometheus-url",
            prom.as_str(),
            "--no-builtin",
            "--modules",
            file.as_str(),
            "--grant",
            grant.as_str(),
        ]);
        args.extend(extra);
        let out = host_command(&args);
        assert_eq!(out.code, 0, "{module}: {}{}", out.stdout, out.stderr);
    }

    /// `burn_rate` records by producer, then (service, slo).
    fn burn_rates(&self) -> BTreeMap<String, BTreeMap<(String, String), Vec<Assessment>>> {
        let mut out: BTreeMap<String, BTreeMap<(String, String), Vec<Assessment>>> = BTreeMap::new();
        for a in self.core.assessments(None, Some("burn_rate")) {
            let producer = a.extra["producer"].as_str().unwrap_or_default().to_string();
            out.entry(producer).or_default().entry((a.service.clone(), a.slo_name().to_string())).or_default().push(a);
        }
        out
    }
}

#[test]
fn burn_rate_examples_agree_on_real_data_record_replay_and_serve_beside_the_builtins() {
    let stack = Stack::start();
    let at = stack.minute_with_data();
    let recording = tempfile::tempdir().unwrap();
    let rec = recording.path().display().to_string();
    stack.run(RUST, at, &["--record", rec.as_str()]);
    stack.run(PYTHON, at, &[]);

    // Identical records: everything but identity (id, created_at, producer) is equal.
    let by = stack.burn_rates();
    let (rust, python) = (&by[&format!("nthlayer-{RUST}")], &by[&format!("nthlayer-{PYTHON}")]);
    assert_eq!(rust.keys().collect::<Vec<_>>(), python.keys().collect::<Vec<_>>());
    assert!(rust.len() >= 5, "{rust:?}");
    for (key, r) in rust {
        assert_eq!(r[0].data, python[key][0].data, "{key:?}");
        assert_eq!(r[0].kind, python[key][0].kind);
    }
    let status = |service: &str, slo: &str| rust[&(service.to_string(), slo.to_string())][0].d("status").clone();
    assert_eq!(status(CHECKOUT, "latency"), "PAGE");
    assert_eq!(status(FRAUD, "reversal_rate"), "TICKET");
    assert_eq!(status(CHECKOUT, "availability"), "OK");
    assert_eq!(status(PAYMENT, "availability"), "OK");
    assert_eq!(status(CHECKOUT, "throughput"), "NO_DATA");
    let page = &rust[&(CHECKOUT.to_string(), "latency".to_string())][0];
    for (w, b) in page.d("burn_rates").as_object().unwrap() {
        assert!((b.as_f64().unwrap_or_else(|| panic!("{w}: no data")) - 20.0).abs() < 1e-6, "{w}: {b}");
    }
    assert_eq!(page.d("firing").as_array().unwrap().len(), 4, "{page:?}");

    // The recorded cycle replays to the very records core stored (ids and timestamps too:
    // the sandbox's clock and randomness are part of the recording).
    let cycle = recording.path().join(RUST).join("1");
    let (code, report, err) = run_once(&example_module(RUST), RUST, &cycle);
    assert_eq!(code, 0, "{report}\n{err}");
    let replayed: Vec<Value> =
        report["submitted"]["assessments"].as_array().unwrap().iter().map(|a| a["record"].clone()).collect();
    // Core's copy also carries the host's `emitted_by` stamp (docs/SANDBOX.md), which is
    // not part of what the module wrote.
    let mut stored: Vec<Value> = rust
        .values()
        .map(|v| {
            let mut r = v[0].to_value();
            r.as_object_mut().unwrap().remove("emitted_by");
            r
        })
        .collect();
    let mut replayed_sorted = replayed.clone();
    let key = |v: &Value| v["id"].as_str().unwrap_or_default().to_string();
    stored.sort_by_key(key);
    replayed_sorted.sort_by_key(key);
    assert_eq!(replayed_sorted, stored);

    // serve: both examples beside the built-ins, with a fresh artifact cache, so the Python
    // component compiles cold — in the background, while the built-ins already work.
    let cache = tempfile::tempdir().unwrap();
    let (core, prom, cache_dir) = (stack.core.url(), stack.prometheus.url(), cache.path().display().to_string());
    let (r, p) = (example_module(RUST).display().to_string(), example_module(PYTHON).display().to_string());
    let args = [
        "serve",
        "--core-url",
        core.as_str(),
        "--prometheus-url",
        prom.as_str(),
        "--instance-id",
        "lang",
        "--modules",
        r.as_str(),
        p.as_str(),
        "--grant",
        "burn-rate-rust=core,prometheus,assessment:burn_rate",
        "--grant",
        "burn-rate-python=core,prometheus,assessment:burn_rate",
        "--cache-dir",
        cache_dir.as_str(),
        "--start-jitter-ms",
        "0",
        "--log-format",
        "json",
    ];
    let mut host = HostProcess::spawn_raw(args.iter().map(|s| s.to_string()).collect());
    let before: BTreeMap<String, usize> = by.iter().map(|(k, v)| (k.clone(), v.values().map(Vec::len).sum())).collect();
    wait_until("both examples posted from serve", WAIT, || {
        assert!(host.is_running(), "host exited: {}", host.log_tail(40));
        let now = stack.burn_rates();
        [RUST, PYTHON]
            .iter()
            .map(|m| format!("nthlayer-{m}"))
            .all(|p| {
                now.get(&p).map_or(0, |v| v.values().map(Vec::len).sum::<usize>())
                    > before.get(&p).copied().unwrap_or(0)
            })
            .then_some(())
    });
    let log = host.log();
    let line = |what: &str| log.lines().position(|l| l.contains(what));
    let background = line("compiling in the background").expect("the Python component compiled in the background");
    assert!(log.lines().nth(background).unwrap().contains(PYTHON));
    let finished = line("background compile finished").expect("background compile finished");
    // A built-in's committed cycle (its records go to the outbox with it, docs/OUTBOX.md).
    let builtin_ran = log.lines().position(|l| l.contains("cycle ok") && l.contains("\"observe.collect\""));
    assert!(builtin_ran.expect("observe.collect ran") < finished, "built-ins served while Python compiled");
    let hb = wait_until("heartbeat with the Python component", WAIT, || {
        let hb = stack.core.heartbeat("workers", "lang")?;
        hb.state["components"].as_array()?.iter().find(|c| c["name"] == PYTHON).cloned()
    });
    assert_eq!(hb["artifact"], "compiled", "{hb}");
    assert!(hb["compile_ms"].as_u64() > Some(0), "{hb}");
    host.terminate(Duration::from_secs(15));
}

/// `new NAME --lang L` then the project's own test.sh, with this build's host binary.
fn new_project_passes_its_test(lang: &str) {
    let dir = tempfile::tempdir().unwrap();
    let project: PathBuf = dir.path().join(format!("demo-{lang}"));
    let p = project.display().to_string();
    let name = format!("demo-{lang}");
    let out = host_command(&["new", name.as_str(), "--lang", lang, "--dir", p.as_str()]);
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    assert!(project.join("wit/nthlayer-worker@0.4.0/world.wit").exists());
    // A second `new` into the same directory refuses instead of overwriting.
    let again = host_command(&["new", name.as_str(), "--lang", lang, "--dir", p.as_str()]);
    assert_eq!(again.code, 1);
    assert!(again.stderr.contains("not empty"), "{}", again.stderr);

    let toolchains = workspace_root().join(".work/toolchains");
    // Where scripts/build-examples builds the Rust example (and build-modules the test
    // components): what a generated project compiles is mostly there already.
    let target = workspace_root().join("target/test-components");
    let host = host_bin();
    let env = [
        ("NTHLAYER_HOST", host.to_str().unwrap()),
        ("NTHLAYER_TOOLCHAINS", toolchains.to_str().unwrap()),
        ("CARGO_TARGET_DIR", target.to_str().unwrap()),
    ];
    let test = std::process::Command::new(project.join("test.sh"))
        .current_dir(&project)
        .envs(env)
        .output()
        .expect("run test.sh");
    let (stdout, stderr) = (String::from_utf8_lossy(&test.stdout), String::from_utf8_lossy(&test.stderr));
    assert!(test.status.success(), "{lang} test.sh failed:\n{stdout}\n{stderr}");
    assert!(stdout.contains(&format!("{name}: ok")), "{stdout}");
}

#[test]
fn new_rust_project_builds_and_passes_its_own_test() {
    new_project_passes_its_test("rust");
}

#[test]
fn new_python_project_builds_and_passes_its_own_test() {
    // componentize-py comes from PyPI via the project's build.sh, into the shared toolchains.
    new_project_passes_its_test("python");
}

/// `interface.function` of every function in the newest contract folder.
fn wit_functions() -> (String, Vec<String>) {
    let wit = workspace_root().join("wit");
    let mut versions: Vec<(Vec<u64>, PathBuf)> = std::fs::read_dir(&wit)
        .unwrap()
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let v = name.strip_prefix("nthlayer-worker@")?.split('.').map(|p| p.parse().unwrap_or(0)).collect();
            Some((v, e.path()))
        })
        .collect();
    versions.sort();
    let (v, dir) = versions.pop().unwrap();
    let mut fns = Vec::new();
    for f in std::fs::read_dir(&dir).unwrap().flatten() {
        let mut interface = None;
        for line in std::fs::read_to_string(f.path()).unwrap().lines() {
            let l = line.trim();
            if let Some(rest) = l.strip_prefix("interface ") {
                interface = rest.split_whitespace().next().map(str::to_string);
            } else if let (Some(i), Some((name, _))) = (&interface, l.split_once(": func(")) {
                fns.push(format!("{i}.{name}"));
            }
        }
    }
    fns.sort();
    (v.iter().map(u64::to_string).collect::<Vec<_>>().join("."), fns)
}

#[test]
fn the_wit_reference_in_the_docs_matches_wit() {
    let (version, wit) = wit_functions();
    let doc = std::fs::read_to_string(workspace_root().join("docs/modules.md")).unwrap();
    let section =
        doc.split_once(&format!("## WIT reference (contract {version})")).expect("section for the newest contract").1;
    let section = section.split("\n## ").next().unwrap();
    let mut documented: Vec<String> =
        section.lines().filter_map(|l| l.strip_prefix("| `")?.split_once("` |").map(|(f, _)| f.to_string())).collect();
    documented.sort();
    assert_eq!(documented, wit, "docs/modules.md's WIT reference and wit/nthlayer-worker@{version}/ disagree");
}

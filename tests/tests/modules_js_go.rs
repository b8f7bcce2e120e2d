//! The JavaScript and Go modules, built from source and run by the real binary:
//! - `examples/slo-report-js` (TypeScript, componentize-js) and `examples/budget-forecast-go`
//!   (Go, wit-bindgen + the WASI reactor adapter), built by their own `build.sh` (toolchains
//!   from npm, PyPI and crates.io via `scripts/toolchains/{js,go}`);
//! - `nthlayer-host check` accepts both and reports what they declare;
//! - `serve` runs each against real nthlayer-core and a real, backfilled Prometheus, with the
//!   capabilities granted on the command line as an operator would; the records core stores
//!   are compared value by value with what the scenario's data implies;
//! - without a grant the same component gets `denied` and core stores nothing from it;
//! - the JS and Go templates render into projects that build and pass their own test.sh.
//!
//! Needs `target/debug/nthlayer-host` and node/npm, python3 + pip, cargo (for the toolchains;
//! `.work/toolchains` caches them). `dist/examples/<name>.wasm` is reused when present
//! (scripts/build-examples, as CI does), else built here.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;
use std::time::Duration;

use nthlayer_tests::core::{Assessment, Core};
use nthlayer_tests::host::{host_bin, host_command, HostProcess};
use nthlayer_tests::prometheus::{PromOpts, Prometheus};
use nthlayer_tests::scenario::{self, history_range, Observe, BUDGET_METRIC, CHECKOUT, FRAUD, PAYMENT};
use nthlayer_tests::util::{parse_iso, workspace_root};
use nthlayer_tests::wait::{assert_stays, wait_until};
use serde_json::{json, Value};

const JS: &str = "slo-report-js";
const GO: &str = "budget-forecast-go";
/// First cycles of an interpreted guest include its first compile (JS: ~20 s cold).
const RECORDS: Duration = Duration::from_secs(180);
const SHUTDOWN: Duration = Duration::from_secs(15);

/// `dist/examples/<name>.wasm`, built from `examples/<name>/` by its build.sh if missing.
/// One build at a time: the toolchain installs share `.work/toolchains`.
fn example(name: &str) -> PathBuf {
    static BUILD: Mutex<()> = Mutex::new(());
    let _one = BUILD.lock().unwrap_or_else(|e| e.into_inner());
    let out = workspace_root().join("dist/examples").join(format!("{name}.wasm"));
    if !out.exists() {
        let script = workspace_root().join("examples").join(name).join("build.sh");
        let st = Command::new(&script).env("OUT", &out).status().expect("run build.sh");
        assert!(st.success(), "{} failed", script.display());
    }
    out
}

fn json_lines(out: &str) -> Vec<Value> {
    out.lines().filter_map(|l| serde_json::from_str(l).ok()).collect()
}

#[test]
fn check_accepts_both_and_reports_what_they_declare() {
    let (js, go) = (example(JS), example(GO));
    let out = host_command(&["check", js.to_str().unwrap(), go.to_str().unwrap()]);
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    let reports = json_lines(&out.stdout);
    assert_eq!(reports.len(), 2, "{}", out.stdout);
    for (r, (name, interval, kind)) in
        reports.iter().zip([("slo-report", 86400, "slo_report"), ("budget-forecast", 3600, "budget_forecast")])
    {
        assert_eq!(r["ok"], true, "{r}");
        assert_eq!(r["contract"], "0.4.0", "{r}");
        assert_eq!(r["emits"]["declared"], json!([format!("assessment:{kind}")]), "{r}");
        assert_eq!(r["emits"]["grant"], json!(format!("--grant {name}=core,prometheus,assessment:{kind}")), "{r}");
        let m = &r["module"];
        assert_eq!(m["name"], name, "{r}");
        assert_eq!(m["version"], "0.1.0", "{r}");
        assert_eq!(m["needs"], json!(["core", "prometheus"]), "{r}");
        let tasks = m["tasks"].as_array().expect("tasks");
        assert_eq!(tasks.len(), 1, "{r}");
        assert_eq!(tasks[0]["name"], name, "{r}");
        assert_eq!(tasks[0]["interval_seconds"], interval, "{r}");
    }
}

/// Each example's own test.sh (native tests, check, run-once with its fixtures/), on the
/// component built above.
#[test]
fn examples_pass_their_own_test_with_fixtures() {
    for (name, module) in [(JS, "slo-report"), (GO, "budget-forecast")] {
        let wasm = example(name);
        let dir = workspace_root().join("examples").join(name);
        let out = Command::new(dir.join("test.sh"))
            .env("NTHLAYER_HOST", host_bin())
            .env("WASM", &wasm)
            .output()
            .expect("run test.sh");
        let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        assert!(out.status.success(), "{name} test.sh failed:\n{stdout}\n{stderr}");
        assert!(stdout.contains(&format!("{module}: ok")), "{stdout}");
    }
}

/// componentize-js without `-d http fetch-event` builds in fetch(), so the component imports
/// wasi:http, which the host does not link: `check` refuses it before compiling, naming the
/// import and the flag.
#[test]
fn check_refuses_a_js_component_built_without_the_http_flags() {
    let tc = Command::new(workspace_root().join("scripts/toolchains/js")).output().expect("toolchains/js");
    assert!(tc.status.success(), "{}", String::from_utf8_lossy(&tc.stderr));
    let tc = PathBuf::from(String::from_utf8(tc.stdout).unwrap().trim());
    let wit = newest_contract();
    let version = wit.file_name().unwrap().to_str().unwrap().strip_prefix("nthlayer-worker@").unwrap().to_owned();
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("m.js");
    std::fs::write(
        &src,
        format!(
            "import {{ log }} from 'nthlayer:worker/log@{version}';\n\
             export function describe() {{ return {{ name: 'm', version: '0.1.0', tasks: [], needs: [] }}; }}\n\
             export function runCycle(i) {{ log('info', 'hi', []); return {{ emitted: 0 }}; }}\n"
        ),
    )
    .unwrap();
    let wasm = dir.path().join("m.wasm");
    let built = Command::new(tc.join("node_modules/.bin/componentize-js"))
        .arg(&src)
        .args(["--wit", wit.to_str().unwrap(), "--world-name", "worker", "-o", wasm.to_str().unwrap()])
        .output()
        .expect("componentize-js");
    assert!(built.status.success(), "{}", String::from_utf8_lossy(&built.stderr));
    let out = host_command(&["check", wasm.to_str().unwrap()]);
    assert_eq!(out.code, 1, "{}\n{}", out.stdout, out.stderr);
    let text = format!("{}{}", out.stdout, out.stderr);
    assert!(text.contains("wasi:http/"), "names the foreign import: {text}");
    assert!(text.contains("-d http fetch-event"), "names the flag that removes it: {text}");
}

/// The observe scenario's manifests plus `ledger` (team payments, target 99.5), so one team
/// report covers two services.
fn manifests_with_ledger() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for e in std::fs::read_dir(scenario::manifests_dir()).unwrap() {
        let p = e.unwrap().path();
        std::fs::copy(&p, dir.path().join(p.file_name().unwrap())).unwrap();
    }
    let ledger = "apiVersion: srm/v1\nkind: ServiceReliabilityManifest\n\
                  metadata: {name: ledger, team: payments, tier: high}\n\
                  spec:\n  type: worker\n  slos:\n    availability:\n      target: 99.5\n      window: 30d\n      \
                  indicator: {query: 'test_sli{service=\"$service\",slo=\"availability\"}'}\n";
    std::fs::write(dir.path().join("ledger.yaml"), ledger).unwrap();
    dir
}

/// `slo:error_budget_remaining:ratio` as the scenario backfills it (scenario::drift_history):
/// checkout-api/availability falls linearly 0.9 -> 0.6 over the history, payment-api is 0.95.
fn budget_at(service: &str, t: i64, range: (i64, i64)) -> f64 {
    let (start, end) = range;
    match service {
        CHECKOUT => 0.9 - 0.3 * ((t - start) as f64 / (end - start) as f64),
        PAYMENT => 0.95,
        _ => unreachable!(),
    }
}

fn latest_by_service(recs: Vec<Assessment>) -> BTreeMap<String, Assessment> {
    // core answers newest first: the first record per key is the latest.
    let mut m = BTreeMap::new();
    for a in recs {
        m.entry(a.service.clone()).or_insert(a);
    }
    m
}

fn serve(core: &Core, prometheus_url: &str, module: &Path, instance: &str, extra: &[&str]) -> HostProcess {
    HostProcess::serve_modules(&core.url(), prometheus_url, instance, &[module.to_str().unwrap()], extra)
}

/// Prometheus with the scenario's budget history and its default 5 m lookback. (The harness
/// widens the lookback to the history's 1 h step by default, which makes a range query
/// repeat the last sample one step past the end of the history; production Prometheus
/// evaluates recording rules every minute and keeps the 5 m default.)
fn budget_prometheus(now: f64) -> Prometheus {
    Prometheus::start(PromOpts {
        history: Some(scenario::drift_history(now)),
        lookback_delta: Some("5m".into()),
        wait_for: vec![format!("count_over_time({BUDGET_METRIC}[31d])")],
        ..PromOpts::default()
    })
}

#[test]
fn slo_report_js_serves_team_reports_that_match_the_data() {
    let wasm = example(JS);
    let obs = Observe::start();
    obs.set_sli("ledger", "availability", 0.998);
    let manifests = manifests_with_ledger();
    let core = Core::start(manifests.path());
    let range = history_range(nthlayer_tests::util::unix_now());
    let mut host = serve(
        &core,
        &obs.prometheus_url(),
        &wasm,
        "js-e2e",
        &["--grant", "slo-report=core,prometheus,assessment:slo_report", "--interval", "slo-report=2"],
    );
    // Two cycles per team (sequence 1 and 2), so the state round-trips through core.
    let teams = ["team:commerce", "team:payments", "team:risk"];
    let reports = wait_until("two slo_report cycles for every team", RECORDS, || {
        let recs = core.assessments(None, Some("slo_report"));
        let done = teams.iter().all(|t| {
            recs.iter().filter(|a| a.service == *t).any(|a| a.id.ends_with("-00002"))
                && recs.iter().filter(|a| a.service == *t).any(|a| a.id.ends_with("-00001"))
        });
        done.then_some(recs)
    });
    assert!(host.is_running(), "host exited early");
    let latest = latest_by_service(reports);
    assert_eq!(latest.keys().cloned().collect::<Vec<_>>(), teams, "one report per team, nothing else");

    for a in latest.values() {
        assert_eq!(a.extra.get("producer"), Some(&json!("nthlayer-slo-report")), "{a:?}");
        let day = &a.created_at[..10];
        let team = a.service.strip_prefix("team:").unwrap();
        assert!(a.id.starts_with(&format!("rpt-{team}-{}-", day.replace('-', ""))), "{}", a.id);
        assert_eq!(a.d("report_date"), day);
        assert_eq!(a.d("team"), team);
    }

    let commerce = &latest["team:commerce"].data;
    let checkout = &commerce["services"][0];
    assert_eq!(checkout["service"], CHECKOUT);
    assert_eq!(checkout["tier"], "critical");
    let slos = checkout["slos"].as_array().unwrap();
    let names: Vec<&str> = slos.iter().map(|s| s["slo_name"].as_str().unwrap()).collect();
    assert_eq!(names, ["availability", "latency", "throughput"], "manifest order");
    // availability: SLI 0.9995 (exporter) as percent, target 99.9, budget = the last backfilled
    // sample of the checkout history (0.9 -> 0.6).
    let avail = &slos[0];
    assert_eq!(avail["current_sli"].as_f64(), Some(0.9995 * 100.0));
    assert_eq!(avail["status"], "MET");
    assert_eq!(avail["margin"].as_f64(), Some(0.9995 * 100.0 - 99.9));
    let budget = avail["budget_remaining"].as_f64().expect("checkout availability budget");
    assert!((budget - budget_at(CHECKOUT, range.1, range)).abs() < 1e-12, "budget {budget}");
    let latency = &slos[1];
    assert_eq!(latency["current_sli"].as_f64(), Some(0.97 * 100.0));
    assert_eq!(latency["status"], "MISSED");
    assert_eq!(latency["budget_remaining"], Value::Null, "no budget series for latency");
    assert_eq!(slos[2]["status"], "NO_QUERY");
    assert_eq!(commerce["status"], "MISSED");
    let counts = |d: &Value| -> Vec<Value> {
        ["slo_count", "met_count", "missed_count", "no_data_count"].iter().map(|k| d[*k].clone()).collect()
    };
    assert_eq!(counts(commerce), [json!(3), json!(1), json!(1), json!(1)]);
    assert_eq!(commerce["compliance_percent"].as_f64(), Some(50.0));
    let worst =
        |d: &Value| (d["worst"]["service"].clone(), d["worst"]["slo_name"].clone(), d["worst"]["margin"].as_f64());
    assert_eq!(worst(commerce), (json!(CHECKOUT), json!("latency"), Some(0.97 * 100.0 - 99.0)));

    // payments: ledger (0.998 vs 99.5) and payment-api (0.99995 vs 99.95), both met; the
    // worst is the smaller margin; payment-api's budget is its flat 0.95 history.
    let payments = &latest["team:payments"].data;
    let services: Vec<&str> =
        payments["services"].as_array().unwrap().iter().map(|s| s["service"].as_str().unwrap()).collect();
    assert_eq!(services, ["ledger", PAYMENT]);
    let ledger = &payments["services"][0]["slos"][0];
    assert_eq!((ledger["current_sli"].as_f64(), ledger["status"].clone()), (Some(0.998 * 100.0), json!("MET")));
    let pay = &payments["services"][1]["slos"][0];
    assert_eq!(pay["current_sli"].as_f64(), Some(0.99995 * 100.0));
    assert_eq!(pay["budget_remaining"].as_f64(), Some(0.95));
    assert_eq!(payments["status"], "MET");
    assert_eq!(counts(payments), [json!(2), json!(2), json!(0), json!(0)]);
    assert_eq!(payments["compliance_percent"].as_f64(), Some(100.0));
    let (lm, pm) = (0.998 * 100.0 - 99.5, 0.99995 * 100.0 - 99.95);
    let (ws, wm) = if lm < pm { ("ledger", lm) } else { (PAYMENT, pm) };
    assert_eq!(worst(payments), (json!(ws), json!("availability"), Some(wm)));

    // risk: fraud-detect's judgment SLO, 0.92 vs 98.5.
    let risk = &latest["team:risk"].data;
    assert_eq!(risk["services"][0]["service"], FRAUD);
    assert_eq!(risk["services"][0]["slos"][0]["current_sli"].as_f64(), Some(0.92 * 100.0));
    assert_eq!(risk["status"], "MISSED");
    assert_eq!(counts(risk), [json!(1), json!(0), json!(1), json!(0)]);

    assert!(host.terminate(SHUTDOWN).success());
    // The state the host persisted continues the sequence.
    let st = core.component_state("slo-report").expect("slo-report state in core");
    let seq = st["hysteresis_state"]["state"]["seq"].as_u64().expect("seq in persisted state");
    assert!(seq >= 3, "persisted state {st}");
}

#[test]
fn budget_forecast_go_serves_forecasts_that_match_the_history() {
    let wasm = example(GO);
    let now = nthlayer_tests::util::unix_now();
    let prom = budget_prometheus(now);
    let core = Core::start(&scenario::manifests_dir());
    let range = history_range(now);
    let mut host = serve(
        &core,
        &prom.url(),
        &wasm,
        "go-e2e",
        &["--grant", "budget-forecast=core,prometheus,assessment:budget_forecast", "--interval", "budget-forecast=2"],
    );
    let recs = wait_until("budget_forecast for checkout-api and payment-api", RECORDS, || {
        let recs = core.assessments(None, Some("budget_forecast"));
        let done = [CHECKOUT, PAYMENT].iter().all(|s| recs.iter().any(|a| a.service == *s));
        done.then_some(recs)
    });
    assert!(host.is_running(), "host exited early");
    // Only the two SLOs with a budget series get a forecast (the other three have none).
    assert!(recs.iter().all(|a| a.slo_name() == "availability"), "{recs:?}");
    let latest = latest_by_service(recs);
    assert_eq!(latest.keys().cloned().collect::<Vec<_>>(), [CHECKOUT, PAYMENT]);

    for (svc, a) in &latest {
        assert_eq!(a.extra.get("producer"), Some(&json!("nthlayer-budget-forecast")), "{a:?}");
        assert!(a.id.starts_with(&format!("bfc-{svc}-availability-")), "{}", a.id);
        let d = &a.data;
        // The window is the 7 days up to the cycle's hour; the last sample is the history's end.
        let created = parse_iso(&a.created_at).unwrap() as i64;
        let t0 = created.div_euclid(3600) * 3600 - 7 * 86400;
        let t1 = range.1;
        assert_eq!(parse_iso(d["observed_from"].as_str().unwrap()), Some(t0 as f64), "{d}");
        assert_eq!(parse_iso(d["observed_to"].as_str().unwrap()), Some(t1 as f64), "{d}");
        assert_eq!(d["samples"], json!((t1 - t0) / 3600 + 1), "hourly samples in the window");
        assert_eq!(d["window"], "7d");
        let (v0, v1) = (budget_at(svc, t0, range), budget_at(svc, t1, range));
        assert_eq!(d["budget_at_window_start"].as_f64(), Some(v0), "{d}");
        assert_eq!(d["budget_remaining"].as_f64(), Some(v1), "{d}");
        let burn = (v0 - v1) / ((t1 - t0) as f64 / 86400.0);
        assert!((d["burn_per_day"].as_f64().unwrap() - burn).abs() < 1e-12, "{d}");
        if *svc == CHECKOUT {
            // 0.3 of the budget over 30 days = 0.01 a day; 0.6 left -> 60 days: OK.
            assert!((burn - 0.01).abs() < 1e-9, "{burn}");
            let days = v1 / burn;
            assert!((d["days_to_exhaustion"].as_f64().unwrap() - days).abs() < 1e-9, "{d}");
            let at = parse_iso(d["projected_exhaustion_at"].as_str().unwrap()).unwrap();
            assert!((at - (t1 as f64 + days * 86400.0)).abs() < 1e-3, "{d}");
            assert_eq!(d["status"], "OK");
        } else {
            assert_eq!(d["burn_per_day"].as_f64(), Some(0.0), "{d}");
            assert_eq!(
                (d["days_to_exhaustion"].clone(), d["projected_exhaustion_at"].clone()),
                (Value::Null, Value::Null)
            );
            assert_eq!(d["status"], "STABLE");
        }
    }
    // The host logged the component's own log lines, tagged with the module.
    assert!(host.log().contains("budget forecast"), "{}", host.log_tail(40));
    assert!(host.terminate(SHUTDOWN).success());
}

#[test]
fn without_a_grant_the_go_module_is_denied_and_core_stores_nothing() {
    let wasm = example(GO);
    let prom = budget_prometheus(nthlayer_tests::util::unix_now());
    let core = Core::start(&scenario::manifests_dir());
    let mut host = serve(&core, &prom.url(), &wasm, "go-nogrant", &["--interval", "budget-forecast=1"]);
    wait_until("a denied cycle in the host log", RECORDS, || host.log().contains("denied").then_some(()));
    assert_stays("no budget_forecast records", Duration::from_secs(3), || {
        core.assessments(None, Some("budget_forecast")).is_empty()
    });
    assert!(host.log().contains("core.get-manifests"), "the module names the call: {}", host.log_tail(40));
    assert!(host.terminate(SHUTDOWN).success());
}

/// The newest `wit/nthlayer-worker@X.Y.Z/` folder (by version, not name order).
fn newest_contract() -> PathBuf {
    let wit = workspace_root().join("wit");
    let newest = std::fs::read_dir(&wit)
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter_map(|n| {
            let v = n.strip_prefix("nthlayer-worker@")?;
            let parts: Vec<u64> = v.split('.').map(|p| p.parse().ok()).collect::<Option<_>>()?;
            Some((parts, n))
        })
        .max()
        .expect("a contract folder under wit/")
        .1;
    wit.join(newest)
}

/// `new NAME --lang L`, then the project's own test.sh, which builds the component from source, checks it and runs it.
fn template_project_passes_its_test(lang: &str) {
    let dir = tempfile::tempdir().unwrap();
    let name = format!("demo-{lang}");
    let project = dir.path().join(&name);
    let rendered = host_command(&["new", &name, "--lang", lang, "--dir", project.to_str().unwrap()]);
    assert_eq!(rendered.code, 0, "{}\n{}", rendered.stdout, rendered.stderr);
    // The repository's toolchain cache unless the caller points elsewhere (CI: a cache that
    // outlives the clone; each toolchain costs under a minute cold).
    let toolchains =
        std::env::var_os("NTHLAYER_TOOLCHAINS").map(PathBuf::from).unwrap_or(workspace_root().join(".work/toolchains"));
    let out = Command::new(project.join("test.sh"))
        .current_dir(&project)
        .env("NTHLAYER_HOST", host_bin())
        .env("NTHLAYER_TOOLCHAINS", &toolchains)
        .output()
        .expect("run test.sh");
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{lang} test.sh failed:\n{stdout}\n{stderr}");
    assert!(stdout.contains(&format!("{name}: ok")), "{stdout}");
}

#[test]
fn new_js_project_builds_and_passes_its_own_test() {
    template_project_passes_its_test("js");
}

#[test]
fn new_go_project_builds_and_passes_its_own_test() {
    template_project_passes_its_test("go");
}

/// Every example language at once, beside the embedded built-ins: one host, each module
/// granted only the kind it emits, all posting into the same real core, each record stamped
/// with the module that made it.
#[test]
fn all_four_languages_serve_beside_the_builtins() {
    let now = nthlayer_tests::util::unix_now();
    let prom = budget_prometheus(now);
    let core = Core::start(&scenario::manifests_dir());
    // (example, module name, the kind it emits)
    let four = [
        ("burn-rate-rust", "burn-rate-rust", "burn_rate"),
        ("burn-rate-python", "burn-rate-python", "burn_rate"),
        (JS, "slo-report", "slo_report"),
        (GO, "budget-forecast", "budget_forecast"),
    ];
    let (core_url, prom_url) = (core.url(), prom.url());
    let mut args: Vec<String> = ["serve", "--core-url", &core_url, "--prometheus-url", &prom_url]
        .into_iter()
        .chain(["--instance-id", "four-languages", "--start-jitter-ms", "0", "--log-format", "json"])
        .map(String::from)
        .collect();
    for (example_name, module, kind) in four {
        args.extend(["--modules".into(), example(example_name).display().to_string()]);
        args.extend(["--grant".into(), format!("{module}=core,prometheus,assessment:{kind}")]);
        args.extend(["--interval".into(), format!("{module}=2")]);
    }
    let mut host = HostProcess::spawn_raw(args);
    let stamped_by = |a: &Assessment| a.extra["emitted_by"]["module"].as_str().unwrap_or_default().to_string();
    wait_until("records from all four languages and from observe", Duration::from_secs(240), || {
        assert!(host.is_running(), "host exited:\n{}", host.log_tail(40));
        let mut by: BTreeMap<String, usize> = BTreeMap::new();
        for kind in ["burn_rate", "slo_report", "budget_forecast", "portfolio_status"] {
            for a in core.assessments(None, Some(kind)) {
                *by.entry(stamped_by(&a)).or_default() += 1;
            }
        }
        let all = four.iter().map(|(_, m, _)| *m).chain(["observe"]).all(|m| by.get(m).copied().unwrap_or(0) > 0);
        all.then_some(())
    });
    // Each module's records are of its granted kind and name it as their producer.
    for (_, module, kind) in four {
        let recs: Vec<Assessment> =
            core.assessments(None, Some(kind)).into_iter().filter(|a| stamped_by(a) == module).collect();
        assert!(!recs.is_empty(), "{module}");
        for a in &recs {
            assert_eq!(a.extra["producer"], json!(format!("nthlayer-{module}")), "{module}: {:?}", a.extra);
        }
    }
    assert!(host.terminate(Duration::from_secs(20)).success(), "clean shutdown");
}

//! A config reload applied to the running binary, seen in what the host does next: a
//! raised limit, a tightened grant (a record kind, then a capability, counted in
//! `/metrics`), a changed interval (the spacing of the next cycles); an invalid file
//! refused with its key named and nothing changed; a key that needs a restart reported as
//! such; the log level changed. All with one process: same pid, uptime going on.

use std::time::{Duration, Instant};

use serde_json::Value;

use super::{serve, write, Admin};
use nthlayer_tests::components;
use nthlayer_tests::core::Core;
use nthlayer_tests::scenario;
use nthlayer_tests::util::{free_port, http_client};
use nthlayer_tests::wait::wait_until;

/// The file, with the spooler's grant line, its `max_records` and the ticker's interval.
fn config(grant: &str, max_records: u32, ticker_every: u32, extra: &str) -> String {
    format!(
        "workers:\n  spooler:\n    grant: {grant}\n    limits: {{max_records: {max_records}}}\n  ticker:\n    \
         intervals: {{ticker: {ticker_every}}}\n{extra}"
    )
}

fn task(a: &Admin, name: &str) -> Value {
    a.get("/-/admin/status")["host"]["tasks"][name].clone()
}

fn metric(metrics_url: &str, series: &str) -> Option<f64> {
    let text = http_client().get(metrics_url).send().ok()?.text().ok()?;
    text.lines().find(|l| l.starts_with(series)).and_then(|l| l.rsplit(' ').next()?.parse().ok())
}

/// SIGHUP, then the reload's log line (a count of them: each reload logs one).
fn sighup(a: &Admin, reloads_seen: &mut usize) {
    // SAFETY: signals our own child by its pid.
    unsafe { libc::kill(a.host.pid().unwrap() as i32, libc::SIGHUP) };
    *reloads_seen += 1;
    let want = *reloads_seen;
    wait_until("the SIGHUP reload", Duration::from_secs(30), || {
        (a.host.log().matches("SIGHUP: configuration re-read").count() >= want).then_some(())
    });
}

/// The last error of `name` once it contains `what` (a cycle after the reload failed so).
fn fails_with(a: &Admin, name: &str, what: &str) -> String {
    wait_until(&format!("{name} failing with {what:?}"), Duration::from_secs(30), || {
        task(a, name)["last_error"].as_str().filter(|e| e.contains(what)).map(str::to_string)
    })
}

#[test]
fn a_reload_applies_grants_limits_and_intervals_without_a_restart() {
    let core = Core::start(&scenario::manifests_dir());
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("spooler.wasm"), components::SPOOLER.bytes()).unwrap();
    std::fs::write(dir.path().join("ticker.wasm"), components::TICKER.bytes()).unwrap();
    let file = write(dir.path(), "nthlayer.yaml", &config("[core, \"assessment:spool_probe\"]", 5, 1, ""));
    let listen = format!("127.0.0.1:{}", free_port());
    let metrics = format!("http://{listen}/metrics");
    let flags = ["--config", file.as_str(), "--listen", listen.as_str(), "--failed-cycle-retry-seconds", "1"];
    let mut a = serve(&core.url(), "ops-admin-reload", dir, true, &flags);
    let pid = a.host.pid();
    let mut reloads = 0;

    // At start: 10 records a cycle against max_records 5, every cycle fails.
    fails_with(&a, "spooler", "max_records");
    assert_eq!(task(&a, "spooler")["ok"], 0);
    let uptime = metric(&metrics, "nthlayer_uptime_seconds").unwrap();

    // Raise the limit, drop the record kind from the grant, slow the ticker: one SIGHUP.
    std::fs::write(&file, config("[core]", 100, 3, "")).unwrap();
    sighup(&a, &mut reloads);
    let log = a.host.log();
    assert!(log.contains("reload: applied"), "{}", a.host.log_tail(20));
    assert!(log.contains("SIGHUP") && log.contains("limits") && log.contains("interval"), "{}", a.host.log_tail(20));
    // The next cycles: past the old limit, stopped at the kind no longer granted.
    let e = fails_with(&a, "spooler", "may not emit");
    assert!(e.contains("assessment") && e.contains("spool_probe"), "{e}");
    assert_eq!(task(&a, "spooler")["ok"], 0);
    // The ticker's next cycles 3 s apart (start to start), where they were 1 s.
    let mut seen: Vec<(u64, Instant)> = Vec::new();
    wait_until("three ticker cycles after the reload", Duration::from_secs(60), || {
        let n = task(&a, "ticker")["ok"].as_u64()?;
        if seen.last().is_none_or(|(m, _)| *m != n) {
            seen.push((n, Instant::now()));
        }
        (seen.len() >= 4).then_some(())
    });
    // The first change may be the start planned before the reload; the ones after are not.
    let gap = seen[3].1 - seen[2].1;
    assert!(gap >= Duration::from_millis(2500), "ticker cycles {gap:?} apart after its interval became 3 s");
    assert_eq!(a.module("ticker").unwrap()["tasks"][0]["interval_seconds"], 3);

    // The kind granted again: cycles commit.
    std::fs::write(&file, config("[core, \"assessment:spool_probe\"]", 100, 3, "")).unwrap();
    sighup(&a, &mut reloads);
    wait_until("spooler cycles ok", Duration::from_secs(30), || {
        (task(&a, "spooler")["ok"].as_u64()? >= 1).then_some(())
    });

    // The capability revoked: the next cycle's submit is denied, and counted.
    std::fs::write(&file, config("[log]", 100, 3, "")).unwrap();
    let denials = "nthlayer_denials_total{module=\"spooler\",task=\"spooler\",grant=\"core\"}";
    assert_eq!(metric(&metrics, denials), None, "no denial before the reload");
    sighup(&a, &mut reloads);
    fails_with(&a, "spooler", "has no 'core' grant");
    wait_until("the denial counted", Duration::from_secs(30), || metric(&metrics, denials).filter(|n| *n >= 1.0));
    assert_eq!(a.module("spooler").unwrap()["grants"], serde_json::json!([]));

    // An invalid file: 400 naming the key, nothing applied (the ticker keeps 3 s).
    std::fs::write(&file, config("[log]", 100, 0, "")).unwrap();
    let (code, v) = a.post("/-/reload", vec![]);
    assert_eq!(code, 400, "{v}");
    assert!(v["error"].as_str().unwrap().contains("workers.ticker.intervals"), "{v}");
    std::fs::write(&file, "workers:\n  ticker:\n    intervalz: {ticker: 1}\n").unwrap();
    let (code, v) = a.post("/-/reload", vec![]);
    assert_eq!(code, 400, "{v}");
    assert!(v["error"].as_str().unwrap().contains("workers.ticker.intervalz"), "{v}");
    assert_eq!(a.module("ticker").unwrap()["tasks"][0]["interval_seconds"], 3, "a refused file changes nothing");
    assert_eq!(metric(&metrics, "nthlayer_config_reloads_total{outcome=\"failure\"}"), Some(2.0));
    assert_eq!(metric(&metrics, "nthlayer_config_last_reload_successful"), Some(0.0));
    assert!(a.host.log().contains("configuration not reloaded; the running one stands"));

    // A key only read at start-up: reported, not applied; the rest of the file applies.
    std::fs::write(&file, config("[log]", 100, 2, "host:\n  max-concurrent-cycles: 3\n")).unwrap();
    let (code, v) = a.post("/-/reload", vec![]);
    assert_eq!(code, 200, "{v}");
    let restart = &v["config"]["restart_required"];
    assert_eq!(restart[0]["key"], "max-concurrent-cycles", "{v}");
    assert!(restart[0]["reason"].as_str().unwrap().contains("start-up"), "{v}");
    assert_eq!(v["config"]["applied"][0]["key"], "interval", "{v}");
    assert_eq!(a.module("ticker").unwrap()["tasks"][0]["interval_seconds"], 2);
    assert!(a.host.log().contains("reload: needs a restart"), "{}", a.host.log_tail(10));
    assert_eq!(metric(&metrics, "nthlayer_config_last_reload_successful"), Some(1.0));
    assert!(metric(&metrics, "nthlayer_config_last_reload_success_timestamp_seconds").unwrap() > 1.7e9);

    // The log level: no DEBUG line at the start's level; `debug` in the file turns them on,
    // a level that does not parse is refused like any bad key.
    let debug_lines =
        |a: &Admin| a.host.log().lines().filter(|l| l.contains("\"level\":\"DEBUG\"") || l.contains(" DEBUG ")).count();
    assert_eq!(debug_lines(&a), 0, "{}", a.host.log_tail(5));
    std::fs::write(&file, config("[log]", 100, 2, "host:\n  log-level: \"info,nthlayer_host=debug\"\n")).unwrap();
    let (code, v) = a.post("/-/reload", vec![]);
    assert_eq!(code, 200, "{v}");
    wait_until("DEBUG lines after the reload", Duration::from_secs(30), || (debug_lines(&a) > 0).then_some(()));
    std::fs::write(&file, config("[log]", 100, 2, "host:\n  log-level: \"nthlayer_host=loud\"\n")).unwrap();
    let (code, v) = a.post("/-/reload", vec![]);
    assert_eq!(code, 400, "{v}");
    assert!(v["error"].as_str().unwrap().contains("log-level"), "{v}");

    // One process all along.
    assert!(a.host.is_running());
    assert_eq!(a.host.pid(), pid);
    assert!(metric(&metrics, "nthlayer_uptime_seconds").unwrap() > uptime);
}

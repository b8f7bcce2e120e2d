//! The operations surface's admin half, against the real binary and real nthlayer-core: the
//! admin API's token check, module upload (good and bad), pause / resume / run-now seen in
//! what core receives (and a pause surviving a restart), the outbox's set-aside routes,
//! `status`, the config file (precedence, unknown keys, `config check`), and the packaging
//! (the systemd unit through `systemd-analyze verify`, the manifests against the Kubernetes
//! schemas). Independent scenarios are separate tests so they overlap.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;

use nthlayer_tests::components;
use nthlayer_tests::core::Core;
use nthlayer_tests::host::{host_bin, host_command, HostProcess};
use nthlayer_tests::scenario;
use nthlayer_tests::util::{free_port, http_client, workspace_root};
use nthlayer_tests::wait::{assert_stays, wait_until};

#[path = "ops_admin/reload.rs"]
mod reload;

const TOKEN: &str = "s3cret-admin-token";

/// A host serving the `*.wasm` of a fresh directory, with its admin API on a free port.
struct Admin {
    host: HostProcess,
    url: String,
    dir: tempfile::TempDir,
    token_file: PathBuf,
}

fn serve(core_url: &str, instance: &str, dir: tempfile::TempDir, token: bool, extra: &[&str]) -> Admin {
    let token_file = dir.path().join("admin-token");
    std::fs::write(&token_file, format!("{TOKEN}\n")).unwrap();
    let addr = format!("127.0.0.1:{}", free_port());
    let glob = format!("{}/*.wasm", dir.path().display());
    let tf = token_file.display().to_string();
    let mut flags = vec!["--admin-listen", addr.as_str(), "--watch-interval-ms", "200", "--start-jitter-ms", "0"];
    if token {
        flags.extend(["--admin-token-file", tf.as_str()]);
    }
    flags.extend_from_slice(extra);
    let host = HostProcess::serve_modules(core_url, "http://127.0.0.1:9", instance, &[glob.as_str()], &flags);
    let url = format!("http://{addr}");
    wait_until("the admin API to listen", Duration::from_secs(60), || {
        http_client().get(format!("{url}/-/admin/modules")).send().ok()
    });
    Admin { host, url, dir, token_file }
}

fn with_swapper() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("swapper.wasm"), components::SWAPPER_V1.bytes()).unwrap();
    dir
}

impl Admin {
    fn call(&self, method: &str, path: &str, token: Option<&str>, body: Vec<u8>) -> (u16, Value) {
        let c = http_client();
        let url = format!("{}{path}", self.url);
        let mut req = match method {
            "GET" => c.get(url),
            "POST" => c.post(url),
            "DELETE" => c.delete(url),
            m => panic!("method {m}"),
        };
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        let resp = req.body(body).send().unwrap();
        let code = resp.status().as_u16();
        (code, resp.json().unwrap_or(Value::Null))
    }

    fn get(&self, path: &str) -> Value {
        let (code, v) = self.call("GET", path, Some(TOKEN), vec![]);
        assert_eq!(code, 200, "GET {path}: {v}");
        v
    }

    fn post(&self, path: &str, body: Vec<u8>) -> (u16, Value) {
        self.call("POST", path, Some(TOKEN), body)
    }

    fn module(&self, name: &str) -> Option<Value> {
        self.get("/-/admin/modules").as_array()?.iter().find(|m| m["name"] == name).cloned()
    }

    fn wasm_files(&self) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(self.dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n != "admin-token")
            .collect();
        v.sort();
        v
    }
}

#[test]
fn token_upload_unload_outbox_and_status() {
    let core = Core::start(&scenario::manifests_dir());
    let mut a = serve(&core.url(), "ops-admin-api", with_swapper(), true, &[]);

    // The token: none or a wrong one is 401, the right one 200; every call is logged.
    assert_eq!(a.call("GET", "/-/admin/modules", None, vec![]).0, 401);
    assert_eq!(a.call("GET", "/-/admin/modules", Some("s3cret-admin-tokem"), vec![]).0, 401);
    assert_eq!(a.call("POST", "/-/admin/tasks/swapper/pause", Some("wrong"), vec![]).0, 401);
    let swapper = wait_until("swapper listed", Duration::from_secs(30), || a.module("swapper"));
    assert_eq!(swapper["version"], "1.0.0");
    assert_eq!(swapper["sha256"].as_str().map(str::len), Some(64));
    assert_eq!(swapper["tasks"][0]["name"], "swapper");
    assert!(swapper["limits"]["cpu_ms"].is_number(), "{swapper}");
    assert!(a.host.log().contains("admin action refused or failed"), "{}", a.host.log_tail(20));

    // A bad upload: a clear error naming the file, nothing written.
    let (code, v) = a.post("/-/admin/modules?file=broken.wasm", b"\0asm not a component at all".to_vec());
    assert_eq!(code, 422, "{v}");
    assert!(v["error"].as_str().unwrap().contains("broken.wasm"), "{v}");
    assert_eq!(a.wasm_files(), ["swapper.wasm"], "a refused upload writes nothing");
    // A second file for a served module name: refused as a dropped file's conflict would be.
    let (code, v) = a.post("/-/admin/modules?file=other.wasm", components::SWAPPER_V2.bytes());
    assert_eq!(code, 409, "{v}");
    assert!(v["error"].as_str().unwrap().contains("already served from"), "{v}");
    assert_eq!(a.wasm_files(), ["swapper.wasm"]);

    // A good upload: written into the watched directory, installed by the watcher.
    let (code, v) = a.post("/-/admin/modules?file=ticker.wasm", components::TICKER.bytes());
    assert_eq!(code, 201, "{v}");
    assert_eq!((v["module"].as_str(), v["trust"].as_str()), (Some("ticker"), Some("untrusted")), "{v}");
    assert_eq!(a.wasm_files(), ["swapper.wasm", "ticker.wasm"]);
    let ticker = wait_until("the uploaded module to serve", Duration::from_secs(30), || a.module("ticker"));
    assert_eq!(ticker["grants"], serde_json::json!([]), "an upload is untrusted: no grants it did not earn");

    // Unload: the file goes, the watcher unloads it.
    let (code, v) = a.call("DELETE", "/-/admin/modules/ticker", Some(TOKEN), vec![]);
    assert_eq!(code, 200, "{v}");
    wait_until("ticker unloaded", Duration::from_secs(30), || a.module("ticker").is_none().then_some(()));
    assert_eq!(a.wasm_files(), ["swapper.wasm"]);

    // The outbox's set-aside records through the same code as the CLI.
    assert_eq!(a.get("/-/admin/outbox/aside"), serde_json::json!([]));
    let (code, v) = a.post("/-/admin/outbox/aside/42/requeue", vec![]);
    assert_eq!(code, 404, "{v}");
    assert!(v["error"].as_str().unwrap().contains("no set-aside entry 42"), "{v}");
    assert_eq!(a.post("/-/reload", vec![]).0, 200);
    // SIGHUP re-reads too (the unit's ExecReload sends it).
    // SAFETY: signals our own child by its pid.
    unsafe { libc::kill(a.host.pid().unwrap() as i32, libc::SIGHUP) };
    wait_until("SIGHUP handled", Duration::from_secs(30), || {
        a.host.log().contains("SIGHUP: configuration re-read").then_some(())
    });
    assert!(a.host.is_running(), "SIGHUP must not stop the host");

    // `status` prints what the page shows, from the admin API.
    let url = a.url.clone();
    let tf = a.token_file.display().to_string();
    let out = host_command(&["status", "--admin-url", &url, "--admin-token-file", &tf]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(out.stdout.contains("swapper 1.0.0") && out.stdout.contains("outbox:"), "{}", out.stdout);
    let out = host_command(&["status", "--json", "--admin-url", &url, "--admin-token-file", &tf]);
    let j: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(j["modules"][0]["name"], "swapper", "{j}");
    std::fs::write(&a.token_file, "not-the-token").unwrap();
    let out = host_command(&["status", "--admin-url", &url, "--admin-token-file", &tf]);
    assert_eq!(out.code, 1);
    assert!(out.stderr.contains("401"), "{}", out.stderr);
}

#[test]
fn without_a_token_file_the_admin_api_refuses_and_says_why() {
    let a = serve("http://127.0.0.1:9", "ops-admin-off", with_swapper(), false, &[]);
    let (code, v) = a.call("GET", "/-/admin/modules", Some(TOKEN), vec![]);
    assert_eq!(code, 403, "{v}");
    assert!(v["error"].as_str().unwrap().contains("--admin-token-file"), "{v}");
    assert!(a.host.log().contains("disabled: no --admin-token-file"), "{}", a.host.log_tail(20));
}

fn cycles(core: &Core) -> Option<u64> {
    core.component_state("swapper")?.pointer("/hysteresis_state/state/n")?.as_u64()
}

#[test]
fn pause_survives_a_restart_and_run_now_reaches_core() {
    const INSTANCE: &str = "ops-admin-pause";
    let core = Core::start(&scenario::manifests_dir());
    let a = serve(&core.url(), INSTANCE, with_swapper(), true, &[]);
    wait_until("swapper's first cycles in core", Duration::from_secs(30), || cycles(&core).filter(|n| *n >= 2));

    let (code, v) = a.post("/-/admin/tasks/swapper/pause", vec![]);
    assert_eq!((code, v["paused"].as_bool()), (200, Some(true)), "{v}");
    assert_eq!(a.post("/-/admin/tasks/nosuch/pause", vec![]).0, 404);
    // A cycle in flight when paused may still land; then nothing more.
    let settled = wait_until("the count to settle", Duration::from_secs(30), || {
        let n = cycles(&core)?;
        std::thread::sleep(Duration::from_millis(2500));
        (cycles(&core)? == n).then_some(n)
    });
    assert_stays("a paused task runs no cycle", Duration::from_secs(3), || cycles(&core) == Some(settled));

    // Restart under the same instance (same state directory): still paused.
    let dir = {
        let Admin { mut host, dir, .. } = a;
        host.terminate(Duration::from_secs(30));
        dir
    };
    let a = serve(&core.url(), INSTANCE, dir, true, &[]);
    wait_until("the restarted host to list swapper", Duration::from_secs(30), || a.module("swapper"));
    assert!(a.host.log().contains("stays paused until resumed"), "{}", a.host.log_tail(30));
    assert_stays("still paused after a restart", Duration::from_secs(3), || cycles(&core) == Some(settled));
    assert_eq!(a.module("swapper").unwrap()["tasks"][0]["paused"], true);

    // Run now: exactly one cycle, the task stays paused.
    let (code, v) = a.post("/-/admin/tasks/swapper/run", vec![]);
    assert_eq!(code, 202, "{v}");
    wait_until("the run-now cycle in core", Duration::from_secs(30), || (cycles(&core)? == settled + 1).then_some(()));
    assert_stays("one cycle only", Duration::from_secs(3), || cycles(&core) == Some(settled + 1));

    // Resume: cycles again.
    assert_eq!(a.post("/-/admin/tasks/swapper/resume", vec![]).0, 200);
    wait_until("cycles after resume", Duration::from_secs(30), || (cycles(&core)? >= settled + 3).then_some(()));
    assert!(a.module("swapper").unwrap()["tasks"][0]["last_run_at"].is_string());
}

fn write(dir: &Path, name: &str, text: &str) -> String {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p.display().to_string()
}

fn run_env(args: &[&str], env: &[(&str, &str)]) -> (i32, String, String) {
    let mut cmd = std::process::Command::new(host_bin());
    cmd.args(args).env_remove("NTHLAYER_CONFIG").env_remove("NTHLAYER_STATE_DIR");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// One line of `config print --json`: (value, source).
fn setting(printed: &str, key: &str) -> (String, String) {
    let all: Vec<Value> = serde_json::from_str(printed).unwrap();
    let e = all.iter().find(|e| e["key"] == key).unwrap_or_else(|| panic!("{key} not printed"));
    let v: Vec<String> = e["value"].as_array().unwrap().iter().map(|v| v.as_str().unwrap().to_string()).collect();
    (v.join(" "), e["source"].as_str().unwrap().to_string())
}

#[test]
fn config_file_precedence_unknown_keys_and_check() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(
        dir.path(),
        "nthlayer.yaml",
        "host:\n  instance-id: from-file\n  core_url: http://file:8000\n  prometheus-url: http://file:9090\n  \
         max-concurrent-cycles: 3\nworkers:\n  learn:\n    expiry_threshold_days: 9\n  measure:\n    \
         limits: {cpu_ms: 700}\n    intervals: {measure: 15}\ncore:\n  anything: for another tier\n",
    );
    // default < file < env < flag, for four keys at once.
    let (code, out, err) = run_env(
        &["config", "print", "--json", "--config", &file, "--instance-id", "from-flag"],
        &[("NTHLAYER_CORE_URL", "http://env:8000")],
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(setting(&out, "instance-id"), ("from-flag".into(), "flag".into()));
    assert_eq!(setting(&out, "core-url").1, "env", "{out}");
    assert_eq!(setting(&out, "prometheus-url"), ("http://file:9090".into(), "file (host.prometheus-url)".into()));
    assert_eq!(setting(&out, "expiry-threshold-days").0, "9");
    assert_eq!(setting(&out, "limits").0, r#"measure={"cpu_ms":700}"#);
    assert_eq!(setting(&out, "interval").0, "measure=15");
    assert_eq!(setting(&out, "max-concurrent-cycles").0, "3");
    assert_eq!(setting(&out, "shutdown-grace-seconds").1, "default");
    let (_, text, _) = run_env(&["config", "print", "--config", &file], &[]);
    assert!(text.contains("instance-id") && text.contains("[file (host.instance-id)]"), "{text}");

    let (code, out, err) = run_env(&["config", "check", &file], &[]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("ok (7 settings)"), "{out}");

    // Unknown keys: their path and the nearest valid key; serve refuses to start.
    let typo = write(dir.path(), "typo.yaml", "host:\n  max-concurent-cycles: 3\n");
    let (code, _, err) = run_env(&["config", "check", &typo], &[]);
    assert_eq!(code, 1);
    assert!(err.contains(r#"unknown key "host.max-concurent-cycles""#), "{err}");
    assert!(err.contains(r#"nearest valid key is "host.max-concurrent-cycles""#), "{err}");
    assert!(err.contains("typo.yaml"), "{err}");
    let (code, _, err) = run_env(&["serve", "--config", &typo, "--no-builtin", "--modules", "/nonexistent.wasm"], &[]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("host.max-concurent-cycles"), "{err}");
    let worker = write(dir.path(), "worker.yaml", "workers:\n  learn:\n    expiry_treshold_days: 3\n");
    let (_, _, err) = run_env(&["config", "check", &worker], &[]);
    assert!(err.contains(r#"nearest valid key is "workers.learn.expiry_threshold_days""#), "{err}");
    let bad = write(dir.path(), "bad.yaml", "host:\n  max-concurrent-cycles: many\n");
    let (code, _, err) = run_env(&["config", "check", &bad], &[]);
    assert_eq!(code, 1);
    assert!(err.contains("host.max-concurrent-cycles") && err.contains("many"), "{err}");
    let top = write(dir.path(), "top.yaml", "hots:\n  instance-id: x\n");
    let (_, _, err) = run_env(&["config", "check", &top], &[]);
    assert!(err.contains(r#"unknown key "hots"; the nearest valid key is "host""#), "{err}");
}

#[test]
fn config_print_redacts_secrets() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(
        dir.path(),
        "nthlayer.yaml",
        "host:\n  admin-token-file: /etc/nthlayer/admin-token\nworkers:\n  respond:\n    \
         llm: {model: m, api_key: sk-live-123}\n",
    );
    let (code, out, err) = run_env(&["config", "print", "--config", &file], &[]);
    assert_eq!(code, 0, "{err}");
    assert!(!out.contains("sk-live-123"), "{out}");
    assert!(out.contains(r#""api_key":"<redacted>""#), "{out}");
    assert!(out.contains("/etc/nthlayer/admin-token"), "a path to a secret is not the secret: {out}");
}

#[test]
fn systemd_unit_verifies_and_manifests_match_the_kubernetes_schemas() {
    let root = workspace_root();
    // The unit names its binary where a package installs it; verify it against this build.
    let unit = std::fs::read_to_string(root.join("packaging/systemd/nthlayer-host.service")).unwrap();
    assert!(unit.contains("Type=notify") && unit.contains("StateDirectory=nthlayer"));
    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join("nthlayer-host.service");
    std::fs::write(&copy, unit.replace("/usr/local/bin/nthlayer-host", &host_bin().display().to_string())).unwrap();
    let out = std::process::Command::new("systemd-analyze").arg("verify").arg(&copy).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    let ours: Vec<&str> = err.lines().filter(|l| l.contains("nthlayer-host.service")).collect();
    assert!(out.status.success() && ours.is_empty(), "systemd-analyze verify: {err}");

    let validator = root.join(".work/tools/kubernetes-validate/bin/kubernetes-validate");
    assert!(validator.exists(), "{} missing: run scripts/setup", validator.display());
    let manifests: Vec<PathBuf> =
        glob::glob(&format!("{}/packaging/kubernetes/*.yaml", root.display())).unwrap().map(Result::unwrap).collect();
    assert!(manifests.len() >= 3);
    let out = std::process::Command::new(validator).arg("--strict").args(&manifests).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("passed for resource deployment/nthlayer-host"), "{text}");

    // The sample config the package ships is one `serve` accepts.
    let sample = root.join("packaging/nthlayer.yaml").display().to_string();
    let (code, out, err) = run_env(&["config", "check", &sample], &[]);
    assert_eq!(code, 0, "{out}{err}");
}

//! The host as a drop-in and as a house for strangers' code, with the real binary against
//! real nthlayer-core:
//! - `serve` and `gate` exactly as the reference's README writes them (no module list): the
//!   built-ins embedded in the binary serve;
//! - what a module may call follows what its code is, not the name it gives itself: a
//!   stranger's file named `observe` replacing the embedded observe loses its grants, a swap
//!   that adds a need runs denied without a grant, and removing the file brings the embedded
//!   observe back.

use std::path::Path;
use std::time::Duration;

use serde_json::{json, Value};

use nthlayer_tests::components;
use nthlayer_tests::core::Core;
use nthlayer_tests::host::{builtin_modules, gate, host_command, HostProcess};
use nthlayer_tests::scenario::{self, Observe, CHECKOUT, PAYMENT};
use nthlayer_tests::wait::wait_until;

const WAIT: Duration = Duration::from_secs(90);

/// Writes like a deploy tool: a temporary name, then rename.
fn install(path: &Path, bytes: &[u8]) {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, bytes).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

/// The heartbeat's entry for `module` under `state.components`.
fn component(core: &Core, instance: &str, module: &str) -> Option<Value> {
    let hb = core.heartbeat("workers", instance)?;
    hb.state.get("components")?.as_array()?.iter().find(|c| c["name"] == module).cloned()
}

fn persisted(core: &Core, task: &str) -> Option<Value> {
    core.component_state(task).and_then(|r| r.pointer("/hysteresis_state/state").cloned())
}

#[test]
fn serve_and_gate_work_as_the_reference_readme_writes_them() {
    let obs = Observe::start_with(false);
    let core = Core::start(&scenario::manifests_dir());
    let instance = "worker-01";
    // README: nthlayer-workers serve --core-url … --instance-id … --prometheus-url …
    let url = core.url();
    let prom = obs.prometheus_url();
    let mut host = HostProcess::spawn_raw(
        ["serve", "--core-url", url.as_str(), "--instance-id", instance, "--prometheus-url", prom.as_str()]
            .map(String::from)
            .to_vec(),
    );
    // Every built-in serves, embedded, with the grants its code declares.
    for name in builtin_modules() {
        let c = wait_until(&format!("{name} reported serving"), WAIT, || {
            assert!(host.is_running(), "host exited: {}", host.log_tail(30));
            component(&core, instance, &name)
        });
        assert_eq!(c["path"], json!(format!("embedded:{name}.wasm")), "{c}");
        assert_eq!(c["trust"], json!("embedded"), "{c}");
    }
    let observe = component(&core, instance, "observe").unwrap();
    assert_eq!(observe["grants"], json!(["core", "prometheus"]), "{observe}");
    // The embedded observe runs and posts.
    wait_until("the embedded observe posts slo_status", WAIT, || {
        let a = core.assessments(None, Some("slo_status"));
        a.iter().any(|a| a.extra.get("producer") == Some(&json!("nthlayer-observe"))).then_some(())
    });
    host.terminate(Duration::from_secs(15));

    // README: nthlayer-workers gate --service payment-api [--tier …] [--core-url …]. Same
    // answers as with the module file (the harness's form), exit codes included.
    scenario::seed_slo_status(&core);
    for args in [vec!["--service", PAYMENT], vec!["--service", CHECKOUT, "--commit-sha", "abc123"]] {
        let mut a = vec!["gate"];
        a.extend(&args);
        a.extend(["--core-url", url.as_str()]);
        let embedded = host_command(&a);
        let (code, out, err) = gate(&url, &args);
        assert_eq!((embedded.code, &embedded.stdout), (code, &out), "{args:?}: {}\nvs {err}", embedded.stderr);
        assert_ne!(embedded.code, 1, "{args:?}: {}", embedded.stderr);
    }
    // The decision that blocks, blocks: not a usage error that happens to exit 2 as well.
    let blocked = host_command(&["gate", "--service", CHECKOUT, "--core-url", url.as_str()]);
    assert_eq!(blocked.code, 2, "{}", blocked.stderr);
    assert_eq!(serde_json::from_str::<Value>(&blocked.stdout).unwrap()["decision"], "BLOCKED");

    // check with no files validates the embedded modules.
    let check = host_command(&["check"]);
    assert_eq!(check.code, 0, "{}{}", check.stdout, check.stderr);
    for name in builtin_modules() {
        assert!(check.stdout.contains(&format!("\"file\":\"embedded:{name}.wasm\"")), "{}", check.stdout);
    }
    // --no-builtin with nothing else is a usage mistake, said plainly.
    let none = host_command(&["gate", "--service", PAYMENT, "--core-url", url.as_str(), "--no-builtin"]);
    assert_eq!(none.code, 1);
    assert!(none.stderr.contains("--no-builtin without --modules"), "{}", none.stderr);
}

#[test]
fn grants_follow_the_code_not_the_name() {
    let core = Core::start(&scenario::manifests_dir());
    let dir = tempfile::tempdir().unwrap();
    let instance = "house-identity";
    let impostor = dir.path().join("impostor.wasm");
    install(&impostor, &components::IMPOSTOR_V1.bytes());
    let glob = format!("{}/*.wasm", dir.path().display());
    let url = core.url();
    // The built-ins serve too (no --no-builtin): the stranger's `observe` must replace one.
    let mut host = HostProcess::spawn_raw(
        [
            "serve",
            "--core-url",
            url.as_str(),
            "--prometheus-url",
            "http://127.0.0.1:9",
            "--instance-id",
            instance,
            "--modules",
            glob.as_str(),
            "--grant",
            "impostor=core",
            "--watch-interval-ms",
            "200",
            "--start-jitter-ms",
            "0",
            "--log-format",
            "json",
        ]
        .map(String::from)
        .to_vec(),
    );

    // v1 needs core and is granted it.
    let st = wait_until("impostor v1 ran", WAIT, || {
        assert!(host.is_running(), "host exited: {}", host.log_tail(30));
        persisted(&core, "impostor").filter(|s| s["version"] == "1.0.0")
    });
    assert_eq!(st["calls"]["core"]["denied"], json!(false), "{st}");
    assert_eq!(st["calls"]["llm"]["denied"], json!(true), "{st}");
    let c = wait_until("embedded observe serving", WAIT, || component(&core, instance, "observe"));
    assert_eq!((c["trust"].clone(), c["grants"].clone()), (json!("embedded"), json!(["core", "prometheus"])));

    // A stranger's file calling itself `observe` and declaring everything cannot take the
    // built-in's place: it is refused (an error naming both), and the embedded observe keeps
    // serving with its own grants.
    let fake = dir.path().join("observe.wasm");
    install(&fake, &components::IMPOSTOR_OBSERVE.bytes());
    wait_until("the impostor observe refused", WAIT, || {
        host.log().lines().any(|l| l.contains("module name conflict") && l.contains("observe.wasm")).then_some(())
    });
    let log = host.log();
    let line = log.lines().find(|l| l.contains("module name conflict")).unwrap();
    assert!(line.contains("trusted code wins over untrusted"), "{line}");
    assert!(persisted(&core, "observe.impostor").is_none(), "the impostor ran");
    let c = component(&core, instance, "observe").unwrap();
    assert_eq!((c["trust"].clone(), c["grants"].clone()), (json!("embedded"), json!(["core", "prometheus"])), "{c}");

    // A swap that adds a need (llm) runs with it denied: the new version's rights are
    // computed afresh (here: the explicit grant, core only), and the missing grant is logged.
    install(&impostor, &components::IMPOSTOR_V2.bytes());
    let st = wait_until("impostor v2 ran", WAIT, || persisted(&core, "impostor").filter(|s| s["version"] == "2.0.0"));
    assert_eq!(st["calls"]["core"]["denied"], json!(false), "{st}");
    assert_eq!(st["calls"]["llm"]["denied"], json!(true), "{st}");
    assert!(st["calls"]["llm"]["error"].as_str().unwrap().contains("--grant impostor=core,llm"), "{st}");
    let log = host.log();
    assert!(
        log.lines().any(|l| l.contains("declares needs it is not granted") && l.contains("impostor")),
        "the ungranted need is logged at swap"
    );

    // The stranger's file goes: the embedded observe serves again, with its grants.
    std::fs::remove_file(&fake).unwrap();
    let c = wait_until("embedded observe back", WAIT, || {
        component(&core, instance, "observe").filter(|c| c["trust"] == "embedded")
    });
    assert_eq!(c["grants"], json!(["core", "prometheus"]), "{c}");
    host.terminate(Duration::from_secs(15));
}

//! A name conflict never takes a working module away, with the real binary against real
//! nthlayer-core: a stranger's component that calls itself `observe`, in a file that sorts
//! before `observe.wasm`, is refused at start-up (an error naming both files and the winner)
//! and observe, byte-identical to the built-in and so trusted, runs its collect cycles.
//!
//! The same start-up says that `NTHLAYER_LLM_STUB=canned` is on (never for production).
//!
//! Needs `target/debug/nthlayer-host`, `dist/modules/observe.wasm` and
//! `dist/test-components/impostor-observe.wasm` (scripts/build-modules).

use std::time::Duration;

use nthlayer_tests::components;
use nthlayer_tests::core::Core;
use nthlayer_tests::host::{interval_args, observe_module, HostProcess};
use nthlayer_tests::scenario;
use nthlayer_tests::wait::wait_until;

const WAIT: Duration = Duration::from_secs(90);

fn cycles_ok(log: &str, task: &str) -> usize {
    log.lines().filter(|l| l.contains("cycle ok") && l.contains(task)).count()
}

#[test]
fn a_twin_sorting_before_observe_is_refused_and_observe_keeps_collecting() {
    let core = Core::start(&scenario::manifests_dir());
    let dir = tempfile::tempdir().unwrap();
    let twin = dir.path().join("0-observe-twin.wasm");
    let real = dir.path().join("observe.wasm");
    std::fs::write(&twin, components::IMPOSTOR_OBSERVE.bytes()).unwrap();
    std::fs::copy(observe_module(), &real).unwrap();
    let glob = format!("{}/*.wasm", dir.path().display());
    let mut extra = interval_args(&[("collect", 1)]);
    extra.extend(["--start-jitter-ms", "0"].map(String::from));
    let extra: Vec<&str> = extra.iter().map(String::as_str).collect();
    let mut host = HostProcess::serve_modules_env(
        &core.url(),
        "http://127.0.0.1:9",
        "name-conflict",
        &[glob.as_str()],
        &extra,
        &[("NTHLAYER_LLM_STUB", "canned")],
    );
    let log = wait_until("observe ran 10 collect cycles", WAIT, || {
        assert!(host.is_running(), "host exited: {}", host.log_tail(30));
        let log = host.log();
        (cycles_ok(&log, "observe.collect") >= 10).then_some(log)
    });
    host.terminate(Duration::from_secs(15));

    assert_eq!(cycles_ok(&log, "observe.impostor"), 0, "the twin never ran");
    let (twin, real) = (twin.display().to_string(), real.display().to_string());
    let conflict = log
        .lines()
        .find(|l| l.contains("module name conflict"))
        .unwrap_or_else(|| panic!("no conflict logged:\n{log}"));
    assert!(conflict.contains("ERROR"), "{conflict}");
    assert!(conflict.contains(&twin) && conflict.contains(&real), "names both files: {conflict}");
    assert!(conflict.contains(&format!("{real} serves")), "names the winner: {conflict}");
    assert!(
        log.lines().any(|l| l.contains("WARN") && l.contains("NTHLAYER_LLM_STUB=canned")),
        "the LLM stub is announced at start-up"
    );
}

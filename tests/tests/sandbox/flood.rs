//! hostile-flood: one module submitting 100,000 records in one cycle (docs/SANDBOX.md,
//! `max_records`). In the sandbox suite's binary, beside its other hostile modules.

use super::*;

/// VmHWM of a process, in bytes: the most it ever had resident.
fn peak_rss(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse::<u64>().unwrap() * 1024
}

/// One module submitting 100,000 small records in one cycle: the host holds at most the
/// module's `max_records` (default 50,000), held as their text and counted at what holding
/// that takes (a few megabytes, far under the per-cycle byte cap), fails the cycle naming module, task and limit (although the module
/// ignored every error and returned success), and commits none of its records.
#[test]
fn a_module_flooding_records_fails_its_cycle_and_the_host_holds_no_more_than_its_cap() {
    let core = Core::start(&fixtures_dir().join("manifests"));
    let file = components::HOSTILE_FLOOD.built().display().to_string();
    let extra = ["--log-format", "json", "--grant", "hostile-flood=core,assessment:flood_note"];
    let mut host = HostProcess::serve_modules(&core.url(), "http://127.0.0.1:9", "sandbox-flood", &[&file], &extra);
    let error = wait_until("the flooding cycle failed", START, || {
        assert!(host.is_running(), "host exited:\n{}", host.log_tail(40));
        failures(&events(&host.log()), "hostile-flood").into_iter().next()
    });
    let peak = peak_rss(host.pid().expect("host running"));
    assert!(host.terminate(SHUTDOWN).success());
    eprintln!("hostile-flood: host peak RSS {} MB; {error}", peak >> 20);
    assert!(
        error.contains(r#"module "hostile-flood" task "hostile-flood" submitted more than 50000 records in one cycle"#)
            && error.contains("max_records"),
        "{error}"
    );
    let held: u64 = error.split("holding ").nth(1).and_then(|r| r.split(' ').next()).unwrap().parse().unwrap();
    // The host's own accounting: 50,000 tiny records held as text, ~150 bytes each.
    assert!(held <= 16 << 20, "held {held} bytes for 50,000 tiny records");
    assert_eq!(n_of(&persisted(&core, "hostile-flood")), 1, "the flooding cycle's state was kept");
    assert!(core.assessments(None, Some("flood_note")).is_empty(), "a record of the failed cycle reached core");
    // What the host held is bounded by the caps, not by what the module sent: 50,000 held
    // records as text, the guest's own memory and the host's base (~58 MB in a debug
    // build), against the 520 MB a flood took before records were capped per cycle.
    assert!(peak < 128 << 20, "host peak RSS {} MB", peak >> 20);
}

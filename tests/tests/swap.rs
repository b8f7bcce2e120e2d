//! Hot swap under load, against real nthlayer-core and the real binary: a module running
//! every second is replaced 20 times while it runs; corrupt and truncated files are rejected
//! while the old version serves; a version that traps every cycle is rolled back.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;

use nthlayer_tests::components;
use nthlayer_tests::core::Core;
use nthlayer_tests::host::HostProcess;
use nthlayer_tests::scenario;
use nthlayer_tests::wait::wait_until;

const INSTANCE: &str = "swap-test";

/// Appends a custom section: same code, different bytes (and sha256), still a valid
/// component. Lets one build stand for many versions.
fn with_nonce(mut wasm: Vec<u8>, nonce: u32) -> Vec<u8> {
    let name = b"nthlayer-test-nonce";
    let payload = nonce.to_le_bytes();
    let body_len = 1 + name.len() + payload.len();
    assert!(body_len < 128 && name.len() < 128);
    wasm.extend_from_slice(&[0, body_len as u8, name.len() as u8]);
    wasm.extend_from_slice(name);
    wasm.extend_from_slice(&payload);
    wasm
}

fn sha256(bytes: &[u8]) -> String {
    use std::process::Command;
    let tmp = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(tmp.path(), bytes).unwrap();
    let out = Command::new("sha256sum").arg(tmp.path()).output().unwrap();
    String::from_utf8(out.stdout).unwrap().split_whitespace().next().unwrap().to_string()
}

/// Writes like an operator's deploy tool: to a temporary name, then rename.
fn install(path: &Path, bytes: &[u8]) {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, bytes).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

fn state(core: &Core) -> Option<Value> {
    core.component_state("swapper").and_then(|r| r.pointer("/hysteresis_state/state").cloned())
}

fn serving(core: &Core) -> Option<(String, String)> {
    let hb = core.heartbeat("workers", INSTANCE)?;
    let c = hb.state.get("components")?.as_array()?.iter().find(|c| c["name"] == "swapper")?.clone();
    Some((c["version"].as_str()?.to_string(), c["sha256"].as_str()?.to_string()))
}

struct Setup {
    core: Core,
    host: HostProcess,
    _dir: tempfile::TempDir,
    file: PathBuf,
}

fn start() -> Setup {
    let core = Core::start(&scenario::manifests_dir());
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("swapper.wasm");
    install(&file, &components::SWAPPER_V1.bytes());
    let glob = format!("{}/*.wasm", dir.path().display());
    let host = HostProcess::serve_modules(
        &core.url(),
        "http://127.0.0.1:9",
        INSTANCE,
        &[glob.as_str()],
        &["--watch-interval-ms", "200", "--rollback-after", "3", "--start-jitter-ms", "0"],
    );
    wait_until("swapper's first cycles", Duration::from_secs(30), || {
        state(&core).filter(|s| s["n"].as_u64() >= Some(2))
    });
    Setup { core, host, _dir: dir, file }
}

#[test]
fn twenty_swaps_under_load_keep_state_and_schedule() {
    let mut s = start();
    let mut last_n = state(&s.core).unwrap()["n"].as_u64().unwrap();
    for i in 0..20u32 {
        let base = if i % 2 == 0 { components::SWAPPER_V2 } else { components::SWAPPER_V1 };
        let bytes = with_nonce(base.bytes(), i);
        let sha = sha256(&bytes);
        install(&s.file, &bytes);
        let version = wait_until(&format!("swap {i} to {base} ({sha})"), Duration::from_secs(15), || {
            serving(&s.core).filter(|(_, h)| *h == sha).map(|(v, _)| v)
        });
        assert_eq!(version, if i % 2 == 0 { "2.0.0" } else { "1.0.0" });
        // The new version ran a cycle on the state the old one left.
        let st = wait_until("a cycle on the new version", Duration::from_secs(10), || {
            state(&s.core)
                .filter(|st| st["versions"].as_array().and_then(|v| v.last()) == Some(&Value::from(version.clone())))
        });
        let n = st["n"].as_u64().unwrap();
        assert!(n > last_n, "cycle count went from {last_n} to {n}: state did not continue across versions");
        last_n = n;
    }
    let st = state(&s.core).unwrap();
    // At most one interval (1 s) missed across all swaps: no gap reaches two intervals plus
    // scheduling slack.
    let max_gap = st["max_gap_ms"].as_u64().unwrap();
    assert!(max_gap < 2_500, "largest gap between cycles was {max_gap} ms; state: {st}");
    assert!(st["versions"].as_array().unwrap().len() >= 21, "versions seen: {}", st["versions"]);
    let log = s.host.log();
    assert_eq!(log.matches("module swapped").count(), 20, "expected 20 swaps in the log");
    assert!(!log.contains("cycle failed"), "a cycle failed during swaps:\n{}", s.host.log_tail(40));
    s.host.terminate(Duration::from_secs(15));
}

#[test]
fn corrupt_and_truncated_files_are_rejected_while_the_old_version_serves() {
    let mut s = start();
    let (v0, sha0) = wait_until("heartbeat with swapper", Duration::from_secs(10), || serving(&s.core));
    for (what, bytes) in [
        ("corrupt", b"\0asm\x0d\0\x01\0this is not a component at all".to_vec()),
        ("truncated", {
            let v2 = components::SWAPPER_V2.bytes();
            v2[..v2.len() / 2].to_vec()
        }),
        ("not wasm", b"#!/bin/sh\necho pwned\n".to_vec()),
    ] {
        let before = s.host.log().matches("new version rejected").count();
        // Written in place, not renamed: the watcher must cope with a file that changes
        // under it.
        std::fs::write(&s.file, &bytes).unwrap();
        wait_until(&format!("{what} file rejected"), Duration::from_secs(10), || {
            (s.host.log().matches("new version rejected").count() > before).then_some(())
        });
        let n0 = state(&s.core).unwrap()["n"].as_u64().unwrap();
        wait_until(&format!("old version still cycling after {what} file"), Duration::from_secs(10), || {
            state(&s.core).filter(|st| st["n"].as_u64().unwrap() >= n0 + 2)
        });
        assert_eq!(serving(&s.core).unwrap(), (v0.clone(), sha0.clone()), "{what}: serving version changed");
    }
    let log = s.host.log();
    assert!(log.contains("swapper.wasm"), "rejection log names the file");
    assert!(log.contains("swapper@1.0.0"), "rejection log names the module and version");
    // A good file after the bad ones is picked up again.
    let v2 = components::SWAPPER_V2.bytes();
    let sha2 = sha256(&v2);
    install(&s.file, &v2);
    wait_until("v2 after rejections", Duration::from_secs(15), || serving(&s.core).filter(|(_, h)| *h == sha2));
    assert!(s.host.is_running());
    s.host.terminate(Duration::from_secs(15));
}

#[test]
fn a_version_that_traps_every_cycle_is_rolled_back() {
    let mut s = start();
    let (_, good_sha) = wait_until("heartbeat with swapper", Duration::from_secs(10), || serving(&s.core));
    let n_before = state(&s.core).unwrap()["n"].as_u64().unwrap();
    let trap = components::SWAPPER_TRAP.bytes();
    let trap_sha = sha256(&trap);
    install(&s.file, &trap);
    wait_until("trap version swapped in", Duration::from_secs(15), || {
        s.host.log().contains("swapper@3.0.0-trap").then_some(())
    });
    wait_until("rollback", Duration::from_secs(20), || {
        s.host.log().contains("rolled back to the last good version").then_some(())
    });
    let (v, sha) = wait_until("heartbeat shows the restored version", Duration::from_secs(10), || {
        serving(&s.core).filter(|(_, h)| *h == good_sha)
    });
    assert_eq!(v, "1.0.0");
    assert_ne!(sha, trap_sha);
    // The failed cycles committed nothing; the restored version continues the count.
    let st = wait_until("cycles after rollback", Duration::from_secs(10), || {
        state(&s.core).filter(|st| st["n"].as_u64().unwrap() > n_before)
    });
    assert!(st["versions"].as_array().unwrap().iter().all(|v| v != "3.0.0-trap"));
    let log = s.host.log();
    assert_eq!(
        log.matches("guest panicked").count(),
        3,
        "exactly --rollback-after failed cycles:\n{}",
        s.host.log_tail(30)
    );
    assert!(log.contains("swapper 3.0.0-trap traps on every cycle"), "panic message reaches the log");
    s.host.terminate(Duration::from_secs(15));
}

#[test]
fn a_new_file_is_a_new_module_and_a_removed_file_unloads() {
    let mut s = start();
    let dir = s.file.parent().unwrap().to_path_buf();
    // A new file matching the glob: observe joins while swapper keeps running.
    std::fs::copy(nthlayer_tests::host::observe_module(), dir.join("observe.wasm")).unwrap();
    wait_until("observe loaded from the new file", Duration::from_secs(30), || {
        let hb = s.core.heartbeat("workers", INSTANCE)?;
        let names: Vec<String> =
            hb.state["components"].as_array()?.iter().filter_map(|c| c["name"].as_str().map(String::from)).collect();
        (names.contains(&"observe".to_string()) && names.contains(&"swapper".to_string())).then_some(())
    });
    wait_until("observe's first cycle", Duration::from_secs(30), || {
        s.core.component_state("observe.collect").filter(|r| !r["hysteresis_state"].is_null())
    });
    // Removing swapper's file unloads it; observe keeps serving.
    std::fs::remove_file(&s.file).unwrap();
    wait_until("swapper gone from the heartbeat", Duration::from_secs(30), || {
        let hb = s.core.heartbeat("workers", INSTANCE)?;
        let comps = hb.state["components"].as_array()?.clone();
        (comps.iter().all(|c| c["name"] != "swapper") && comps.iter().any(|c| c["name"] == "observe")).then_some(())
    });
    let n = state(&s.core).unwrap()["n"].as_u64().unwrap();
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(state(&s.core).unwrap()["n"].as_u64().unwrap(), n, "swapper kept cycling after its file was removed");
    let log = s.host.log();
    assert!(log.contains("module file removed; unloading after in-flight cycles"));
    assert!(log.contains("module unloaded; task stopped"));
    assert!(s.host.is_running());
    s.host.terminate(Duration::from_secs(15));
}

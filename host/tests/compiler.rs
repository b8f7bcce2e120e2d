//! Compiling in a child process (runtime/compiler.rs) with the real binary: the artifact it
//! writes is the one the host serves (from the cache, or from memory when the cache cannot
//! be written), a refusal reads as it would in process, a child that dies or overruns is
//! named, and a child that cannot start falls back to compiling in process.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use nthlayer_host::runtime::cache::{ArtifactCache, Origin};
use nthlayer_host::runtime::engine::new_engine;
use nthlayer_test_paths::components;

const BIN: &str = env!("CARGO_BIN_EXE_nthlayer-host");

fn cache(dir: &Path, child: Option<&str>) -> (wasmtime::Engine, ArtifactCache) {
    let engine = new_engine().unwrap();
    let cache = ArtifactCache::new(&engine, Some(dir.to_path_buf())).with_child(child.map(PathBuf::from));
    (engine, cache)
}

fn script(dir: &Path, body: &str) -> String {
    let path = dir.join("fake-compiler");
    std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path.to_string_lossy().into_owned()
}

#[test]
fn the_child_writes_the_artifact_the_host_serves() {
    let dir = tempfile::tempdir().unwrap();
    let wasm = std::fs::read(components::SWAPPER_V1.built()).unwrap();
    let (engine, cache) = cache(dir.path(), Some(BIN));
    let (component, origin) = cache.load(&engine, &wasm, "swapper-sha").unwrap();
    assert_eq!(origin, Origin::Compiled);
    assert!(cache.has("swapper-sha"), "the child's artifact is in the cache");
    // The same component as one compiled in process: the same exports, typed alike.
    let in_process = wasmtime::component::Component::new(&engine, &wasm).unwrap();
    let names = |c: &wasmtime::component::Component| {
        let ty = c.component_type();
        let mut n: Vec<String> = ty.exports(&engine).map(|(name, _)| name.to_string()).collect();
        n.sort();
        n
    };
    assert_eq!(names(&component), names(&in_process));
    // A second load is a cache hit on what the child wrote.
    let (_, again) = cache.load(&engine, &wasm, "swapper-sha").unwrap();
    assert_eq!(again, Origin::Cached);
}

#[test]
fn a_refusal_reads_as_it_would_in_process() {
    let dir = tempfile::tempdir().unwrap();
    // A component preamble with nothing valid after it.
    let bad = [b"\0asm\x0d\0\x01\0".as_slice(), &[0x01, 0x05, 0xff, 0xff, 0xff, 0xff, 0xff]].concat();
    let (engine, child) = cache(dir.path(), Some(BIN));
    let said = format!("{:#}", child.load(&engine, &bad, "bad-sha").unwrap_err());
    let in_process = format!("{:#}", wasmtime::component::Component::new(&engine, &bad).unwrap_err());
    assert_eq!(said, in_process);
    assert!(!child.has("bad-sha"), "nothing cached for a refused module");
}

#[test]
fn a_child_that_dies_is_named_and_not_retried_in_process() {
    let dir = tempfile::tempdir().unwrap();
    let wasm = std::fs::read(components::SWAPPER_V1.built()).unwrap();
    let exe = script(dir.path(), "kill -9 $$");
    let (engine, cache) = cache(dir.path(), Some(&exe));
    let e = format!("{:#}", cache.load(&engine, &wasm, "sha").unwrap_err());
    assert!(e.contains("killed by signal 9"), "{e}");
    let exe = script(dir.path(), "echo 'out of patience' >&2; exit 3");
    let (engine, cache) = self::cache(dir.path(), Some(&exe));
    let e = format!("{:#}", cache.load(&engine, &wasm, "sha").unwrap_err());
    assert_eq!(e, "out of patience");
}

#[test]
fn a_compile_that_takes_too_long_is_stopped() {
    let dir = tempfile::tempdir().unwrap();
    let wasm = std::fs::read(components::SWAPPER_V1.built()).unwrap();
    let survived = dir.path().join("survived");
    let exe = script(dir.path(), &format!("sleep 2; touch {}", survived.display()));
    let (engine, cache) = cache(dir.path(), Some(&exe));
    let cache = cache.with_timeout(std::time::Duration::from_secs(1));
    let e = format!("{:#}", cache.load(&engine, &wasm, "sha").unwrap_err());
    assert_eq!(e, "compiling took longer than 1 s; the compiler process was stopped");
    std::thread::sleep(std::time::Duration::from_secs(3));
    assert!(!survived.exists(), "the compiler process was not killed");
}

/// Where the cache cannot be written (here a file stands where its directory should be),
/// the child's artifact is loaded from its bytes, as a compile in process was.
#[test]
fn an_unwritable_cache_still_loads() {
    let dir = tempfile::tempdir().unwrap();
    let blocked = dir.path().join("not-a-directory");
    std::fs::write(&blocked, b"").unwrap();
    let wasm = std::fs::read(components::SWAPPER_V1.built()).unwrap();
    let (engine, cache) = cache(&blocked, Some(BIN));
    let (_, origin) = cache.load(&engine, &wasm, "sha").unwrap();
    assert_eq!(origin, Origin::Compiled);
    let engine = new_engine().unwrap();
    let none = ArtifactCache::new(&engine, None).with_child(Some(BIN.into()));
    let (_, origin) = none.load(&engine, &wasm, "sha").unwrap();
    assert_eq!(origin, Origin::Compiled);
}

#[test]
fn a_child_that_cannot_start_falls_back_to_compiling_in_process() {
    let dir = tempfile::tempdir().unwrap();
    let wasm = std::fs::read(components::SWAPPER_V1.built()).unwrap();
    let (engine, cache) = cache(dir.path(), Some("/nonexistent/nthlayer-host"));
    let (_, origin) = cache.load(&engine, &wasm, "sha").unwrap();
    assert_eq!(origin, Origin::Compiled);
    assert!(cache.has("sha"));
}

#[test]
fn the_subcommand_refuses_a_wrong_call() {
    let out = std::process::Command::new(BIN).args(["__compile", "--out", "x"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("usage: nthlayer-host __compile < module.wasm > artifact"));
}

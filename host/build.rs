//! Embeds the built-in modules (`modules/builtin.txt`) in the binary, so `serve`, `gate`,
//! `run` and `check` work with no `--modules`, as `nthlayer-workers` does.
//!
//! By default the guests are built here for `wasm32-wasip2 --release` by a nested cargo in
//! `target/embed` — a target directory of their own, because a nested cargo on the outer
//! build's directory would wait forever for the lock the outer build holds.
//! `scripts/build-modules` builds into the same directory with the same settings, so
//! whichever runs first compiles and the other finds everything fresh.
//! `NTHLAYER_EMBED_DIR=<dir>` embeds prebuilt `<dir>/<name>.wasm` files instead (packagers).
//!
//! It also embeds what `nthlayer-host new` writes (build/templates.rs).

use std::path::{Path, PathBuf};
use std::process::Command;

#[path = "build/templates.rs"]
mod templates;

fn main() {
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap());
    let root = manifest.parent().expect("host/ lives in the workspace root").to_path_buf();
    let list = root.join("modules/builtin.txt");
    println!("cargo:rerun-if-changed={}", list.display());
    println!("cargo:rerun-if-env-changed=NTHLAYER_EMBED_DIR");
    let names: Vec<String> = std::fs::read_to_string(&list)
        .unwrap_or_else(|e| panic!("{}: {e}", list.display()))
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(String::from)
        .collect();

    let (dir, prebuilt) = match std::env::var_os("NTHLAYER_EMBED_DIR") {
        Some(d) => (PathBuf::from(d), true),
        None => (build_guests(&root, &names), false),
    };
    let out = PathBuf::from(std::env::var("OUT_DIR").unwrap());
    let mut code = String::from("pub static EMBEDDED: &[Embedded] = &[\n");
    for name in &names {
        let src = dir.join(format!("{name}.wasm"));
        let dst = out.join(format!("{name}.wasm"));
        std::fs::copy(&src, &dst).unwrap_or_else(|e| {
            panic!("built-in module {name}: cannot read {}: {e}", src.display());
        });
        // Only for prebuilt files: ours are written during this run, so they would look
        // newer than the run and rebuild the host every time.
        if prebuilt {
            println!("cargo:rerun-if-changed={}", src.display());
        }
        let bytes = std::fs::read(&dst).unwrap_or_else(|e| panic!("built-in module {name}: {e}"));
        let sha256 = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&bytes));
        code += &format!(
            "    Embedded {{ name: {name:?}, sha256: {sha256:?}, bytes: include_bytes!({:?}) }},\n",
            dst.display().to_string()
        );
    }
    code += "];\n";
    std::fs::write(out.join("embedded.rs"), code).unwrap();
    templates::generate(&root, &out);
}

/// Builds the built-in guests and returns the directory holding `<name>.wasm` for each.
fn build_guests(root: &Path, names: &[String]) -> PathBuf {
    for p in ["wit", "modules/sdk", "Cargo.lock", "Cargo.toml"] {
        println!("cargo:rerun-if-changed={}", root.join(p).display());
    }
    for n in names {
        println!("cargo:rerun-if-changed={}", root.join("modules").join(n).display());
    }
    check_target();
    let target_dir = root.join("target/embed");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(root)
        .args(["build", "-q", "--release", "--target", "wasm32-wasip2", "--target-dir"])
        .arg(&target_dir)
        // As scripts/build-modules: no DWARF in guests (5x smaller, faster to compile).
        .env("CARGO_PROFILE_RELEASE_DEBUG", "false")
        .env("CARGO_PROFILE_RELEASE_STRIP", "debuginfo")
        // The host's release LTO (Cargo.toml) is for the native binary; guests keep theirs.
        .env("CARGO_PROFILE_RELEASE_LTO", "false");
    // What cargo sets for build scripts must not leak into the guest build (a clippy or
    // sccache wrapper, the host's rustflags); the jobserver (CARGO_MAKEFLAGS) is kept so the
    // nested build shares the outer build's job slots.
    for v in [
        "RUSTC",
        "RUSTC_WRAPPER",
        "RUSTC_WORKSPACE_WRAPPER",
        "RUSTC_LINKER",
        "RUSTFLAGS",
        "CARGO_ENCODED_RUSTFLAGS",
        "CARGO_TARGET_DIR",
        "CARGO_BUILD_TARGET",
    ] {
        cmd.env_remove(v);
    }
    for n in names {
        cmd.args(["-p", &format!("nthlayer-{n}")]);
    }
    let status = cmd.status().expect("run cargo for the built-in guests");
    assert!(status.success(), "building the built-in modules for wasm32-wasip2 failed (see above)");
    let built = target_dir.join("wasm32-wasip2/release");
    let dir = target_dir.join("modules");
    std::fs::create_dir_all(&dir).unwrap();
    for n in names {
        let from = built.join(format!("nthlayer_{}.wasm", n.replace('-', "_")));
        std::fs::copy(&from, dir.join(format!("{n}.wasm"))).unwrap_or_else(|e| panic!("{}: {e}", from.display()));
    }
    dir
}

/// A missing target is the usual first-build failure; say how to fix it.
fn check_target() {
    let rustc = std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let sysroot = Command::new(rustc).args(["--print", "sysroot"]).output().ok();
    let Some(sysroot) = sysroot.filter(|o| o.status.success()) else { return };
    let sysroot = PathBuf::from(String::from_utf8_lossy(&sysroot.stdout).trim());
    if !sysroot.join("lib/rustlib/wasm32-wasip2").exists() {
        panic!(
            "nthlayer-host embeds its built-in modules, built for wasm32-wasip2, and this toolchain \
             lacks that target: run `rustup target add wasm32-wasip2`, or set NTHLAYER_EMBED_DIR to a \
             directory of prebuilt <name>.wasm files (scripts/build-modules puts them in dist/modules)"
        );
    }
}

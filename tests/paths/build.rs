//! Generates the constants of src/lib.rs from the lists the builds use: the members of
//! tests/components/Cargo.toml (each cdylib member, or the out-names of its variants.txt,
//! exactly as scripts/build-modules reads them) and modules/builtin.txt (as host/build.rs
//! reads it). A test names `components::HOSTILE_LOOP`, never a path string, so a component
//! that is renamed or dropped breaks the build of the tests that use it, not their run.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

fn main() {
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap());
    let tests = manifest.parent().expect("tests/paths lives in tests/");
    let root = tests.parent().expect("tests/ lives in the workspace root");
    let mut code = String::new();
    code += "/// The test components (tests/components), one per file in dist/test-components.\n";
    code += "pub mod components {\n    use super::Component;\n";
    items(&mut code, "Component", &test_components(&tests.join("components")));
    code += "}\n\n/// The built-in modules (modules/builtin.txt), one per file in dist/modules.\n";
    code += "pub mod modules {\n    use super::Module;\n";
    items(&mut code, "Module", &builtins(&root.join("modules/builtin.txt")));
    code += "}\n";
    let out = PathBuf::from(std::env::var("OUT_DIR").unwrap());
    std::fs::write(out.join("generated.rs"), code).unwrap();
}

/// `pub const NAME: Ty = Ty("name");` per name, then `ALL`.
fn items(code: &mut String, ty: &str, names: &[String]) {
    for n in names {
        let ident = n.to_uppercase().replace('-', "_");
        writeln!(code, "    pub const {ident}: {ty} = {ty}({n:?});").unwrap();
    }
    let all: Vec<String> = names.iter().map(|n| n.to_uppercase().replace('-', "_")).collect();
    writeln!(code, "    /// Every one, in list order.\n    pub const ALL: &[{ty}] = &[{}];", all.join(", ")).unwrap();
}

fn read(path: &Path) -> String {
    println!("cargo:rerun-if-changed={}", path.display());
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Meaningful lines: not blank, not `#` comments.
fn lines(text: &str) -> impl Iterator<Item = &str> {
    text.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#'))
}

fn builtins(list: &Path) -> Vec<String> {
    lines(&read(list)).map(String::from).collect()
}

/// Out-names of every cdylib member: the package name, or the first word of each line of
/// its variants.txt.
fn test_components(dir: &Path) -> Vec<String> {
    let ws_path = dir.join("Cargo.toml");
    let ws: toml::Table = read(&ws_path).parse().unwrap_or_else(|e| panic!("{}: {e}", ws_path.display()));
    let members = ws
        .get("workspace")
        .and_then(|w| w.get("members"))
        .and_then(|m| m.as_array())
        .unwrap_or_else(|| panic!("{}: no [workspace] members", ws_path.display()));
    let mut names = Vec::new();
    for m in members {
        let m = m.as_str().unwrap_or_else(|| panic!("{}: a member that is not a string", ws_path.display()));
        let crate_dir = dir.join(m);
        let path = crate_dir.join("Cargo.toml");
        let pkg: toml::Table = read(&path).parse().unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let cdylib = pkg
            .get("lib")
            .and_then(|l| l.get("crate-type"))
            .and_then(|t| t.as_array())
            .is_some_and(|t| t.iter().any(|t| t.as_str() == Some("cdylib")));
        if !cdylib {
            continue; // a support library
        }
        let name = pkg
            .get("package")
            .and_then(|p| p.get("name"))
            .and_then(|n| n.as_str())
            .unwrap_or_else(|| panic!("{}: no package name", path.display()));
        // Watched only where it exists: cargo reruns a build script on every build while a
        // watched file is missing, and each rerun recompiles every test that uses these
        // names. A new variants.txt comes with new [features] in the Cargo.toml watched above.
        let variants = crate_dir.join("variants.txt");
        if variants.exists() {
            names.extend(lines(&read(&variants)).map(|l| l.split_whitespace().next().unwrap().to_string()));
        } else {
            names.push(name.to_string());
        }
    }
    names
}

//! Embeds what `nthlayer-host new` writes: every file under `templates/<lang>/`, the newest
//! contract folder `wit/nthlayer-worker@<newest>/`, and the SDK's source (`modules/sdk`)
//! with a stand-alone Cargo.toml, so a generated Rust project builds without this
//! repository. Adding a file under `templates/` is all a new template needs.

use std::path::{Path, PathBuf};

/// Files under `dir`, relative to it, sorted (so the embedded order is stable).
fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else { continue };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p.strip_prefix(dir).expect("under dir").to_path_buf());
            }
        }
    }
    out.sort();
    out
}

/// `0.10.0` sorts after `0.9.0`.
fn version_key(v: &str) -> Vec<u64> {
    v.split('.').map(|p| p.parse().unwrap_or(0)).collect()
}

/// The newest `wit/nthlayer-worker@X.Y.Z` folder.
fn newest_contract(root: &Path) -> (String, PathBuf) {
    let wit = root.join("wit");
    let mut found: Vec<(String, PathBuf)> = std::fs::read_dir(&wit)
        .unwrap_or_else(|e| panic!("{}: {e}", wit.display()))
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            name.strip_prefix("nthlayer-worker@").map(|v| (v.to_string(), e.path()))
        })
        .collect();
    found.sort_by_key(|(v, _)| version_key(v));
    found.pop().expect("wit/ holds at least one nthlayer-worker@X.Y.Z folder")
}

/// The SDK's Cargo.toml with every `x.workspace = true` replaced by the workspace's value,
/// line by line (both manifests keep one entry per line).
fn standalone_sdk_manifest(root: &Path) -> String {
    let workspace = std::fs::read_to_string(root.join("Cargo.toml")).expect("workspace Cargo.toml");
    let sdk = std::fs::read_to_string(root.join("modules/sdk/Cargo.toml")).expect("modules/sdk/Cargo.toml");
    let lookup = |section: &str, key: &str| -> String {
        let mut inside = false;
        for line in workspace.lines() {
            if line.starts_with('[') {
                inside = line.trim() == section;
                continue;
            }
            if inside && line.split('=').next().map(str::trim) == Some(key) {
                return line.to_string();
            }
        }
        panic!("{key} not found in the workspace's {section}");
    };
    let mut out = String::from("# Vendored by `nthlayer-host new`: the nthlayer SDK this host was built with.\n");
    let mut section = String::new();
    for line in sdk.lines() {
        if line.starts_with('[') {
            section = line.trim().to_string();
        }
        match line.trim().strip_suffix(".workspace = true") {
            Some(key) if section == "[package]" => out += &lookup("[workspace.package]", key),
            Some(key) => out += &lookup("[workspace.dependencies]", key),
            None => out += line,
        }
        out.push('\n');
    }
    // Not a member of the generated project's workspace (the project declares one).
    out
}

fn entry(lang: &str, rel: &str, file: &Path) -> String {
    format!(
        "    TemplateFile {{ lang: {lang:?}, path: {rel:?}, bytes: include_bytes!({:?}) }},\n",
        file.display().to_string()
    )
}

pub fn generate(root: &Path, out_dir: &Path) {
    for p in ["templates", "wit", "modules/sdk", "Cargo.toml"] {
        println!("cargo:rerun-if-changed={}", root.join(p).display());
    }
    let mut code = String::from("pub static TEMPLATES: &[TemplateFile] = &[\n");
    let templates = root.join("templates");
    let mut langs: Vec<PathBuf> =
        std::fs::read_dir(&templates).map(|r| r.flatten().map(|e| e.path()).collect()).unwrap_or_default();
    langs.sort();
    for dir in langs.iter().filter(|d| d.is_dir()) {
        let lang = dir.file_name().unwrap().to_string_lossy().into_owned();
        for rel in files_under(dir) {
            code += &entry(&lang, &rel.to_string_lossy(), &dir.join(&rel));
        }
    }
    code += "];\n";

    let (version, wit_dir) = newest_contract(root);
    code += &format!("pub const CONTRACT: &str = {version:?};\npub static WIT: &[TemplateFile] = &[\n");
    for rel in files_under(&wit_dir) {
        let path = format!("wit/nthlayer-worker@{version}/{}", rel.display());
        code += &entry("", &path, &wit_dir.join(&rel));
    }
    code += "];\npub static SDK: &[TemplateFile] = &[\n";
    let manifest = out_dir.join("sdk-Cargo.toml");
    std::fs::write(&manifest, standalone_sdk_manifest(root)).expect("write the SDK manifest");
    code += &entry("", "vendor/nthlayer-sdk/Cargo.toml", &manifest);
    let src = root.join("modules/sdk/src");
    for rel in files_under(&src) {
        code += &entry("", &format!("vendor/nthlayer-sdk/src/{}", rel.display()), &src.join(&rel));
    }
    code += "];\n";
    std::fs::write(out_dir.join("templates.rs"), code).expect("write templates.rs");
}

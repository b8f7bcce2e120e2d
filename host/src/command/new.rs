//! `nthlayer-host new <name> --lang L`: a module project that builds and passes its own test
//! from the first minute. The files come from `templates/<lang>/` (embedded by
//! build/templates.rs), with `{{name}}` (kebab-case) and `{{name_snake}}` filled in, plus the
//! newest contract's WIT — and, for Rust, the SDK's source, so the project does not depend on
//! this repository.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

/// One embedded file.
pub struct TemplateFile {
    /// `templates/<lang>/`; empty for the WIT and SDK files.
    pub lang: &'static str,
    pub path: &'static str,
    pub bytes: &'static [u8],
}

include!(concat!(env!("OUT_DIR"), "/templates.rs"));

#[derive(Debug, Clone, clap::Args)]
pub struct NewArgs {
    /// Module name: lowercase letters, digits and '-' (it becomes the task and state key).
    pub name: String,
    /// Language of the project (rust, python, js, go; whichever this build embeds).
    #[arg(long)]
    pub lang: String,
    /// Directory to create (default: ./<name>). Must not exist or be empty.
    #[arg(long)]
    pub dir: Option<PathBuf>,
}

/// Languages with a template in this build.
pub fn languages() -> Vec<&'static str> {
    let mut l: Vec<&str> = TEMPLATES.iter().map(|t| t.lang).collect();
    l.dedup();
    l
}

fn check_name(name: &str) -> Result<()> {
    let ok = name.len() <= 64
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !name.ends_with('-');
    if !ok {
        bail!("module name {name:?}: use 1-64 lowercase letters, digits and '-', starting with a letter (e.g. slo-report)");
    }
    Ok(())
}

fn fill(text: &str, name: &str) -> String {
    text.replace("{{name_snake}}", &name.replace('-', "_")).replace("{{name}}", name)
}

/// The files of a `lang` project named `name`: (relative path, contents).
pub fn project_files(name: &str, lang: &str) -> Result<Vec<(String, Vec<u8>)>> {
    check_name(name)?;
    let files: Vec<&TemplateFile> = TEMPLATES.iter().filter(|t| t.lang == lang).collect();
    if files.is_empty() {
        bail!("no template for --lang {lang} in this build (available: {})", languages().join(", "));
    }
    let mut out: Vec<(String, Vec<u8>)> = files
        .iter()
        .map(|t| {
            let bytes = match std::str::from_utf8(t.bytes) {
                Ok(text) => fill(text, name).into_bytes(),
                Err(_) => t.bytes.to_vec(),
            };
            (fill(t.path, name), bytes)
        })
        .collect();
    out.extend(WIT.iter().map(|f| (f.path.to_string(), f.bytes.to_vec())));
    if lang == "rust" {
        out.extend(SDK.iter().map(|f| (f.path.to_string(), f.bytes.to_vec())));
    }
    Ok(out)
}

fn write_all(dir: &Path, files: &[(String, Vec<u8>)]) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    for (rel, bytes) in files {
        let path = dir.join(rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).with_context(|| format!("create {}", parent.display()))?;
        }
        std::fs::write(&path, bytes).with_context(|| format!("write {}", path.display()))?;
        if rel.ends_with(".sh") {
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))?;
        }
    }
    Ok(())
}

pub fn new(a: NewArgs) -> Result<()> {
    let files = project_files(&a.name, &a.lang)?;
    let dir = a.dir.clone().unwrap_or_else(|| PathBuf::from(&a.name));
    if dir.exists() && std::fs::read_dir(&dir).map(|mut d| d.next().is_some()).unwrap_or(true) {
        bail!("{}: exists and is not empty; pick another --dir", dir.display());
    }
    write_all(&dir, &files)?;
    println!(
        "created {} ({} module, contract nthlayer:worker@{CONTRACT}, {} files)",
        dir.display(),
        a.lang,
        files.len()
    );
    println!("next: cd {} && ./build.sh && ./test.sh   (README.md says more)", dir.display());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked_and_placeholders_filled() {
        assert!(check_name("slo-report").is_ok());
        for bad in ["SLO", "a.b", "-x", "x-", "", "9lives"] {
            assert!(check_name(bad).is_err(), "{bad}");
        }
        assert_eq!(fill("{{name}} {{name_snake}}", "slo-report"), "slo-report slo_report");
        assert!(project_files("x", "cobol").unwrap_err().to_string().contains("available: "));
    }

    #[test]
    fn projects_carry_the_newest_contract_and_rust_ones_the_sdk() {
        let newest = crate::bindings::SERVED.last().unwrap().version();
        assert_eq!(CONTRACT, newest, "wit/'s newest folder is the newest contract the host serves");
        for lang in languages() {
            let files = project_files("demo-mod", lang).unwrap();
            let has = |p: &str| files.iter().any(|(f, _)| f == p);
            assert!(has(&format!("wit/nthlayer-worker@{CONTRACT}/world.wit")), "{lang}");
            assert!(has("build.sh") && has("test.sh") && has("README.md"), "{lang}");
            assert!(
                files.iter().all(|(_, b)| !String::from_utf8_lossy(b).contains("{{name")),
                "{lang}: placeholder left"
            );
        }
        let rust = project_files("demo-mod", "rust").unwrap();
        let sdk_lib = rust.iter().find(|(f, _)| f == "vendor/nthlayer-sdk/src/lib.rs").expect("SDK vendored");
        // The vendored SDK finds the WIT `new` writes.
        let wit_path = format!("path: \"../../wit/nthlayer-worker@{CONTRACT}\"");
        assert!(String::from_utf8_lossy(&sdk_lib.1).contains(&wit_path), "SDK builds against {CONTRACT}");
        let manifest = rust.iter().find(|(f, _)| f == "vendor/nthlayer-sdk/Cargo.toml").unwrap();
        assert!(!String::from_utf8_lossy(&manifest.1).contains("workspace = true"));
    }
}

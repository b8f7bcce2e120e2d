//! Reading what a component imports and exports straight from its bytes, before any
//! compilation: `check` refuses a component that imports what the host lacks in
//! milliseconds (a Python component takes ~13 s to compile), and names, for the toolchains
//! we know, the build flag that removes the import.

use wasmparser::{Parser, Payload};

use crate::bindings::SERVED;

/// Interfaces the host links besides `nthlayer:worker`: wasmtime-wasi's p2 set. Everything
/// in them grants nothing (sandbox.rs); they are here so guest runtimes (Python, JS, Go) load.
const WASI_LINKED: [&str; 6] =
    ["wasi:cli/", "wasi:clocks/", "wasi:filesystem/", "wasi:io/", "wasi:random/", "wasi:sockets/"];

/// What the top-level component declares, and which toolchain produced it.
#[derive(Debug, Default, Clone, PartialEq, serde::Serialize)]
pub struct Surface {
    pub imports: Vec<String>,
    pub exports: Vec<String>,
    /// `language` and `processed-by` names from the producers sections (any depth).
    pub producers: Vec<String>,
}

pub fn surface(bytes: &[u8]) -> Result<Surface, String> {
    let mut s = Surface::default();
    // Every (nested) module or component starts with a Version payload and ends with End;
    // only depth 1 is the component the host instantiates.
    let mut depth = 0usize;
    for payload in Parser::new(0).parse_all(bytes) {
        match payload.map_err(|e| e.to_string())? {
            Payload::Version { .. } => depth += 1,
            Payload::End(_) => depth = depth.saturating_sub(1),
            Payload::ComponentImportSection(r) if depth == 1 => {
                for i in r {
                    let i = i.map_err(|e| e.to_string())?;
                    // A world's `use types.{…}` imports the types by bare name: they are
                    // bounds on what the instances provide, not something the host links.
                    if !matches!(i.ty, wasmparser::ComponentTypeRef::Type(_)) {
                        s.imports.push(i.name.name.to_string());
                    }
                }
            }
            Payload::ComponentExportSection(r) if depth == 1 => {
                for e in r {
                    let e = e.map_err(|e| e.to_string())?;
                    if e.kind != wasmparser::ComponentExternalKind::Type {
                        s.exports.push(e.name.name.to_string());
                    }
                }
            }
            Payload::CustomSection(c) if c.name() == "producers" => {
                if let wasmparser::KnownCustom::Producers(r) = c.as_known() {
                    for field in r.into_iter().flatten() {
                        if field.name == "language" || field.name == "processed-by" {
                            for v in field.values.into_iter().flatten() {
                                if !s.producers.iter().any(|p| p == v.name) {
                                    s.producers.push(v.name.to_string());
                                }
                            }
                        }
                    }
                }
            }
            _ => {}
        }
    }
    Ok(s)
}

/// The toolchains whose fixes we know, detected from the producers section.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Toolchain {
    ComponentizeJs,
    ComponentizePy,
    Go,
}

fn toolchain(producers: &[String]) -> Option<Toolchain> {
    let has = |needle: &str| producers.iter().any(|p| p.to_ascii_lowercase().contains(needle));
    if has("componentize-js") || has("componentizejs") || has("starlingmonkey") || has("javascript") {
        Some(Toolchain::ComponentizeJs)
    } else if has("componentize-py") || has("python") {
        Some(Toolchain::ComponentizePy)
    } else if has("go") {
        Some(Toolchain::Go)
    } else {
        None
    }
}

fn served(import: &str) -> bool {
    if WASI_LINKED.iter().any(|p| import.starts_with(p)) {
        return true;
    }
    let Some(rest) = import.strip_prefix("nthlayer:worker/") else { return false };
    let version = rest.split_once('@').map(|(_, v)| v).unwrap_or("");
    let minor = |v: &str| v.split('.').take(2).collect::<Vec<_>>().join(".");
    SERVED.iter().any(|c| minor(c.version()) == minor(version))
}

/// The flag that removes `import` for the toolchain that built the component (or, unknown
/// toolchain, for each one we know).
fn fix_for(import: &str, tc: Option<Toolchain>) -> Option<String> {
    let js = "componentize-js: build with `-d http fetch-event` (disables fetch() and the HTTP handler)";
    let py = "componentize-py: build against this host's world only (`-d wit -w nthlayer:worker/worker`); \
              wasi:http comes from a world or a dependency that includes it";
    let go = "Go: compile with `GOOS=wasip1 -buildmode=c-shared` and componentize with the WASI *reactor* \
              adapter (wasi_snapshot_preview1.reactor.wasm), not the command adapter";
    if import.starts_with("wasi:http/") {
        return Some(match tc {
            Some(Toolchain::ComponentizeJs) => js.to_string(),
            Some(Toolchain::ComponentizePy) => py.to_string(),
            _ => format!("{js}; {py}"),
        });
    }
    if import.starts_with("nthlayer:worker/") {
        return Some(format!(
            "rebuild against a contract this host serves ({}; `nthlayer-host new` writes the newest)",
            SERVED.map(|c| c.version()).join(", ")
        ));
    }
    match tc {
        Some(Toolchain::Go) => Some(go.to_string()),
        Some(Toolchain::ComponentizeJs) => {
            Some(format!("{js}; `-d stdio random clocks` remove the other WASI imports"))
        }
        _ => None,
    }
}

/// Refuses a component with an import the host does not link, or without the worker's
/// exports; the error names each import and, where known, the fix.
pub fn precheck(s: &Surface) -> Result<(), String> {
    let tc = toolchain(&s.producers);
    let foreign: Vec<String> = s
        .imports
        .iter()
        .filter(|i| !served(i))
        .map(|i| match fix_for(i, tc) {
            Some(fix) => format!("{i} (fix: {fix})"),
            None => i.clone(),
        })
        .collect();
    if !foreign.is_empty() {
        return Err(format!("imports what this host does not provide: {}", foreign.join("; ")));
    }
    if s.exports.iter().any(|e| e.starts_with("wasi:cli/run")) && !s.exports.iter().any(|e| e == "run-cycle") {
        return Err(format!(
            "is a command (exports wasi:cli/run), not a worker; {}",
            fix_for("", Some(Toolchain::Go)).unwrap_or_default()
        ));
    }
    let missing: Vec<&str> =
        ["describe", "run-cycle"].into_iter().filter(|e| !s.exports.iter().any(|x| x == e)).collect();
    if !missing.is_empty() {
        return Err(format!(
            "does not export {} (exports: {}); build against world nthlayer:worker/worker",
            missing.join(" and "),
            if s.exports.is_empty() { "nothing".to_string() } else { s.exports.join(", ") }
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn component(wat: &str) -> Vec<u8> {
        wat::parse_str(wat).expect("valid component text")
    }

    const WORKER_EXPORTS: &str = r#"
        (core module $m (func (export "d")) (func (export "r")))
        (core instance $i (instantiate $m))
        (func $d (canon lift (core func $i "d")))
        (func $r (canon lift (core func $i "r")))
        (export "describe" (func $d))
        (export "run-cycle" (func $r))"#;

    #[test]
    fn imports_and_exports_are_read_at_the_top_level_only() {
        let c = component(&format!(
            r#"(component (import "nthlayer:worker/log@0.2.0" (instance)) (type $mi (record (field "n" string))) (import "module-info" (type (eq $mi)))
                 (component (import "inner:only/x" (instance))) {WORKER_EXPORTS})"#
        ));
        let s = surface(&c).unwrap();
        assert_eq!(s.imports, ["nthlayer:worker/log@0.2.0"]);
        assert_eq!(s.exports, ["describe", "run-cycle"]);
        assert_eq!(precheck(&s), Ok(()));
    }

    #[test]
    fn foreign_imports_are_refused_naming_the_import_and_the_flag() {
        let s = Surface {
            imports: vec!["nthlayer:worker/core@0.2.0".into(), "wasi:http/outgoing-handler@0.2.3".into()],
            exports: vec!["describe".into(), "run-cycle".into()],
            producers: vec!["ComponentizeJS".into()],
        };
        let e = precheck(&s).unwrap_err();
        assert!(e.contains("wasi:http/outgoing-handler@0.2.3") && e.contains("-d http fetch-event"), "{e}");
        let s = Surface { producers: vec!["Python".into()], ..s };
        assert!(precheck(&s).unwrap_err().contains("componentize-py"));
        let old = Surface { imports: vec!["nthlayer:worker/core@0.9.0".into()], ..s.clone() };
        assert!(
            precheck(&old).unwrap_err().contains("serves (0.1.0, 0.2.0")
                || precheck(&old).unwrap_err().contains("0.1.0, 0.2.0")
        );
        let cmd = Surface { exports: vec!["wasi:cli/run@0.2.0".into()], imports: vec![], producers: vec!["Go".into()] };
        assert!(precheck(&cmd).unwrap_err().contains("reactor"));
        let none = Surface { exports: vec!["hello".into()], ..cmd };
        assert!(precheck(&none).unwrap_err().contains("does not export describe and run-cycle"));
        assert!(surface(b"\0asm\x01\0\0\0garbage").is_err());
    }
}

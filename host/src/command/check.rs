//! `nthlayer-host check [FILE…]`: what the host would make of a module file, without
//! running it. The component's declarations are read first (milliseconds), so one that
//! imports what this host lacks is refused before the compile a Python component spends
//! ~13 s on; then it is compiled (or loaded from the cache) and described. `--grant` and
//! `--trusted-dir` are read as `serve` reads them, so the report says which of the records a
//! module declares it would be granted, and the line to grant the rest.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use anyhow::Result;
use serde_json::{json, Value};

use crate::capability::Services;
use crate::policy::grants::{GrantPolicy, Trust};
use crate::runtime::cache::Origin;
use crate::runtime::config::CacheArgs;
use crate::runtime::inspect;
use crate::store::{LoadedModule, Runtime};

#[derive(Debug, Clone, clap::Args)]
pub struct CheckArgs {
    pub files: Vec<PathBuf>,
    #[command(flatten)]
    pub cache: CacheArgs,
    /// As `serve --grant`: the report lists which declared emissions this would grant.
    #[arg(long = "grant", value_name = "MODULE=CAPS")]
    pub grants: Vec<String>,
    /// As `serve --trusted-dir`.
    #[arg(long = "trusted-dir", value_name = "DIR")]
    pub trusted_dirs: Vec<PathBuf>,
}

/// `nthlayer-host check`: the flags read as `serve` reads them, then [`check`].
pub async fn command(a: CheckArgs) -> Result<bool> {
    let policy = GrantPolicy::parse(&a.grants)?.with_trusted_dirs(&a.trusted_dirs)?;
    check(a.files, a.cache.dir(), policy).await
}

/// One line of JSON per file; `Ok(false)` when any file fails.
pub async fn check(files: Vec<PathBuf>, cache_dir: Option<PathBuf>, policy: GrantPolicy) -> Result<bool> {
    let services = Arc::new(Services::offline()?);
    let cached = cache_dir.is_some();
    let runtime = crate::store::runtime(cache_dir)?;
    let targets: Vec<(PathBuf, Option<&[u8]>)> = if files.is_empty() {
        crate::policy::builtin::all().iter().map(|e| (e.path(), Some(e.bytes))).collect()
    } else {
        files.into_iter().map(|f| (f, None)).collect()
    };
    let mut all_ok = true;
    for (file, embedded) in targets {
        let line = check_one(&runtime, &services, &policy, &file, embedded, cached).await;
        all_ok &= line["ok"] == true;
        println!("{line}");
    }
    Ok(all_ok)
}

async fn check_one(
    runtime: &Arc<Runtime>,
    services: &Arc<Services>,
    policy: &GrantPolicy,
    file: &std::path::Path,
    embedded: Option<&[u8]>,
    cached: bool,
) -> Value {
    let name = file.display().to_string();
    let fail = |error: String, extra: Value| {
        let mut v = json!({"file": name, "ok": false, "error": error});
        if let (Some(o), Value::Object(e)) = (v.as_object_mut(), extra) {
            o.extend(e);
        }
        v
    };
    let bytes = match embedded {
        Some(b) => b.to_vec(),
        None => match std::fs::read(file) {
            Ok(b) => b,
            Err(e) => return fail(format!("{name}: cannot read: {e}"), json!({})),
        },
    };
    let started = Instant::now();
    let surface = inspect::surface(&bytes);
    let precheck = surface.as_ref().map_err(Clone::clone).and_then(inspect::precheck);
    let precheck_ms = started.elapsed().as_secs_f64() * 1000.0;
    let declared = match &surface {
        Ok(s) => json!({"imports": s.imports, "exports": s.exports, "producers": s.producers}),
        Err(_) => json!({}),
    };
    if let Err(reason) = precheck {
        let extra = json!({"size_bytes": bytes.len(), "precheck_ms": precheck_ms, "declared": declared});
        return fail(format!("{name}: {reason} (refused before compiling)"), extra);
    }
    let trust = match embedded {
        Some(_) => Trust::Embedded,
        None => policy.identify(file, &hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&bytes))),
    };
    match runtime.load_bytes(file, bytes, services.clone()).await {
        Ok(m) => {
            let mut line = report(&name, &m, precheck_ms, declared, cached);
            line["emits"] = emissions(&m, policy, trust);
            line
        }
        Err(e) => fail(e.to_string(), json!({"precheck_ms": precheck_ms, "declared": declared})),
    }
}

/// Declared / granted / effective / missing emissions under `policy`, and the `--grant` value
/// that would grant the missing ones (emissions.rs has the rule).
fn emissions(m: &Arc<LoadedModule>, policy: &GrantPolicy, trust: Trust) -> Value {
    let serving = crate::lifecycle::registry::Serving {
        grants: policy.resolve(&m.meta.name, &m.meta.needs, m.meta.emits.as_ref(), &trust),
        limits: Default::default(),
        trust,
        module: m.clone(),
    };
    let e = &serving.grants.emits;
    let missing = e.missing();
    json!({
        "declared": e.declared,
        "granted": e.granted,
        "effective": e.effective,
        "missing": missing,
        "trust": serving.trust,
        "grant": (!missing.is_empty()).then(|| format!("--grant {}", serving.grant_line())),
    })
}

fn report(name: &str, m: &LoadedModule, precheck_ms: f64, declared: Value, cached: bool) -> Value {
    let cache = match (m.origin, cached) {
        (_, false) => "disabled",
        (Origin::Cached, _) => "cached",
        (Origin::Compiled, _) => "compiled (now cached)",
    };
    let tasks: Vec<Value> = m
        .meta
        .tasks
        .iter()
        .map(|t| json!({"name": t.name, "interval_seconds": t.interval_seconds, "summary": t.summary}))
        .collect();
    json!({
        "file": name,
        "ok": true,
        "name": m.meta.name,
        "version": m.meta.version,
        "contract": m.contract().version(),
        "tasks": tasks,
        "needs": m.meta.needs,
        "size_bytes": m.size_bytes,
        "precheck_ms": precheck_ms,
        "compile_ms": m.compile_ms,
        "cache": cache,
        "sha256": m.sha256,
        "declared": declared,
        "module": m.meta,
    })
}

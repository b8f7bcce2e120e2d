//! The modules routes: list, upload, unload.
//!
//! An upload takes the path a dropped file takes: it is compiled, pre-instantiated against
//! the host's linker and described (runtime/load.rs), admitted under its module's limits
//! (policy/shares.rs), and its rights are those its identity earns where it will live
//! (policy/grants.rs: the same file dropped by hand gets the same) — an upload never widens
//! what a module can do. The name rules of a swap apply (a built-in is replaced only by
//! trusted code; one file per module name; a file keeps its module name). Only then is it
//! written, atomically, into the first directory a `--modules` pattern watches, and the
//! watcher installs it as any dropped file. A refused upload writes nothing.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path as UrlPath, Query, State};
use axum::http::StatusCode;
use axum::Json;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use super::{ok, AdminCtx, Answer, ApiError};

/// The largest component an upload may carry (an interpreted guest is ~20 MB).
pub const MAX_UPLOAD_BYTES: usize = 64 << 20;

/// Every loaded module with what an operator asks first.
pub fn list(ctx: &AdminCtx) -> Value {
    let stats = ctx.status.tasks();
    let paused = ctx.control.paused();
    let modules: Vec<Value> = ctx
        .registry
        .all()
        .into_iter()
        .map(|(_, slot)| {
            let s = slot.serving();
            let m = &s.module;
            let tasks: Vec<Value> = m
                .meta
                .tasks
                .iter()
                .map(|t| {
                    let st = &stats[&t.name];
                    json!({
                        "name": t.name,
                        "interval_seconds": ctx.env.config.interval_for(&t.name, t.interval_seconds),
                        "scheduled": t.interval_seconds > 0,
                        "paused": paused.contains_key(&t.name),
                        "last_run_at": st["last_run_at"], "last_ok": st["last_ok"],
                        "last_error": st["last_error"], "next_run_at": st["next_run_at"],
                        "ok": st["ok"], "failed": st["failed"],
                        "last_duration_ms": st["last_duration_ms"], "last_cpu_ms": st["last_cpu_ms"],
                    })
                })
                .collect();
            json!({
                "name": m.meta.name,
                "version": m.meta.version,
                "sha256": m.sha256,
                "origin": if m.embedded() { "embedded".to_string() } else { m.path.display().to_string() },
                "loaded_at": m.loaded_at,
                "trust": s.trust,
                "probation": slot.on_probation(),
                "tasks": tasks,
                "grants": s.grants.names(),
                "emits_granted": s.grants.emits.labels(),
                "emits_declared": m.meta.emits,
                "limits": &s.limits,
            })
        })
        .collect();
    Value::Array(modules)
}

pub async fn get_list(State(ctx): State<Arc<AdminCtx>>) -> Answer {
    ok(list(&ctx))
}

#[derive(serde::Deserialize)]
pub struct UploadQuery {
    file: String,
}

/// The directory the first `--modules` glob watches that would pick up `file`.
fn destination(specs: &[String], file: &str) -> Result<PathBuf, String> {
    for spec in specs.iter().flat_map(|s| s.split_whitespace()) {
        let Some(dir) = Path::new(spec).parent() else { continue };
        let dest = dir.join(file);
        let watched = glob::Pattern::new(spec).is_ok_and(|p| p.matches_path(&dest)) || Path::new(spec) == dest;
        if watched && dir.is_dir() && !dir.to_string_lossy().contains(['*', '?', '[']) {
            return Ok(dest);
        }
    }
    Err(format!(
        "no --modules pattern watches a directory where {file:?} would be picked up (serve with --modules 'DIR/*.wasm')"
    ))
}

fn refused(status: StatusCode, file: &str, why: String) -> ApiError {
    tracing::warn!(file, reason = %why, "module upload refused; nothing written");
    ApiError(status, why)
}

pub async fn upload(State(ctx): State<Arc<AdminCtx>>, Query(q): Query<UploadQuery>, body: Bytes) -> Answer {
    let file = q.file;
    if file.is_empty() || file.starts_with('.') || file.contains(['/', '\\']) || !file.ends_with(".wasm") {
        return Err(refused(
            StatusCode::BAD_REQUEST,
            &file,
            format!("{file:?}: expected a plain file name ending in .wasm"),
        ));
    }
    let dest = destination(&ctx.modules, &file).map_err(|e| refused(StatusCode::CONFLICT, &file, e))?;
    let bytes = body.to_vec();
    let sha = hex::encode(Sha256::digest(&bytes));
    // Staged beside its destination, so trust by directory (--trusted-dir) is judged where
    // the file will live; the watcher ignores it (it does not end in .wasm).
    let staged = dest.with_file_name(format!(".{file}.upload-{}.tmp", std::process::id()));
    if let Err(e) = std::fs::write(&staged, &bytes) {
        return Err(refused(
            StatusCode::INTERNAL_SERVER_ERROR,
            &file,
            format!("{}: cannot write: {e}", staged.display()),
        ));
    }
    let r = validate(&ctx, &dest, &staged, bytes, &sha).await;
    let r = r.and_then(|v| {
        let synced = std::fs::File::open(&staged).and_then(|f| f.sync_all());
        synced
            .and_then(|()| std::fs::rename(&staged, &dest))
            .map(|()| v)
            .map_err(|e| (StatusCode::INTERNAL_SERVER_ERROR, format!("{}: cannot write: {e}", dest.display())))
    });
    match r {
        Ok(v) => {
            tracing::info!(file = %dest.display(), module = %v["module"], version = %v["version"], %sha,
                "module uploaded; the watcher installs it as a dropped file");
            Ok((StatusCode::CREATED, Json(v)))
        }
        Err((status, why)) => {
            let _ = std::fs::remove_file(&staged);
            Err(refused(status, &file, why))
        }
    }
}

/// Everything a dropped file must pass before the watcher would serve it.
async fn validate(
    ctx: &AdminCtx,
    dest: &Path,
    staged: &Path,
    bytes: Vec<u8>,
    sha: &str,
) -> Result<Value, (StatusCode, String)> {
    let unprocessable = |e: String| (StatusCode::UNPROCESSABLE_ENTITY, e);
    let loaded = ctx
        .env
        .runtime
        .load_bytes(dest, bytes, ctx.env.services.clone())
        .await
        .map_err(|e| unprocessable(e.to_string()))?;
    let name = loaded.meta.name.clone();
    let limits = ctx.env.config.limits_for(&name);
    crate::policy::shares::admit(&name, loaded.meta.tasks.len(), &limits)
        .map_err(|e| unprocessable(format!("{}: {e}", dest.display())))?;
    let trust = ctx.grants.identify(staged, sha);
    let conflict = |e: String| (StatusCode::CONFLICT, format!("{}: {e}", dest.display()));
    for (other, slot) in ctx.registry.all() {
        let current = slot.current();
        if current.path == dest && other != name {
            return Err(conflict(format!(
                "the file provides module {other:?}; an upload may not rename it to {name:?} (unload it first)"
            )));
        }
        if other != name || current.path == dest {
            continue;
        }
        if current.embedded() && !trust.trusted() {
            return Err(conflict(format!(
                "module {name:?} is a built-in; only trusted code replaces it (put the file under --trusted-dir), an upload is untrusted"
            )));
        }
        if !current.embedded() {
            return Err(conflict(format!("module {name:?} is already served from {}", current.path.display())));
        }
    }
    let grants = ctx.grants.resolve(&name, &loaded.meta.needs, loaded.meta.emits.as_ref(), &trust);
    Ok(json!({
        "file": dest.display().to_string(), "module": name, "version": loaded.meta.version, "sha256": sha,
        "trust": trust, "grants": grants.names(), "emits_granted": grants.emits.labels(),
    }))
}

/// Unloads a module: a file under `--modules` is removed (the watcher unloads it after its
/// in-flight cycles, and it stays unloaded across restarts; a built-in it replaced serves
/// again); an embedded built-in is retired until the next start.
pub async fn unload(State(ctx): State<Arc<AdminCtx>>, UrlPath(name): UrlPath<String>) -> Answer {
    let Some(slot) = ctx.registry.get(&name) else {
        return Err(ApiError(StatusCode::NOT_FOUND, format!("no loaded module {name:?}")));
    };
    let current = slot.current();
    if current.embedded() {
        if let Some(slot) = ctx.registry.remove(&name) {
            slot.retire();
        }
        ctx.status.touch();
        tracing::warn!(module = %current.label(), "built-in module unloaded by the operator until the next start");
        return ok(json!({"module": name, "unloaded": "embedded built-in retired until the next start"}));
    }
    let path = current.path.clone();
    std::fs::remove_file(&path).map_err(|e| {
        ApiError(StatusCode::INTERNAL_SERVER_ERROR, format!("{}: cannot remove module file: {e}", path.display()))
    })?;
    tracing::warn!(module = %current.label(), file = %path.display(), "module file removed by the operator; the watcher unloads it");
    ok(
        json!({"module": name, "unloaded": format!("file {} removed; unloaded at the watcher's next poll", path.display())}),
    )
}

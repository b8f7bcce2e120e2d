//! `nthlayer:worker/core`: nthlayer-core, mediated.

use serde_json::value::RawValue;
use serde_json::{json, Map, Value};

use crate::backend::core::VerdictFilter;
use crate::bindings::latest::nthlayer::worker::core::{AssessmentQuery, Host, Submission, VerdictQuery};
use crate::bindings::latest::nthlayer::worker::types::RecordKind as WitKind;
use crate::policy::caps;
use crate::bindings::HostError;
use crate::backend::envelope::RecordKind;
use crate::capability::shared::import::bounded;
use crate::policy::table::Capability;
use crate::outbox::posted::{posted, Posted};
use crate::backend::envelope::Emitted;
use crate::outbox::{effects, Effect};
use crate::policy::emissions;
use super::State;
use crate::capability::View;
use crate::tape::{self, Write};

/// Keys core requires (presence only) plus what makes core answer 500 instead of 422 when
/// missing or mistyped. We check them here so a module gets a precise `invalid` error.
fn required(kind: RecordKind) -> &'static [&'static str] {
    match kind {
        RecordKind::Assessment => &["id", "service", "kind", "created_at"],
        RecordKind::Verdict => &["id", "type", "created_at"],
    }
}

fn parse_record(kind: RecordKind, text: &str) -> Result<Map<String, Value>, HostError> {
    let v: Value = serde_json::from_str(text).map_err(|e| HostError::Invalid(format!("record is not JSON: {e}")))?;
    let Value::Object(map) = v else {
        return Err(HostError::Invalid("record must be a JSON object".into()));
    };
    for key in required(kind) {
        match map.get(*key) {
            Some(Value::String(s)) if !s.is_empty() => {}
            _ => return Err(HostError::Invalid(format!("record needs a non-empty string '{key}'"))),
        }
    }
    Ok(map)
}

impl View<'_, State> {
    /// The CloudEvents source component: the module itself or one of its sub-components,
    /// never another module's name.
    fn source_component(&self, source: Option<String>) -> Result<String, HostError> {
        let module = &self.cx.module;
        match source {
            None => Ok(module.clone()),
            Some(s)
                if s == *module
                    || s.strip_prefix(module.as_str()).is_some_and(|r| r.starts_with('.') && r.len() > 1) =>
            {
                Ok(s)
            }
            Some(s) => Err(HostError::Invalid(format!("source {s:?} must be \"{module}\" or \"{module}.<name>\""))),
        }
    }

    /// The record's kind must be declared and granted (emissions.rs) and any producer it
    /// names its own.
    fn check_emission(&self, kind: RecordKind, map: &Map<String, Value>) -> Result<(), HostError> {
        let module = &self.cx.module;
        let name = emissions::kind_of(kind, map);
        self.cx.grants.emits.check(module, &self.cx.grants.names(), kind, name).map_err(HostError::Denied)?;
        emissions::check_producer(module, map).map_err(HostError::Denied)
    }

    async fn submit(&mut self, kind: RecordKind, record: String, source: Option<String>) -> Result<String, HostError> {
        self.cx.guard(Capability::Core)?;
        self.cx.check_request("record", record.len())?;
        let mut map = parse_record(kind, &record)?;
        // The tape keeps the record as the module wrote it (before the host's stamp), so a
        // fixture replays the same on any host version (built only with a tape: Ctx::taped).
        let args = self.cx.taped(|| json!({"record": map, "source": source}));
        let component = self.source_component(source)?;
        self.check_emission(kind, &map)?;
        emissions::stamp(&mut map, &self.cx.module, &self.cx.version);
        let (call, write) = match kind {
            RecordKind::Assessment => ("submit-assessment", Write::Assessment),
            RecordKind::Verdict => ("submit-verdict", Write::Verdict),
        };
        let emitted = Emitted::new(kind, component, map);
        if self.cx.holding {
            // The module gets the record's own id, the one core will store it under.
            let id = emitted.id.clone();
            // What holding it really costs: its text and the struct around it.
            let bytes = emitted.held_bytes();
            self.hold(Effect::Record(emitted), bytes)?;
            // A recording (`serve --record`) still notes the write, answered with the id the
            // module got.
            let live = std::future::ready(Ok(id.clone()));
            let captured = self.cx.taped(|| args.clone());
            return tape::write(self.cx.tape.clone(), "core", call, (write, captured), args, || id.clone(), live).await;
        }
        let sink = self.state.services.records.clone();
        let budget = self.cx.budget();
        let fresh = || emitted.id.clone();
        let live = bounded("core", budget, sink.submit(&emitted));
        let captured = self.cx.taped(|| args.clone());
        let id = tape::write(self.cx.tape.clone(), "core", call, (write, captured), args, fresh, live).await?;
        self.state.emitted += 1;
        let p = Posted { task: &self.cx.task, record: &emitted, id: &id, duplicate: false, spooled_ms: 0 };
        posted(&self.state.services.wake, p);
        Ok(id)
    }

    /// What a cached read needs, taken out of the store data (which may not be borrowed
    /// across an await).
    fn cache_ctx(&self, key: String) -> CacheCtx {
        CacheCtx {
            outbox: self.state.services.outbox.get().cloned(),
            module: self.cx.module.clone(),
            task: self.cx.task.clone(),
            budget: self.cx.budget(),
            key,
        }
    }
}

impl View<'_, State> {
    /// Keeps one effect for the cycle's commit (outbox/), in call order.
    /// Past `max_records` or the held-bytes cap the module gets an error and the cycle
    /// fails once it returns (`held.refused`): a module ignoring the error must not commit a
    /// silently truncated cycle.
    fn hold(&mut self, effect: Effect, bytes: usize) -> Result<(), HostError> {
        let (module, task, max) = (&self.cx.module, &self.cx.task, self.cx.limits.max_records);
        let held = &mut self.state.held;
        let refused = if held.effects.len() >= max {
            Err(format!(
                "module {module:?} task {task:?} submitted more than {max} records in one cycle, holding {} bytes \
                 (max_records; raise it with --limits {module}='{{\"max_records\":N}}')",
                held.bytes
            ))
        } else {
            held.hold(effect, bytes).map_err(|e| format!("module {module:?} task {task:?}: {e}"))
        };
        if let Err(why) = refused {
            held.refused.get_or_insert_with(|| why.clone());
            return Err(HostError::Invalid(why));
        }
        self.state.emitted += 1;
        Ok(())
    }
}

struct CacheCtx {
    outbox: Option<std::sync::Arc<crate::outbox::Outbox>>,
    module: String,
    task: String,
    budget: std::time::Duration,
    key: String,
}

/// A read modules need to work (manifests): core's answer, kept as the last good copy;
/// when core cannot answer, that copy, with its age in the log.
async fn cached_read(
    c: CacheCtx,
    read: impl std::future::Future<Output = Result<Box<RawValue>, crate::backend::ClientError>>,
) -> Result<Box<RawValue>, HostError> {
    match bounded("core", c.budget, read).await {
        Ok(v) => {
            if let Some(o) = &c.outbox {
                o.cache_put(&c.key, v.get()).await;
            }
            Ok(v)
        }
        Err(e @ (HostError::Unavailable(_) | HostError::Timeout(_))) => {
            let Some(o) = c.outbox else { return Err(e) };
            let Some((v, age)) = o.cache_get(&c.key).await else { return Err(e) };
            tracing::warn!(module = %c.module, task = %c.task, key = %c.key, age_s = age.as_secs(), error = ?e,
                "core cannot answer; serving the last good copy");
            Ok(v)
        }
        Err(e) => Err(e),
    }
}

impl Host for View<'_, State> {
    async fn get_manifests(&mut self) -> Result<String, HostError> {
        self.cx.guard(Capability::Core)?;
        let core = self.state.client.clone();
        let live = cached_read(self.cache_ctx("manifests".into()), core.get_manifests());
        let v = tape::read(self.cx.tape.clone(), "core", "get-manifests", json!({}), live).await?;
        self.cx.respond_raw("manifests", super::shard::visible(&self.cx.task, "manifests", v)?)
    }

    async fn get_manifest(&mut self, service: String) -> Result<String, HostError> {
        self.cx.guard(Capability::Core)?;
        let core = self.state.client.clone();
        let args = json!({ "service": service });
        let live = cached_read(self.cache_ctx(format!("manifest/{service}")), core.get_manifest(&service));
        let v = tape::read(self.cx.tape.clone(), "core", "get-manifest", args, live).await?;
        self.cx.respond_raw("manifest", super::shard::visible(&self.cx.task, "manifest", v)?)
    }

    async fn submit_assessment(&mut self, record: String, source: Option<String>) -> Result<String, HostError> {
        self.submit(RecordKind::Assessment, record, source).await
    }

    async fn submit_verdict(&mut self, record: String, source: Option<String>) -> Result<String, HostError> {
        self.submit(RecordKind::Verdict, record, source).await
    }

    /// Each record goes through `submit`, the one path a single call takes, so a batch can
    /// never be granted, sized or counted differently from the same records sent one by one.
    async fn submit_batch(&mut self, records: Vec<Submission>) -> Vec<Result<String, HostError>> {
        if let Err(e) = caps::count("submit batch", records.len(), caps::SUBMIT_BATCH) {
            let e = HostError::Invalid(format!("module {:?} task {:?}: {e}", self.cx.module, self.cx.task));
            return vec![Err(e); records.len()];
        }
        let mut out = Vec::with_capacity(records.len());
        for s in records {
            let kind = match s.kind {
                WitKind::Assessment => RecordKind::Assessment,
                WitKind::Verdict => RecordKind::Verdict,
            };
            out.push(self.submit(kind, s.record, s.source).await);
        }
        out
    }

    async fn query_assessments(&mut self, q: AssessmentQuery) -> Result<String, HostError> {
        self.cx.guard(Capability::Core)?;
        let core = self.state.client.clone();
        let args = json!({"q": {"service": q.service, "kind": q.kind, "limit": q.limit}});
        let limit = q.limit.clamp(1, 1000);
        let fut = core.get_assessments(q.service.as_deref(), q.kind.as_deref(), limit);
        let live = bounded("core", self.cx.budget(), fut);
        let v = tape::read(self.cx.tape.clone(), "core", "query-assessments", args, live).await?;
        self.cx.respond("assessments", v)
    }

    async fn query_verdicts(&mut self, q: VerdictQuery) -> Result<String, HostError> {
        self.cx.guard(Capability::Core)?;
        let core = self.state.client.clone();
        let args = json!({"q": {"service": q.service, "verdict-type": q.verdict_type,
            "created-after": q.created_after, "created-before": q.created_before, "limit": q.limit}});
        let f = VerdictFilter {
            service: q.service,
            verdict_type: q.verdict_type,
            created_after: q.created_after,
            created_before: q.created_before,
            limit: q.limit.clamp(1, 1000),
        };
        let live = bounded("core", self.cx.budget(), core.get_verdicts(&f));
        let v = tape::read(self.cx.tape.clone(), "core", "query-verdicts", args, live).await?;
        self.cx.respond("verdicts", v)
    }

    async fn verdict_descendants(&mut self, id: String) -> Result<String, HostError> {
        self.cx.guard(Capability::Core)?;
        let core = self.state.client.clone();
        let args = json!({ "id": id });
        let live = bounded("core", self.cx.budget(), core.get_descendants(&id));
        let v = tape::read(self.cx.tape.clone(), "core", "verdict-descendants", args, live).await?;
        self.cx.respond("descendants", v)
    }

    async fn resolve_outcome(&mut self, id: String, body: String) -> Result<String, HostError> {
        self.cx.guard(Capability::Core)?;
        self.cx.check_request("outcome", body.len())?;
        let body: Value =
            serde_json::from_str(&body).map_err(|e| HostError::Invalid(format!("outcome body is not JSON: {e}")))?;
        if !body.is_object() {
            return Err(HostError::Invalid("outcome body must be a JSON object".into()));
        }
        let core = self.state.client.clone();
        let args = json!({"id": id, "body": body});
        // Core names the new verdict after the body's id, by default `out-<id>`.
        let out_id = body.get("id").and_then(Value::as_str).map_or_else(|| format!("out-{id}"), str::to_string);
        let fresh = || out_id.clone();
        if self.cx.holding {
            let bytes = id.len() + body.to_string().len();
            self.hold(Effect::Outcome { verdict: id.clone(), id: out_id.clone(), body: body.clone() }, bytes)?;
            let live = std::future::ready(Ok(out_id.clone()));
            return tape::write(self.cx.tape.clone(), "core", "resolve-outcome", (Write::Outcome, args.clone()), args, fresh, live)
                .await;
        }
        let live = bounded("core", self.cx.budget(), core.resolve_outcome(&id, &body));
        let out = tape::write(
            self.cx.tape.clone(),
            "core",
            "resolve-outcome",
            (Write::Outcome, args.clone()),
            args,
            fresh,
            live,
        )
        .await?;
        self.state.emitted += 1;
        Ok(out)
    }

    async fn create_case(&mut self, case: String) -> Result<String, HostError> {
        self.cx.guard(Capability::Core)?;
        self.cx.check_request("case", case.len())?;
        let bytes = case.len();
        let case: Value =
            serde_json::from_str(&case).map_err(|e| HostError::Invalid(format!("case is not JSON: {e}")))?;
        let core = self.state.client.clone();
        let args = json!({ "case": case });
        // What core answers: the id and the priority it stores (named, or derived as core does).
        let answer = match &case {
            Value::Object(m) => json!({"id": m.get("id"), "priority": effects::case_priority(m)}),
            _ => json!({"id": null, "priority": "P3"}),
        };
        let fresh = || answer.clone();
        if self.cx.holding {
            let Value::Object(map) = &case else {
                return Err(HostError::Invalid("case must be a JSON object".into()));
            };
            if let Some(key) = effects::CASE_REQUIRED.iter().find(|k| !map.contains_key(**k)) {
                return Err(HostError::Invalid(format!("case needs '{key}' (core requires id, kind, created_at, underlying_verdict)")));
            }
            let case_id = match map.get("id") {
                Some(Value::String(s)) if !s.is_empty() => s.clone(),
                _ => return Err(HostError::Invalid("case needs a non-empty string 'id'".into())),
            };
            self.hold(Effect::Case { id: case_id, case: case.clone() }, bytes)?;
            let live = std::future::ready(Ok(answer.clone()));
            let v = tape::write(self.cx.tape.clone(), "core", "create-case", (Write::Case, case.clone()), args, fresh, live)
                .await?;
            return self.cx.respond("case", v);
        }
        let live = bounded("core", self.cx.budget(), core.create_case(&case));
        let v =
            tape::write(self.cx.tape.clone(), "core", "create-case", (Write::Case, case.clone()), args, fresh, live)
                .await?;
        self.state.emitted += 1;
        self.cx.respond("case", v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_are_checked_before_core_sees_them() {
        assert!(parse_record(RecordKind::Assessment, "[1]").is_err());
        let e = parse_record(RecordKind::Assessment, r#"{"id":"a","kind":"k","created_at":"t","service":null}"#)
            .unwrap_err();
        assert!(matches!(e, HostError::Invalid(m) if m == "record needs a non-empty string 'service'"));
        assert!(parse_record(RecordKind::Verdict, r#"{"id":"v","type":"triage","created_at":"t"}"#).is_ok());
    }
}

//! Every external effect a scheduled cycle makes, as one type from the import to the spool
//! to the sender: held in the room that made it (core's or the arbiter's per-cycle state),
//! written with the cycle's commit, delivered in order after it — or, when the cycle fails,
//! never.
//!
//! Each kind is idempotent at its target where the target allows it: records, outcome
//! resolutions and cases carry the id core stores them under (409 = delivered). The arbiter's
//! API has no id, so a reduction is removed from the spool the moment the arbiter took it,
//! leaving only the window of one write for a crash to repeat it (docs/OUTBOX.md).

use serde_json::{json, Map, Value};

use super::spool::{Entry, NewEntry, What};
use super::Outbox;
use crate::backend::arbiter::ArbiterClient;
use crate::backend::core::CoreClient;
use crate::backend::envelope::Emitted;
use crate::backend::ClientError;

/// One held effect.
#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    /// An assessment or a verdict.
    Record(Emitted),
    /// POST /verdicts/{verdict}/outcome; core stores the new verdict as `id`.
    Outcome { verdict: String, id: String, body: Value },
    /// POST /cases.
    Case { id: String, case: Value },
    /// The arbiter's autonomy reduction: no id, delivered in the task's arbiter lane.
    Autonomy { agent: String, reason: String },
}

/// A scheduled cycle's effects of one room, in call order, held until the cycle commits.
#[derive(Debug, Default)]
pub struct Held {
    pub effects: Vec<Effect>,
    /// Bytes of every held effect, capped at [`MAX_HELD_BYTES`].
    pub bytes: usize,
    /// Why an effect was refused (a cap): the cycle fails when it returns.
    pub refused: Option<String>,
}

impl Held {
    /// Keeps one effect for the commit; every kind counts against [`MAX_HELD_BYTES`], so a
    /// module cannot make the host buffer without bound. `Err` is the module's error text.
    pub fn hold(&mut self, effect: Effect, bytes: usize) -> Result<(), String> {
        if self.bytes + bytes > super::MAX_HELD_BYTES {
            return Err(format!("this cycle's effects exceed {} bytes held for one commit", super::MAX_HELD_BYTES));
        }
        self.bytes += bytes;
        self.effects.push(effect);
        Ok(())
    }
}

impl From<Emitted> for Effect {
    fn from(e: Emitted) -> Self {
        Effect::Record(e)
    }
}

impl Effect {
    /// The spool entry this effect is kept as until delivered.
    pub(super) fn entry(self) -> NewEntry {
        let (what, component, record_id, body) = match self {
            Effect::Record(e) => {
                let what = match e.kind {
                    crate::backend::envelope::RecordKind::Assessment => What::Assessment,
                    crate::backend::envelope::RecordKind::Verdict => What::Verdict,
                };
                // The held text is the spool's body: moved, not serialized again.
                let (component, id) = (e.component.clone(), e.id.clone());
                return NewEntry { what, component, record_id: id, body: e.into_text() };
            }
            Effect::Outcome { verdict, id, body } => (What::Outcome, verdict, id, body),
            Effect::Case { id, case } => (What::Case, String::new(), id, case),
            Effect::Autonomy { agent, reason } => {
                (What::Autonomy, String::new(), String::new(), json!({"agent": agent, "reason": reason}))
            }
        };
        NewEntry { what, component, record_id, body: body.to_string() }
    }
}

/// Keys core requires of a case (§9 of its contract: else 422 `missing_fields`), checked
/// when the module calls so it gets `invalid` at once rather than a refusal in the spool.
pub const CASE_REQUIRED: [&str; 4] = ["id", "kind", "created_at", "underlying_verdict"];

/// The priority core gives a case that names none: production + incident P0, production P1,
/// staging + incident P1, staging P2, anything else P3 — so a held case answers the module
/// what core will store.
pub fn case_priority(case: &Map<String, Value>) -> Value {
    if let Some(p) = case.get("priority") {
        return p.clone();
    }
    let incident = case.get("has_active_incident").and_then(Value::as_bool).unwrap_or(false);
    let p = match (case.get("blast_radius").and_then(Value::as_str), incident) {
        (Some("production"), true) => "P0",
        (Some("production"), false) | (Some("staging"), true) => "P1",
        (Some("staging"), false) => "P2",
        _ => "P3",
    };
    Value::String(p.into())
}

/// Delivers an outcome, a case or an arbiter reduction. `Ok` means the target has it (409
/// from core included); a refusal comes back as the client's error for the sender to judge.
pub async fn deliver(
    outbox: &Outbox,
    arbiter: Option<&ArbiterClient>,
    core: &CoreClient,
    e: &Entry,
) -> Result<(), ClientError> {
    let body: Value = serde_json::from_str(&e.body).map_err(|err| ClientError::Rejected {
        status: 0,
        code: "spool".into(),
        detail: Value::String(format!("spooled {} is not JSON: {err}", e.what.as_str())),
    })?;
    let r = match e.what {
        What::Outcome => core.resolve_outcome(&e.component, &body).await.map(|_| ()),
        What::Case => core.create_case(&body).await.map(|_| ()),
        What::Autonomy => return deliver_autonomy(outbox, arbiter, e, &body).await,
        other => unreachable!("{} is not an effect delivered here", other.as_str()),
    };
    match r {
        Err(ClientError::Rejected { status: 409, .. }) => {
            tracing::debug!(task = %e.lane, id = %e.record_id, what = e.what.as_str(), duplicate = true, "core already has it");
            Ok(())
        }
        Ok(()) => {
            tracing::debug!(task = %e.lane, id = %e.record_id, what = e.what.as_str(), "delivered");
            Ok(())
        }
        Err(err) => Err(err),
    }
}

async fn deliver_autonomy(
    outbox: &Outbox,
    arbiter: Option<&ArbiterClient>,
    e: &Entry,
    body: &Value,
) -> Result<(), ClientError> {
    let Some(arbiter) = arbiter else {
        return Err(ClientError::Rejected {
            status: 0,
            code: "not_configured".into(),
            detail: Value::String("arbiter not configured: start the host with --arbiter-url".into()),
        });
    };
    let agent = body.get("agent").and_then(Value::as_str).unwrap_or_default();
    let reason = body.get("reason").and_then(Value::as_str).unwrap_or_default();
    // One attempt per pass: the sender owns retrying.
    arbiter.once().reduce_autonomy(agent, reason).await?;
    // Removed now, not with the pass's batch: the arbiter cannot tell a repeat, so the window
    // in which a crash sends it again is this one write.
    let seq = e.seq;
    if let Err(err) = outbox.with(move |s| s.delivered(&[seq])).await {
        tracing::error!(task = %e.lane, error = %err, "cannot remove a delivered autonomy reduction; it may be sent again");
    }
    tracing::info!(task = %e.lane, agent, "autonomy reduction delivered to the arbiter");
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use super::*;
    use crate::backend::envelope::RecordKind;
    use crate::outbox::sender::{Sender, Targets};
    use crate::outbox::spool::arbiter_lane;
    use crate::outbox::OutboxConfig;
    use crate::test_support::{self, HttpFake, Matcher, Step};

    fn record(id: &str) -> Effect {
        let Value::Object(record) = json!({"id": id, "kind": "k", "service": "s", "created_at": "t"}) else {
            unreachable!()
        };
        Effect::Record(Emitted::new(RecordKind::Assessment, "m".into(), record))
    }

    /// A committed cycle's effects leave in the order the module made them, the state last;
    /// core's 409 counts as delivered, its 404 on an outcome (the verdict is gone) sets the
    /// entry aside; the reduction goes to the arbiter in its own lane.
    #[tokio::test]
    async fn a_commit_delivers_every_effect_in_call_order() {
        let core = HttpFake::start(vec![
            Step::post("/assessments").body_contains(r#""id":"asm-1""#).reply(201, r#"{"id":"asm-1"}"#),
            Step::post("/verdicts/vrd-1/outcome")
                .body(Matcher::Json(json!({"resolution": "ok"})))
                .reply(409, r#"{"error":"duplicate"}"#),
            Step::post("/verdicts/gone/outcome").reply(404, r#"{"error":"not_found"}"#),
            Step::post("/cases").body_contains(r#""id":"case-1""#).reply(201, r#"{"id":"case-1","priority":"P3"}"#),
            Step::put("/component-state/t").reply(200, "{}"),
        ]);
        let arbiter = HttpFake::start(vec![Step::post("/api/v1/governance/reduce")
            .body(Matcher::Json(json!({"agent": "bot", "reason": "why"})))
            .reply(200, "{}")]);
        let services = test_support::services(|c| {
            c.core.core_url = core.url().into();
            c.arbiter.arbiter_url = Some(arbiter.url().into());
        });
        let dir = tempfile::tempdir().unwrap();
        let config = OutboxConfig::in_dir(dir.path());
        let outbox = Outbox::open(config).unwrap();
        let case = json!({"id": "case-1", "kind": "k", "created_at": "t", "underlying_verdict": "vrd-1"});
        let held = vec![
            record("asm-1"),
            Effect::Autonomy { agent: "bot".into(), reason: "why".into() },
            Effect::Outcome { verdict: "vrd-1".into(), id: "out-vrd-1".into(), body: json!({"resolution": "ok"}) },
            Effect::Outcome { verdict: "gone".into(), id: "out-gone".into(), body: json!({}) },
            Effect::Case { id: "case-1".into(), case },
        ];
        outbox.commit("t", "m", "1", Some(&json!({"n": 1}).into()), held).await.unwrap();
        assert_eq!(outbox.backlog().records, 5);
        // The reduction waits in the task's arbiter lane, not behind (or in front of) core's.
        let lane = outbox.with(|s| s.head(&arbiter_lane("t"), 10)).await.unwrap();
        assert_eq!(lane.iter().map(|e| e.what).collect::<Vec<_>>(), [What::Autonomy]);
        let targets = Targets {
            core: services.backends.core.clone(),
            arbiter: services.backends.arbiter.clone(),
            wake: services.wake.clone(),
        };
        let sender = Sender::new(outbox.clone(), targets, Arc::new(()), "i".into());
        sender.drain(Duration::from_secs(30)).await;
        let b = outbox.backlog();
        assert_eq!((b.entries, b.rejected), (0, 1), "{b:?}");
        let sent: Vec<String> = core.seen().iter().map(|r| format!("{} {}", r.method, r.path)).collect();
        assert_eq!(
            sent,
            [
                "POST /assessments",
                "POST /verdicts/vrd-1/outcome",
                "POST /verdicts/gone/outcome",
                "POST /cases",
                "PUT /component-state/t"
            ]
        );
        core.finish();
        arbiter.finish();
    }

    #[test]
    fn case_priority_is_what_core_derives() {
        let case = |v: Value| v.as_object().unwrap().clone();
        let p = |v| case_priority(&case(v));
        assert_eq!(p(json!({"blast_radius": "production", "has_active_incident": true})), "P0");
        assert_eq!(p(json!({"blast_radius": "production"})), "P1");
        assert_eq!(p(json!({"blast_radius": "staging", "has_active_incident": true})), "P1");
        assert_eq!(p(json!({"blast_radius": "staging"})), "P2");
        assert_eq!(p(json!({"blast_radius": "dev", "has_active_incident": true})), "P3");
        assert_eq!(p(json!({})), "P3");
        assert_eq!(p(json!({"priority": "P0", "blast_radius": "dev"})), "P0");
    }
}

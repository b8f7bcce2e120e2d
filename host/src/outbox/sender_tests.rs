//! The sender against a scripted core: every class of answer, the retry window, reporting,
//! and delivery that does not wait for a commit.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;

use super::super::spool::{NewEntry, What};
use super::super::{Outbox, OutboxConfig};
use super::{Sender, Targets};
use crate::backend::envelope::Emitted;
use crate::backend::envelope::RecordKind;
use crate::test_support::{self, HttpFake, Step};

fn emitted(id: &str) -> Emitted {
    let Value::Object(record) = json!({"id": id, "kind": "k", "service": "s", "created_at": "t"}) else {
        unreachable!()
    };
    Emitted::new(RecordKind::Assessment, "m".into(), record)
}

struct Rig {
    outbox: Arc<Outbox>,
    sender: Arc<Sender>,
    _dir: tempfile::TempDir,
}

fn rig(core: &HttpFake, window: Duration) -> Rig {
    let dir = tempfile::tempdir().unwrap();
    let config = OutboxConfig {
        dir: dir.path().into(),
        max_bytes: 1 << 30,
        max_age: Duration::from_secs(3600),
        retry_window: window,
    };
    let outbox = Outbox::open(config).unwrap();
    let url = core.url().to_string();
    let services = test_support::services(|c| c.core.core_url = url);
    let targets = Targets { core: services.backends.core.clone(), arbiter: None, wake: services.wake.clone() };
    let sender = Arc::new(Sender::new(outbox.clone(), targets, Arc::new(()), "test".into()));
    Rig { outbox, sender, _dir: dir }
}

fn core_error(code: &str) -> String {
    json!({"error": code, "detail": {"why": code}}).to_string()
}

/// Passes (ignoring backoff, as the run loop would after waiting) until the spool is empty.
async fn drain(r: &Rig) {
    let core = r.sender.own_core();
    for _ in 0..20 {
        r.sender.pass(&core, true).await;
        if r.outbox.backlog().entries == 0 {
            return;
        }
    }
    panic!("spool not drained: {:?}", r.outbox.backlog());
}

#[tokio::test]
async fn answers_decide_by_class_and_only_a_4xx_is_set_aside() {
    let core = HttpFake::start(vec![
        // "database is locked": transient, however often.
        Step::post("/assessments").body_contains("rec-a").reply(500, &core_error("internal_error")).times(7),
        Step::post("/assessments").body_contains("rec-a").reply(201, r#"{"id":"rec-a"}"#),
        Step::post("/assessments").body_contains("rec-b").reply(429, "slow down"),
        Step::post("/assessments").body_contains("rec-b").close(),
        Step::post("/assessments").body_contains("rec-b").reply(201, r#"{"id":"rec-b"}"#),
        Step::post("/assessments").body_contains("rec-c").reply(400, &core_error("assessment_invalid")),
        Step::post("/assessments").body_contains("rec-d").reply(422, &core_error("assessment_invalid")),
        Step::post("/assessments").body_contains("rec-e").reply(409, &core_error("duplicate")),
        Step::post("/assessments").body_contains("rec-f").reply(201, r#"{"id":"rec-f"}"#),
    ]);
    let r = rig(&core, Duration::from_secs(3600));
    let held = ["rec-a", "rec-b", "rec-c", "rec-d", "rec-e", "rec-f"].map(emitted).to_vec();
    r.outbox.commit("t", "m", "1", None, held).await.unwrap();
    let first = r.sender.pass(&r.sender.own_core(), false).await;
    assert_eq!(first.progress, 0, "the lane stops at its first entry core cannot take");
    assert!(first.next_due.is_some(), "a failed lane backs off");
    let report = r.outbox.report();
    assert_eq!(report["retrying"], 1, "{report}");
    assert!(report["last_error"].as_str().unwrap().contains("internal_error"), "{report}");
    assert!(report["oldest_failure_age_seconds"].is_u64(), "{report}");
    let again = r.sender.pass(&r.sender.own_core(), false).await;
    assert_eq!(again.progress, 0, "a backing-off lane is not tried before its time");
    drain(&r).await;
    core.finish();
    let aside = r.outbox.with(|s| s.aside()).await.unwrap();
    let got: Vec<(&str, u16)> = aside.iter().map(|a| (a.record_id.as_str(), a.status)).collect();
    assert_eq!(got, [("rec-c", 400), ("rec-d", 422)]);
    let answer: Value = serde_json::from_str(&aside[0].error).unwrap();
    assert_eq!(answer, json!({"error": "assessment_invalid", "detail": {"why": "assessment_invalid"}}));
    assert!(aside[0].body.contains("rec-c"));
    let b = r.outbox.backlog();
    assert_eq!((b.entries, b.rejected, b.retrying), (0, 2, 0), "{b:?}");
}

#[tokio::test]
async fn an_entry_past_its_window_is_set_aside_with_the_last_error_and_a_corrupt_body_at_once() {
    let core = HttpFake::start(vec![
        Step::post("/assessments").body_contains("rec-a").reply(503, "unavailable"),
        Step::post("/assessments").body_contains("rec-b").reply(500, &core_error("internal_error")),
        Step::post("/assessments").body_contains("rec-c").reply(201, r#"{"id":"rec-c"}"#),
    ]);
    let r = rig(&core, Duration::ZERO);
    let corrupt =
        NewEntry { what: What::Assessment, component: "m".into(), record_id: "rec-x".into(), body: "{oops".into() };
    r.outbox.with(move |s| s.commit("u", &[corrupt], None)).await.unwrap();
    r.outbox.commit("t", "m", "1", None, ["rec-a", "rec-b", "rec-c"].map(emitted).to_vec()).await.unwrap();
    drain(&r).await;
    core.finish();
    let aside = r.outbox.with(|s| s.aside()).await.unwrap();
    let got: Vec<(&str, u16)> = aside.iter().map(|a| (a.record_id.as_str(), a.status)).collect();
    assert_eq!(got, [("rec-x", 0), ("rec-a", 0), ("rec-b", 500)]);
    assert!(aside[0].error.contains("not a JSON object"), "{}", aside[0].error);
    assert!(aside[1].error.contains("retry window of 0 s ran out after 1 attempts"), "{}", aside[1].error);
    assert!(aside[1].error.contains("HTTP 503"), "{}", aside[1].error);
    assert!(aside[2].error.contains("internal_error"), "{}", aside[2].error);
}

#[tokio::test]
async fn delivery_goes_on_without_a_commit_while_entries_are_due() {
    let n = 700; // more than two batches in one lane
    let core = HttpFake::start(vec![Step::post("/assessments").reply(201, "{}").times(n)]);
    let r = rig(&core, Duration::from_secs(3600));
    let held: Vec<Emitted> = (0..n).map(|i| emitted(&format!("rec-{i}"))).collect();
    r.outbox.commit("t", "m", "1", None, held).await.unwrap();
    let stop = CancellationToken::new();
    let running = tokio::spawn(r.sender.clone().run(stop.clone()));
    // One commit, one kick: the rest of the lane must follow without another.
    let mut waited = 0;
    while r.outbox.backlog().entries > 0 {
        assert!(waited < 600, "delivery stalled after the first pass: {:?}", r.outbox.backlog());
        tokio::time::sleep(Duration::from_millis(100)).await;
        waited += 1;
    }
    stop.cancel();
    running.await.unwrap();
    core.finish();
}

#[test]
fn an_entrys_failures_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let first = {
        let mut s = super::super::spool::Spool::open(dir.path()).unwrap();
        let e = NewEntry { what: What::Assessment, component: "m".into(), record_id: "a".into(), body: "{}".into() };
        s.commit("t", &[e], None).unwrap();
        let seq = s.head("t", 1).unwrap()[0].seq;
        s.failed(seq, 500, "locked").unwrap();
        s.failed(seq, 500, "locked").unwrap()
    };
    let mut s = super::super::spool::Spool::open(dir.path()).unwrap();
    let seq = s.head("t", 1).unwrap()[0].seq;
    let after = s.failed(seq, 0, "down").unwrap();
    assert_eq!((after.attempts, after.first_failed_ms), (3, first.first_failed_ms));
    let b = s.backlog().unwrap();
    assert_eq!((b.retrying, b.last_error.as_deref()), (1, Some("down")));
}

fn slo_status(id: &str) -> Emitted {
    let Value::Object(record) = json!({"id": id, "kind": "slo_status", "service": "s", "created_at": "t"}) else {
        unreachable!()
    };
    Emitted::new(RecordKind::Assessment, "m".into(), record)
}

/// A cycle's slo_status records are in flight together, never more than
/// `--delivery-concurrency` of them, and the cycle's portfolio and state go out only after
/// all of them; a lane of another kind goes one at a time.
#[tokio::test]
async fn a_cycles_slo_status_go_out_together_and_its_portfolio_and_state_after_them() {
    let (n, concurrency) = (12, 4);
    let core = HttpFake::start(vec![
        Step::post("/assessments").body_contains("slo_status").reply(201, "{}").times(n),
        Step::post("/assessments").body_contains("portfolio").reply(201, "{}"),
        Step::put("/component-state/m").reply(200, r#"{"ok":true}"#),
    ]);
    let mut r = rig(&core, Duration::from_secs(3600));
    let services = test_support::services(|c| c.core.core_url = core.url().into());
    r.sender = Arc::new(
        Sender::new(r.outbox.clone(), targets(&services), Arc::new(()), "t".into()).with_concurrency(concurrency),
    );
    let mut held: Vec<Emitted> = (0..n).map(|i| slo_status(&format!("slo-{i}"))).collect();
    let Value::Object(p) =
        json!({"id": "portfolio", "kind": "portfolio_status", "service": "__portfolio__", "created_at": "t"})
    else {
        unreachable!()
    };
    held.push(Emitted::new(RecordKind::Assessment, "m".into(), p));
    r.outbox.commit("m", "m", "1", Some(&json!({"n": 1}).into()), held).await.unwrap();
    drain(&r).await;
    core.finish();
    let seen: Vec<String> = core.seen().iter().map(|s| s.path.clone() + " " + &s.body).collect();
    assert!(seen[..n].iter().all(|s| s.contains("slo_status")), "{seen:#?}");
    assert!(seen[n].contains("portfolio"), "the portfolio went before its slo_status records: {seen:#?}");
    assert!(seen[n + 1].starts_with("/component-state/m"), "the state went before the records: {seen:#?}");
    let pace = r.sender.pace.lock().unwrap().report(concurrency);
    assert_eq!(pace["delivered_total"], n as u64 + 2, "{pace}");
    assert_eq!(r.sender.peak_in_flight(), concurrency, "slo_status records were not in flight together");

    // Records of another kind: strictly one at a time.
    let core = HttpFake::start(vec![Step::post("/assessments").reply(201, "{}").times(n)]);
    let mut r = rig(&core, Duration::from_secs(3600));
    let services = test_support::services(|c| c.core.core_url = core.url().into());
    r.sender = Arc::new(
        Sender::new(r.outbox.clone(), targets(&services), Arc::new(()), "t".into()).with_concurrency(concurrency),
    );
    let held: Vec<Emitted> = (0..n).map(|i| emitted(&format!("rec-{i}"))).collect();
    r.outbox.commit("m", "m", "1", None, held).await.unwrap();
    drain(&r).await;
    core.finish();
    let ids: Vec<String> = core.seen().iter().map(|s| s.body.clone()).collect();
    for (i, body) in ids.iter().enumerate() {
        assert!(body.contains(&format!("\"rec-{i}\"")), "record {i} out of order: {ids:#?}");
    }
    assert_eq!(r.sender.peak_in_flight(), 1, "records of an ordered kind overlapped");
}

fn targets(services: &crate::capability::Services) -> Targets {
    Targets { core: services.backends.core.clone(), arbiter: None, wake: services.wake.clone() }
}

//! The core import's rules, in-process against the scripted fake: the grant, the request
//! cap, the cycle deadline, and who a record may say it is from (CloudEvents `source`,
//! `producer`, emission grants).

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::bindings::latest::nthlayer::worker::core::{Host, Submission};
use crate::bindings::latest::nthlayer::worker::types::RecordKind;
use crate::bindings::HostError;
use crate::policy::grants::Grants;
use crate::policy::table::Capability;
use crate::outbox::Effect;
use crate::policy::emissions::{EmitRights, Emission, Emits};
use crate::policy::limits::Limits;
use crate::capability::HasRooms;
use crate::store::StoreData;
use crate::test_support::{self, HttpFake, Step};

fn grants() -> Grants {
    let emits = Emits::default().with(Emission::parse("assessment:slo_status").unwrap().unwrap());
    // A 0.2.0-style module (declares nothing): what is granted passes.
    test_support::granted(&[Capability::Core]).emitting(EmitRights::new(emits, None))
}

fn record(extra: Value) -> String {
    let mut r = json!({"id": "asm-1", "service": "checkout", "kind": "slo_status",
        "created_at": "2026-01-01T00:00:00Z", "data": {}});
    r.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
    r.to_string()
}

fn store(fake: &HttpFake, grants: Grants, limits: Limits) -> StoreData {
    let url = fake.url().to_string();
    let services = test_support::services(|c| {
        c.core.core_url = url;
        c.core.deployment_id = "prod-eu".into();
    });
    test_support::store("mine", services, grants, limits)
}

#[tokio::test]
async fn without_the_grant_nothing_reaches_core_and_the_error_names_the_flag() {
    let fake = HttpFake::start(vec![]);
    let mut s = store(&fake, Grants::none(), Limits::default());
    let e = s.core().get_manifests().await.unwrap_err();
    let want = "module mine has no 'core' grant; start the host with --grant mine=core (currently: log only)";
    assert!(matches!(&e, HostError::Denied(m) if m == want), "{e:?}");
    assert!(matches!(s.core().submit_assessment(record(json!({})), None).await, Err(HostError::Denied(_))));
    assert!(matches!(s.core().create_case("{}".into()).await, Err(HostError::Denied(_))));
    fake.finish();
}

#[tokio::test]
async fn requests_over_the_cap_are_invalid_naming_it() {
    let fake = HttpFake::start(vec![]);
    let limits = Limits { max_request_bytes: 256, ..Limits::default() };
    let mut s = store(&fake, grants(), limits);
    let big = record(json!({"data": {"note": "x".repeat(300)}}));
    let e = s.core().submit_assessment(big.clone(), None).await.unwrap_err();
    let want = format!("record of {} bytes exceeds the limit of 256 bytes (max_request_bytes)", big.len());
    assert!(matches!(&e, HostError::Invalid(m) if *m == want), "{e:?}");
    let e = s.core().resolve_outcome("v-1".into(), json!({"note": "x".repeat(300)}).to_string()).await.unwrap_err();
    assert!(matches!(&e, HostError::Invalid(m) if m.starts_with("outcome of") && m.contains("max_request_bytes")));
    fake.finish();
}

#[tokio::test]
async fn a_slow_core_is_cut_at_the_cycle_deadline() {
    let fake = HttpFake::start(vec![Step::get("/manifests").delay(Duration::from_secs(3)).reply(200, "[]")]);
    let mut s = store(&fake, grants(), test_support::limits_with_wall(Duration::from_millis(300)));
    let t = Instant::now();
    let e = s.core().get_manifests().await.unwrap_err();
    assert!(matches!(&e, HostError::Timeout(m) if m.starts_with("core did not answer within")), "{e:?}");
    assert!(t.elapsed() < Duration::from_secs(2), "took {:?}", t.elapsed());
}

#[tokio::test]
async fn a_record_is_from_the_module_or_its_sub_components_only() {
    let fake = HttpFake::start(vec![
        Step::post("/assessments")
            .body_contains(r#""source":"urn:nthlayer:mine.gate:prod-eu""#)
            .reply(201, r#"{"id":"asm-1"}"#),
        Step::post("/assessments")
            .body_contains(r#""source":"urn:nthlayer:mine:prod-eu""#)
            .reply(201, r#"{"id":"asm-1"}"#),
    ]);
    let mut s = store(&fake, grants(), Limits::default());
    for other in ["observe", "mine.", "mine-x", "minex.gate"] {
        let e = s.core().submit_assessment(record(json!({})), Some(other.into())).await.unwrap_err();
        let want = format!("source {other:?} must be \"mine\" or \"mine.<name>\"");
        assert!(matches!(&e, HostError::Invalid(m) if *m == want), "{other}: {e:?}");
    }
    let e = s.core().submit_assessment(record(json!({"producer": "nthlayer-observe"})), None).await.unwrap_err();
    assert!(
        matches!(&e, HostError::Denied(m) if m.contains("\"nthlayer-observe\"") && m.contains("\"nthlayer-mine\""))
    );
    let e = s.core().submit_assessment(record(json!({"kind": "burn_rate"})), None).await.unwrap_err();
    let want = "module mine may not emit assessment \"burn_rate\"; start the host with \
        --grant mine=core,assessment:slo_status,assessment:burn_rate (emits now: assessment:slo_status)";
    assert!(matches!(&e, HostError::Denied(m) if m == want), "{e:?}");

    let id = s.core().submit_assessment(record(json!({"producer": "nthlayer-mine"})), Some("mine.gate".into())).await;
    assert_eq!(id.unwrap(), "asm-1");
    assert_eq!(s.core().submit_assessment(record(json!({})), None).await.unwrap(), "asm-1");
    fake.finish();
    let sent: Value = serde_json::from_str(&fake.seen()[0].body).unwrap();
    assert_eq!(sent["data"]["emitted_by"], json!({"module": "mine", "version": "1.0.0"}));
    assert_eq!(s.rooms.core.emitted, 2);
}

/// A 0.3.0 module emits only what it declared, even when the operator granted more; the
/// denial is the module's fault and says so (no grant would fix it).
#[tokio::test]
async fn a_declaring_module_emits_only_what_it_declared() {
    let fake = HttpFake::start(vec![Step::post("/assessments")
        .body_contains(r#""kind":"slo_status""#)
        .reply(201, r#"{"id":"asm-1"}"#)]);
    let granted = Emits::default()
        .with(Emission::parse("assessment:slo_status").unwrap().unwrap())
        .with(Emission::parse("assessment:burn_rate").unwrap().unwrap());
    let declared = Emits::default().with(Emission::parse("assessment:slo_status").unwrap().unwrap());
    let rights = EmitRights::new(granted, Some(declared));
    let mut s = store(&fake, test_support::granted(&[Capability::Core]).emitting(rights), Limits::default());
    let e = s.core().submit_assessment(record(json!({"kind": "burn_rate"})), None).await.unwrap_err();
    assert!(
        matches!(&e, HostError::Denied(m) if m.contains("did not declare it in describe() emits (declares: assessment:slo_status)")),
        "{e:?}"
    );
    assert_eq!(s.core().submit_assessment(record(json!({})), None).await.unwrap(), "asm-1");
    fake.finish();
    assert_eq!(s.rooms.core.emitted, 1);
}

/// A scheduled cycle's writes are effects held for its commit: the module gets what core
/// will answer, nothing reaches core, and the held list keeps the call order.
#[tokio::test]
async fn a_scheduled_cycle_holds_every_write_in_call_order_and_sends_nothing() {
    let fake = HttpFake::start(vec![]);
    let mut s = store(&fake, grants(), Limits::default());
    s.cx.holding = true;
    assert_eq!(s.core().submit_assessment(record(json!({})), None).await.unwrap(), "asm-1");
    assert_eq!(s.core().resolve_outcome("vrd-1".into(), r#"{"resolution":"ok"}"#.into()).await.unwrap(), "out-vrd-1");
    assert_eq!(s.core().resolve_outcome("vrd-2".into(), r#"{"id":"mine-2"}"#.into()).await.unwrap(), "mine-2");
    let case = json!({"id": "case-1", "kind": "incident", "created_at": "t", "underlying_verdict": "vrd-1",
        "blast_radius": "production", "has_active_incident": true});
    let answer: Value = serde_json::from_str(&s.core().create_case(case.to_string()).await.unwrap()).unwrap();
    assert_eq!(answer, json!({"id": "case-1", "priority": "P0"}));
    // What core would refuse is refused now, and nothing is held for it.
    let e = s.core().create_case(json!({"id": "case-2", "kind": "incident", "created_at": "t"}).to_string()).await;
    assert!(matches!(&e, Err(HostError::Invalid(m)) if m.contains("'underlying_verdict'")), "{e:?}");
    let e = s.core().resolve_outcome("vrd-3".into(), "[]".into()).await;
    assert!(matches!(&e, Err(HostError::Invalid(_))), "{e:?}");
    let held = std::mem::take(&mut s.rooms.core.held.effects);
    let kinds: Vec<String> = held
        .iter()
        .map(|e| match e {
            Effect::Record(r) => format!("record {}", r.id),
            Effect::Outcome { verdict, id, .. } => format!("outcome {verdict} {id}"),
            Effect::Case { id, .. } => format!("case {id}"),
            Effect::Autonomy { agent, .. } => format!("autonomy {agent}"),
        })
        .collect();
    assert_eq!(kinds, ["record asm-1", "outcome vrd-1 out-vrd-1", "outcome vrd-2 mine-2", "case case-1"]);
    assert_eq!(held[1], Effect::Outcome { verdict: "vrd-1".into(), id: "out-vrd-1".into(), body: json!({"resolution": "ok"}) });
    assert_eq!(s.rooms.core.emitted, 4);
    fake.finish();
    assert!(fake.seen().is_empty(), "a held write reached core: {:?}", fake.seen());
}

#[tokio::test]
async fn every_held_effect_counts_against_the_cycles_cap() {
    let fake = HttpFake::start(vec![]);
    let mut s = store(&fake, grants(), Limits::default());
    s.cx.holding = true;
    s.rooms.core.held.bytes = crate::outbox::MAX_HELD_BYTES - 8;
    let e = s.core().resolve_outcome("vrd-1".into(), r#"{"resolution":"ok"}"#.into()).await.unwrap_err();
    assert!(matches!(&e, HostError::Invalid(m) if m.contains("this cycle's effects exceed")), "{e:?}");
    assert!(s.rooms.core.held.refused.is_some(), "the cycle must fail, not commit without the refused effect");
    let case = json!({"id": "c", "kind": "k", "created_at": "t", "underlying_verdict": "v"});
    assert!(matches!(s.core().create_case(case.to_string()).await, Err(HostError::Invalid(_))));
    assert!(s.rooms.core.held.effects.is_empty());
    fake.finish();
}

/// Past `max_records` the submit fails naming module, task and limit, and the cycle is marked
/// to fail (a module ignoring the error must not commit a truncated cycle); each held record
/// counts what holding it takes.
#[tokio::test]
async fn a_cycle_holds_at_most_max_records_and_counts_their_real_size() {
    let fake = HttpFake::start(vec![]);
    let mut s = store(&fake, grants(), Limits { max_records: 2, ..Limits::default() });
    s.cx.holding = true;
    let text = record(json!({"id": "asm-1"}));
    s.core().submit_assessment(text.clone(), None).await.unwrap();
    s.core().submit_assessment(record(json!({"id": "asm-2"})), None).await.unwrap();
    // Counted at what is held: each record's text and the struct around it.
    let counted: usize =
        s.rooms.core.held.effects.iter().map(|e| if let Effect::Record(r) = e { r.held_bytes() } else { 0 }).sum();
    assert_eq!(s.rooms.core.held.bytes, counted);
    assert!(counted > 2 * text.len(), "held {counted} bytes for 2 records");
    assert!(s.rooms.core.held.refused.is_none());
    let e = s.core().submit_assessment(record(json!({"id": "asm-3"})), None).await.unwrap_err();
    let want = r#"module "mine" task "mine" submitted more than 2 records in one cycle"#;
    assert!(matches!(&e, HostError::Invalid(m) if m.contains(want) && m.contains("max_records")), "{e:?}");
    assert_eq!(s.rooms.core.held.effects.len(), 2);
    assert!(s.rooms.core.held.refused.as_deref().is_some_and(|r| r.contains(want)));
    fake.finish();
}

/// One-shot commands (no holding) keep calling core directly.
#[tokio::test]
async fn without_holding_outcomes_and_cases_go_to_core_at_once() {
    let fake = HttpFake::start(vec![
        Step::post("/verdicts/vrd-1/outcome").reply(201, r#"{"id":"out-vrd-1"}"#),
        Step::post("/cases").reply(201, r#"{"id":"case-1","priority":"P3"}"#),
    ]);
    let mut s = store(&fake, grants(), Limits::default());
    assert_eq!(s.core().resolve_outcome("vrd-1".into(), "{}".into()).await.unwrap(), "out-vrd-1");
    let case = json!({"id": "case-1", "kind": "k", "created_at": "t", "underlying_verdict": "vrd-1"});
    s.core().create_case(case.to_string()).await.unwrap();
    fake.finish();
}

/// A one-shot command posts directly, so it announces the record itself, through the same
/// function the sender calls on delivery (outbox/posted.rs): a subscribed task wakes. A held
/// record wakes no one until the sender delivers it.
#[tokio::test]
async fn a_direct_post_wakes_subscribers_and_a_held_one_does_not() {
    use crate::backend::envelope::RecordKind as Record;
    use crate::wake::WakeRule;
    let fake = HttpFake::start(vec![Step::post("/assessments").reply(201, r#"{"id":"asm-1"}"#)]);
    let mut s = store(&fake, grants(), Limits::default());
    let rule = WakeRule { record: Record::Assessment, kind: "slo_status".into(), tests: vec![] };
    let watcher = s.rooms.core.services.wake.subscribe("watcher", &[rule]);

    s.cx.holding = true;
    s.core().submit_assessment(record(json!({})), None).await.unwrap();
    assert!(watcher.cause().is_none(), "a held record wakes no one before its delivery");

    s.cx.holding = false;
    s.core().submit_assessment(record(json!({})), None).await.unwrap();
    fake.finish();
    let (cause, _) = watcher.cause().expect("the direct post woke the subscriber");
    assert!(cause.contains("asm-1"), "{cause}");
}

fn submission(kind: RecordKind, text: String) -> Submission {
    Submission { kind, record: text, source: None }
}

/// A batch is the single calls in one crossing: a kind the module may not emit is refused
/// for that entry only, the others are held in list order with their own ids, and each
/// counts as one record.
#[tokio::test]
async fn a_batch_answers_each_record_on_its_own_and_holds_the_rest_in_order() {
    let fake = HttpFake::start(vec![]);
    let mut s = store(&fake, grants(), Limits::default());
    s.cx.holding = true;
    let batch = vec![
        submission(RecordKind::Assessment, record(json!({"id": "asm-1"}))),
        submission(RecordKind::Assessment, record(json!({"id": "asm-2", "kind": "burn_rate"}))),
        submission(RecordKind::Assessment, record(json!({"id": "asm-3"}))),
        submission(RecordKind::Verdict, json!({"id": "vrd-1", "type": "triage", "created_at": "t"}).to_string()),
    ];
    let answers = s.core().submit_batch(batch).await;
    assert_eq!(answers.len(), 4);
    assert_eq!(answers[0].as_deref().ok(), Some("asm-1"), "{:?}", answers[0]);
    assert!(
        matches!(&answers[1], Err(HostError::Denied(m)) if m.contains("may not emit assessment \"burn_rate\"")),
        "{:?}",
        answers[1]
    );
    assert_eq!(answers[2].as_deref().ok(), Some("asm-3"), "{:?}", answers[2]);
    assert!(matches!(&answers[3], Err(HostError::Denied(m)) if m.contains("verdict \"triage\"")), "{:?}", answers[3]);
    let held: Vec<String> = s
        .rooms
        .core
        .held
        .effects
        .iter()
        .map(|e| match e {
            Effect::Record(r) => r.id.clone(),
            other => format!("{other:?}"),
        })
        .collect();
    assert_eq!(held, ["asm-1", "asm-3"]);
    assert_eq!(s.rooms.core.emitted, 2);
    fake.finish();
    assert!(fake.seen().is_empty());
}

/// A batch that crosses max_records part-way fails the cycle as the single call does,
/// naming module, task and limit; entries past the cap are refused too.
#[tokio::test]
async fn a_batch_crossing_max_records_fails_the_cycle() {
    let fake = HttpFake::start(vec![]);
    let mut s = store(&fake, grants(), Limits { max_records: 2, ..Limits::default() });
    s.cx.holding = true;
    let batch: Vec<Submission> = (1..=4)
        .map(|n| submission(RecordKind::Assessment, record(json!({"id": format!("asm-{n}")}))))
        .collect();
    let answers = s.core().submit_batch(batch).await;
    assert!(answers[0].is_ok() && answers[1].is_ok(), "{answers:?}");
    let want = r#"module "mine" task "mine" submitted more than 2 records in one cycle"#;
    for a in &answers[2..] {
        assert!(matches!(a, Err(HostError::Invalid(m)) if m.contains(want) && m.contains("max_records")), "{a:?}");
    }
    assert!(s.rooms.core.held.refused.as_deref().is_some_and(|r| r.contains(want)));
    fake.finish();
}

/// Past the per-call cap nothing is submitted and every entry says why.
#[tokio::test]
async fn a_batch_over_the_count_cap_submits_nothing() {
    let fake = HttpFake::start(vec![]);
    let mut s = store(&fake, grants(), Limits::default());
    s.cx.holding = true;
    let one = submission(RecordKind::Assessment, record(json!({})));
    let answers = s.core().submit_batch(vec![one; crate::policy::caps::SUBMIT_BATCH + 1]).await;
    let want = r#"module "mine" task "mine": submit batch: 1025 entries exceed the cap of 1024"#;
    assert!(answers.iter().all(|a| matches!(a, Err(HostError::Invalid(m)) if m == want)), "{:?}", answers[0]);
    assert!(s.rooms.core.held.effects.is_empty() && s.rooms.core.held.refused.is_none());
    fake.finish();
}

//! The arbiter import's rules, in-process against the scripted fake: the grant, the request
//! cap, "not configured", the cycle deadline cutting the client's 3 × 10 s schedule short.

use std::time::{Duration, Instant};

use crate::bindings::latest::nthlayer::worker::arbiter::Host;
use crate::bindings::HostError;
use crate::policy::grants::Grants;
use crate::policy::table::Capability;
use crate::policy::limits::Limits;
use crate::capability::HasRooms;
use crate::store::StoreData;
use crate::test_support::{self, HttpFake, Matcher, Step};

const PATH: &str = "/api/v1/governance/reduce";

fn store(fake: Option<&HttpFake>, grants: Grants, limits: Limits) -> StoreData {
    let url = fake.map(|f| f.url().to_string());
    let services = test_support::services(|c| c.arbiter.arbiter_url = url);
    test_support::store("respond", services, grants, limits)
}

fn granted() -> Grants {
    test_support::granted(&[Capability::Core, Capability::Arbiter])
}

#[tokio::test]
async fn without_the_grant_nothing_is_sent_and_the_error_names_the_flag() {
    let fake = HttpFake::start(vec![]);
    let mut s = store(Some(&fake), test_support::granted(&[Capability::Core, Capability::Llm]), Limits::default());
    let e = s.arbiter().reduce_autonomy("bot".into(), "why".into()).await.unwrap_err();
    let want = "module respond has no 'arbiter' grant; start the host with --grant respond=core,llm,arbiter \
        (currently: core,llm)";
    assert!(matches!(&e, HostError::Denied(m) if m == want), "{e:?}");
    fake.finish();
}

#[tokio::test]
async fn over_the_cap_is_invalid_and_no_url_is_unavailable() {
    let fake = HttpFake::start(vec![]);
    let mut s = store(Some(&fake), granted(), Limits { max_request_bytes: 16, ..Limits::default() });
    let e = s.arbiter().reduce_autonomy("bot".into(), "r".repeat(20)).await.unwrap_err();
    let want = "agent and reason of 23 bytes exceeds the limit of 16 bytes (max_request_bytes)";
    assert!(matches!(&e, HostError::Invalid(m) if m == want), "{e:?}");
    fake.finish();

    let mut s = store(None, granted(), Limits::default());
    let e = s.arbiter().reduce_autonomy("bot".into(), "why".into()).await.unwrap_err();
    assert!(matches!(&e, HostError::Unavailable(m) if m.contains("--arbiter-url")), "{e:?}");
}

#[tokio::test]
async fn a_silent_arbiter_is_cut_at_the_cycle_deadline_and_a_live_one_gets_the_body() {
    let body = serde_json::json!({"agent": "bot", "reason": "why"});
    let fake =
        HttpFake::start(vec![Step::post(PATH).hang(), Step::post(PATH).body(Matcher::Json(body)).reply(200, "{}")]);
    let mut s = store(Some(&fake), granted(), test_support::limits_with_wall(Duration::from_millis(300)));
    let t = Instant::now();
    let e = s.arbiter().reduce_autonomy("bot".into(), "why".into()).await.unwrap_err();
    assert!(matches!(&e, HostError::Timeout(m) if m.starts_with("the arbiter did not answer within")), "{e:?}");
    assert!(t.elapsed() < Duration::from_secs(2), "took {:?}", t.elapsed());

    let mut s = store(Some(&fake), granted(), Limits::default());
    s.arbiter().reduce_autonomy("bot".into(), "why".into()).await.unwrap();
    fake.finish();
}

/// A scheduled cycle's reduction is held for its commit: `ok` at once, nothing sent; with
/// no arbiter there is nothing to hold and the module hears `unavailable` at once.
#[tokio::test]
async fn a_scheduled_cycle_holds_the_reduction_and_sends_nothing() {
    let fake = HttpFake::start(vec![]);
    let mut s = store(Some(&fake), granted(), Limits::default());
    s.cx.holding = true;
    s.arbiter().reduce_autonomy("bot".into(), "why".into()).await.unwrap();
    let held = std::mem::take(&mut s.rooms.arbiter.held.effects);
    assert_eq!(held, [crate::outbox::Effect::Autonomy { agent: "bot".into(), reason: "why".into() }]);
    fake.finish();
    assert!(fake.seen().is_empty(), "a held reduction reached the arbiter");

    let mut s = store(None, granted(), Limits::default());
    s.cx.holding = true;
    let e = s.arbiter().reduce_autonomy("bot".into(), "why".into()).await.unwrap_err();
    assert!(matches!(&e, HostError::Unavailable(m) if m.contains("--arbiter-url")), "{e:?}");
    assert!(s.rooms.arbiter.held.effects.is_empty());
}

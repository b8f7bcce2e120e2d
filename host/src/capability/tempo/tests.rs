//! The tempo import's rules, in-process against the scripted fake: the grant, the TraceQL
//! and step caps, "not configured", and the cycle deadline.

use std::time::{Duration, Instant};

use crate::bindings::latest::nthlayer::worker::tempo::Host;
use crate::bindings::HostError;
use crate::policy::grants::Grants;
use crate::policy::table::Capability;
use crate::policy::caps;
use crate::policy::limits::Limits;
use crate::capability::HasRooms;
use crate::store::StoreData;
use crate::test_support::{self, HttpFake, Step};

fn store(fake: Option<&HttpFake>, grants: Grants, limits: Limits) -> StoreData {
    let url = fake.map(|f| f.url().to_string());
    let services = test_support::services(|c| {
        c.tempo.tempo_endpoint = url;
        c.tempo.org_id = Some("tenant-a".into());
    });
    test_support::store("mine", services, grants, limits)
}

fn granted() -> Grants {
    test_support::granted(&[Capability::Tempo])
}

#[tokio::test]
async fn without_the_grant_nothing_is_asked_and_the_error_names_the_flag() {
    let fake = HttpFake::start(vec![]);
    let mut s = store(Some(&fake), Grants::none(), Limits::default());
    let e = s.tempo().search("{}".into(), 0.0, 1.0, 10).await.unwrap_err();
    let want = "module mine has no 'tempo' grant; start the host with --grant mine=tempo (currently: log only)";
    assert!(matches!(&e, HostError::Denied(m) if m == want), "{e:?}");
    fake.finish();
}

#[tokio::test]
async fn queries_over_the_caps_are_invalid_and_no_endpoint_is_unavailable() {
    let fake = HttpFake::start(vec![]);
    let mut s = store(Some(&fake), granted(), Limits::default());
    let e = s.tempo().search("x".repeat(caps::TRACEQL_BYTES + 1), 0.0, 1.0, 10).await.unwrap_err();
    assert!(matches!(&e, HostError::Invalid(m) if m.starts_with("TraceQL of") && m.contains("cap of 4096")), "{e:?}");
    let e = s.tempo().metrics_range("{}".into(), 0.0, 1.0, "s".repeat(caps::STEP_BYTES + 1)).await.unwrap_err();
    assert!(matches!(&e, HostError::Invalid(m) if m.starts_with("step of")), "{e:?}");
    fake.finish();

    let mut s = store(None, granted(), Limits::default());
    let e = s.tempo().search("{}".into(), 0.0, 1.0, 10).await.unwrap_err();
    assert!(matches!(&e, HostError::Unavailable(m) if m.contains("--tempo-endpoint")), "{e:?}");
}

#[tokio::test]
async fn a_slow_tempo_is_cut_at_the_cycle_deadline_and_a_quick_one_answers() {
    let fake = HttpFake::start(vec![
        Step::get("/api/search").delay(Duration::from_secs(3)).reply(200, r#"{"traces":[]}"#),
        Step::get("/api/metrics/query_range").query_contains("step=60s").reply(200, r#"{"series":[]}"#),
    ]);
    let mut s = store(Some(&fake), granted(), test_support::limits_with_wall(Duration::from_millis(300)));
    let t = Instant::now();
    let e = s.tempo().search("{}".into(), 0.0, 1.0, 10).await.unwrap_err();
    assert!(matches!(&e, HostError::Timeout(m) if m.starts_with("Tempo did not answer within")), "{e:?}");
    assert!(t.elapsed() < Duration::from_secs(2), "took {:?}", t.elapsed());

    let mut s = store(Some(&fake), granted(), Limits::default());
    assert_eq!(s.tempo().metrics_range("{}".into(), 0.0, 60.0, "60s".into()).await.unwrap(), r#"{"series":[]}"#);
    fake.finish();
    assert_eq!(fake.seen()[1].header("x-scope-orgid"), Some("tenant-a"), "the room's config reaches the client");
}

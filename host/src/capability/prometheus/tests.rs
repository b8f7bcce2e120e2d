//! The prometheus import's rules, in-process against the scripted fake: the grant, the
//! PromQL, batch and response caps, the cycle deadline, and batches answered in order.

use std::time::{Duration, Instant};

use crate::bindings::latest::nthlayer::worker::prometheus::Host;
use crate::bindings::HostError;
use crate::policy::grants::Grants;
use crate::policy::table::Capability;
use crate::policy::caps;
use crate::policy::limits::Limits;
use crate::capability::HasRooms;
use crate::store::StoreData;
use crate::test_support::{self, HttpFake, Step};

fn answer(n: u32) -> String {
    format!(r#"{{"status":"success","data":{{"resultType":"scalar","result":[1,"{n}"]}}}}"#)
}

fn store(fake: &HttpFake, grants: Grants, limits: Limits) -> StoreData {
    let url = fake.url().to_string();
    let services = test_support::services(|c| c.prometheus.prometheus_url = url);
    test_support::store("mine", services, grants, limits)
}

fn granted() -> Grants {
    test_support::granted(&[Capability::Prometheus])
}

#[tokio::test]
async fn without_the_grant_nothing_is_queried_and_the_error_names_the_flag() {
    let fake = HttpFake::start(vec![]);
    let mut s = store(&fake, test_support::granted(&[Capability::Core]), Limits::default());
    let e = s.prometheus().query("up".into(), None).await.unwrap_err();
    let want =
        "module mine has no 'prometheus' grant; start the host with --grant mine=core,prometheus (currently: core)";
    assert!(matches!(&e, HostError::Denied(m) if m == want), "{e:?}");
    let batch = s.prometheus().query_batch(vec!["a".into(), "b".into()], None).await;
    assert!(batch.len() == 2 && batch.iter().all(|r| matches!(r, Err(HostError::Denied(_)))));
    fake.finish();
}

#[tokio::test]
async fn queries_over_the_caps_are_invalid_naming_them() {
    let fake = HttpFake::start(vec![]);
    let mut s = store(&fake, granted(), Limits { max_request_bytes: 100, ..Limits::default() });
    let long = "x".repeat(caps::PROMQL_BYTES + 1);
    let e = s.prometheus().query(long.clone(), None).await.unwrap_err();
    assert!(matches!(&e, HostError::Invalid(m) if m.starts_with("PromQL of") && m.contains("cap of 262144")), "{e:?}");
    let e = s.prometheus().query_range("up".into(), 0.0, 1.0, "1".repeat(caps::STEP_BYTES + 1)).await.unwrap_err();
    assert!(matches!(&e, HostError::Invalid(m) if m.starts_with("step of")), "{e:?}");
    let batch = s.prometheus().query_batch(vec!["x".repeat(60), "y".repeat(60)], None).await;
    assert!(batch.iter().all(|r| matches!(r, Err(HostError::Invalid(m)) if m.contains("max_request_bytes"))));
    let many = vec!["up".to_string(); caps::BATCH_QUERIES + 1];
    let batch = s.prometheus().query_batch(many, None).await;
    assert!(
        matches!(&batch[0], Err(HostError::Invalid(m)) if m.contains("query batch: 257 entries")),
        "{:?}",
        batch[0]
    );
    fake.finish();

    // The answer is capped too.
    let fake = HttpFake::start(vec![Step::get("/api/v1/query").reply(200, &answer(1))]);
    let mut s = store(&fake, granted(), Limits { max_response_bytes: 10, ..Limits::default() });
    let e = s.prometheus().query("up".into(), None).await.unwrap_err();
    assert!(matches!(&e, HostError::Invalid(m) if m.contains("exceeds the limit of 10 bytes")), "{e:?}");
}

#[tokio::test]
async fn a_slow_prometheus_is_cut_at_the_cycle_deadline() {
    let slow = Step::get("/api/v1/query").delay(Duration::from_secs(3)).reply(200, &answer(1));
    let fake = HttpFake::start(vec![slow.times(3)]);
    let mut s = store(&fake, granted(), test_support::limits_with_wall(Duration::from_millis(300)));
    let t = Instant::now();
    let e = s.prometheus().query("up".into(), None).await.unwrap_err();
    assert!(matches!(&e, HostError::Timeout(m) if m.starts_with("Prometheus did not answer within")), "{e:?}");
    let batch = s.prometheus().query_batch(vec!["a".into(), "b".into()], None).await;
    assert!(batch.iter().all(|r| matches!(r, Err(HostError::Timeout(_)))), "{batch:?}");
    assert!(t.elapsed() < Duration::from_secs(2), "took {:?}", t.elapsed());
}

#[tokio::test]
async fn a_batch_answers_in_input_order_whatever_order_prometheus_answers_in() {
    let step = |n: u32, delay_ms: u64| {
        Step::get("/api/v1/query")
            .query_contains(&format!("query=q{n}&"))
            .delay(Duration::from_millis(delay_ms))
            .reply(200, &answer(n))
    };
    let fake = HttpFake::start(vec![step(1, 150), step(2, 0), step(3, 50)]);
    let mut s = store(&fake, granted(), Limits::default());
    let batch = s.prometheus().query_batch(vec!["q1".into(), "q2".into(), "q3".into()], Some(5.0)).await;
    let got: Vec<String> = batch.into_iter().map(Result::unwrap).collect();
    assert_eq!(got, [1, 2, 3].map(|n| format!(r#"{{"resultType":"scalar","result":[1,"{n}"]}}"#)));
    fake.finish();
}

//! The prometheus import's rules, in-process against the scripted fake: the grant, the
//! PromQL, batch and response caps, the cycle deadline, and batches answered in order.

use std::time::{Duration, Instant};

use crate::bindings::latest::nthlayer::worker::prometheus::{Host, InstantQuery, RangeQuery};
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

fn range(q: &str, step: &str) -> RangeQuery {
    RangeQuery { promql: q.into(), start: 0.0, end: 60.0, step: step.into() }
}

/// Range and per-time batches answer in input order, each element taken as its single call
/// takes it (its own time, its own range).
#[tokio::test]
async fn range_and_timed_batches_answer_in_order_with_each_querys_own_arguments() {
    let fake = HttpFake::start(vec![
        Step::get("/api/v1/query_range").query_contains("query=r1&start=0&end=60&step=15s").delay(Duration::from_millis(100)).reply(200, &answer(1)),
        Step::get("/api/v1/query_range").query_contains("query=r2&start=0&end=60&step=1h").reply(200, &answer(2)),
        Step::get("/api/v1/query").query_contains("query=i1&time=5").delay(Duration::from_millis(100)).reply(200, &answer(3)),
        Step::get("/api/v1/query").query_contains("query=i2&time=7").reply(200, &answer(4)),
    ]);
    let mut s = store(&fake, granted(), Limits::default());
    let got: Vec<String> =
        s.prometheus().query_range_batch(vec![range("r1", "15s"), range("r2", "1h")]).await.into_iter().map(Result::unwrap).collect();
    assert_eq!(got, [1, 2].map(|n| format!(r#"{{"resultType":"scalar","result":[1,"{n}"]}}"#)));
    let timed = vec![InstantQuery { promql: "i1".into(), at: Some(5.0) }, InstantQuery { promql: "i2".into(), at: Some(7.0) }];
    let got: Vec<String> = s.prometheus().query_at_batch(timed).await.into_iter().map(Result::unwrap).collect();
    assert_eq!(got, [3, 4].map(|n| format!(r#"{{"resultType":"scalar","result":[1,"{n}"]}}"#)));
    fake.finish();
}

/// The new batches are capped as `query-batch` is: the count (a clear error on every entry,
/// nothing queried), each query's own caps, and the grant.
#[tokio::test]
async fn range_and_timed_batches_are_capped_like_single_calls() {
    let fake = HttpFake::start(vec![]);
    let mut s = store(&fake, granted(), Limits::default());
    let many = vec![range("up", "1h"); caps::BATCH_QUERIES + 1];
    let batch = s.prometheus().query_range_batch(many).await;
    assert!(batch.iter().all(|r| matches!(r, Err(HostError::Invalid(m)) if m == "query batch: 257 entries exceed the cap of 256")), "{:?}", batch[0]);
    let timed = vec![InstantQuery { promql: "up".into(), at: None }; caps::BATCH_QUERIES + 1];
    let batch = s.prometheus().query_at_batch(timed).await;
    assert!(batch.iter().all(|r| matches!(r, Err(HostError::Invalid(m)) if m.contains("257 entries"))), "{:?}", batch[0]);
    let batch = s.prometheus().query_range_batch(vec![range("up", "1h"), range("up", &"1".repeat(caps::STEP_BYTES + 1))]).await;
    assert!(batch.iter().all(|r| matches!(r, Err(HostError::Invalid(m)) if m.starts_with("step of"))), "{batch:?}");
    let mut s = store(&fake, test_support::granted(&[Capability::Core]), Limits::default());
    let batch = s.prometheus().query_range_batch(vec![range("up", "1h")]).await;
    assert!(matches!(&batch[0], Err(HostError::Denied(_))), "{batch:?}");
    fake.finish();
}

//! Tests of `observe.topology`. The reference's per-service rewrites live here as the
//! oracle: the batched questions must give every service the same edges.

use super::*;
use nthlayer_sdk::testing::FakeHost;
use nthlayer_sdk::HostError;

/// The reference's query rewrite: the first of `labels` that already has a matcher gets
/// every `label[=~]+"…"` replaced by `label="service"`; otherwise `,first="service"` is put
/// before every `}`.
fn filter(query: &str, service: &str, labels: &[&str]) -> String {
    for label in labels {
        if query.contains(&format!("{label}=")) || query.contains(&format!("{label}~")) {
            return replace_matchers(query, label, service);
        }
    }
    if query.contains('{') {
        query.replace('}', &format!(",{}=\"{service}\"}}", labels[0]))
    } else {
        query.to_string()
    }
}

/// `re.sub(label + r'[=~]+"[^"]*"', label + '="' + service + '"', query)`.
fn replace_matchers(query: &str, label: &str, service: &str) -> String {
    let mut out = String::with_capacity(query.len());
    let mut rest = query;
    while !rest.is_empty() {
        if let Some(len) = matcher_len(rest, label) {
            out.push_str(&format!("{label}=\"{service}\""));
            rest = &rest[len..];
        } else {
            let c = rest.chars().next().unwrap_or_default();
            out.push(c);
            rest = &rest[c.len_utf8()..];
        }
    }
    out
}

fn matcher_len(s: &str, label: &str) -> Option<usize> {
    let after = s.strip_prefix(label)?;
    let ops = after.bytes().take_while(|b| matches!(b, b'=' | b'~')).count();
    let quoted = after[ops..].strip_prefix('"').filter(|_| ops > 0)?;
    let close = quoted.find('"')?;
    Some(label.len() + ops + 1 + close + 1)
}

/// The 12 upstream then 12 downstream queries for a service, in the reference's order.
fn queries(service: &str) -> Vec<String> {
    let up = FAMILIES.iter().flat_map(|f| f.queries.iter().map(move |q| filter(q, service, f.source_labels)));
    let down = FAMILIES.iter().flat_map(|f| f.queries.iter().map(move |q| filter(q, service, f.target_labels)));
    up.chain(down).collect()
}

/// Edges in one per-service answer, read as the reference reads them. A malformed series ends the answer, keeping what came before, as
/// the reference's per-query `except: continue` does.
fn edges_in(answer: &Value, family: &Family, out: &mut Vec<Edge>) {
    let Some(series) = answer.get("result").and_then(Value::as_array) else {
        return;
    };
    let empty = serde_json::Map::new();
    for s in series {
        let Some(s) = s.as_object() else { return };
        let metric = match s.get("metric") {
            None => &empty,
            Some(Value::Object(m)) => m,
            Some(_) => return,
        };
        if let (Some(source), Some(target)) =
            (first_label(metric, family.source_labels), first_label(metric, family.target_labels))
        {
            out.push(Edge { source, target, edge_type: family.edge_type });
        }
    }
}

fn input() -> CycleInput {
    CycleInput { task: "observe.topology".into(), state: None, config: json!({}), args: None }
}

/// A tiny Prometheus: `count by (..) (metric{l="v", l=~".+"})` over a table of series.
fn evaluate(table: &Value, query: &str) -> Value {
    let by_start = query.find('(').unwrap() + 1;
    let by_end = query.find(')').unwrap();
    let by: Vec<&str> = query[by_start..by_end].split(',').map(str::trim).collect();
    let inner = &query[by_end + 3..query.len() - 1];
    let (metric, matchers) = inner.split_once('{').unwrap();
    let matchers = matchers.trim_end_matches('}');
    let mut out = Vec::new();
    for series in table[metric].as_array().into_iter().flatten() {
        let ok = matchers.split(',').all(|m| {
            if let Some((l, _)) = m.split_once("=~") {
                series[l].as_str().is_some_and(|v| !v.is_empty())
            } else {
                let (l, v) = m.split_once('=').unwrap();
                series[l].as_str() == Some(v.trim_matches('"'))
            }
        });
        if ok {
            let labels: serde_json::Map<String, Value> =
                by.iter().filter(|k| series.get(**k).is_some()).map(|k| (k.to_string(), series[*k].clone())).collect();
            out.push(json!({"metric": labels, "value": [0, "1"]}));
        }
    }
    json!({"resultType": "vector", "result": out})
}

fn scenario(names: &[&str], table: Value) -> (FakeHost, Vec<(String, String)>) {
    let manifests: Vec<Value> = names.iter().map(|n| json!({"name": n})).collect();
    let host = FakeHost::new().with_manifests(json!(manifests));
    for q in questions() {
        host.set_instant(&q.promql, Ok(evaluate(&table, &q.promql)));
    }
    run(&host, &input());
    let sent = host
        .submitted_of_kind("dependency_graph")
        .iter()
        .map(|r| (r["service"].as_str().unwrap().to_string(), r["data"].to_string()))
        .collect();
    (host, sent)
}

fn data(total: u64, risk_level: &str, direct: u64) -> String {
    json!({"total_services_affected": total, "critical_services_affected": 0, "risk_level": risk_level,
           "direct_downstream_count": direct, "recommendation": super::risk(total as usize, 0).1})
    .to_string()
}

#[test]
fn queries_match_the_reference_rewrites() {
    // From PrometheusDepProvider._add_service_filter / _add_target_filter with "S".
    let want = [
        r#"count by (service, target_service) (http_client_requests_total{service="S"})"#,
        r#"count by (job, target) (http_client_request_duration_seconds_count{job="S"})"#,
        r#"count by (service, grpc_service) (grpc_client_handled_total{service="S"})"#,
        r#"count by (job, grpc_method) (grpc_client_started_total{job="S"})"#,
        r#"count by (service, database) (db_client_connections{service="S"})"#,
        r#"count by (job, db_name) (sql_client_queries_total{job="S"})"#,
        r#"count by (service, addr) (pg_stat_activity_count{service="S"})"#,
        r#"count by (service, redis_addr) (redis_client_commands_total{service="S"})"#,
        r#"count by (job, addr) (redis_commands_total{job="S"})"#,
        r#"count by (service, topic) (kafka_consumer_records_consumed_total{service="S"})"#,
        r#"count by (consumergroup, topic) (kafka_consumergroup_lag{consumergroup="S"})"#,
        r#"count by (service, queue) (rabbitmq_consumer_messages_total{service="S"})"#,
        r#"count by (service, target_service) (http_client_requests_total{service=~".+",target_service="S"})"#,
        r#"count by (job, target) (http_client_request_duration_seconds_count{job=~".+",target_service="S"})"#,
        r#"count by (service, grpc_service) (grpc_client_handled_total{service=~".+",grpc_service="S"})"#,
        r#"count by (job, grpc_method) (grpc_client_started_total{job=~".+",grpc_service="S"})"#,
        r#"count by (service, database) (db_client_connections{service=~".+",database="S"})"#,
        r#"count by (job, db_name) (sql_client_queries_total{job=~".+",database="S"})"#,
        r#"count by (service, addr) (pg_stat_activity_count{service=~".+",database="S"})"#,
        r#"count by (service, redis_addr) (redis_client_commands_total{service=~".+",redis_addr="S"})"#,
        r#"count by (job, addr) (redis_commands_total{job=~".+",redis_addr="S"})"#,
        r#"count by (service, topic) (kafka_consumer_records_consumed_total{service=~".+",topic="S"})"#,
        r#"count by (consumergroup, topic) (kafka_consumergroup_lag{consumergroup=~".+",topic="S"})"#,
        r#"count by (service, queue) (rabbitmq_consumer_messages_total{service=~".+",queue="S"})"#,
    ];
    assert_eq!(queries("S"), want);
    assert_eq!(replace_matchers(r#"a{x=~"1",y="2",x="3",x~}"#, "x", "S"), r#"a{x="S",y="2",x="S",x~}"#);
}

#[test]
fn twenty_four_queries_a_cycle_whatever_the_catalogue_size() {
    for n in [1, 3, 300] {
        let names: Vec<String> = (0..n).map(|i| format!("svc-{i}")).collect();
        let refs: Vec<&str> = names.iter().map(String::as_str).collect();
        let (host, sent) = scenario(&refs, json!({}));
        assert_eq!(sent.len(), n);
        let calls = host.instant_calls.borrow();
        let want: Vec<String> = questions().into_iter().map(|q| q.promql).collect();
        assert_eq!(*calls, want, "{n} services");
    }
}

#[test]
fn questions_add_only_the_filter_label_to_by() {
    let qs = questions();
    assert_eq!(qs.len(), 24);
    // Upstream: the matcher's label is already grouped on; the text is the family's own.
    assert_eq!(qs[1].promql, FAMILIES[0].queries[1]);
    assert_eq!((qs[1].by, qs[1].added), ("job", false));
    // Downstream of a `job`/`target` series: the reference appends `target_service="S"`, a
    // label outside the by clause, so it is added there to split the answer.
    assert_eq!(
        qs[13].promql,
        r#"count by (job, target, target_service) (http_client_request_duration_seconds_count{job=~".+"})"#
    );
    assert_eq!((qs[13].by, qs[13].added), ("target_service", true));
    assert_eq!(qs[18].promql, r#"count by (service, addr, database) (pg_stat_activity_count{service=~".+"})"#);
    assert_eq!(qs[12].promql, FAMILIES[0].queries[0]);
    assert!(!qs[12].added);
}

// Expected payloads: the reference's ObserveTopologyModule over the same fake Prometheus.

#[test]
fn live_run_edges() {
    let (_, sent) = scenario(
        &["checkout-api", "payment-api", "fraud-detect"],
        json!({"http_client_requests_total": [
            {"service": "checkout-api", "target_service": "payment-api"},
            {"service": "checkout-api", "target_service": "fraud-detect"},
            {"service": "fraud-detect", "target_service": "payment-api"}]}),
    );
    assert_eq!(
        sent,
        vec![
            ("checkout-api".into(), data(0, "low", 0)),
            ("payment-api".into(), data(2, "low", 2)),
            ("fraud-detect".into(), data(1, "low", 1)),
        ]
    );
    assert_eq!(
        sent[1].1,
        r#"{"total_services_affected":2,"critical_services_affected":0,"risk_level":"low","direct_downstream_count":2,"recommendation":"Low impact. Standard deployment process is appropriate."}"#
    );
}

#[test]
fn chain_hits_the_depth_limit_and_every_risk_level() {
    let names: Vec<String> = (0..12).map(|i| format!("s{i}")).collect();
    let series: Vec<Value> =
        (0..11).map(|i| json!({"service": format!("s{}", i + 1), "target_service": format!("s{i}")})).collect();
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    let (_, sent) = scenario(&refs, json!({"http_client_requests_total": series}));
    let got: Vec<(u64, String)> = sent
        .iter()
        .map(|(_, d)| {
            let v: Value = serde_json::from_str(d).unwrap();
            (v["total_services_affected"].as_u64().unwrap(), v["risk_level"].as_str().unwrap().to_string())
        })
        .collect();
    let want: Vec<(u64, String)> = [
        (10, "critical"),
        (10, "critical"),
        (9, "high"),
        (8, "high"),
        (7, "high"),
        (6, "high"),
        (5, "medium"),
        (4, "medium"),
        (3, "medium"),
        (2, "low"),
        (1, "low"),
        (0, "low"),
    ]
    .iter()
    .map(|(n, r)| (*n, r.to_string()))
    .collect();
    assert_eq!(got, want);
    assert_eq!(sent[0].1, data(10, "critical", 1));
}

#[test]
fn label_fallbacks_types_self_edges_and_key_collisions() {
    let (_, sent) = scenario(
        &["db", "api", "worker", "api"],
        json!({
            "http_client_requests_total": [
                {"service": "web", "target_service": "api"}, {"service": "", "target_service": "api"},
                {"service": "api", "target_service": "api"}],
            "http_client_request_duration_seconds_count": [{"job": "mobile", "target": "api", "target_service": "api"}],
            "redis_client_commands_total": [{"service": "api", "redis_addr": "db"}],
            "db_client_connections": [{"service": "api", "database": "db"}, {"service": "worker", "database": "db"}],
            "pg_stat_activity_count": [{"service": "batch", "addr": "x", "database": "db"}],
            "kafka_consumergroup_lag": [{"consumergroup": "worker", "topic": "api"}],
            "rabbitmq_consumer_messages_total": [{"service": "a:b", "queue": "worker"}, {"service": "a", "queue": "b:worker"}]
        }),
    );
    assert_eq!(
        sent,
        vec![
            ("db".into(), data(5, "medium", 2)),
            ("api".into(), data(5, "medium", 4)),
            ("worker".into(), data(1, "low", 1)),
            ("api".into(), data(5, "medium", 4)),
        ]
    );
}

#[test]
fn prometheus_down_gives_zeros_and_one_warning() {
    let host = FakeHost::new().with_manifests(json!([{"name": "a"}, {"name": ""}, {"tier": "x"}]));
    for q in questions() {
        host.set_instant(&q.promql, Err(HostError::Unavailable("down".into())));
    }
    let out = run(&host, &input());
    let sent = host.submitted_of_kind("dependency_graph");
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0]["data"].to_string(), data(0, "low", 0));
    assert_eq!(out.state, Some(json!({"seq": 2})));
    let logs = host.logs.borrow();
    assert_eq!(logs.len(), 1);
    assert_eq!(logs[0], (Level::Warn, "topology_queries_failed".to_string()));
}

#[test]
fn odd_answers_are_skipped() {
    let q = &questions()[0];
    assert!(index_answer(&json!({"result": "nope"}), q).is_empty());
    let got = index_answer(
        &json!({"result": [{"metric": {"service": "a", "target_service": "b"}}, 5, {"metric": {"service": "c", "target_service": "d"}}]}),
        q,
    );
    assert_eq!(got.len(), 1);
    assert_eq!(got["a"], vec![Edge { source: "a".into(), target: "b".into(), edge_type: "service" }]);
    let got = index_answer(&json!({"result": [{"metric": {"service": "a", "target_service": 7}}, {}]}), q);
    assert!(got.is_empty());
}

/// Each service's edges by the reference's path: its 24 rewritten queries, one by one.
fn per_service(table: &Value, service: &str) -> (Vec<Edge>, Vec<Edge>) {
    let families: Vec<&Family> = FAMILIES.iter().flat_map(|f| f.queries.iter().map(move |_| f)).collect();
    let (mut up, mut down) = (Vec::new(), Vec::new());
    for (i, q) in queries(service).iter().enumerate() {
        let edges = if i < families.len() { &mut up } else { &mut down };
        edges_in(&evaluate(table, q), families[i % families.len()], edges);
    }
    (dedup_by_key(up), dedup_by_key(down))
}

/// The batched path's edges for each service, from the same table.
fn batched(table: &Value, services: &[&str]) -> Vec<(Vec<Edge>, Vec<Edge>)> {
    let host = FakeHost::new();
    for q in questions() {
        host.set_instant(&q.promql, Ok(evaluate(table, &q.promql)));
    }
    let answers = Answers::ask(&host, services.len());
    services.iter().map(|s| answers.discover(s)).collect()
}

fn sorted(mut edges: Vec<Edge>) -> Vec<Edge> {
    edges.sort();
    edges
}

#[test]
fn every_service_gets_the_edges_its_own_queries_give() {
    let table = json!({
        "http_client_requests_total": [
            {"service": "web", "target_service": "api", "code": "200"},
            {"service": "web", "target_service": "api", "code": "500"},
            {"service": "api", "target_service": "db-proxy"}, {"service": "", "target_service": "api"},
            {"service": "api", "target_service": "api"}, {"service": "lonely"}],
        // The quirk: a downstream filter on `target_service`, grouped by (job, target).
        "http_client_request_duration_seconds_count": [
            {"job": "mobile", "target": "gw", "target_service": "api"},
            {"job": "mobile", "target": "gw2", "target_service": "web"},
            {"job": "batch", "target": "x"}],
        "grpc_client_started_total": [{"job": "api", "grpc_method": "Get", "grpc_service": "auth"}],
        "grpc_client_handled_total": [{"service": "api", "grpc_service": "auth"}],
        "sql_client_queries_total": [{"job": "worker", "db_name": "orders", "database": "api"}],
        "pg_stat_activity_count": [{"service": "batch", "addr": "x", "database": "db-proxy"}],
        "redis_commands_total": [{"job": "api", "addr": "cache", "redis_addr": "web"}],
        "kafka_consumergroup_lag": [{"consumergroup": "worker", "topic": "api"}],
        "kafka_consumer_records_consumed_total": [{"service": "api.v2+(x)|*", "topic": "web"}],
        "rabbitmq_consumer_messages_total": [
            {"service": "a:b", "queue": "worker"}, {"service": "a", "queue": "b:worker"},
            {"service": "web", "queue": "api.v2+(x)|*"}]
    });
    // Callers only, callees only, both, no edges at all, unknown to Prometheus, and a name
    // made of regex metacharacters (an equality matcher takes them literally).
    let services = ["web", "api", "db-proxy", "worker", "auth", "quiet", "api.v2+(x)|*", "gw", "a", "b:worker"];
    let got = batched(&table, &services);
    for (service, (up, down)) in services.iter().zip(got) {
        let (want_up, want_down) = per_service(&table, service);
        assert_eq!(sorted(up), sorted(want_up), "upstream of {service}");
        assert_eq!(sorted(down), sorted(want_down), "downstream of {service}");
    }
    // Not vacuous: the quirk's edge and the metacharacter service's edges are there.
    let (_, api_down) = per_service(&table, "api");
    assert!(api_down.contains(&Edge { source: "mobile".into(), target: "gw".into(), edge_type: "service" }));
    let (up, down) = per_service(&table, "api.v2+(x)|*");
    assert_eq!((up.len(), down.len()), (1, 1));
    assert!(per_service(&table, "quiet") == (vec![], vec![]));
}

#[test]
fn a_name_with_a_quote_gets_its_edges() {
    // The reference writes the name into PromQL unescaped, so `a"b`'s queries do not parse
    // and it has no edges there; split by label value, it gets the edges the series name.
    let table = json!({"http_client_requests_total": [{"service": "a\"b", "target_service": "c"}]});
    let got = batched(&table, &["a\"b", "c"]);
    let edge = Edge { source: "a\"b".into(), target: "c".into(), edge_type: "service" };
    assert_eq!(got[0], (vec![edge.clone()], vec![]));
    assert_eq!(got[1], (vec![], vec![edge]));
}

#[test]
fn edges_of_a_service_come_sorted_whatever_the_series_order() {
    let rows = [json!({"service": "z", "target_service": "t"}), json!({"service": "m", "target_service": "t"})];
    let forward = json!({"http_client_requests_total": [rows[0], rows[1]]});
    let backward = json!({"http_client_requests_total": [rows[1], rows[0]]});
    let (a, b) = (batched(&forward, &["t"]), batched(&backward, &["t"]));
    assert_eq!(a, b);
    assert_eq!(a[0].1[0].source, "m");
}

#[test]
fn no_named_manifests_means_no_queries() {
    let host = FakeHost::new().with_manifests(json!([{"name": ""}, {}]));
    run(&host, &input());
    assert!(host.instant_calls.borrow().is_empty());
    assert!(host.submitted.borrow().is_empty());
}

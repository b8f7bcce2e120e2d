//! `observe.topology`: discovers call edges from Prometheus client metrics and reports each
//! manifest service's blast radius (who calls it, transitively) as a `dependency_graph`.
//!
//! Only the Prometheus provider is used, names are raw label values, manifest
//! `dependencies` are ignored and tiers are unknown, so `critical_services_affected` is
//! always 0 — all as in the reference.

use std::collections::HashSet;

use nthlayer_sdk::batch::QUERY_BATCH;
use nthlayer_sdk::{CycleInput, CycleOutput, Host, HostError, Level};
use serde_json::{json, Value};

use crate::{assessment, fetch_manifests, manifest_name, output, runs, submit_all, Seq};

/// A client-metric family: its queries (unfiltered form), which labels name the caller and
/// the callee (first non-empty wins), and the edge type. Order is the reference's.
struct Family {
    queries: &'static [&'static str],
    source_labels: &'static [&'static str],
    target_labels: &'static [&'static str],
    edge_type: &'static str,
}

const FAMILIES: &[Family] = &[
    Family {
        queries: &[
            r#"count by (service, target_service) (http_client_requests_total{service=~".+"})"#,
            r#"count by (job, target) (http_client_request_duration_seconds_count{job=~".+"})"#,
        ],
        source_labels: &["service", "job"],
        target_labels: &["target_service", "target"],
        edge_type: "service",
    },
    Family {
        queries: &[
            r#"count by (service, grpc_service) (grpc_client_handled_total{service=~".+"})"#,
            r#"count by (job, grpc_method) (grpc_client_started_total{job=~".+"})"#,
        ],
        source_labels: &["service", "job"],
        target_labels: &["grpc_service", "grpc_method"],
        edge_type: "service",
    },
    Family {
        queries: &[
            r#"count by (service, database) (db_client_connections{service=~".+"})"#,
            r#"count by (job, db_name) (sql_client_queries_total{job=~".+"})"#,
            r#"count by (service, addr) (pg_stat_activity_count{service=~".+"})"#,
        ],
        source_labels: &["service", "job"],
        target_labels: &["database", "db_name", "addr"],
        edge_type: "datastore",
    },
    Family {
        queries: &[
            r#"count by (service, redis_addr) (redis_client_commands_total{service=~".+"})"#,
            r#"count by (job, addr) (redis_commands_total{job=~".+"})"#,
        ],
        source_labels: &["service", "job"],
        target_labels: &["redis_addr", "addr"],
        edge_type: "datastore",
    },
    Family {
        queries: &[
            r#"count by (service, topic) (kafka_consumer_records_consumed_total{service=~".+"})"#,
            r#"count by (consumergroup, topic) (kafka_consumergroup_lag{consumergroup=~".+"})"#,
        ],
        source_labels: &["service", "consumergroup"],
        target_labels: &["topic"],
        edge_type: "queue",
    },
    Family {
        queries: &[r#"count by (service, queue) (rabbitmq_consumer_messages_total{service=~".+"})"#],
        source_labels: &["service"],
        target_labels: &["queue"],
        edge_type: "queue",
    },
];

const MAX_DEPTH: usize = 10;

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

#[derive(Debug, Clone, PartialEq)]
struct Edge {
    source: String,
    target: String,
    edge_type: &'static str,
}

fn first_label(metric: &serde_json::Map<String, Value>, labels: &[&str]) -> Option<String> {
    labels.iter().find_map(|l| metric.get(*l).and_then(Value::as_str).filter(|v| !v.is_empty()).map(str::to_string))
}

/// Edges in one answer. A malformed series ends the answer, keeping what came before, as
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

/// Dedup on the reference's string key `"src:tgt:type"` (so names containing ':' can
/// collide, as there), first occurrence kept.
fn dedup_by_key(edges: Vec<Edge>) -> Vec<Edge> {
    let mut seen = HashSet::new();
    edges.into_iter().filter(|e| seen.insert(format!("{}:{}:{}", e.source, e.target, e.edge_type))).collect()
}

/// The upstream and downstream edges the provider reports for one service, from the
/// answers to its [`queries`].
fn discover(host: &dyn Host, service: &str, answers: &[Result<Value, HostError>]) -> (Vec<Edge>, Vec<Edge>) {
    let qs = queries(service);
    let families: Vec<&Family> = FAMILIES.iter().flat_map(|f| f.queries.iter().map(move |_| f)).collect();
    let (mut up, mut down) = (Vec::new(), Vec::new());
    let mut failed: Vec<&HostError> = Vec::new();
    for (i, answer) in answers.iter().enumerate().take(qs.len()) {
        let family = families[i % families.len()];
        let edges = if i < families.len() { &mut up } else { &mut down };
        match answer {
            Ok(a) => edges_in(a, family, edges),
            Err(e) => failed.push(e),
        }
    }
    // The reference swallows these silently; one line per service is enough to notice.
    if let Some(first) = failed.first() {
        let n = format!("{}/{}", failed.len(), qs.len());
        host.log(
            Level::Warn,
            "topology_queries_failed",
            &[("service", service), ("failed", &n), ("error", &first.to_string())],
        );
    }
    // Deduplicated once by the provider and once more by discovery: same key, same result.
    (dedup_by_key(up), dedup_by_key(down))
}

/// Adds an edge unless one with the same endpoints and type exists.
fn add_edge(graph: &mut Vec<Edge>, edge: Edge) {
    if !graph.contains(&edge) {
        graph.push(edge);
    }
}

struct BlastRadius {
    total: usize,
    direct: usize,
}

fn blast_radius<'a>(graph: &'a [Edge], service: &'a str) -> BlastRadius {
    let direct: Vec<&Edge> = graph.iter().filter(|e| e.target == service).collect();
    let mut affected: HashSet<&str> = direct.iter().map(|e| e.source.as_str()).collect();
    let mut visited = HashSet::new();
    walk(graph, service, 1, &mut visited, &mut affected);
    BlastRadius { total: affected.len(), direct: direct.len() }
}

/// Depth-first over callers, depth from 1, visited on entry, each edge recorded before
/// recursing into its caller: the visiting order decides what the depth limit cuts off.
fn walk<'a>(
    graph: &'a [Edge],
    svc: &'a str,
    depth: usize,
    visited: &mut HashSet<&'a str>,
    affected: &mut HashSet<&'a str>,
) {
    if depth > MAX_DEPTH || !visited.insert(svc) {
        return;
    }
    for e in graph.iter().filter(|e| e.target == svc) {
        affected.insert(e.source.as_str());
        walk(graph, e.source.as_str(), depth + 1, visited, affected);
    }
}

fn risk(total: usize, critical: usize) -> (&'static str, &'static str) {
    if critical >= 2 || total >= 10 {
        ("critical", "High-impact deployment. Requires change advisory board approval and deployment during maintenance window with full rollback plan.")
    } else if total >= 6 {
        ("high", "Significant impact. Schedule during low-traffic window with staged rollout and monitoring.")
    } else if total >= 3 || critical >= 1 {
        ("medium", "Moderate impact. Consider canary deployment and monitor dependent services closely.")
    } else {
        ("low", "Low impact. Standard deployment process is appropriate.")
    }
}

pub fn run(host: &dyn Host, input: &CycleInput) -> CycleOutput {
    let mut seq = Seq::from_state(input.state.as_ref());
    let Some(manifests) = fetch_manifests(host) else {
        return output(&seq, 0);
    };
    let names: Vec<&str> = manifests.iter().filter_map(manifest_name).collect();
    if names.is_empty() {
        return output(&seq, 0);
    }

    // A repeated manifest name would only repeat the same queries.
    let mut discovered: HashSet<&str> = HashSet::new();
    let unique: Vec<&str> = names.iter().copied().filter(|n| discovered.insert(n)).collect();
    // A run of services' queries in one batched call (the host runs them concurrently,
    // bounded), answers in the same order; runs keep the answers held bounded.
    let per_service: Vec<(&str, Vec<String>)> = unique.iter().map(|n| (*n, queries(n))).collect();
    let mut graph: Vec<Edge> = Vec::new();
    for run in runs(&per_service, |(_, qs)| qs.len(), QUERY_BATCH) {
        let all: Vec<String> = run.iter().flat_map(|(_, qs)| qs.iter().cloned()).collect();
        let mut answers = host.prom_query_batch(&all, None).into_iter();
        for (name, qs) in run {
            let mine: Vec<Result<Value, HostError>> = answers.by_ref().take(qs.len()).collect();
            let (up, down) = discover(host, name, &mine);
            for e in up.into_iter().chain(down) {
                add_edge(&mut graph, e);
            }
        }
    }

    let mut records = Vec::new();
    for name in &names {
        let br = blast_radius(&graph, name);
        let critical = 0; // tiers are never known to discovery
        let (level, advice) = risk(br.total, critical);
        let data = json!({
            "total_services_affected": br.total,
            "critical_services_affected": critical,
            "risk_level": level,
            "direct_downstream_count": br.direct,
            "recommendation": advice,
        });
        records.push(assessment(host, &mut seq, "dependency_graph", name, data));
    }
    // The cycle's dependency_graph records in one batched call.
    let emitted = submit_all(host, &records).into_iter().filter(|ok| *ok).count() as u32;
    output(&seq, emitted)
}

#[cfg(test)]
mod tests {
    use super::*;
    use nthlayer_sdk::testing::FakeHost;
    use nthlayer_sdk::HostError;

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
                let labels: serde_json::Map<String, Value> = by
                    .iter()
                    .filter(|k| series.get(**k).is_some())
                    .map(|k| (k.to_string(), series[*k].clone()))
                    .collect();
                out.push(json!({"metric": labels, "value": [0, "1"]}));
            }
        }
        json!({"resultType": "vector", "result": out})
    }

    fn scenario(names: &[&str], table: Value) -> (FakeHost, Vec<(String, String)>) {
        let manifests: Vec<Value> = names.iter().map(|n| json!({"name": n})).collect();
        let host = FakeHost::new().with_manifests(json!(manifests));
        for n in names {
            for q in queries(n) {
                host.set_instant(&q, Ok(evaluate(&table, &q)));
            }
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
    fn one_batch_of_24_queries_per_service() {
        let (host, _) = scenario(&["a", "b"], json!({}));
        let calls = host.instant_calls.borrow();
        assert_eq!(calls.len(), 48);
        assert_eq!(calls[..24], queries("a")[..]);
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
        for q in queries("a") {
            host.set_instant(&q, Err(HostError::Unavailable("down".into())));
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
        let mut edges = Vec::new();
        let family = &FAMILIES[0];
        edges_in(&json!({"result": "nope"}), family, &mut edges);
        edges_in(
            &json!({"result": [{"metric": {"service": "a", "target_service": "b"}}, 5, {"metric": {"service": "c", "target_service": "d"}}]}),
            family,
            &mut edges,
        );
        edges_in(&json!({"result": [{"metric": {"service": "a", "target_service": 7}}, {}]}), family, &mut edges);
        assert_eq!(edges, vec![Edge { source: "a".into(), target: "b".into(), edge_type: "service" }]);
    }

    #[test]
    fn no_named_manifests_means_no_queries() {
        let host = FakeHost::new().with_manifests(json!([{"name": ""}, {}]));
        run(&host, &input());
        assert!(host.instant_calls.borrow().is_empty());
        assert!(host.submitted.borrow().is_empty());
    }
}

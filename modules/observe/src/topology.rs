//! `observe.topology`: discovers call edges from Prometheus client metrics and reports each
//! manifest service's blast radius (who calls it, transitively) as a `dependency_graph`.
//!
//! Only the Prometheus provider is used, names are raw label values, manifest
//! `dependencies` are ignored and tiers are unknown, so `critical_services_affected` is
//! always 0 — all as in the reference.

use std::collections::{HashMap, HashSet};

use nthlayer_sdk::{CycleInput, CycleOutput, Host, HostError, Level};
use serde_json::{json, Value};

use crate::{assessment, fetch_manifests, manifest_name, output, submit_all, Seq};

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

/// Which way a query looks from a service: callers (filtered on the source labels) or
/// callees (filtered on the target labels).
#[derive(Clone, Copy, PartialEq, Debug)]
enum Direction {
    Up,
    Down,
}

/// One of the 24 questions a cycle asks: a family query in one direction, unfiltered, with
/// the label the reference filters on (`by`) in its `by (...)` clause. `added` says the label
/// was put there only to split the answer, so it is taken off each series again before the
/// edge is read: a reference answer never carries it.
struct Question {
    family: &'static Family,
    direction: Direction,
    promql: String,
    by: &'static str,
    added: bool,
}

/// The label the reference's per-service rewrite filters on: the first of `labels` that
/// already has a matcher in the query, else the first of `labels` (appended as a matcher).
fn filter_label(query: &str, labels: &'static [&'static str]) -> &'static str {
    labels
        .iter()
        .copied()
        .find(|l| query.contains(&format!("{l}=")) || query.contains(&format!("{l}~")))
        .unwrap_or(labels[0])
}

/// `count by (a, b) (…)` with `label` appended to the `by` list unless it is there already.
fn with_by_label(query: &str, label: &str) -> (String, bool) {
    let open = query.find("by (").map(|i| i + "by (".len());
    let Some((open, close)) = open.and_then(|o| query[o..].find(')').map(|c| (o, o + c))) else {
        return (query.to_string(), false);
    };
    if query[open..close].split(',').any(|l| l.trim() == label) {
        return (query.to_string(), false);
    }
    (format!("{}, {label}{}", &query[..close], &query[close..]), true)
}

/// The 12 upstream then 12 downstream questions, in the reference's query order.
fn questions() -> Vec<Question> {
    let mut out = Vec::new();
    for direction in [Direction::Up, Direction::Down] {
        for family in FAMILIES {
            for query in family.queries {
                let labels = if direction == Direction::Up { family.source_labels } else { family.target_labels };
                let by = filter_label(query, labels);
                let (promql, added) = with_by_label(query, by);
                out.push(Question { family, direction, promql, by, added });
            }
        }
    }
    out
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
struct Edge {
    source: String,
    target: String,
    edge_type: &'static str,
}

fn first_label(metric: &serde_json::Map<String, Value>, labels: &[&str]) -> Option<String> {
    labels.iter().find_map(|l| metric.get(*l).and_then(Value::as_str).filter(|v| !v.is_empty()).map(str::to_string))
}

/// One answer's edges keyed by the value of the question's filter label: what the
/// reference's query filtered to that service would have returned. A series without that
/// label matches no service's filter. A malformed series ends the answer, keeping what came
/// before, as the reference's per-query `except: continue` does (here for every service).
/// Each service's edges are sorted: Prometheus gives no series order, and the depth-limited
/// walk depends on edge order, so a fixed order keeps the records reproducible.
fn index_answer(answer: &Value, q: &Question) -> HashMap<String, Vec<Edge>> {
    let mut by_service: HashMap<String, Vec<Edge>> = HashMap::new();
    let series = answer.get("result").and_then(Value::as_array).map(Vec::as_slice).unwrap_or(&[]);
    let empty = serde_json::Map::new();
    for s in series {
        let Some(s) = s.as_object() else { break };
        let metric = match s.get("metric") {
            None => &empty,
            Some(Value::Object(m)) => m,
            Some(_) => break,
        };
        let Some(key) = metric.get(q.by).and_then(Value::as_str).filter(|v| !v.is_empty()) else {
            continue;
        };
        let edge = if q.added {
            let mut stripped = metric.clone();
            stripped.remove(q.by);
            edge_of(&stripped, q.family)
        } else {
            edge_of(metric, q.family)
        };
        if let Some(edge) = edge {
            by_service.entry(key.to_string()).or_default().push(edge);
        }
    }
    for edges in by_service.values_mut() {
        edges.sort();
    }
    by_service
}

fn edge_of(metric: &serde_json::Map<String, Value>, family: &Family) -> Option<Edge> {
    let source = first_label(metric, family.source_labels)?;
    let target = first_label(metric, family.target_labels)?;
    Some(Edge { source, target, edge_type: family.edge_type })
}

/// Dedup on the reference's string key `"src:tgt:type"` (so names containing ':' can
/// collide, as there), first occurrence kept.
fn dedup_by_key(edges: Vec<Edge>) -> Vec<Edge> {
    let mut seen = HashSet::new();
    edges.into_iter().filter(|e| seen.insert(format!("{}:{}:{}", e.source, e.target, e.edge_type))).collect()
}

/// The 24 answers split by service: per question, each service's edges.
struct Answers {
    indexed: Vec<(Direction, HashMap<String, Vec<Edge>>)>,
}

impl Answers {
    /// Asks the 24 questions in one batched call; a failed question contributes no edge to
    /// any service (as each service's copy of it would have failed in the reference), and
    /// the failures are logged once for the cycle.
    fn ask(host: &dyn Host, services: usize) -> Self {
        let qs = questions();
        let texts: Vec<String> = qs.iter().map(|q| q.promql.clone()).collect();
        let answers = host.prom_query_batch(&texts, None);
        let mut failed: Vec<HostError> = Vec::new();
        let mut indexed = Vec::with_capacity(qs.len());
        for (q, answer) in qs.iter().zip(answers) {
            match answer {
                Ok(a) => indexed.push((q.direction, index_answer(&a, q))),
                Err(e) => {
                    failed.push(e);
                    indexed.push((q.direction, HashMap::new()));
                }
            }
        }
        // The reference swallows these silently (per service); one line a cycle is enough.
        if let Some(first) = failed.first() {
            let n = format!("{}/{}", failed.len(), qs.len());
            host.log(
                Level::Warn,
                "topology_queries_failed",
                &[("services", &services.to_string()), ("failed", &n), ("error", &first.to_string())],
            );
        }
        Answers { indexed }
    }

    /// A service's upstream and downstream edges, each deduplicated as the reference's
    /// provider and discovery do (same key twice, same result).
    fn discover(&self, service: &str) -> (Vec<Edge>, Vec<Edge>) {
        let (mut up, mut down) = (Vec::new(), Vec::new());
        for (direction, by_service) in &self.indexed {
            let edges = if *direction == Direction::Up { &mut up } else { &mut down };
            edges.extend(by_service.get(service).into_iter().flatten().cloned());
        }
        (dedup_by_key(up), dedup_by_key(down))
    }
}

/// The call graph: edges in the order discovery added them, no two alike, and each
/// service's callers indexed, so a 10,000-service catalogue costs a lookup per step of the
/// walk, not a scan of every edge.
#[derive(Default)]
struct Graph {
    edges: Vec<Edge>,
    seen: HashSet<Edge>,
}

impl Graph {
    /// Adds an edge unless one with the same endpoints and type exists.
    fn add(&mut self, edge: Edge) {
        if self.seen.insert(edge.clone()) {
            self.edges.push(edge);
        }
    }

    /// Each target's incoming edges, in the order they were added.
    fn callers(&self) -> HashMap<&str, Vec<&Edge>> {
        let mut out: HashMap<&str, Vec<&Edge>> = HashMap::new();
        for e in &self.edges {
            out.entry(e.target.as_str()).or_default().push(e);
        }
        out
    }
}

struct BlastRadius {
    total: usize,
    direct: usize,
}

fn blast_radius<'a>(callers: &HashMap<&'a str, Vec<&'a Edge>>, service: &'a str) -> BlastRadius {
    let direct = callers.get(service).map_or(&[][..], Vec::as_slice);
    let mut affected: HashSet<&str> = direct.iter().map(|e| e.source.as_str()).collect();
    let mut visited = HashSet::new();
    walk(callers, service, 1, &mut visited, &mut affected);
    BlastRadius { total: affected.len(), direct: direct.len() }
}

/// Depth-first over callers, depth from 1, visited on entry, each edge recorded before
/// recursing into its caller: the visiting order decides what the depth limit cuts off.
fn walk<'a>(
    callers: &HashMap<&'a str, Vec<&'a Edge>>,
    svc: &'a str,
    depth: usize,
    visited: &mut HashSet<&'a str>,
    affected: &mut HashSet<&'a str>,
) {
    if depth > MAX_DEPTH || !visited.insert(svc) {
        return;
    }
    for e in callers.get(svc).into_iter().flatten() {
        affected.insert(e.source.as_str());
        walk(callers, e.source.as_str(), depth + 1, visited, affected);
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

    // Each family query once per direction for every service (the reference rewrites it per
    // service: 24 queries a service), answers split by the label the rewrite filtered on.
    let answers = Answers::ask(host, names.len());
    let mut discovered: HashSet<&str> = HashSet::new();
    let mut graph = Graph::default();
    for name in names.iter().copied().filter(|n| discovered.insert(n)) {
        let (up, down) = answers.discover(name);
        for e in up.into_iter().chain(down) {
            graph.add(e);
        }
    }
    let callers = graph.callers();

    let mut records = Vec::new();
    for name in &names {
        let br = blast_radius(&callers, name);
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
#[path = "topology_tests.rs"]
mod tests;

//! `observe.gate` (on demand): the `nthlayer-workers gate` CLI. Decides APPROVED / WARNING /
//! BLOCKED from the newest `slo_status` per SLO, records a `deploy_gate` assessment, and
//! returns what the reference prints and its exit code, so the host CLI can replay them
//! byte for byte.

use nthlayer_sdk::{py, time, CycleInput, CycleOutput, Host, HostError, Level};
use serde_json::{json, Value};

use crate::{assessment, Seq};

/// `{"exit_code", "stdout", "stderr"}` as the reference CLI would have produced them.
struct Outcome {
    exit_code: i32,
    stdout: String,
    stderr: String,
    /// Whether core took the deploy_gate record.
    recorded: bool,
}

impl Outcome {
    fn error(message: String) -> Self {
        Outcome { exit_code: 1, stdout: String::new(), stderr: format!("{message}\n"), recorded: false }
    }
}

pub fn run(host: &dyn Host, input: &CycleInput) -> Result<CycleOutput, String> {
    let args = input.args.as_ref().unwrap_or(&Value::Null);
    let service = args
        .get("service")
        .and_then(Value::as_str)
        .ok_or("observe.gate needs args {\"service\": <string>, \"tier\"?: <string>, \"commit_sha\"?: <string>}")?;
    let tier = args.get("tier").and_then(Value::as_str);
    let commit_sha = args.get("commit_sha").filter(|v| v.is_string()).cloned().unwrap_or(Value::Null);
    // A CLI run is its own process in the reference, so its id sequence starts at 1.
    let mut seq = Seq::from_state(input.state.as_ref());

    let outcome = gate(host, &mut seq, service, tier, commit_sha);
    Ok(CycleOutput {
        state: None,
        result: Some(json!({"exit_code": outcome.exit_code, "stdout": outcome.stdout, "stderr": outcome.stderr})),
        emitted: u32::from(outcome.recorded),
    })
}

/// The text the reference's core client reports: core's `error` code for a refusal.
fn core_error_text(e: &HostError) -> String {
    match e {
        HostError::Rejected { code, .. } if !code.is_empty() => code.clone(),
        other => other.to_string(),
    }
}

/// Python's `datetime.fromisoformat` for the forms core and workers write.
fn parse_created_at(s: &str) -> Option<f64> {
    if let Some(t) = time::parse_iso(s) {
        return Some(t);
    }
    if s.len() == 10 {
        return time::parse_iso(&format!("{s}T00:00:00"));
    }
    if s.len() > 10 && s.is_char_boundary(10) && s.is_char_boundary(11) && &s[10..11] == " " {
        return time::parse_iso(&format!("{}T{}", &s[..10], &s[11..]));
    }
    None
}

/// One fetched `slo_status` as the reference's store holds it.
struct Record<'a> {
    created_at: f64,
    service: &'a Value,
    kind: &'a Value,
    data: &'a Value,
}

/// The reference's `from_dict` checks, in its order; the error text is what it would print.
fn parse_record(raw: &Value) -> Result<Record<'_>, String> {
    let Some(obj) = raw.as_object() else {
        return Err("assessment is not an object".into());
    };
    let field = |k: &str| obj.get(k).ok_or_else(|| format!("'{k}'"));
    let created_at = match field("created_at")? {
        Value::String(s) => parse_created_at(s).ok_or_else(|| format!("Invalid isoformat string: '{s}'"))?,
        other => return Err(format!("created_at is not a string: {other}")),
    };
    field("id")?;
    let kind = field("kind")?;
    let service = field("service")?;
    field("producer")?;
    let data = field("data")?;
    Ok(Record { created_at, service, kind, data })
}

/// `sum(values) / len(values)` with Python's int/float arithmetic: integers add exactly until
/// the first float, then left-to-right in floating point.
fn python_mean(values: &[&Value]) -> Result<f64, String> {
    let mut int_sum: i128 = 0;
    let mut float_sum: Option<f64> = None;
    for v in values {
        match v {
            Value::Bool(b) => match &mut float_sum {
                Some(f) => *f += f64::from(u8::from(*b)),
                None => int_sum += i128::from(*b),
            },
            Value::Number(n) if n.is_f64() => {
                let x = n.as_f64().unwrap_or(f64::NAN);
                float_sum = Some(float_sum.unwrap_or(int_sum as f64) + x);
            }
            Value::Number(n) => {
                let i = n.as_i64().map(i128::from).or_else(|| n.as_u64().map(i128::from)).unwrap_or(0);
                match &mut float_sum {
                    Some(f) => *f += i as f64,
                    None => int_sum += i,
                }
            }
            other => return Err(format!("percent_consumed is not a number: {other}")),
        }
    }
    let total = float_sum.unwrap_or(int_sum as f64);
    Ok(total / values.len() as f64)
}

struct Thresholds {
    warning: f64,
    blocking: Option<f64>,
}

/// Tier defaults by exact name; aliases such as "tier-1" and unknown tiers get standard's.
fn thresholds(tier: &Value) -> Thresholds {
    match tier.as_str() {
        Some("critical") => Thresholds { warning: 20.0, blocking: Some(10.0) },
        Some("low") => Thresholds { warning: 30.0, blocking: None },
        _ => Thresholds { warning: 20.0, blocking: None },
    }
}

struct Decision {
    name: &'static str,
    remaining: f64,
    message: String,
    recommendations: Vec<String>,
    slo_count: usize,
}

fn decide(records: &[Record], th: &Thresholds) -> Result<Decision, String> {
    if records.is_empty() {
        return Ok(Decision {
            name: "APPROVED",
            remaining: 100.0,
            message: "No SLO assessments found \u{2014} gate approved by default".into(),
            recommendations: Vec::new(),
            slo_count: 0,
        });
    }
    // Newest first already; keep the first record seen per slo_name.
    let mut latest: Vec<(String, &Value)> = Vec::new();
    for r in records {
        let Some(data) = r.data.as_object() else {
            return Err(format!("'{}' object has no attribute 'get'", crate::type_name(r.data)));
        };
        let key = data.get("slo_name").map_or_else(|| "\"unknown\"".to_string(), Value::to_string);
        if !latest.iter().any(|(k, _)| *k == key) {
            latest.push((key, r.data));
        }
    }
    let consumed: Vec<&Value> =
        latest.iter().filter_map(|(_, d)| d.get("percent_consumed")).filter(|v| !v.is_null()).collect();
    let avg = if consumed.is_empty() { 0.0 } else { python_mean(&consumed)? };
    let diff = 100.0 - avg;
    let remaining = if diff > 0.0 { diff } else { 0.0 };

    let pct = py::fixed(remaining, 1);
    let (name, message, recommendations) = match th.blocking {
        Some(b) if remaining <= b => {
            let b = py::repr(b);
            (
                "BLOCKED",
                format!("Error budget critical: {pct}% remaining (blocking threshold: {b}%)"),
                vec![
                    format!("Budget below blocking threshold ({b}%)"),
                    "Investigate ongoing issues before deploying".into(),
                    "Consider waiting for budget recovery".into(),
                ],
            )
        }
        _ if remaining <= th.warning => {
            let w = py::repr(th.warning);
            (
                "WARNING",
                format!("Error budget low: {pct}% remaining (warning threshold: {w}%)"),
                vec![format!("Budget below warning threshold ({w}%)"), "Monitor closely after deployment".into()],
            )
        }
        _ => ("APPROVED", format!("Error budget healthy: {pct}% remaining"), Vec::new()),
    };
    Ok(Decision { name, remaining, message, recommendations, slo_count: latest.len() })
}

fn gate(host: &dyn Host, seq: &mut Seq, service: &str, tier_arg: Option<&str>, commit_sha: Value) -> Outcome {
    let tier = match tier_arg {
        Some(t) => json!(t),
        None => match host.get_manifest(service) {
            Ok(Value::Object(m)) => m.get("tier").cloned().unwrap_or_else(|| json!("standard")),
            Ok(_) => return Outcome::error(format!("Error: malformed manifest response for {service}")),
            Err(e) => {
                return Outcome::error(format!(
                    "Error: could not fetch manifest for {service}: {}",
                    core_error_text(&e)
                ))
            }
        },
    };

    let fetched = match host.query_assessments(Some(service), Some("slo_status"), 100) {
        Ok(v) => v,
        Err(e) => return Outcome::error(format!("Error: could not fetch assessments: {}", core_error_text(&e))),
    };
    let fetched: &[Value] = match &fetched {
        Value::Array(a) => a,
        v if !crate::truthy(v) => &[],
        _ => return Outcome::error("Error: gate evaluation failed: malformed assessments response".into()),
    };

    let mut records = Vec::with_capacity(fetched.len());
    let mut ids: Vec<Value> = Vec::with_capacity(fetched.len());
    for raw in fetched {
        let record = match parse_record(raw) {
            Ok(r) => r,
            Err(e) => return Outcome::error(format!("Error: gate evaluation failed: {e}")),
        };
        let id = raw["id"].clone();
        if ids.contains(&id) {
            let shown = id.as_str().map_or_else(|| id.to_string(), str::to_string);
            return Outcome::error(format!("Error: gate evaluation failed: Assessment {shown} already exists"));
        }
        ids.push(id);
        records.push(record);
    }
    records.retain(|r| r.service.as_str() == Some(service) && r.kind.as_str() == Some("slo_status"));
    records.sort_by(|a, b| b.created_at.total_cmp(&a.created_at));

    let th = thresholds(&tier);
    let d = match decide(&records, &th) {
        Ok(d) => d,
        Err(e) => return Outcome::error(format!("Error: gate evaluation failed: {e}")),
    };

    let mut reasons = vec![d.message.clone()];
    reasons.extend(d.recommendations.iter().cloned());
    let data = json!({
        "action": "deploy",
        "decision": d.name.to_lowercase(),
        "budget_remaining_pct": d.remaining,
        "warning_threshold": th.warning,
        "blocking_threshold": th.blocking,
        "slo_count": d.slo_count,
        "reasons": reasons,
        "commit_sha": commit_sha,
        "parent_ids": ids,
    });
    let record = assessment(host, seq, "deploy_gate", service, data);
    // The reference ignores the outcome of this post; only log it.
    let recorded = match host.submit_assessment(&record, Some("observe.gate")) {
        Ok(_) => true,
        Err(e) => {
            let error = e.to_string();
            host.log(Level::Warn, "observe_submit_failed", &[("service", service), ("error", &error)]);
            false
        }
    };

    let printed = json!({
        "service": service,
        "tier": tier,
        "decision": d.name,
        "budget_remaining_pct": py::round1(d.remaining),
        "message": d.message,
        "recommendations": d.recommendations,
    });
    let stdout = format!("{}\n", py::dumps_indent2(&printed));
    let (exit_code, stderr) = match d.name {
        "BLOCKED" => (2, String::new()),
        "WARNING" => (0, format!("WARNING: {}\n", d.message)),
        _ => (0, String::new()),
    };
    Outcome { exit_code, stdout, stderr, recorded }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nthlayer_sdk::testing::FakeHost;

    const T1: &str = "2026-11-22T15:00:00.000000+00:00";
    const T2: &str = "2026-11-22T15:05:00.000000+00:00";

    fn rec(id: &str, svc: &str, slo: &str, pc: Value, created: &str) -> Value {
        let mut data = json!({"slo_name": slo, "status": "HEALTHY"});
        if !pc.is_null() {
            data["percent_consumed"] = pc;
        }
        json!({"id": id, "created_at": created, "kind": "slo_status", "service": svc, "producer": "nthlayer-observe", "data": data})
    }

    fn gate_run(host: &FakeHost, args: Value) -> (i64, String, String) {
        let input = CycleInput { task: "observe.gate".into(), state: None, config: json!({}), args: Some(args) };
        let out = run(host, &input).unwrap();
        assert_eq!(out.state, None);
        assert_eq!(out.emitted, u32::from(!host.submitted.borrow().is_empty()));
        let r = out.result.unwrap();
        (r["exit_code"].as_i64().unwrap(), r["stdout"].as_str().unwrap().into(), r["stderr"].as_str().unwrap().into())
    }

    fn sent(host: &FakeHost) -> Vec<(Value, Option<String>)> {
        host.submitted.borrow().iter().map(|s| (s.record.clone(), s.source.clone())).collect()
    }

    // Expected stdout/stderr/exit codes and deploy_gate data below are the reference CLI's
    // (`_gate_async` with a stub core client) for the same inputs.

    #[test]
    fn blocked_critical_service_of_the_live_run() {
        let host = FakeHost::new().with_manifests(json!([{"name": "checkout-api", "tier": "critical"}]));
        *host.assessments.borrow_mut() = vec![
            rec("asm-3", "checkout-api", "availability", json!(50.0), T2),
            rec("asm-4", "checkout-api", "latency", json!(300.0), T2),
            rec("asm-5", "checkout-api", "throughput", Value::Null, T2),
            rec("asm-1", "checkout-api", "availability", json!(10.0), T1),
        ];
        let (code, stdout, stderr) =
            gate_run(&host, json!({"service": "checkout-api", "tier": null, "commit_sha": "abc123"}));
        assert_eq!(code, 2);
        assert_eq!(stdout, "{\n  \"service\": \"checkout-api\",\n  \"tier\": \"critical\",\n  \"decision\": \"BLOCKED\",\n  \"budget_remaining_pct\": 0.0,\n  \"message\": \"Error budget critical: 0.0% remaining (blocking threshold: 10.0%)\",\n  \"recommendations\": [\n    \"Budget below blocking threshold (10.0%)\",\n    \"Investigate ongoing issues before deploying\",\n    \"Consider waiting for budget recovery\"\n  ]\n}\n");
        assert_eq!(stderr, "");
        let s = sent(&host);
        assert_eq!(s.len(), 1);
        assert_eq!(s[0].1.as_deref(), Some("observe.gate"));
        assert_eq!(s[0].0["kind"], "deploy_gate");
        assert_eq!(s[0].0["producer"], "nthlayer-observe");
        assert!(s[0].0["id"].as_str().unwrap().ends_with("-00001"));
        assert_eq!(
            s[0].0["data"].to_string(),
            json!({"action": "deploy", "decision": "blocked", "budget_remaining_pct": 0.0, "warning_threshold": 20.0,
                   "blocking_threshold": 10.0, "slo_count": 3,
                   "reasons": ["Error budget critical: 0.0% remaining (blocking threshold: 10.0%)", "Budget below blocking threshold (10.0%)",
                               "Investigate ongoing issues before deploying", "Consider waiting for budget recovery"],
                   "commit_sha": "abc123", "parent_ids": ["asm-3", "asm-4", "asm-5", "asm-1"]})
            .to_string()
        );
    }

    #[test]
    fn approved_keeps_the_unrounded_figure_in_the_record() {
        let host = FakeHost::new().with_manifests(json!([{"name": "payment-api", "tier": "standard"}]));
        *host.assessments.borrow_mut() = vec![rec("asm-7", "payment-api", "availability", json!(9.99999999999946), T2)];
        let (code, stdout, stderr) = gate_run(&host, json!({"service": "payment-api"}));
        assert_eq!((code, stderr.as_str()), (0, ""));
        assert_eq!(stdout, "{\n  \"service\": \"payment-api\",\n  \"tier\": \"standard\",\n  \"decision\": \"APPROVED\",\n  \"budget_remaining_pct\": 90.0,\n  \"message\": \"Error budget healthy: 90.0% remaining\",\n  \"recommendations\": []\n}\n");
        let data = &sent(&host)[0].0["data"];
        assert_eq!(data["budget_remaining_pct"], 90.00000000000054);
        assert_eq!(data["blocking_threshold"], Value::Null);
        assert_eq!(data["commit_sha"], Value::Null);
        assert_eq!(data["reasons"], json!(["Error budget healthy: 90.0% remaining"]));
    }

    #[test]
    fn warning_writes_stderr_and_exits_zero() {
        let host = FakeHost::new().with_manifests(json!([{"name": "fraud-detect", "tier": "standard"}]));
        *host.assessments.borrow_mut() =
            vec![rec("asm-8", "fraud-detect", "reversal_rate", json!(533.3333333333331), T2)];
        let (code, stdout, stderr) = gate_run(&host, json!({"service": "fraud-detect"}));
        assert_eq!(code, 0);
        assert_eq!(stdout, "{\n  \"service\": \"fraud-detect\",\n  \"tier\": \"standard\",\n  \"decision\": \"WARNING\",\n  \"budget_remaining_pct\": 0.0,\n  \"message\": \"Error budget low: 0.0% remaining (warning threshold: 20.0%)\",\n  \"recommendations\": [\n    \"Budget below warning threshold (20.0%)\",\n    \"Monitor closely after deployment\"\n  ]\n}\n");
        assert_eq!(stderr, "WARNING: Error budget low: 0.0% remaining (warning threshold: 20.0%)\n");
    }

    #[test]
    fn low_tier_from_args_with_integer_figures() {
        let host = FakeHost::new();
        *host.assessments.borrow_mut() =
            vec![rec("asm-9", "x", "a", json!(75), T2), rec("asm-10", "x", "b", json!(75), T2)];
        let (code, stdout, stderr) = gate_run(&host, json!({"service": "x", "tier": "low"}));
        assert_eq!(code, 0);
        assert_eq!(stdout, "{\n  \"service\": \"x\",\n  \"tier\": \"low\",\n  \"decision\": \"WARNING\",\n  \"budget_remaining_pct\": 25.0,\n  \"message\": \"Error budget low: 25.0% remaining (warning threshold: 30.0%)\",\n  \"recommendations\": [\n    \"Budget below warning threshold (30.0%)\",\n    \"Monitor closely after deployment\"\n  ]\n}\n");
        assert_eq!(stderr, "WARNING: Error budget low: 25.0% remaining (warning threshold: 30.0%)\n");
        let data = &sent(&host)[0].0["data"];
        assert_eq!(data["warning_threshold"], 30.0);
        assert_eq!(data["slo_count"], 2);
    }

    #[test]
    fn no_assessments_approves_by_default_with_escaped_dash() {
        let host = FakeHost::new();
        let (code, stdout, _) = gate_run(&host, json!({"service": "new-svc", "tier": "low"}));
        assert_eq!(code, 0);
        assert_eq!(stdout, "{\n  \"service\": \"new-svc\",\n  \"tier\": \"low\",\n  \"decision\": \"APPROVED\",\n  \"budget_remaining_pct\": 100.0,\n  \"message\": \"No SLO assessments found \\u2014 gate approved by default\",\n  \"recommendations\": []\n}\n");
        let data = &sent(&host)[0].0["data"];
        assert_eq!(data["reasons"], json!(["No SLO assessments found \u{2014} gate approved by default"]));
        assert_eq!(data["slo_count"], 0);
        assert_eq!(data["parent_ids"], json!([]));
    }

    #[test]
    fn unknown_service_exits_one() {
        let host = FakeHost::new();
        let (code, stdout, stderr) = gate_run(&host, json!({"service": "nope"}));
        assert_eq!((code, stdout.as_str()), (1, ""));
        assert_eq!(stderr, "Error: could not fetch manifest for nope: not_found\n");
        assert!(sent(&host).is_empty());
    }

    #[test]
    fn core_down_exits_one() {
        let host = FakeHost::new();
        *host.core_error.borrow_mut() = Some(HostError::Unavailable("connection refused".into()));
        let (code, _, stderr) = gate_run(&host, json!({"service": "x", "tier": "critical"}));
        assert_eq!(code, 1);
        assert_eq!(stderr, "Error: could not fetch assessments: unavailable: connection refused\n");
    }

    #[test]
    fn malformed_records_exit_one_like_the_reference() {
        let host = FakeHost::new();
        *host.assessments.borrow_mut() =
            vec![json!({"id": "a", "created_at": T2, "kind": "slo_status", "service": "x", "data": {}})];
        let (code, _, stderr) = gate_run(&host, json!({"service": "x", "tier": "standard"}));
        assert_eq!((code, stderr.as_str()), (1, "Error: gate evaluation failed: 'producer'\n"));

        let mut bad = rec("a", "x", "s", json!(1.0), T2);
        bad["created_at"] = json!("yesterday");
        *host.assessments.borrow_mut() = vec![bad];
        let (_, _, stderr) = gate_run(&host, json!({"service": "x", "tier": "standard"}));
        assert_eq!(stderr, "Error: gate evaluation failed: Invalid isoformat string: 'yesterday'\n");

        *host.assessments.borrow_mut() = vec![rec("a", "x", "s", json!(1.0), T2), rec("a", "x", "t", json!(1.0), T1)];
        let (_, _, stderr) = gate_run(&host, json!({"service": "x", "tier": "standard"}));
        assert_eq!(stderr, "Error: gate evaluation failed: Assessment a already exists\n");
        assert!(sent(&host).is_empty());
    }

    #[test]
    fn rounding_tiers_and_newest_first() {
        let host = FakeHost::new().with_manifests(json!([{"name": "y"}, {"name": "z", "tier": "high"}]));
        *host.assessments.borrow_mut() =
            vec![rec("asm-11", "y", "a", json!(12.34), T2), rec("asm-12", "z", "a", json!(85.05), T2)];
        let (code, stdout, _) = gate_run(&host, json!({"service": "y"}));
        assert_eq!(code, 0);
        assert!(stdout.contains("\"tier\": \"standard\",\n  \"decision\": \"APPROVED\",\n  \"budget_remaining_pct\": 87.7,\n  \"message\": \"Error budget healthy: 87.7% remaining\""), "{stdout}");
        assert_eq!(sent(&host)[0].0["data"]["budget_remaining_pct"], 87.66);
        // "high" is not a gate tier: standard thresholds, printed as given.
        let (code, stdout, stderr) = gate_run(&host, json!({"service": "z"}));
        assert_eq!(code, 0);
        assert!(
            stdout.contains("\"tier\": \"high\",\n  \"decision\": \"WARNING\",\n  \"budget_remaining_pct\": 15.0,"),
            "{stdout}"
        );
        assert_eq!(stderr, "WARNING: Error budget low: 15.0% remaining (warning threshold: 20.0%)\n");
        assert_eq!(sent(&host)[1].0["data"]["budget_remaining_pct"], 14.950000000000003);

        // Records out of order: the newest per SLO wins whatever order core used.
        *host.assessments.borrow_mut() = vec![rec("o", "y", "a", json!(95.0), T1), rec("n", "y", "a", json!(5.0), T2)];
        let (_, stdout, _) = gate_run(&host, json!({"service": "y", "tier": "critical"}));
        assert!(stdout.contains("\"decision\": \"APPROVED\",\n  \"budget_remaining_pct\": 95.0,"), "{stdout}");
    }

    #[test]
    fn non_ascii_service_is_escaped_in_stdout() {
        let host = FakeHost::new();
        *host.assessments.borrow_mut() = vec![rec("asm-13", "caf\u{e9}", "a", json!(95), T2)];
        let (code, stdout, _) = gate_run(&host, json!({"service": "caf\u{e9}", "tier": "critical"}));
        assert_eq!(code, 2);
        assert!(stdout.starts_with("{\n  \"service\": \"caf\\u00e9\",\n  \"tier\": \"critical\",\n  \"decision\": \"BLOCKED\",\n  \"budget_remaining_pct\": 5.0,"), "{stdout}");
        assert_eq!(sent(&host)[0].0["service"], "caf\u{e9}");
    }

    #[test]
    fn missing_service_arg_is_a_cycle_error() {
        let input = CycleInput { task: "observe.gate".into(), state: None, config: json!({}), args: None };
        assert!(run(&FakeHost::new(), &input).is_err());
        let input = CycleInput { args: Some(json!({"service": 5})), ..input };
        assert!(run(&FakeHost::new(), &input).is_err());
    }

    #[test]
    fn python_mean_keeps_int_and_float_rules() {
        assert_eq!(python_mean(&[&json!(75), &json!(75)]), Ok(75.0));
        assert_eq!(python_mean(&[&json!(0.1), &json!(0.2), &json!(0.3)]), Ok((0.1 + 0.2 + 0.3) / 3.0));
        assert_eq!(python_mean(&[&json!(true), &json!(1.5)]), Ok(1.25));
        assert!(python_mean(&[&json!("1")]).is_err());
        assert_eq!(parse_created_at("2026-11-22"), parse_created_at("2026-11-22T00:00:00+00:00"));
        assert_eq!(parse_created_at("2026-11-22 15:00:00"), parse_created_at(T1));
    }
}

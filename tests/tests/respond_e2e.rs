//! respond end to end: the real nthlayer-core, the real `nthlayer-host` running only
//! `dist/modules/respond.wasm`, and a loopback OpenAI-compatible provider answering with
//! schema-valid tool calls (one malformed first answer forces a re-ask). Snapshots and
//! breaches are seeded straight into core, as correlate and measure would write them.
//!
//! Needs `target/debug/nthlayer-host` and `dist/modules/respond.wasm`
//! (`cargo build -p nthlayer-host && scripts/build-modules`).

use std::process::Command;
use std::time::Duration;

use serde_json::{json, Value};

use nthlayer_tests::core::Core;
use nthlayer_tests::host::host_bin;
use nthlayer_tests::llm_fake::{openai_tool_call, FakeLlm, LlmHost, Recorded};
use nthlayer_tests::modules;
use nthlayer_tests::util::fixtures_dir;
use nthlayer_tests::wait::{assert_stays, wait_until};

const CYCLE: Duration = Duration::from_secs(120);
const OPENAI_KEY: &str = "sk-proj-TESTSECRETopenai0123456789abcdef";
const BREACH: &str = "vrd-breach-fraud-detect-reversal_rate-e2e00001";

fn respond_module() -> String {
    modules::RESPOND.built().display().to_string()
}

fn manifests() -> std::path::PathBuf {
    fixtures_dir().join("respond/manifests")
}

fn answers() -> Value {
    serde_json::from_str(&std::fs::read_to_string(fixtures_dir().join("respond/answers.json")).unwrap()).unwrap()
}

fn iso_ago(seconds: i64) -> String {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_micros() as i64;
    let t = chrono::DateTime::from_timestamp_micros(now - seconds * 1_000_000).unwrap();
    t.to_rfc3339_opts(chrono::SecondsFormat::Micros, false)
}

fn seed_breach(core: &Core, id: &str, service: &str, created_at: &str) {
    let v = json!({"id": id, "type": "quality_breach", "service": service, "created_at": created_at,
                   "parent_ids": [], "data": {"slo_name": "reversal_rate", "severity": "high",
                   "target": 95.0, "current_value": 91.2}});
    let (status, body) = core.post_json("/verdicts", &v).unwrap();
    assert_eq!(status, 201, "{body}");
}

fn seed_snapshot(core: &Core, id: &str, breach: &str) {
    let s = json!({"id": id, "created_at": iso_ago(0), "kind": "correlation_snapshot", "service": "fraud-detect",
        "data": {"domain": {"service": "fraud-detect", "environment": "production"},
                 "window": {"close_reason": "trigger"}, "event_count": 2,
                 "event_types": {"quality_score": 1, "metric_breach": 1}, "peak_severity": 0.9,
                 "affected_services": ["fraud-detect"], "environment_source": "default", "parent_ids": [breach],
                 "nl_summary": {"summary": "Reversal rate on fraud-detect breached its SLO.", "notable_omissions": [], "confidence": 0.6}}});
    let (status, body) = core.post_json("/assessments", &s).unwrap();
    assert_eq!(status, 201, "{body}");
}

/// The provider: valid answers from the fixture, except the very first triage call, which
/// gets a severity of the wrong type (the host re-asks).
fn provider() -> FakeLlm {
    let answers = answers();
    FakeLlm::start(move |req: &Recorded, earlier: &[Recorded]| {
        let name = req.tool_name().unwrap_or("?").to_owned();
        let first_triage = name == "TriageResponse" && !earlier.iter().any(|r| r.tool_name() == Some("TriageResponse"));
        let args = if first_triage { json!({"severity": "very bad"}).to_string() } else { answers[&name].to_string() };
        (200, openai_tool_call(&name, &args, 200, 40))
    })
}

fn serve(core: &Core, instance: &str, env: &[(&str, &str)]) -> LlmHost {
    let m = respond_module();
    LlmHost::serve(&core.url(), instance, &[m.as_str()], &["--respond-interval", "2"], env)
}

fn respond_state(core: &Core) -> Option<Value> {
    core.component_state("respond").and_then(|r| r.pointer("/hysteresis_state/state").cloned())
}

fn incidents(state: &Value) -> Vec<Value> {
    state["incidents"].as_object().map(|m| m.values().cloned().collect()).unwrap_or_default()
}

/// The persisted state once some incident satisfies `pred`.
fn wait_incident(core: &Core, host: &LlmHost, desc: &str, pred: impl Fn(&Value) -> bool) -> Value {
    let found = nthlayer_tests::wait::try_wait_until(CYCLE, Duration::from_millis(500), || {
        respond_state(core).filter(|s| incidents(s).iter().any(&pred))
    });
    found.unwrap_or_else(|| panic!("{desc}: state {:?}\nhost log:\n{}", respond_state(core), host.log_tail(60)))
}

/// Respond's verdicts of `kind` in core, oldest first.
fn verdicts(core: &Core, kind: &str) -> Vec<Value> {
    let mut v: Vec<Value> = core
        .verdicts(None, Some(kind))
        .into_iter()
        .map(|v| serde_json::to_value(v).unwrap())
        .filter(|v| v["producer"]["system"] == "nthlayer-respond")
        .collect();
    v.sort_by(|a, b| a["created_at"].as_str().cmp(&b["created_at"].as_str()));
    v
}

fn cases(core: &Core) -> Vec<Value> {
    core.get_json("/cases", &[("limit", "100")]).unwrap().as_array().cloned().unwrap_or_default()
}

fn counts(core: &Core) -> [usize; 5] {
    ["triage", "investigation", "communication", "remediation", "approval"].map(|k| verdicts(core, k).len())
}

/// `nthlayer-host run --task respond.<verb>` for an incident; the decision's result JSON.
fn decide(core: &Core, verb: &str, incident: &str) -> Value {
    let args = json!({"incident": incident, "operator": "alice", "reason": "rollback is safe"}).to_string();
    let out = Command::new(host_bin())
        .args(["run", "--task", &format!("respond.{verb}"), "--args", &args, "--core-url", &core.url()])
        .args(["--modules", &respond_module()])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let printed: Value = serde_json::from_slice(&out.stdout).unwrap();
    printed["result"].clone()
}

/// Snapshot → incident → case → four verdicts with lineage → paused for approval; a restart
/// and a second snapshot for the same breach add nothing; a restart with the state lost
/// replays into the same ids (core refuses duplicates); approval resumes to the resolution
/// update and `resolved`.
#[test]
fn snapshot_runs_the_pipeline_pauses_survives_restarts_and_resumes_on_approval() {
    let core = Core::start(&manifests());
    let fake = provider();
    let base = fake.openai_base();
    let env =
        [("NTHLAYER_MODEL", "openai/gpt-fake"), ("OPENAI_API_BASE", base.as_str()), ("OPENAI_API_KEY", OPENAI_KEY)];
    seed_breach(&core, BREACH, "fraud-detect", &iso_ago(0));
    seed_snapshot(&core, "csn-fraud-detect-production-e2e00001", BREACH);

    let mut host = serve(&core, "respond-e2e-1", &env);
    let st = wait_incident(&core, &host, "incident paused for approval", |i| i["state"] == "awaiting_approval");
    let inc = incidents(&st)[0].clone();
    let inc_id = inc["id"].as_str().unwrap().to_string();
    assert!(inc_id.starts_with("INC-FRAUD-DETECT-"), "{inc_id}");
    assert_eq!(inc["trigger_verdict_ids"], json!(["csn-fraud-detect-production-e2e00001", BREACH]));
    assert_eq!(inc["topology"], json!({"services": [{"name": "fraud-detect", "tier": "critical"}]}));

    // The case, as core stores it.
    let case = core.get_json(&format!("/cases/case-{inc_id}"), &[]).unwrap();
    assert_eq!(case["kind"], "incident");
    assert_eq!(case["underlying_verdict"], BREACH);
    assert_eq!(case["service"], "fraud-detect");
    assert_eq!(case["briefing"], "Reversal rate on fraud-detect breached its SLO.");
    assert_eq!(case["priority"], "P0");

    // Four verdicts, lineage triage ← triggers, {investigation, communication} ← triage,
    // remediation ← investigation.
    let [t, i, c, r] = ["triage", "investigation", "communication", "remediation"].map(|k| verdicts(&core, k));
    assert_eq!([t.len(), i.len(), c.len(), r.len()], [1, 1, 1, 1]);
    let (t, i, c, r) = (&t[0], &i[0], &c[0], &r[0]);
    assert_eq!(t["parent_ids"], json!(["csn-fraud-detect-production-e2e00001", BREACH]));
    assert_eq!(i["parent_ids"], json!([t["id"]]));
    assert_eq!(c["parent_ids"], json!([t["id"]]));
    assert_eq!(r["parent_ids"], json!([i["id"]]));
    assert_eq!(r["lineage"]["parent"], i["id"]);
    assert_eq!(t["subject"]["summary"], "SEV-1: Fraud decisions are being reversed at twice the normal rate");
    assert_eq!(i["subject"]["summary"], "Root cause (85% confidence): Model release v42 regressed fraud judgments");
    assert_eq!(r["subject"]["summary"], "rollback on fraud-detect (requires approval)");
    assert_eq!(r["metadata"]["custom"], json!({"proposed_action": "rollback", "target": "fraud-detect"}));
    assert_eq!(i["producer"]["prompt_version"], "investigation/1");
    assert_eq!(i["metadata"]["cost_tokens"], 240);
    assert!(i["metadata"]["latency_ms"].is_u64(), "{i}");
    assert_eq!(t["judgment"]["action"], "flag");

    // The provider saw our schemas, and one re-ask for the malformed triage answer.
    let reqs = fake.requests();
    let triage: Vec<&Recorded> = reqs.iter().filter(|r| r.tool_name() == Some("TriageResponse")).collect();
    assert_eq!(triage.len(), 2, "malformed first answer, then a re-ask");
    assert!(triage[1].message_count() > triage[0].message_count());
    let params = &triage[0].body["tools"][0]["function"]["parameters"];
    assert_eq!(params["properties"]["severity"]["type"], "integer", "{params}");
    assert!(triage[0].body["messages"][0]["content"].as_str().unwrap().contains("on-call SRE"));

    // Restart; correlate re-emits a snapshot for the same breach. Nothing new opens.
    assert!(host.terminate(Duration::from_secs(15)), "clean shutdown");
    seed_snapshot(&core, "csn-fraud-detect-production-e2e00002", BREACH);
    let mut host = serve(&core, "respond-e2e-2", &env);
    let st = wait_incident(&core, &host, "second snapshot merged", |i| {
        i["metadata"]["merged_snapshot_ids"]
            .as_array()
            .is_some_and(|t| t.iter().any(|x| x == "csn-fraud-detect-production-e2e00002"))
    });
    assert_eq!(incidents(&st).len(), 1, "{st}");
    assert_eq!(counts(&core), [1, 1, 1, 1, 0]);
    assert_eq!(cases(&core).len(), 1);

    // Restart with the state lost (as if the host died before saving): the replay opens the
    // same incident id and core refuses every repeated case and verdict.
    assert!(host.terminate(Duration::from_secs(15)));
    core.put_component_state("respond", &json!({"last_cursor": null, "hysteresis_state": null, "dedup_cache": null}));
    let host = serve(&core, "respond-e2e-3", &env);
    let st = wait_incident(&core, &host, "replayed incident paused", |i| i["state"] == "awaiting_approval");
    assert_eq!(incidents(&st).len(), 1, "{st}");
    assert_eq!(incidents(&st)[0]["id"], json!(inc_id));
    assert_eq!(counts(&core), [1, 1, 1, 1, 0]);
    assert_eq!(cases(&core).len(), 1);

    // The operator approves; the next cycle writes the resolution update and resolves.
    let apr = decide(&core, "approve", &inc_id);
    assert_eq!(apr["decision"], "approve");
    assert_eq!(apr["remediation"], r["id"]);
    let st = wait_incident(&core, &host, "incident resolved after approval", |i| i["state"] == "resolved");
    assert_eq!(incidents(&st)[0]["approval"]["by"], "alice");
    assert_eq!(counts(&core), [1, 1, 2, 1, 1]);
    let approval = &verdicts(&core, "approval")[0];
    assert_eq!(approval["parent_ids"], json!([r["id"]]));
    let comm2 = &verdicts(&core, "communication")[1];
    assert_eq!(comm2["parent_ids"], json!([approval["id"]]));
    assert_eq!(cases(&core).len(), 1);
    drop(host);
}

/// No LLM configured: one degraded triage verdict, the incident escalated, and still a
/// case. An orphan breach older than the fallback threshold gets its own incident and case.
#[test]
fn without_an_llm_incidents_escalate_with_a_case_and_orphan_breaches_fall_back() {
    let core = Core::start(&manifests());
    seed_breach(&core, BREACH, "fraud-detect", &iso_ago(0));
    seed_snapshot(&core, "csn-fraud-detect-production-e2e00003", BREACH);
    let orphan = "vrd-breach-checkout-approval-e2e00002";
    let v = json!({"id": orphan, "type": "quality_breach", "service": "checkout", "created_at": iso_ago(300),
                   "data": {"slo_name": "approval_rate", "current_value": 0.9, "target": 0.95}});
    assert_eq!(core.post_json("/verdicts", &v).unwrap().0, 201);

    let host = serve(&core, "respond-e2e-nollm", &[]);
    let st = wait_until("both incidents escalated", CYCLE, || {
        respond_state(&core)
            .filter(|s| incidents(s).len() == 2 && incidents(s).iter().all(|i| i["state"] == "escalated"))
    });
    let fb = incidents(&st).into_iter().find(|i| i["trigger_source"] == "nthlayer-measure-fallback").unwrap();
    assert_eq!(fb["trigger_verdict_ids"], json!([orphan]));
    let triage = verdicts(&core, "triage");
    assert_eq!(triage.len(), 2);
    for t in &triage {
        assert_eq!(t["judgment"]["action"], "escalate");
        assert_eq!(t["judgment"]["confidence"], 0.0);
        assert_eq!(t["judgment"]["tags"], json!(["degraded", "human-takeover-required"]));
        assert!(t["judgment"]["reasoning"].as_str().unwrap().starts_with("Agent operating in degraded mode: "));
    }
    assert_eq!(counts(&core), [2, 0, 0, 0, 0]);
    let cs = cases(&core);
    assert_eq!(cs.len(), 2, "{cs:?}");
    let fb_case = cs.iter().find(|c| c["underlying_verdict"] == orphan).unwrap();
    assert_eq!(fb_case["briefing"], "approval_rate breach on checkout: 0.9 vs target 0.95");
    // Nothing more happens on later cycles.
    assert_stays("no new respond verdicts", Duration::from_secs(6), || counts(&core) == [2, 0, 0, 0, 0]);
    assert!(host.log().contains("respond_agent_degraded"), "{}", host.log_tail(40));
}

fn keys(v: &Value) -> Vec<String> {
    v.as_object().map(|o| o.keys().cloned().collect()).unwrap_or_default()
}

fn is_incident_id(id: &str) -> bool {
    let rest = id.strip_prefix("INC-FRAUD-DETECT-").unwrap_or("");
    let b = rest.as_bytes();
    rest.len() == 8 + 1 + 6 + 1 + 8
        && b[..8].iter().all(u8::is_ascii_digit)
        && b[8] == b'-'
        && b[9..15].iter().all(u8::is_ascii_digit)
        && b[15] == b'-'
        && b[16..].iter().all(|c| c.is_ascii_hexdigit())
}

/// The reference (`nthlayer-workers` 3.0.3) and nthlayer-host, both under
/// `NTHLAYER_LLM_STUB=canned`, each against its own core seeded with the same breach and
/// snapshot: the same case fields, incident id shape and triage verdict shape and lineage.
/// The intended differences show too (docs/PARITY.md): the reference never reaches the stub
/// (one degraded triage verdict) and opens a second incident and case for a re-emitted
/// snapshot of the same breach; ours runs the pipeline to the approval pause and merges.
#[test]
fn case_ingestion_and_dedup_compared_with_the_reference_under_the_stub() {
    use nthlayer_tests::host::ReferenceWorkers;
    let (core_ref, core_ours) = (Core::start(&manifests()), Core::start(&manifests()));
    let breach_at = iso_ago(0);
    for core in [&core_ref, &core_ours] {
        seed_breach(core, BREACH, "fraud-detect", &breach_at);
    }
    let snap = |core: &Core, id: &str| seed_snapshot(core, id, BREACH);
    snap(&core_ref, "csn-fraud-detect-production-par00001");
    snap(&core_ours, "csn-fraud-detect-production-par00001");
    let quiet = [("collect", 1_000_000_000), ("drift", 1_000_000_000), ("topology", 1_000_000_000), ("respond", 2)];
    let _reference = ReferenceWorkers::serve(&core_ref.url(), "http://127.0.0.1:9", &quiet);
    let m = respond_module();
    let ours = LlmHost::serve(
        &core_ours.url(),
        "respond-parity",
        &[m.as_str()],
        &["--respond-interval", "2"],
        &[("NTHLAYER_LLM_STUB", "canned")],
    );
    wait_until("reference case", CYCLE, || cases(&core_ref).first().cloned());
    wait_incident(&core_ours, &ours, "ours paused", |i| i["state"] == "awaiting_approval");

    let (cr, co) = (cases(&core_ref)[0].clone(), cases(&core_ours)[0].clone());
    for k in ["kind", "priority", "state", "underlying_verdict", "service", "briefing"] {
        assert_eq!(cr[k], co[k], "case field {k}: reference {cr} ours {co}");
    }
    let (ir, io) = (cr["id"].as_str().unwrap(), co["id"].as_str().unwrap());
    assert!(is_incident_id(ir.strip_prefix("case-").unwrap()), "{ir}");
    assert!(is_incident_id(io.strip_prefix("case-").unwrap()), "{io}");

    // The reference writes its case when it opens the incident, its verdict just after.
    let tr: Vec<Value> = wait_until("reference triage verdict", CYCLE, || {
        let v = core_ref.verdicts(None, Some("triage"));
        (!v.is_empty()).then(|| v.into_iter().map(|v| serde_json::to_value(v).unwrap()).collect())
    });
    let to = verdicts(&core_ours, "triage");
    assert_eq!((tr.len(), to.len()), (1, 1));
    let (tr, to) = (&tr[0], &to[0]);
    for part in ["producer", "subject", "judgment", "outcome", "lineage", "metadata"] {
        assert_eq!(keys(&tr[part]), keys(&to[part]), "{part}");
    }
    for k in ["parent_ids", "version", "chain_depth", "service", "type", "outcome"] {
        assert_eq!(tr[k], to[k], "{k}");
    }
    assert_eq!(tr["lineage"]["context"], to["lineage"]["context"]);
    assert_eq!(tr["subject"]["ref"].as_str().map(is_incident_id), Some(true));
    // The reference never reaches the stub; ours does.
    assert_eq!(tr["judgment"]["action"], "escalate");
    assert_eq!(to["subject"]["summary"], "SEV-2: Stub triage: severity 2 from canned LLM");
    assert_eq!(
        verdicts(&core_ours, "remediation")[0]["subject"]["summary"],
        "rollback on fraud-detect (requires approval)"
    );

    // A re-emitted snapshot for the same breach: a second incident and case in the
    // reference, a merge in ours.
    snap(&core_ref, "csn-fraud-detect-production-par00002");
    snap(&core_ours, "csn-fraud-detect-production-par00002");
    wait_until("reference second case", CYCLE, || (cases(&core_ref).len() == 2).then_some(()));
    wait_incident(&core_ours, &ours, "ours merged", |i| {
        i["metadata"]["merged_snapshot_ids"]
            .as_array()
            .is_some_and(|t| t.iter().any(|x| x == "csn-fraud-detect-production-par00002"))
    });
    assert_eq!(cases(&core_ours).len(), 1);
}

/// The full incident pipeline against a real model: run by `scripts/llm-local --respond`,
/// which starts llama-server and sets `NTHLAYER_LOCAL_LLM_BASE` (its `/v1` URL) and
/// `NTHLAYER_LOCAL_LLM_MODEL`. Ignored in CI: a 270M model on 2 cores takes minutes.
///
/// Asserts what a real model must give: every step the incident reached answered by the
/// model (no degraded verdict), schema-valid by construction (the host validated it),
/// lineage as in the canned run, and the usage the llm import reported.
#[test]
#[ignore = "needs a real local model: scripts/llm-local --respond"]
fn real_local_model_runs_the_pipeline() {
    let base = std::env::var("NTHLAYER_LOCAL_LLM_BASE").expect("NTHLAYER_LOCAL_LLM_BASE (scripts/llm-local --respond)");
    let model = std::env::var("NTHLAYER_LOCAL_LLM_MODEL").unwrap_or_else(|_| "gemma-3-270m".into());
    let core = Core::start(&manifests());
    seed_breach(&core, BREACH, "fraud-detect", &iso_ago(0));
    seed_snapshot(&core, "csn-fraud-detect-production-local001", BREACH);
    let model = format!("openai/{model}");
    let env = [
        ("NTHLAYER_MODEL", model.as_str()),
        ("OPENAI_API_BASE", base.as_str()),
        ("OPENAI_API_KEY", "sk-local-none"),
        ("OPENAI_STRUCTURED_MODE", "json_schema"),
        ("NTHLAYER_LLM_TIMEOUT", "600"),
    ];
    let m = respond_module();
    // A small CPU model needs minutes per answer: every timeout widened, none removed. It
    // can also run on inside a free-text field until its context is full (seen: one
    // communication answer past 600 s): max_tokens bounds that, and a cut-off answer fails
    // validation and is re-asked like any other.
    let slow = 600;
    let cfg = json!({"max_tokens": 768, "step_timeout_seconds": 1800, "cycle_budget_seconds": 1500, "triage_timeout_seconds": slow,
        "investigation_timeout_seconds": slow, "communication_timeout_seconds": slow,
        "remediation_timeout_seconds": slow})
    .to_string();
    let host = LlmHost::serve(
        &core.url(),
        "respond-local-model",
        &[m.as_str()],
        &["--respond-interval", "5", "--respond-config", &cfg, "--limits", r#"respond={"wall_ms":1600000}"#],
        &env,
    );
    let done = |i: &Value| {
        ["awaiting_approval", "resolved", "escalated", "failed"].contains(&i["state"].as_str().unwrap_or(""))
    };
    let found = nthlayer_tests::wait::try_wait_until(Duration::from_secs(1500), Duration::from_secs(2), || {
        respond_state(&core).filter(|s| incidents(s).iter().any(done))
    });
    let st = found.unwrap_or_else(|| panic!("no settled incident: {:?}\n{}", respond_state(&core), host.log_tail(80)));
    let inc = incidents(&st)[0].clone();
    println!("incident {} ended {}", inc["id"], inc["state"]);
    assert_ne!(inc["state"], "failed", "{inc}\n{}", host.log_tail(80));
    let all: Vec<Value> =
        ["triage", "investigation", "communication", "remediation"].iter().flat_map(|k| verdicts(&core, k)).collect();
    assert!(!all.is_empty(), "no verdicts; host log:\n{}", host.log_tail(80));
    for v in &all {
        println!(
            "{:<14} conf={} action={} tokens={} latency_ms={} prompt={}\n    {}",
            v["type"].as_str().unwrap_or("?"),
            v["judgment"]["confidence"],
            v["judgment"]["action"],
            v["metadata"]["cost_tokens"],
            v["metadata"]["latency_ms"],
            v["producer"]["prompt_version"],
            v["subject"]["summary"]
        );
        let tags = v["judgment"]["tags"].as_array().cloned().unwrap_or_default();
        assert!(!tags.iter().any(|t| t == "degraded"), "a degraded verdict: {v}\n{}", host.log_tail(80));
        assert!(v["metadata"]["cost_tokens"].as_u64().unwrap_or(0) > 0, "usage reported: {v}");
        assert!(v["producer"]["prompt_version"].as_str().is_some_and(|p| p.contains('/')), "{v}");
    }
    let triage = &verdicts(&core, "triage")[0];
    assert_eq!(triage["parent_ids"], json!(["csn-fraud-detect-production-local001", BREACH]));
    // Past triage (the model may escalate at low confidence, a legitimate end), the lineage
    // is the canned run's: investigation and communication <- triage, remediation <-
    // investigation.
    for i in verdicts(&core, "investigation") {
        assert_eq!(i["parent_ids"], json!([triage["id"]]));
    }
    if let (Some(r), Some(i)) = (verdicts(&core, "remediation").first(), verdicts(&core, "investigation").first()) {
        assert_eq!(r["parent_ids"], json!([i["id"]]));
    }
    assert_eq!(cases(&core).len(), 1, "one case");
}

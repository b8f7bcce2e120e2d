//! End-to-end through the `llm` import: the real nthlayer-core, the real `nthlayer-host`
//! binary, the `llm-probe` component (which calls with correlate's `SnapshotSummary` and
//! respond's `TriageResponse` schemas every 2 s and reports in its state), and loopback
//! providers speaking the real Anthropic Messages and OpenAI chat-completions formats.
//!
//! Needs `target/debug/nthlayer-host` and `dist/test-components/llm-probe.wasm`
//! (`cargo build -p nthlayer-host && scripts/build-modules`).

use std::time::Duration;

use serde_json::{json, Value};

use nthlayer_tests::core::Core;
use nthlayer_tests::llm_fake::{
    anthropic_tool_use, error_body, openai_tool_call, probe_module, value_for, FakeLlm, LlmHost, Recorded,
};
use nthlayer_tests::scenario;
use nthlayer_tests::util::workspace_root;
use nthlayer_tests::wait::wait_until;

/// Core start, component compile, first cycle (2 s interval), both calls.
const FIRST_CYCLE: Duration = Duration::from_secs(60);
const SHUTDOWN: Duration = Duration::from_secs(15);
const SCHEMAS: [&str; 2] = ["SnapshotSummary", "TriageResponse"];

const OPENAI_KEY: &str = "sk-proj-TESTSECRETopenai0123456789abcdef";
const ANTHROPIC_KEY: &str = "sk-ant-TESTSECRET-api03-0123456789abcdefXYZ";

fn schema(name: &str) -> Value {
    let p = workspace_root().join(format!("host/llm/schemas/{name}.json"));
    serde_json::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap()
}

/// The probe's state as the host persisted it in core.
fn probe_state(core: &Core) -> Option<Value> {
    core.component_state("llm-probe").and_then(|r| r.pointer("/hysteresis_state/state").cloned())
}

/// The first persisted state with a report for both calls (and `cycle >= min_cycle`).
fn wait_cycle(core: &Core, host: &LlmHost, min_cycle: u64) -> Value {
    let st = wait_until(&format!("llm-probe cycle {min_cycle} in core"), FIRST_CYCLE, || {
        probe_state(core).filter(|s| s["cycle"].as_u64() >= Some(min_cycle))
    });
    assert_eq!(st["calls"].as_array().map(Vec::len), Some(2), "state: {st}\nhost log:\n{}", host.log_tail(40));
    st
}

fn call<'a>(state: &'a Value, schema: &str) -> &'a Value {
    state["calls"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["schema"] == schema)
        .unwrap_or_else(|| panic!("{schema} in {state}"))
}

fn start(core: &Core, instance: &str, extra: &[&str], env: &[(&str, &str)]) -> LlmHost {
    let probe = probe_module().display().to_string();
    LlmHost::serve(&core.url(), instance, &[probe.as_str()], extra, env)
}

const GRANT: [&str; 2] = ["--grant", "llm-probe=llm"];

/// The OpenAI-compatible path: one forced function tool per call, arguments as JSON text.
/// Both values reach the probe exactly as the provider sent them, pass the probe's own
/// schema check, and carry the provider's usage; the requests are what the API expects.
#[test]
fn openai_tool_calls_reach_the_probe_intact() {
    let core = Core::start(&scenario::manifests_dir());
    let fake = FakeLlm::start(|req, _| {
        let name = req.tool_name().unwrap_or("?").to_owned();
        (200, openai_tool_call(&name, &value_for(&name).to_string(), 200, 40))
    });
    let base = fake.openai_base();
    let mut host = start(
        &core,
        "llm-openai",
        &GRANT,
        &[("NTHLAYER_MODEL", "openai/gpt-fake"), ("OPENAI_API_BASE", &base), ("OPENAI_API_KEY", OPENAI_KEY)],
    );
    let st = wait_cycle(&core, &host, 1);
    for name in SCHEMAS {
        let c = call(&st, name);
        assert_eq!(c["ok"], true, "{name}: {c}");
        assert_eq!(c["value"], value_for(name), "{name}: value changed on its way to the guest");
        assert_eq!(c["model"], "openai/gpt-fake");
        assert_eq!(c["tokens"], 240);
        assert!(c["error"].is_null(), "{c}");
    }

    let reqs = fake.requests();
    for name in SCHEMAS {
        let r: &Recorded =
            reqs.iter().find(|r| r.tool_name() == Some(name)).unwrap_or_else(|| panic!("no {name} request"));
        assert_eq!((r.method.as_str(), r.path.as_str()), ("POST", "/v1/chat/completions"));
        assert_eq!(r.header("authorization"), Some(format!("Bearer {OPENAI_KEY}").as_str()));
        assert_eq!(r.body["model"], "gpt-fake");
        assert_eq!(r.body["max_tokens"], 512);
        assert_eq!(r.body["messages"][0]["role"], "system");
        assert_eq!(r.body["messages"][1]["role"], "user");
        let f = &r.body["tools"][0]["function"];
        assert_eq!(f["name"], name);
        // Instructor's parameters: the schema without title/description.
        let mut params = schema(name);
        let o = params.as_object_mut().unwrap();
        assert_eq!(f["description"], o.remove("description").unwrap());
        o.remove("title");
        assert_eq!(f["parameters"], params);
        assert_eq!(r.body["tool_choice"], json!({"type": "function", "function": {"name": name}}));
        assert!(r.body.get("response_format").is_none());
    }
    let snap = reqs.iter().find(|r| r.tool_name() == Some("SnapshotSummary")).unwrap();
    assert!(snap.body["messages"][1]["content"].as_str().unwrap().contains("payment-api"));
    let triage = reqs.iter().find(|r| r.tool_name() == Some("TriageResponse")).unwrap();
    assert!(triage.body["messages"][1]["content"].as_str().unwrap().contains("reversal_rate"));

    let log = host.log();
    assert!(log.contains("llm-probe SnapshotSummary: ok") && log.contains("llm-probe TriageResponse: ok"), "{log}");
    assert!(host.terminate(SHUTDOWN), "host did not stop cleanly:\n{}", host.log_tail(30));
}

/// The Anthropic path, with the first TriageResponse answer malformed (severity a string,
/// blast_radius not a list): the host re-asks with the validation errors as an error
/// `tool_result`, the second answer is valid, and the probe only ever sees that one.
#[test]
fn anthropic_tool_use_with_a_reask() {
    let core = Core::start(&scenario::manifests_dir());
    let fake = FakeLlm::start(|req, earlier| {
        let name = req.tool_name().unwrap_or("?").to_owned();
        let first_triage = name == "TriageResponse" && !earlier.iter().any(|r| r.tool_name() == Some("TriageResponse"));
        if first_triage {
            let bad = json!({"severity": "P1", "blast_radius": "fraud-detect", "confidence": 0.9});
            (200, anthropic_tool_use(&name, bad, 300, 25))
        } else {
            (200, anthropic_tool_use(&name, value_for(&name), 400, 60))
        }
    });
    let mut host = start(
        &core,
        "llm-anthropic",
        &GRANT,
        &[
            ("NTHLAYER_MODEL", "anthropic/claude-fake"),
            ("ANTHROPIC_BASE_URL", fake.url()),
            ("ANTHROPIC_API_KEY", ANTHROPIC_KEY),
        ],
    );
    let st = wait_cycle(&core, &host, 1);
    for name in SCHEMAS {
        let c = call(&st, name);
        assert_eq!(c["ok"], true, "{name}: {c}");
        assert_eq!(c["value"], value_for(name));
        assert_eq!(c["model"], "anthropic/claude-fake");
    }
    assert_eq!(call(&st, "SnapshotSummary")["tokens"], 460);
    // Usage covers both attempts: (300 + 25) + (400 + 60).
    assert_eq!(call(&st, "TriageResponse")["tokens"], 785);

    let reqs = fake.requests();
    let triage: Vec<&Recorded> = reqs.iter().filter(|r| r.tool_name() == Some("TriageResponse")).collect();
    assert!(triage.len() >= 2, "expected a re-ask, got {} TriageResponse request(s)", triage.len());
    for r in &reqs {
        assert_eq!((r.method.as_str(), r.path.as_str()), ("POST", "/v1/messages"));
        assert_eq!(r.header("x-api-key"), Some(ANTHROPIC_KEY));
        assert_eq!(r.header("anthropic-version"), Some("2023-06-01"));
        assert_eq!(r.body["model"], "claude-fake");
        let name = r.tool_name().unwrap();
        assert_eq!(r.body["tools"][0]["name"], name);
        assert_eq!(r.body["tools"][0]["input_schema"], schema(name));
        assert_eq!(r.body["tool_choice"]["type"], "tool");
        assert!(r.body["system"].as_str().is_some_and(|s| !s.is_empty()));
    }
    let (first, reask) = (triage[0], triage[1]);
    assert_eq!(first.message_count(), 1);
    assert_eq!(reask.message_count(), 3, "re-ask: {}", reask.body["messages"]);
    let m = &reask.body["messages"];
    assert_eq!(m[0], first.body["messages"][0]);
    assert_eq!(m[1]["role"], "assistant");
    assert_eq!(m[1]["content"][1]["type"], "tool_use");
    assert_eq!(m[1]["content"][1]["input"]["severity"], "P1");
    assert_eq!(m[2]["role"], "user");
    let result = &m[2]["content"][0];
    assert_eq!(result["type"], "tool_result");
    assert_eq!(result["tool_use_id"], "toolu_TriageResponse");
    assert_eq!(result["is_error"], true);
    let text = result["content"].as_str().unwrap();
    assert!(text.starts_with("Validation Error found:"), "{text}");
    assert!(text.contains("severity") && text.contains("blast_radius"), "{text}");
    assert!(host.terminate(SHUTDOWN), "host did not stop cleanly:\n{}", host.log_tail(30));
}

/// A non-built-in module gets no LLM access without `--grant llm-probe=llm`: both calls
/// answer `denied` naming the grant to add, and nothing reaches the provider.
#[test]
fn without_the_grant_calls_are_denied() {
    let core = Core::start(&scenario::manifests_dir());
    let fake = FakeLlm::start(|req, _| {
        let name = req.tool_name().unwrap_or("?").to_owned();
        (200, openai_tool_call(&name, &value_for(&name).to_string(), 1, 1))
    });
    let base = fake.openai_base();
    let mut host = start(
        &core,
        "llm-nogrant",
        &[],
        &[("NTHLAYER_MODEL", "openai/gpt-fake"), ("OPENAI_API_BASE", &base), ("OPENAI_API_KEY", OPENAI_KEY)],
    );
    let st = wait_cycle(&core, &host, 2);
    for name in SCHEMAS {
        let c = call(&st, name);
        assert_eq!(c["ok"], false, "{c}");
        assert_eq!(c["kind"], "denied", "{c}");
        let e = c["error"].as_str().unwrap();
        assert!(e.starts_with("denied:") && e.contains("--grant llm-probe=llm"), "{e}");
        assert!(c["value"].is_null());
    }
    assert!(fake.requests().is_empty(), "a denied call reached the provider: {:?}", fake.requests());
    assert!(host.log().contains("llm-probe SnapshotSummary: failed"));
    assert!(host.terminate(SHUTDOWN));
}

/// `max_calls_per_cycle: 1`: each cycle's first call goes through, the second is denied
/// with the budget named; the cap resets every cycle.
#[test]
fn max_calls_per_cycle_denies_the_second_call() {
    let core = Core::start(&scenario::manifests_dir());
    let fake = FakeLlm::start(|req, _| {
        let name = req.tool_name().unwrap_or("?").to_owned();
        (200, openai_tool_call(&name, &value_for(&name).to_string(), 10, 5))
    });
    let base = fake.openai_base();
    let mut host = start(
        &core,
        "llm-budget",
        &["--grant", "llm-probe=llm", "--llm", r#"llm-probe={"max_calls_per_cycle":1}"#],
        &[("NTHLAYER_MODEL", "openai/gpt-fake"), ("OPENAI_API_BASE", &base), ("OPENAI_API_KEY", OPENAI_KEY)],
    );
    let st = wait_cycle(&core, &host, 2);
    let first = call(&st, "SnapshotSummary");
    assert_eq!(first["ok"], true, "{first}");
    assert_eq!(first["value"], value_for("SnapshotSummary"));
    let second = call(&st, "TriageResponse");
    assert_eq!(second["ok"], false);
    assert_eq!(second["kind"], "denied");
    let e = second["error"].as_str().unwrap();
    assert!(e.contains("max_calls_per_cycle=1"), "{e}");
    let reqs = fake.requests();
    assert!(reqs.len() >= 2, "one call per cycle for two cycles, got {}", reqs.len());
    assert!(reqs.iter().all(|r| r.tool_name() == Some("SnapshotSummary")), "a denied call reached the provider");
    assert!(host.terminate(SHUTDOWN));
}

/// `NTHLAYER_LLM_STUB=canned`: no provider at all; both calls answer the reference stub's
/// canned values, reported as model `stub/canned` with no tokens.
#[test]
fn canned_stub_answers_both_schemas() {
    let core = Core::start(&scenario::manifests_dir());
    let mut host = start(&core, "llm-stub", &GRANT, &[("NTHLAYER_LLM_STUB", "canned")]);
    let st = wait_cycle(&core, &host, 1);
    let canned = [
        (
            "SnapshotSummary",
            json!({"summary": "Stub correlation summary: events grouped by domain.", "notable_omissions": [], "confidence": 0.5}),
        ),
        (
            "TriageResponse",
            json!({"severity": 2, "blast_radius": ["fraud-detect"], "affected_slos": ["reversal_rate"],
                   "assigned_team": "payments", "reasoning": "Stub triage: severity 2 from canned LLM.", "confidence": 0.7}),
        ),
    ];
    for (name, want) in canned {
        let c = call(&st, name);
        assert_eq!(c["ok"], true, "{c}");
        assert_eq!(c["value"], want);
        assert_eq!(c["model"], "stub/canned");
        assert_eq!(c["tokens"], 0);
    }
    assert!(host.terminate(SHUTDOWN));
}

/// The heartbeat carries per (module, model) LLM counters, and no key text reaches the host
/// log — not even when the provider echoes the key back in an error the module logs.
#[test]
fn heartbeat_metrics_and_no_key_in_the_log() {
    let core = Core::start(&scenario::manifests_dir());
    let fake = FakeLlm::start(|req, earlier| {
        let name = req.tool_name().unwrap_or("?").to_owned();
        let key = req.header("x-api-key").unwrap_or("").to_owned();
        if name == "SnapshotSummary" && !earlier.iter().any(|r| r.tool_name() == Some("SnapshotSummary")) {
            // A provider that echoes the credential it was sent.
            let msg = format!("invalid request for x-api-key {key}: tool schema rejected (key {key})");
            (400, error_body("invalid_request_error", &msg))
        } else {
            (200, anthropic_tool_use(&name, value_for(&name), 100, 20))
        }
    });
    const INSTANCE: &str = "llm-metrics";
    let mut host = start(
        &core,
        INSTANCE,
        &GRANT,
        &[
            ("NTHLAYER_MODEL", "anthropic/claude-fake"),
            ("ANTHROPIC_BASE_URL", fake.url()),
            ("ANTHROPIC_API_KEY", ANTHROPIC_KEY),
            ("RUST_LOG", "info,nthlayer_llm=debug,nthlayer_host=debug"),
        ],
    );
    let st = wait_cycle(&core, &host, 1);
    let snap = call(&st, "SnapshotSummary");
    assert_eq!(snap["ok"], false, "{snap}");
    assert_eq!(snap["kind"], "rejected", "{snap}");
    let err = snap["error"].as_str().unwrap();
    assert!(!err.contains("TESTSECRET"), "key reached the guest: {snap}");
    assert!(err.contains("[REDACTED]") && err.contains("tool schema rejected"), "{err}");
    assert_eq!(call(&st, "TriageResponse")["ok"], true);

    let series = wait_until("llm metrics for llm-probe in the heartbeat", FIRST_CYCLE, || {
        let hb = core.heartbeat("workers", INSTANCE)?;
        let s = hb.state.pointer("/llm/series")?.as_array()?.clone();
        let row = s.iter().find(|r| r["module"] == "llm-probe" && r["model"] == "anthropic/claude-fake")?.clone();
        (row["calls"].as_u64()? >= 4).then_some(row)
    });
    assert!(series["errors"]["rejected"].as_u64() >= Some(1), "{series}");
    assert!(series["input_tokens"].as_u64() >= Some(300), "{series}");
    assert!(series["output_tokens"].as_u64() >= Some(60), "{series}");
    assert!(series["latency_count"].as_u64() >= Some(4), "{series}");

    assert!(host.terminate(SHUTDOWN));
    let log = host.log();
    assert!(log.contains("llm-probe SnapshotSummary: failed"), "the rejection was not logged:\n{log}");
    assert!(log.contains("[REDACTED]"), "the provider's echo of the key was not logged (redacted):\n{log}");
    assert!(log.contains("llm call ok"), "{log}");
    for leak in ["TESTSECRET", ANTHROPIC_KEY] {
        assert!(!log.contains(leak), "API key text {leak:?} in the host log:\n{log}");
    }
    for r in fake.requests() {
        assert_eq!(r.header("x-api-key"), Some(ANTHROPIC_KEY), "the key was sent to the provider as configured");
    }
}

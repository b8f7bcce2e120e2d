//! respond's one outward side effect end to end: the real `nthlayer-host` running
//! `dist/modules/respond.wasm` against the real nthlayer-core, a loopback LLM whose
//! remediation answer recommends reducing an agent's autonomy, and a loopback arbiter that
//! records what reaches it. With `--arbiter-url` the arbiter gets the reference's POST;
//! without it nothing leaves the host and respond says why in the log and the incident.
//!
//! Needs `target/debug/nthlayer-host` and `dist/modules/respond.wasm`
//! (`cargo build -p nthlayer-host && scripts/build-modules`).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{json, Value};

use nthlayer_tests::core::Core;
use nthlayer_tests::llm_fake::{openai_tool_call, FakeLlm, LlmHost, Recorded};
use nthlayer_tests::modules;
use nthlayer_tests::util::fixtures_dir;
use nthlayer_tests::wait::{assert_stays, try_wait_until};

const CYCLE: Duration = Duration::from_secs(120);
const OPENAI_KEY: &str = "sk-proj-TESTSECRETopenai0123456789abcdef";
const AGENT: &str = "deploy-bot";
const REASON: &str = "Shipped model v42 without a canary; \"auto\" rollouts paused";

/// (request line, body) of every request the arbiter received.
type Seen = Arc<Mutex<Vec<(String, String)>>>;

/// A loopback arbiter: answers every request 200 `{"status":"reduced"}` and records it.
fn arbiter() -> (String, Seen) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let seen: Seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { return };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut line = String::new();
            if reader.read_line(&mut line).is_err() {
                continue;
            }
            let mut len = 0;
            loop {
                let mut h = String::new();
                if reader.read_line(&mut h).is_err() || h.trim().is_empty() {
                    break;
                }
                if let Some(v) = h.to_ascii_lowercase().strip_prefix("content-length:") {
                    len = v.trim().parse().unwrap_or(0);
                }
            }
            let mut body = vec![0; len];
            let _ = reader.read_exact(&mut body);
            log.lock().unwrap().push((line.trim().to_string(), String::from_utf8_lossy(&body).into_owned()));
            let answer = r#"{"status":"reduced"}"#;
            let mut s = stream;
            let _ = write!(
                s,
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{answer}",
                answer.len()
            );
        }
    });
    (url, seen)
}

/// The fixture's answers, with a remediation that recommends reducing `AGENT`'s autonomy.
fn provider() -> FakeLlm {
    provider_stalling(None)
}

/// As [`provider`]; with `stall`, the `n`-th communication request (counting from 1) is
/// answered only after that long — the step after remediation, so the cycle is still
/// running after its arbiter decision.
fn provider_stalling(stall: Option<(usize, Duration)>) -> FakeLlm {
    let path = fixtures_dir().join("respond/answers.json");
    let mut answers: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    answers["RemediationResponse"]["autonomy_reduction"] =
        json!({"recommended": true, "target_agent": AGENT, "reason": REASON});
    if stall.is_some() {
        // No action to approve, so the incident goes on to its last step (communication).
        answers["RemediationResponse"]["proposed_action"] = Value::Null;
        answers["RemediationResponse"]["requires_human_approval"] = json!(false);
    }
    FakeLlm::start(move |req: &Recorded, earlier: &[Recorded]| {
        let name = req.tool_name().unwrap_or("?").to_owned();
        if let Some((n, wait)) = stall {
            let before = earlier.iter().filter(|r| r.tool_name() == Some("CommunicationResponse")).count();
            if name == "CommunicationResponse" && before + 1 == n {
                std::thread::sleep(wait);
            }
        }
        (200, openai_tool_call(&name, &answers[&name].to_string(), 200, 40))
    })
}

fn seed(core: &Core, n: u32) {
    let breach = format!("vrd-breach-fraud-detect-reversal_rate-arb0000{n}");
    let micros = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_micros() as i64;
    let now =
        chrono::DateTime::from_timestamp_micros(micros).unwrap().to_rfc3339_opts(chrono::SecondsFormat::Micros, false);
    let v = json!({"id": breach, "type": "quality_breach", "service": "fraud-detect", "created_at": now,
                   "parent_ids": [], "data": {"slo_name": "reversal_rate", "severity": "high",
                   "target": 95.0, "current_value": 91.2}});
    assert_eq!(core.post_json("/verdicts", &v).unwrap().0, 201);
    let s = json!({"id": format!("csn-fraud-detect-production-arb0000{n}"), "created_at": now,
        "kind": "correlation_snapshot", "service": "fraud-detect",
        "data": {"domain": {"service": "fraud-detect", "environment": "production"},
                 "window": {"close_reason": "trigger"}, "event_count": 1, "event_types": {"metric_breach": 1},
                 "peak_severity": 0.9, "affected_services": ["fraud-detect"], "environment_source": "default",
                 "parent_ids": [breach], "nl_summary": null}});
    assert_eq!(core.post_json("/assessments", &s).unwrap().0, 201);
}

fn serve(core: &Core, fake: &FakeLlm, instance: &str, arbiter_url: Option<&str>) -> LlmHost {
    let m = modules::RESPOND.built().display().to_string();
    let base = fake.openai_base();
    let env =
        [("NTHLAYER_MODEL", "openai/gpt-fake"), ("OPENAI_API_BASE", base.as_str()), ("OPENAI_API_KEY", OPENAI_KEY)];
    let mut extra = vec!["--respond-interval", "2", "--respond-config", r#"{"arbiter_enabled":true}"#];
    if let Some(u) = arbiter_url {
        extra.extend(["--arbiter-url", u]);
    }
    LlmHost::serve(&core.url(), instance, &[m.as_str()], &extra, &env)
}

/// The `autonomy_reduction` respond recorded on its incident, once there is one.
fn reduction(core: &Core, host: &LlmHost) -> Value {
    let found = try_wait_until(CYCLE, Duration::from_millis(500), || {
        let st = core.component_state("respond")?.pointer("/hysteresis_state/state/incidents")?.clone();
        st.as_object()?.values().find_map(|i| i["metadata"].get("autonomy_reduction").cloned())
    });
    found.unwrap_or_else(|| panic!("no autonomy reduction recorded\nhost log:\n{}", host.log_tail(60)))
}

#[test]
fn the_arbiter_gets_the_references_post_only_when_configured() {
    let (url, seen) = arbiter();
    let fake = provider();

    // Configured: exactly one POST, the reference's path and body.
    let core = Core::start(&fixtures_dir().join("respond/manifests"));
    seed(&core, 1);
    let mut host = serve(&core, &fake, "respond-arbiter-on", Some(&url));
    let r = reduction(&core, &host);
    assert_eq!(r["sent"], true, "{r}\n{}", host.log_tail(40));
    assert_eq!(r["target_agent"], AGENT);
    {
        let seen = seen.lock().unwrap();
        assert_eq!(seen.len(), 1, "{seen:?}");
        assert_eq!(seen[0].0, "POST /api/v1/governance/reduce HTTP/1.1");
        let body: Value = serde_json::from_str(&seen[0].1).unwrap();
        assert_eq!(body, json!({"agent": AGENT, "reason": REASON}));
    }
    assert!(host.log().contains("respond_arbiter_reduced"), "{}", host.log_tail(40));
    assert!(host.terminate(Duration::from_secs(15)), "clean shutdown");

    // Not configured (arbiter_enabled alone is not enough): nothing sent, and respond says
    // why in its log and on the incident.
    let core = Core::start(&fixtures_dir().join("respond/manifests"));
    seed(&core, 2);
    let host = serve(&core, &fake, "respond-arbiter-off", None);
    let r = reduction(&core, &host);
    assert_eq!(r["sent"], false, "{r}");
    let note = r["note"].as_str().unwrap_or_default();
    assert!(note.contains("arbiter not configured: start the host with --arbiter-url"), "{r}");
    let log = host.log();
    assert!(log.contains("respond_arbiter_unavailable") && log.contains("--arbiter-url"), "{}", host.log_tail(40));
    assert_stays("the arbiter hears nothing more", Duration::from_secs(4), || seen.lock().unwrap().len() == 1);
}

/// A respond cycle that decided to reduce an agent's autonomy and then died (the host killed
/// while the next step's LLM call hangs) asked the arbiter nothing: the reduction was held
/// with the cycle. The restarted host runs the cycle again and commits, so the arbiter hears
/// exactly one reduction.
#[test]
fn a_failed_cycle_sends_the_arbiter_nothing_and_its_retry_sends_one() {
    let (url, seen) = arbiter();
    // Communication runs in step 1 and again after remediation (step 3): stall the second
    // (the fake answers one request at a time, so not for longer than a restart waits).
    let fake = provider_stalling(Some((2, Duration::from_secs(8))));
    let core = Core::start(&fixtures_dir().join("respond/manifests"));
    seed(&core, 3);
    let host = serve(&core, &fake, "respond-arbiter-retry", Some(&url));
    let decided = try_wait_until(CYCLE, Duration::from_millis(200), || {
        host.log().contains("respond_arbiter_reduced").then_some(())
    });
    assert!(decided.is_some(), "respond never decided:\n{}", host.log_tail(40));
    // SIGKILL mid-cycle: the cycle never commits.
    drop(host);
    assert_eq!(seen.lock().unwrap().len(), 0, "a failed cycle's reduction reached the arbiter");
    let host = serve(&core, &fake, "respond-arbiter-retry", Some(&url));
    let r = reduction(&core, &host);
    assert_eq!(r["sent"], true, "{r}\n{}", host.log_tail(40));
    assert_stays("the arbiter hears one reduction", Duration::from_secs(4), || seen.lock().unwrap().len() == 1);
    let body: Value = serde_json::from_str(&seen.lock().unwrap()[0].1).unwrap();
    assert_eq!(body, json!({"agent": AGENT, "reason": REASON}));
}

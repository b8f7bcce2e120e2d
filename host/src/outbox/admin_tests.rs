//! The `outbox` commands: parsing, and their effects on a spool a host holds open.

use clap::Parser;
use serde_json::json;

use super::super::spool::{NewEntry, Spool, What};
use super::*;

#[derive(Parser, Debug)]
enum Cli {
    Outbox(OutboxArgs),
}

fn parse(line: &str) -> Result<OutboxArgs, clap::Error> {
    Cli::try_parse_from(["nthlayer-host", "outbox"].into_iter().chain(line.split_whitespace())).map(|Cli::Outbox(a)| a)
}

#[test]
fn commands_parse_with_the_serve_defaults() {
    let a = parse("list --json --state-dir /s").unwrap();
    assert_eq!((a.command, a.state_dir.as_deref()), (OutboxCommand::List { json: true }, Some("/s".as_ref())));
    let a = parse("--instance-id w2 requeue 7 --body fixed.json").unwrap();
    assert_eq!(a.instance_id, "w2");
    assert_eq!(a.command, OutboxCommand::Requeue { id: 7, body: Some("fixed.json".into()) });
    assert_eq!(parse("show 3").unwrap().command, OutboxCommand::Show { id: 3 });
    assert_eq!(parse("drop 4").unwrap().instance_id, "workers-1");
    assert!(parse("drop seven").is_err());
    assert!(parse("requeue").is_err());
}

fn rec(id: &str) -> NewEntry {
    NewEntry {
        what: What::Assessment,
        component: "observe".into(),
        record_id: id.into(),
        body: json!({"id": id, "kind": "k"}).to_string(),
    }
}

fn run(dir: &std::path::Path, command: OutboxCommand) -> Result<()> {
    outbox(OutboxArgs { state_dir: Some(dir.into()), instance_id: "x".into(), command })
}

#[test]
fn requeue_and_drop_work_beside_a_running_host() {
    let dir = tempfile::tempdir().unwrap();
    // The host's own spool stays open (and locked) throughout, as under `serve`.
    let mut host = Spool::open(dir.path()).unwrap();
    host.commit("t", &[rec("a"), rec("b"), rec("c")], None).unwrap();
    let head = host.head("t", 10).unwrap();
    host.reject(&head[0], 400, r#"{"error":"assessment_invalid"}"#).unwrap();
    host.reject(&head[1], 422, "bad").unwrap();
    run(dir.path(), OutboxCommand::List { json: false }).unwrap();
    run(dir.path(), OutboxCommand::Show { id: head[0].seq }).unwrap();

    let fixed = dir.path().join("fixed.json");
    std::fs::write(&fixed, "not json").unwrap();
    let bad = run(dir.path(), OutboxCommand::Requeue { id: head[0].seq, body: Some(fixed.clone()) }).unwrap_err();
    assert!(format!("{bad:#}").contains("is not JSON"), "{bad:#}");
    std::fs::write(&fixed, r#"{"id": "a", "kind": "fixed"}"#).unwrap();
    run(dir.path(), OutboxCommand::Requeue { id: head[0].seq, body: Some(fixed) }).unwrap();
    run(dir.path(), OutboxCommand::Drop { id: head[1].seq }).unwrap();

    // The host sees the requeued entry at the end of its lane, with the corrected body.
    let lane = host.head("t", 10).unwrap();
    let order: Vec<&str> = lane.iter().map(|e| e.record_id.as_str()).collect();
    assert_eq!(order, ["c", "a"]);
    assert_eq!(serde_json::from_str::<serde_json::Value>(&lane[1].body).unwrap()["kind"], "fixed");
    assert!(host.aside().unwrap().is_empty());
    let b = host.backlog().unwrap();
    assert_eq!((b.entries, b.rejected), (2, 0));

    let gone = run(dir.path(), OutboxCommand::Drop { id: head[1].seq }).unwrap_err().to_string();
    assert!(gone.contains(&format!("no set-aside entry {}", head[1].seq)), "{gone}");
    assert!(gone.contains(&dir.path().display().to_string()), "{gone}");
}

#[test]
fn a_state_dir_without_a_spool_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let e = run(dir.path(), OutboxCommand::List { json: true }).unwrap_err().to_string();
    assert!(e.contains("no spool in state directory") && e.contains(&dir.path().display().to_string()), "{e}");
}

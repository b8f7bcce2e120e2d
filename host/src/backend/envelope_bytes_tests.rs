//! The bytes written straight from the text equal the envelope serialized from the map,
//! for every record kind and every shape the named fields can take.

use serde_json::{json, Value};

use super::super::{Emitted, RecordKind, ASSESSMENT_KINDS, VERDICT_TYPES};

fn emitted(kind: RecordKind, v: Value) -> Emitted {
    let Value::Object(m) = v else { unreachable!() };
    Emitted::new(kind, "observe.collect".into(), m)
}

/// The old way's bytes, and the new way's; the labels read with them are the record's own.
fn both(e: &Emitted) -> (Vec<u8>, Vec<u8>) {
    let old = serde_json::to_vec(&e.envelope("prod").unwrap()).unwrap();
    let (bytes, labels) = e.envelope_bytes("prod").unwrap();
    let map = e.record().unwrap();
    let text = |k: &str| map.get(k).and_then(Value::as_str).unwrap_or_default().to_string();
    assert_eq!(labels, (text(e.kind.subtype_key()), text("service")), "labels read with the envelope");
    (old, bytes)
}

fn records() -> Vec<(RecordKind, Value)> {
    let data = json!({"slo_name": "availability", "objective": 0.999, "current_sli": 0.99912345678901,
        "burned_minutes": 1.5e-7, "n": -3, "big": 18446744073709551615u64, "ok": true, "none": null,
        "list": [1, "two", {"three": [3.0]}], "text": "quote \" backslash \\ tab \t nl \n ctl \u{1} é 雪 😀 </script>"});
    let mut out = Vec::new();
    for kind in ASSESSMENT_KINDS.iter().chain(["made_up", ""].iter()) {
        out.push((
            RecordKind::Assessment,
            json!({"id": format!("asm-{kind}"), "created_at": "2026-12-07T12:00:00.000001+00:00",
            "kind": kind, "service": "checkout", "producer": "nthlayer-observe", "data": data}),
        ));
    }
    for t in VERDICT_TYPES.iter().chain(["made_up"].iter()) {
        out.push((
            RecordKind::Verdict,
            json!({"id": format!("vrd-{t}"), "created_at": "2026-12-07T12:00:00+00:00",
            "type": t, "service": "payments", "parents": ["asm-1", "asm-2"], "data": data}),
        ));
    }
    // The subtype and the service in every shape, the id absent or not a string, time null.
    let odd = [
        json!({"id": "a", "created_at": "t", "kind": 7, "service": ""}),
        json!({"id": "b", "created_at": null, "kind": null, "service": null}),
        json!({"id": 12, "created_at": "t", "service": 0}),
        json!({"id": "c", "created_at": "t", "kind": "slo_status", "service": 2.5}),
        json!({"id": "d", "created_at": "t", "kind": "slo_status", "service": {"name": "x"}}),
        json!({"id": "e", "created_at": "t", "kind": "slo_status", "service": ["x"]}),
        json!({"id": "f", "created_at": "t", "kind": "slo_status", "service": []}),
        json!({"id": "g", "created_at": "t", "kind": "slo_status", "service": true}),
        json!({"created_at": "t", "kind": "slo_status", "service": "s\"q"}),
        json!({"id": "h", "created_at": {"at": 1}, "kind": {"k": 1}, "type": "approval", "service": "s"}),
    ];
    for v in odd {
        out.push((RecordKind::Assessment, v.clone()));
        out.push((RecordKind::Verdict, v));
    }
    out
}

#[test]
fn every_kind_writes_the_bytes_the_map_did() {
    let all = records();
    assert!(all.len() > ASSESSMENT_KINDS.len() + VERDICT_TYPES.len());
    for (kind, v) in all {
        let e = emitted(kind, v.clone());
        let (old, new) = both(&e);
        assert_eq!(String::from_utf8(new).unwrap(), String::from_utf8(old).unwrap(), "{kind:?} {v}");
    }
}

#[test]
fn without_created_at_the_time_is_now_as_before() {
    let e = emitted(RecordKind::Assessment, json!({"id": "a", "kind": "slo_status", "service": "s", "data": {}}));
    let (old, new) = both(&e);
    let (mut old, mut new): (Value, Value) =
        (serde_json::from_slice(&old).unwrap(), serde_json::from_slice(&new).unwrap());
    for env in [&mut old, &mut new] {
        let time = env["time"].take();
        assert!(time.as_str().unwrap().ends_with("+00:00"), "{time}");
    }
    assert_eq!(serde_json::to_string(&new).unwrap(), serde_json::to_string(&old).unwrap());
}

#[test]
fn texts_the_sender_did_not_write_take_the_maps_way() {
    // A key twice (the map keeps the last), whitespace, and a text that is not an object.
    let twice = r#"{"id":"x1","kind":"burn_rate","service":"a","id":"x2","service":"b","created_at":"t"}"#;
    let spaced = " {\"id\": \"s\", \"kind\": \"slo_status\", \"service\": \"a\", \"created_at\": \"t\"} ";
    for text in [twice, spaced] {
        let e = Emitted::from_text(RecordKind::Assessment, "m".into(), text.into(), "x".into());
        let old: Value = serde_json::to_value(e.envelope("d").unwrap()).unwrap();
        let new: Value = serde_json::from_slice(&e.envelope_bytes("d").unwrap().0).unwrap();
        assert_eq!(new, old, "{text}");
    }
    let twice = Emitted::from_text(RecordKind::Assessment, "m".into(), twice.into(), "x".into());
    let env: Value = serde_json::from_slice(&twice.envelope_bytes("d").unwrap().0).unwrap();
    assert_eq!((env["id"].as_str(), env["subject"].as_str()), (Some("x2"), Some("component:default/b")));
    for bad in ["[1]", "{oops", "\"s\""] {
        let e = Emitted::from_text(RecordKind::Verdict, "m".into(), bad.into(), "v-9".into());
        let why = e.envelope_bytes("d").unwrap_err();
        assert!(why.contains("v-9") && why.contains("not a JSON object"), "{bad}: {why}");
    }
}

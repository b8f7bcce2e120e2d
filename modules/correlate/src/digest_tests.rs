use super::*;

pub(crate) fn ev(id: &str, svc: &str, ts: &str, sev: f64) -> Event {
    Event {
        id: id.into(),
        timestamp: ts.into(),
        ts: crate::events::parse_ts(ts).unwrap(),
        source: "assessment:slo_status".into(),
        kind: "alert".into(),
        service: svc.into(),
        environment: "production".into(),
        severity: sev,
        trigger: false,
    }
}

fn digest(events: &[Event]) -> Digest {
    let mut d = Digest::default();
    events.iter().cloned().for_each(|e| d.ingest(e));
    d
}

/// The samples as chosen from the whole list of events (what a window keeping every event
/// would send): the oracle the digest must agree with.
fn samples_of_all(events: &[Event]) -> Vec<String> {
    let mut sorted: Vec<&Event> = events.iter().collect();
    sorted.sort_by(|a, b| a.timestamp.cmp(&b.timestamp));
    let Some(first) = sorted.first().copied() else { return Vec::new() };
    let mut chosen = vec![first];
    let mut most = first;
    for (i, e) in events.iter().enumerate() {
        if i == 0 || e.severity > most.severity {
            most = e;
        }
    }
    chosen.push(most);
    let mut latest: Vec<&Event> = Vec::new();
    for e in sorted {
        match latest.iter_mut().find(|l| l.service == e.service) {
            Some(slot) => *slot = e,
            None => latest.push(e),
        }
    }
    chosen.extend(latest);
    let mut out: Vec<String> = Vec::new();
    for e in chosen {
        if !out.contains(&e.id) {
            out.push(e.id.clone());
        }
    }
    out.truncate(10);
    out
}

fn ids(d: &Digest) -> Vec<String> {
    d.samples(10).iter().map(|e| e.id.clone()).collect()
}

#[test]
fn samples_first_most_severe_latest_per_service_dedup() {
    let events = vec![
        ev("c", "s", "2026-11-24T15:00:03+00:00", 0.9),
        ev("a", "s", "2026-11-24T15:00:01+00:00", 0.1),
        ev("d", "t", "2026-11-24T15:00:02+00:00", 0.9),
        ev("b", "s", "2026-11-24T15:00:02+00:00", 0.5),
    ];
    // earliest a; first max-severity c; latest of s = c (dup), latest of t = d.
    assert_eq!(ids(&digest(&events)), ["a", "c", "d"]);
    assert_eq!(ids(&digest(&events)), samples_of_all(&events));
}

#[test]
fn samples_are_capped_and_empty_has_none() {
    let events: Vec<Event> =
        (0..15).map(|i| ev(&format!("e{i}"), &format!("svc{i:02}"), "2026-11-24T15:00:00+00:00", 0.1)).collect();
    assert_eq!(digest(&events).samples(10).len(), 10);
    assert_eq!(ids(&digest(&events)), samples_of_all(&events));
    assert!(Digest::default().samples(10).is_empty());
}

/// Ties on timestamps and severities, services whose earliest event arrives late: the
/// digest picks what the whole list would, for every prefix of a scrambled sequence.
#[test]
fn digest_agrees_with_the_whole_list_on_every_prefix() {
    let stamps = ["2026-11-24T15:00:01+00:00", "2026-11-24T15:00:02+00:00", "2026-11-24T15:00:03+00:00"];
    let sevs = [0.1, 0.5, 0.8, 1.0];
    let mut events = Vec::new();
    let mut x: u64 = 7;
    for i in 0..200 {
        x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        let svc = ["a", "b", "c"][(x >> 33) as usize % 3];
        let e = ev(&format!("e{i}"), svc, stamps[(x >> 40) as usize % 3], sevs[(x >> 50) as usize % 4]);
        events.push(e);
        let d = digest(&events);
        assert_eq!(ids(&d), samples_of_all(&events), "after {} events", events.len());
        assert_eq!(d.count as usize, events.len());
    }
}

#[test]
fn state_round_trips_and_old_event_lists_fold_in() {
    let events = vec![ev("a", "s", "2026-11-24T15:00:01+00:00", 0.1), ev("b", "s", "2026-11-24T15:00:02+00:00", 1.0)];
    let d = digest(&events);
    let saved = json!({"event_count": d.count, "digest": d.to_state()});
    let back: Value = serde_json::from_str(&saved.to_string()).unwrap();
    assert_eq!(Digest::from_state(&back), Some(d.clone()));
    let old = json!({"event_count": 2, "events": events.iter().map(Event::to_state).collect::<Vec<_>>()});
    assert_eq!(Digest::from_state(&old), Some(d));
    assert_eq!(Digest::from_state(&json!({"event_count": 1, "digest": {"types": 5}})), None);
}

/// The bound: a window's saved form is the same size after 100,000 events as after 100.
#[test]
fn saved_size_does_not_grow_with_events() {
    let mut d = Digest::default();
    let size = |d: &Digest| d.to_state().to_string().len();
    let mut after_100 = 0;
    for i in 0..100_000u64 {
        let ts = format!("2026-11-24T15:{:02}:{:02}+00:00", (i / 60) % 60, i % 60);
        d.ingest(ev(&format!("asm-{i:08}"), "s", &ts, [0.1, 0.5, 0.8][i as usize % 3]));
        if i == 99 {
            after_100 = size(&d);
        }
    }
    assert_eq!(d.count, 100_000);
    assert!(size(&d) <= after_100 + 16, "{} bytes after 100,000 events, {after_100} after 100", size(&d));
}

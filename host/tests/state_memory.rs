//! What one task's state costs the host between cycles.
//!
//! The scheduler keeps each task's last state from one cycle to the next. Held as a parsed
//! tree, respond's state near its 1 MiB bound cost several times its JSON size (every
//! string, map and number its own allocation); held as its JSON text it costs that text.
//! This binary counts the bytes live on the heap with its own allocator, so it holds exactly
//! one test: nothing else may allocate beside it. docs/BENCH.md ("Memory") has the figures.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, Ordering};

use nthlayer_host::runtime::task_state::TaskState;
use serde_json::{json, Value};

/// The system allocator, counting the bytes it has handed out and not yet had back.
struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);
/// The most `LIVE` reached since the last [`peak_from`].
static PEAK: AtomicIsize = AtomicIsize::new(0);
/// Allocations handed out and not yet given back: each costs the allocator's header too.
static BLOCKS: AtomicIsize = AtomicIsize::new(0);

fn add(bytes: isize) {
    let now = LIVE.fetch_add(bytes, Ordering::Relaxed) + bytes;
    PEAK.fetch_max(now, Ordering::Relaxed);
}

// SAFETY: every call forwards to the system allocator unchanged; only a counter is added.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        add(layout.size() as isize);
        BLOCKS.fetch_add(1, Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        add(-(layout.size() as isize));
        BLOCKS.fetch_sub(1, Ordering::Relaxed);
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        add(new_size as isize - layout.size() as isize);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// One incident as respond saves it once its agents ran on the stub LLM (the soak's setup):
/// the canned triage, investigation, communication and remediation, its verdicts and slots.
fn incident(n: usize) -> Value {
    let at = format!("2026-12-07T{:02}:{:02}:{:02}.{:06}+00:00", n / 3600 % 24, n / 60 % 60, n % 60, n);
    let verdicts: Vec<String> = (0..4).map(|k| format!("vrd-respond-{n:05}-{k}-3f9c2a71")).collect();
    json!({
        "id": format!("INC-fraud-detect-{n:05}"),
        "state": if n.is_multiple_of(3) { "resolved" } else { "awaiting_approval" },
        "created_at": at, "updated_at": at, "trigger_source": "correlate",
        "trigger_verdict_ids": [format!("vrd-correlate-{n:05}-a1b2c3d4")],
        "topology": {"services": ["fraud-detect", "payments-api", "ledger"]},
        "triage": {"severity": 2, "blast_radius": ["fraud-detect"], "affected_slos": ["reversal_rate"],
            "assigned_team": "payments", "reasoning": "Stub triage: severity 2 from canned LLM.", "confidence": 0.7},
        "investigation": {"hypotheses": [{"description": "Stub hypothesis: recent deploy regressed model judgment.",
            "confidence": 0.8, "evidence": ["stub-evidence-1"], "change_candidate": null}],
            "root_cause": "Stub root cause: canned investigation result.", "root_cause_confidence": 0.8,
            "reasoning": "Stub investigation reasoning.", "confidence": 0.8},
        "communication": {"updates": [{"channel": "status_page", "update_type": "initial",
            "content": "Stub status update: investigating."}], "reasoning": "Stub communication reasoning.", "confidence": 0.7},
        "remediation": {"proposed_action": "rollback", "target": "fraud-detect", "risk_assessment": "Stub risk: medium",
            "requires_human_approval": true, "autonomy_reduction": {"recommended": false, "target_agent": "", "reason": ""},
            "reasoning": "Stub remediation reasoning.", "confidence": 0.7},
        "verdict_chain": verdicts,
        "last_completed_step_index": 3,
        "error": null,
        "metadata": {"merged_snapshots": 2, "merged_snapshot_ids": [format!("csn-{n:05}-0"), format!("csn-{n:05}-1")],
            "correlation_summary": "Stub correlation summary: events grouped by domain.", "escalation_pending": true},
        "posted": {"triage": verdicts[0], "investigation": verdicts[1], "communication": verdicts[2], "remediation": verdicts[3]},
        "approval": null,
        "trigger_at": at,
    })
}

/// respond's state with `n` incidents, as JSON text.
fn respond_state(n: usize) -> String {
    let incidents: serde_json::Map<String, Value> =
        (0..n).map(|i| (format!("INC-fraud-detect-{i:05}"), incident(i))).collect();
    json!({"cursors": {"snapshot_after": "2026-12-07T12:00:00+00:00", "breach_after": null}, "incidents": incidents})
        .to_string()
}

/// Bytes and allocations live after `make` built what it returns, and that value (kept
/// alive by the caller).
fn held<T>(make: impl FnOnce() -> T) -> (isize, isize, T) {
    let (before, blocks) = (LIVE.load(Ordering::Relaxed), BLOCKS.load(Ordering::Relaxed));
    let v = make();
    (LIVE.load(Ordering::Relaxed) - before, BLOCKS.load(Ordering::Relaxed) - blocks, v)
}

/// The most bytes `run` had live at once beyond what was live when it started.
fn peak_of(run: impl FnOnce()) -> isize {
    let before = LIVE.load(Ordering::Relaxed);
    PEAK.store(before, Ordering::Relaxed);
    run();
    PEAK.load(Ordering::Relaxed) - before
}

/// What one cycle did with its state around the guest, before: the held tree to text for the
/// guest, the guest's text parsed, packed for the spool through a tree, cloned for the
/// spool's own copy.
fn cycle_with_trees(prev: &Value, guest_out: &str) -> Value {
    let input = prev.to_string();
    let new: Value = serde_json::from_str(guest_out).unwrap();
    let packed = json!({"last_cursor": null, "hysteresis_state": {"format": "nthlayer-host/1", "module": "respond",
        "version": "1", "task": "respond.tick", "saved_at": "2026-12-07T12:00:00.000000+00:00", "state": new},
        "dedup_cache": null});
    let body = packed.to_string();
    let local = new.clone();
    drop((input, packed, body, local));
    new
}

/// The same, now (outbox/mod.rs `commit`, lifecycle/scheduler.rs `run_with`).
fn cycle_with_text(prev: &TaskState, guest_out: &str) -> TaskState {
    let input = prev.as_str().to_string();
    let new = TaskState::parse(guest_out.to_string()).unwrap();
    let body = nthlayer_host::outbox::state::pack("respond", "1", "respond.tick", &new).to_text();
    let local = new.clone();
    drop((input, body, local));
    new
}

#[test]
fn a_task_state_between_cycles_costs_its_text() {
    let text = respond_state(405);
    let len = text.len() as isize;
    assert!((700_000..900_000).contains(&len), "a state near respond's soak size (784 KB), not {len} bytes");
    let (tree, tree_blocks, kept_tree) = held(|| serde_json::from_str::<Value>(&text).unwrap());
    let (raw, raw_blocks, kept_text) = held(|| TaskState::parse(text.clone()).unwrap());
    eprintln!(
        "respond state of {len} bytes held between cycles: as a serde_json::Value {tree} bytes in {tree_blocks} \
         allocations ({:.1}x), as TaskState {raw} bytes in {raw_blocks} ({:.2}x)",
        tree as f64 / len as f64,
        raw as f64 / len as f64
    );
    assert!(raw <= len + 64 && raw_blocks == 1, "the text and an Arc's counts, no more: {raw} in {raw_blocks}");
    assert!(tree > 3 * len, "the tree this replaces: {tree}");
    // The guest's answer: the same state, one incident updated (the text's length is kept).
    let out = text.replacen("awaiting_approval", "resolved_approval", 1);
    let (mut a, mut b) = (None, None);
    let with_trees = peak_of(|| a = Some(cycle_with_trees(&kept_tree, &out)));
    let with_text = peak_of(|| b = Some(cycle_with_text(&kept_text, &out)));
    eprintln!("a cycle's state handling peaks at {with_trees} bytes with trees, {with_text} bytes with text");
    assert!(with_text < 5 * len, "{with_text}");
    drop((kept_tree, kept_text, a, b));
}

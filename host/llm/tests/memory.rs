//! A call's memory is given back when the call ends.
//!
//! Every structured call compiles its request's schema (the schema is the module's, and may
//! change from call to call). jsonschema before 0.46 never freed a validator built for a
//! schema with a recursive `$ref` or `$dynamicRef` — and every validator is checked against
//! the 2020-12 meta-schema, which is one — so each call left tens of KB on the heap: a host
//! with incidents open grew by ~1 MB per incident (docs/BENCH.md, "Memory"). This binary
//! counts the bytes live on the heap with its own allocator, so it holds exactly one test:
//! nothing else may allocate beside it.

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, Ordering};

use common::*;
use nthlayer_llm::CANNED_SCHEMAS;

/// The system allocator, counting the bytes it has handed out and not yet had back.
struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);

// SAFETY: every call forwards to the system allocator unchanged; only a counter is added.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE.fetch_add(new_size as isize - layout.size() as isize, Ordering::Relaxed);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// A schema a module might send that refers to itself (a tree of findings).
const RECURSIVE: &str = r##"{
  "type": "object",
  "properties": {"finding": {"$ref": "#/$defs/node"}},
  "required": ["finding"],
  "$defs": {"node": {"type": "object", "properties": {
    "text": {"type": "string"},
    "children": {"type": "array", "items": {"$ref": "#/$defs/node"}}}}}
}"##;

#[tokio::test(flavor = "current_thread")]
async fn calls_leave_no_memory_behind() {
    let mut cfg = base_config("http://127.0.0.1:9");
    cfg.stub = true;
    let c = client(cfg);
    let ctx = Ctx::allowed();
    let round = |from: usize, n: usize| {
        let (c, ctx) = (&c, &ctx);
        async move {
            for i in from..from + n {
                for name in CANNED_SCHEMAS {
                    c.structured_call(ctx.get(), request(name, 0, 1000)).await.unwrap();
                }
                // Refused (no canned answer for it), but only after its schema compiled.
                let mut own = request("TriageResponse", 0, 1000);
                // A different schema every call, as a module may send.
                own.schema = RECURSIVE.replacen('{', &format!("{{\"title\": \"tree {i}\","), 1);
                own.schema_name = "FindingTree".into();
                assert!(c.structured_call(ctx.get(), own).await.is_err());
            }
        }
    };
    let start = LIVE.load(Ordering::Relaxed);
    // What stays for good (lazily built statics, the client's counters) is made here; 0.30
    // kept ~30 MB here, about 0.85 MB for each of its first calls.
    round(0, 5).await;
    let before = LIVE.load(Ordering::Relaxed);
    let kept = before - start;
    assert!(kept < 2 << 20, "the first calls kept {kept} bytes on the heap");
    round(5, 100).await;
    let grown = LIVE.load(Ordering::Relaxed) - before;
    let calls = 100 * (CANNED_SCHEMAS.len() + 1);
    assert!(grown < 64 << 10, "{calls} calls left {grown} bytes on the heap ({} per call)", grown / calls as isize);
}

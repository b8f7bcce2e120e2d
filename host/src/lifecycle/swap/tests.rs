//! Hot swap and probation in-process: the watcher loads real components
//! (dist/test-components, scripts/build-modules) from a temporary `--modules` directory
//! into a registry, and each test drives the cycles itself through the scheduler's own
//! `cycle` (run, commit, record the outcome on the slot). No core: cycles commit to an outbox
//! in a temporary directory, which is also where "the state a task resumes from" is read.
//! No sleeps, no clocks: every step is one call.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use nthlayer_test_paths::{components, Component};
use serde_json::{json, Value};

use super::{stamp, Watcher};
use crate::lifecycle::config::{HostConfig, LiveConfig};
use crate::lifecycle::registry::{ModuleSlot, Registry, Serving, SlotChange};
use crate::lifecycle::scheduler::{RunEnv, Scheduler};
use crate::lifecycle::status::HostStatus;
use crate::outbox::state::StateStore;
use crate::outbox::{Outbox, OutboxConfig};
use crate::policy::grants::{Capability, GrantPolicy};
use crate::policy::limits::Limits;

/// A host without core: watcher, registry and scheduler over one `--modules` directory.
struct Host {
    dir: tempfile::TempDir,
    _spool: tempfile::TempDir,
    registry: Arc<Registry>,
    watcher: Watcher,
    sched: Arc<Scheduler>,
    outbox: Arc<Outbox>,
}

impl Host {
    /// `rollback_after` as `--rollback-after`; `trusted`: the directory is a `--trusted-dir`
    /// (grants follow declared needs); `limits` as `--limits`.
    async fn new(rollback_after: u32, trusted: bool, limits: BTreeMap<String, Limits>) -> Host {
        let dir = tempfile::tempdir().unwrap();
        let spool = tempfile::tempdir().unwrap();
        let services = Arc::new(crate::capability::Services::offline().unwrap());
        let outbox = Outbox::open(OutboxConfig {
            dir: spool.path().to_path_buf(),
            max_bytes: 64 << 20,
            max_age: Duration::from_secs(3600),
            retry_window: Duration::from_secs(3600),
        })
        .unwrap();
        services.outbox.set(outbox.clone()).ok().expect("a fresh Services has no outbox");
        let config = LiveConfig::shared(HostConfig { limits, ..HostConfig::default() });
        let env = RunEnv { runtime: crate::store::runtime(None).unwrap(), services: services.clone(), config };
        let registry = Arc::new(Registry::default());
        let status = HostStatus::new(registry.clone(), Default::default());
        let sched = Scheduler::new(env.clone(), StateStore::new(services.backends.core.clone()), status, 2);
        // No task loops: these tests run every cycle themselves, and a rollback's restart of
        // the module's loops (start_module) is a no-op once shutdown is cancelled.
        sched.shutdown.cancel();
        let grants = if trusted {
            GrantPolicy::default().with_trusted_dirs(&[dir.path().to_path_buf()]).unwrap()
        } else {
            GrantPolicy::default()
        };
        let spec = format!("{}/*.wasm", dir.path().display());
        let watcher = Watcher::new(vec![spec], env, registry.clone(), grants, rollback_after);
        Host { dir, _spool: spool, registry, watcher, sched, outbox }
    }

    fn file(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Writes `bytes` to `file` (as a deploy tool would: temporary name, then rename) and has
    /// the watcher handle it as a poll does once the file has settled. True if installed.
    async fn deploy(&mut self, file: &Path, bytes: &[u8]) -> bool {
        let tmp = file.with_extension("tmp");
        std::fs::write(&tmp, bytes).unwrap();
        std::fs::rename(&tmp, file).unwrap();
        self.watcher.handle(file, stamp(file), None).await
    }

    fn slot(&self, module: &str) -> Arc<ModuleSlot> {
        self.registry.get(module).unwrap_or_else(|| panic!("module {module} not in the registry"))
    }

    /// The state `task` resumes from: the last committed one.
    async fn state(&self, task: &str) -> Option<Value> {
        self.outbox.local_state(task).await.map(|l| l.state.to_value())
    }

    /// One scheduled cycle of `task` on the slot's current version, from its committed state.
    async fn cycle(&self, module: &str, task: &str) -> bool {
        let slot = self.slot(module);
        let serving = slot.serving();
        let state = self.outbox.local_state(task).await.map(|l| l.state);
        self.sched.cycle(&slot, &serving, task, state.as_ref()).await.ok
    }
}

fn version(slot: &ModuleSlot) -> String {
    slot.current().meta.version.clone()
}

/// The log lines written while `f` runs on this thread (the watcher logs on the caller's;
/// `#[tokio::test]` runs the test on one thread).
///
/// One process-wide subscriber writes to a per-thread buffer, rather than a scoped
/// `set_default` per call: with scoped subscribers, a callsite first hit by another test's
/// thread (which has none) could have its interest cached as "never" while this thread's
/// subscriber was being registered, and this test then captured nothing (seen in ~5 of 12
/// full runs). A global subscriber is registered before any callsite is hit.
async fn logged<T>(f: impl std::future::Future<Output = T>) -> (T, String) {
    thread_local! {
        static CAPTURE: std::cell::RefCell<Option<Vec<u8>>> = const { std::cell::RefCell::new(None) };
    }
    struct ThreadBuf;
    impl Write for ThreadBuf {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            CAPTURE.with(|c| {
                if let Some(buf) = c.borrow_mut().as_mut() {
                    buf.extend_from_slice(b);
                }
            });
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    static INSTALLED: std::sync::Once = std::sync::Once::new();
    INSTALLED.call_once(|| {
        let subscriber = tracing_subscriber::fmt().with_ansi(false).with_writer(|| ThreadBuf).finish();
        // Another global subscriber would only mean no capture: the assertions say so.
        let _ = tracing::subscriber::set_global_default(subscriber);
    });
    CAPTURE.with(|c| *c.borrow_mut() = Some(Vec::new()));
    let out = f.await;
    let bytes = CAPTURE.with(|c| c.borrow_mut().take()).unwrap_or_default();
    (out, String::from_utf8(bytes).unwrap())
}

async fn first_load(h: &mut Host, file: &str, c: Component) {
    std::fs::write(h.file(file), c.bytes()).unwrap();
    assert_eq!(h.watcher.initial_load(None).await, 0, "{} did not load", c.name());
}

/// A new version's first good cycle ends its probation: it is the last good version from
/// then on, and it ran on the state the old version committed.
#[tokio::test]
async fn a_new_version_passes_probation_with_its_first_good_cycle() {
    let mut h = Host::new(2, false, BTreeMap::new()).await;
    first_load(&mut h, "swapper.wasm", components::SWAPPER_V1).await;
    let slot = h.slot("swapper");
    assert!(!slot.on_probation(), "a first load is not on probation");
    assert!(h.cycle("swapper", "swapper").await);

    let file = h.file("swapper.wasm");
    assert!(h.deploy(&file, &components::SWAPPER_V2.bytes()).await);
    assert!(Arc::ptr_eq(&slot, &h.slot("swapper")), "a swap keeps the slot");
    assert_eq!(version(&slot), "2.0.0");
    assert!(slot.on_probation());

    assert!(h.cycle("swapper", "swapper").await);
    assert!(!slot.on_probation(), "one good cycle ends probation");
    let st = h.state("swapper").await.unwrap();
    assert_eq!((st["n"].clone(), st["versions"].clone()), (json!(2), json!(["1.0.0", "2.0.0"])), "{st}");
    // Promoted: failures now are an ordinary failing module, not a reason to roll back.
    let v2 = slot.current();
    for _ in 0..3 {
        slot.record(&v2, false);
    }
    assert_eq!(version(&slot), "2.0.0");
}

/// A version failing its first `--rollback-after` cycles is replaced by the last good one,
/// which resumes from the state it committed: the failed cycles committed nothing.
#[tokio::test]
async fn a_failing_new_version_rolls_back_to_the_previous_version_and_its_state() {
    let mut h = Host::new(2, false, BTreeMap::new()).await;
    first_load(&mut h, "swapper.wasm", components::SWAPPER_V1).await;
    let slot = h.slot("swapper");
    let v1 = slot.current();
    assert!(h.cycle("swapper", "swapper").await);
    let before = h.state("swapper").await.unwrap();
    assert_eq!(before["n"], 1, "{before}");

    let file = h.file("swapper.wasm");
    assert!(h.deploy(&file, &components::SWAPPER_TRAP.bytes()).await);
    assert_eq!(version(&slot), "3.0.0-trap");
    assert!(!h.cycle("swapper", "swapper").await, "the trap version fails");
    assert_eq!(version(&slot), "3.0.0-trap", "one failure of two: still on probation");
    assert!(slot.on_probation());
    assert_eq!(h.state("swapper").await.unwrap(), before, "a failed cycle commits no state");

    assert!(!h.cycle("swapper", "swapper").await);
    assert!(Arc::ptr_eq(&slot.current(), &v1), "rolled back to the very version that served before");
    assert!(!slot.on_probation());
    assert_eq!(h.state("swapper").await.unwrap(), before);

    assert!(h.cycle("swapper", "swapper").await, "the restored version runs");
    let after = h.state("swapper").await.unwrap();
    assert_eq!((after["n"].clone(), after["versions"].clone()), (json!(2), json!(["1.0.0"])), "{after}");
    let served = &h.registry.versions()[0];
    assert_eq!((served["version"].clone(), served["probation"].clone()), (json!("1.0.0"), json!(false)));
}

/// Rights belong to a version: a swap resolves the new version's grants and limits anew
/// (never inheriting the old one's) and its log line says what changed; a rollback brings
/// the old version's rights back with its code.
#[tokio::test]
async fn a_swap_recomputes_grants_and_limits_and_logs_the_difference() {
    let configured = Limits { cpu_ms: 1234, ..Limits::default() };
    let mut h = Host::new(1, true, BTreeMap::from([("impostor".to_string(), configured.clone())])).await;
    first_load(&mut h, "impostor.wasm", components::IMPOSTOR_V1).await;
    let slot = h.slot("impostor");
    let v1 = slot.serving();
    assert_eq!(v1.grants.names(), vec!["core"], "trusted code gets what it declares");
    assert_eq!(v1.limits, configured);

    // Version 2 also declares llm: granted (trusted dir), and the swap's log says so.
    let file = h.file("impostor.wasm");
    let (ok, log) = logged(h.deploy(&file, &components::IMPOSTOR_V2.bytes())).await;
    assert!(ok, "{log}");
    let v2 = slot.serving();
    assert!(v2.grants.allows(Capability::Llm) && v2.grants.allows(Capability::Core), "{:?}", v2.grants.names());
    assert_eq!(v2.limits, configured, "limits come from the configuration, per version");
    let line = log.lines().find(|l| l.contains("module swapped")).unwrap_or_else(|| panic!("no swap line in:\n{log}"));
    assert!(line.contains("rights=granted llm") && line.contains("impostor@2.0.0"), "{line}");

    // A rollback restores version 1 with version 1's rights, not version 2's. (The failed
    // cycle is recorded, not run: impostor's calls would wait out the absent core's retries.)
    assert!(matches!(slot.record(&slot.current(), false), SlotChange::RolledBack { failures: 1, .. }));
    assert!(Arc::ptr_eq(&slot.current(), &v1.module));
    assert!(!slot.serving().grants.allows(Capability::Llm), "{:?}", slot.serving().grants.names());

    // A version serving under other limits (installed by hand: --limits cannot change while
    // the host runs) is not where the next version's limits come from, and the log says so.
    slot.install(Serving { limits: Limits { cpu_ms: 99, ..configured.clone() }, ..Serving::bare(v2.module.clone()) });
    let (ok, log) = logged(h.deploy(&file, &components::IMPOSTOR_V1.bytes())).await;
    assert!(ok, "{log}");
    assert_eq!(slot.serving().limits, configured);
    assert_eq!(slot.serving().grants.names(), vec!["core"]);
    let line = log.lines().find(|l| l.contains("module swapped")).unwrap_or_else(|| panic!("no swap line in:\n{log}"));
    assert!(line.contains("rights=granted core; limits changed; trust Untrusted -> TrustedDir"), "{line}");
}

/// A swap to a file that is not a loadable version of the module — malformed, truncated, or
/// another module — is refused with the reason kept for heartbeats, and the old version
/// keeps serving, outside probation, cycle after cycle.
#[tokio::test]
async fn a_swap_to_a_malformed_file_keeps_the_old_version_serving() {
    let mut h = Host::new(2, false, BTreeMap::new()).await;
    first_load(&mut h, "swapper.wasm", components::SWAPPER_V1).await;
    let slot = h.slot("swapper");
    let v1 = slot.current();
    let file = h.file("swapper.wasm");
    let good = components::SWAPPER_V1.bytes();
    let refused: [(&str, Vec<u8>, &str); 3] = [
        ("not wasm", b"not a component\n".to_vec(), ""),
        ("truncated", good[..good.len() / 2].to_vec(), ""),
        ("another module", components::TICKER.bytes(), "file now provides module \"ticker\""),
    ];
    for (what, bytes, reason) in refused {
        let (ok, log) = logged(h.deploy(&file, &bytes)).await;
        assert!(!ok, "{what}: installed");
        assert!(Arc::ptr_eq(&slot.current(), &v1), "{what}: the old version must keep serving");
        assert!(!slot.on_probation(), "{what}");
        let rejected = h.registry.rejected();
        let why = rejected[file.display().to_string()].as_str().unwrap_or_else(|| panic!("{what}: {rejected}"));
        assert!(why.contains(reason), "{what}: {why}");
        assert!(log.contains("rejected"), "{what}: {log}");
        assert!(h.cycle("swapper", "swapper").await, "{what}: the old version still runs");
    }
    assert_eq!(h.state("swapper").await.unwrap()["n"], 3, "one good cycle after each refusal");

    // A good version afterwards installs, and the rejection is forgotten.
    assert!(h.deploy(&file, &components::SWAPPER_V2.bytes()).await);
    assert_eq!(version(&slot), "2.0.0");
    assert_eq!(h.registry.rejected(), json!({}));
}

/// Name conflicts: the winner never depends on how the files sort. `twin` is a stranger's
/// component calling itself `observe`; `observe.wasm` is byte-identical to the built-in.
mod conflicts {
    use super::*;
    use crate::policy::builtin;
    use crate::policy::grants::Trust;

    async fn host(with_builtins: bool) -> Host {
        let mut h = Host::new(3, false, BTreeMap::new()).await;
        if with_builtins {
            h.watcher.builtins = builtin::all().iter().collect();
        }
        h
    }

    fn observe_bytes() -> &'static [u8] {
        builtin::get("observe").expect("observe is built in").bytes
    }

    fn serving(h: &Host) -> (PathBuf, Trust) {
        let s = h.slot("observe").serving();
        (s.module.path.clone(), s.trust.clone())
    }

    /// The conflict line, which must name both files and the winner.
    fn conflict<'a>(log: &'a str, a: &Path, b: &Path, winner: &Path) -> &'a str {
        let line = log.lines().find(|l| l.contains("module name conflict")).unwrap_or_else(|| panic!("{log}"));
        assert!(line.contains("ERROR"), "{line}");
        for f in [a, b] {
            assert!(line.contains(&f.display().to_string()), "{} not named: {line}", f.display());
        }
        assert!(line.contains(&format!("{} serves", winner.display())), "{line}");
        line
    }

    #[tokio::test]
    async fn at_start_up_a_trusted_file_wins_over_a_twin_that_sorts_first() {
        let mut h = host(true).await;
        let (twin, real) = (h.file("0-twin.wasm"), h.file("observe.wasm"));
        std::fs::write(&twin, components::IMPOSTOR_OBSERVE.bytes()).unwrap();
        std::fs::write(&real, observe_bytes()).unwrap();
        let (failures, log) = logged(h.watcher.initial_load(None)).await;
        assert_eq!(failures, 1, "{log}");
        assert_eq!(serving(&h), (real.clone(), Trust::SameAsEmbedded));
        conflict(&log, &twin, &real, &real);
        assert!(h.registry.rejected().to_string().contains("0-twin.wasm"));
    }

    #[tokio::test]
    async fn at_start_up_an_untrusted_twin_of_a_built_in_leaves_the_built_in_serving() {
        let mut h = host(true).await;
        let twin = h.file("0-twin.wasm");
        std::fs::write(&twin, components::IMPOSTOR_OBSERVE.bytes()).unwrap();
        let (failures, log) = logged(h.watcher.initial_load(None)).await;
        assert_eq!(failures, 1, "{log}");
        let embedded = builtin::get("observe").unwrap().path();
        assert_eq!(serving(&h), (embedded.clone(), Trust::Embedded));
        conflict(&log, &twin, &embedded, &embedded);
    }

    #[tokio::test]
    async fn an_untrusted_file_added_later_cannot_take_a_trusted_file_s_name() {
        let mut h = host(false).await;
        let real = h.file("observe.wasm");
        std::fs::write(&real, observe_bytes()).unwrap();
        assert_eq!(h.watcher.initial_load(None).await, 0);
        let twin = h.file("0-twin.wasm");
        let (installed, log) = logged(h.deploy(&twin, &components::IMPOSTOR_OBSERVE.bytes())).await;
        assert!(!installed, "{log}");
        assert_eq!(serving(&h), (real.clone(), Trust::SameAsEmbedded));
        conflict(&log, &twin, &real, &real);
    }

    #[tokio::test]
    async fn a_trusted_file_added_later_displaces_an_untrusted_one_for_good() {
        let mut h = host(false).await;
        let twin = h.file("0-twin.wasm");
        std::fs::write(&twin, components::IMPOSTOR_OBSERVE.bytes()).unwrap();
        assert_eq!(h.watcher.initial_load(None).await, 0);
        assert_eq!(serving(&h).1, Trust::Untrusted);
        let real = h.file("observe.wasm");
        let (installed, log) = logged(h.deploy(&real, observe_bytes())).await;
        assert!(installed, "{log}");
        assert_eq!(serving(&h), (real.clone(), Trust::SameAsEmbedded));
        conflict(&log, &real, &twin, &real);
        assert!(!h.slot("observe").on_probation(), "no rollback to the untrusted code");
        assert!(h.registry.rejected().to_string().contains("0-twin.wasm"));
        assert_eq!(h.watcher.known[&twin].module, None, "removing the twin later unloads nothing");
    }

    #[tokio::test]
    async fn between_untrusted_files_the_one_serving_keeps_serving() {
        let mut h = host(false).await;
        let first = h.file("z-first.wasm");
        std::fs::write(&first, components::IMPOSTOR_OBSERVE.bytes()).unwrap();
        assert_eq!(h.watcher.initial_load(None).await, 0);
        let second = h.file("a-second.wasm");
        let (installed, log) = logged(h.deploy(&second, &components::IMPOSTOR_OBSERVE.bytes())).await;
        assert!(!installed, "{log}");
        assert_eq!(serving(&h).0, first.clone());
        conflict(&log, &second, &first, &first);
    }
}

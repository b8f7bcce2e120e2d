//! Local state belongs to one core.
//!
//! The spool keeps each task's last committed state so a task can start while core is
//! down. But that state is only right for the core it was delivered to: pointed at a fresh
//! core (a rebuilt or restored database, another environment on the same machine), a task
//! restoring it would, for measure, consider every breach already fired and the new core
//! would never hear of them. So the host gives core an identity (core 4.0.1 has none: a
//! random marker in a reserved component-state row, written on first contact), records with
//! each local state the core it is for, and before a task trusts its local state checks it
//! against the core now answering. docs/OUTBOX.md ("Start-up") states the rule.

use serde_json::{json, Value};

use super::spool::LocalState;
use super::Outbox;
use crate::backend::core::CoreClient;
use crate::backend::ClientError;
use crate::outbox::state::{self, CoreIdentity, Restored, MARKER_KEY};
use crate::runtime::task_state::TaskState;

async fn read_marker(core: &CoreClient) -> Result<Option<String>, ClientError> {
    let row = core.get_component_state(MARKER_KEY).await?;
    Ok(row.and_then(|r| r.get("last_cursor").and_then(Value::as_str).map(str::to_string)).filter(|m| !m.is_empty()))
}

/// The identity of the core `core` reaches, writing a marker into it on first contact.
/// `last_cursor` is the one string core keeps. Read back after writing: of two hosts
/// writing at once the last write wins, and both adopt it.
pub async fn establish(core: &CoreClient) -> Result<CoreIdentity, ClientError> {
    let url = core.base().to_string();
    if let Some(marker) = read_marker(core).await? {
        return Ok(CoreIdentity { url, marker });
    }
    let fresh = format!("{:032x}", rand::random::<u128>());
    let row = json!({"last_cursor": fresh, "hysteresis_state": null, "dedup_cache": null});
    core.put_component_state(MARKER_KEY, &row).await?;
    let marker = read_marker(core)
        .await?
        .ok_or_else(|| ClientError::Invalid(format!("core at {url} did not keep the identity marker")))?;
    tracing::info!(core = %url, %marker, "gave core an identity marker");
    Ok(CoreIdentity { url, marker })
}

/// What a task may start from.
#[derive(Debug, Clone, PartialEq)]
pub enum Vetted {
    /// The spool has no state for the task: ask core.
    Nothing,
    /// The local state stands: not yet delivered (it wins and will be delivered), or what
    /// the current core holds.
    Local(LocalState),
    /// Core cannot answer now: the local state is used and checked when core is back.
    Unchecked(LocalState),
    /// The local state was delivered to a core that no longer holds it (or holds another):
    /// core's view instead, and the local copy is forgotten.
    Core(Restored),
}

impl Outbox {
    /// The identity of the core now answering, asked again after every comeback (a core that
    /// went away may come back as another).
    pub async fn core_identity(&self, core: &CoreClient) -> Result<CoreIdentity, ClientError> {
        let epoch = core.comebacks();
        if let Some((e, id)) = self.identity.lock().expect("identity lock").clone() {
            if e == epoch && id.url == core.base() {
                return Ok(id);
            }
        }
        let id = establish(core).await?;
        *self.identity.lock().expect("identity lock") = Some((epoch, id.clone()));
        Ok(id)
    }

    /// The identity a commit ties the task's state to: the last one known, if any.
    pub(super) fn known_identity(&self) -> Option<CoreIdentity> {
        self.identity.lock().expect("identity lock").as_ref().map(|(_, id)| id.clone())
    }

    /// Checks the task's local state against the core now answering (see [`Vetted`]).
    pub async fn vet(&self, task: &str, core: &CoreClient) -> Vetted {
        let t = task.to_string();
        let spooled = self.with(move |s| Ok::<_, rusqlite::Error>((s.local_state(&t)?, s.state_pending(&t)?))).await;
        let (local, pending) = match spooled {
            Ok((Some(l), p)) => (l, p),
            Ok((None, _)) => {
                // First contact: learn (or give) core's identity now, so the state this task
                // commits records which core it is for. Core down: the next check does it.
                let _ = self.core_identity(core).await;
                return Vetted::Nothing;
            }
            Err(e) => {
                tracing::error!(task, error = %e, "cannot read the task's state from the spool; asking core");
                return Vetted::Nothing;
            }
        };
        if pending {
            return Vetted::Local(local);
        }
        let current = match self.core_identity(core).await {
            Ok(id) => id,
            Err(e) => {
                tracing::debug!(task, error = %e, "core cannot say who it is; local state used until it can");
                return Vetted::Unchecked(local);
            }
        };
        let row = match core.get_component_state(task).await {
            Ok(r) => r,
            Err(_) => return Vetted::Unchecked(local),
        };
        let core_saved = state::saved_at(row.as_ref());
        let local_saved = local.saved_at.as_deref().and_then(|s| chrono::DateTime::parse_from_rfc3339(s).ok());
        let same_core = local.core.as_ref().is_none_or(|c| *c == current);
        let holds_it = match (local_saved, core_saved) {
            (Some(l), Some(c)) => l == c,
            // A spool from before saved_at was kept: core must at least hold a state of ours.
            (None, _) => matches!(state::unpack(row.as_ref()), Restored::Ours { .. }),
            (Some(_), None) => false,
        };
        if same_core && holds_it {
            if local.core.is_none() {
                let (t, id) = (task.to_string(), current);
                if let Err(e) = self.with(move |s| s.set_state_core(&t, &id)).await {
                    tracing::warn!(task, error = %e, "cannot note the task state's core in the spool");
                }
            }
            return Vetted::Local(local);
        }
        let was = local.core.as_ref().map_or_else(|| "an unrecorded core".to_string(), ToString::to_string);
        tracing::warn!(%task, delivered_to = %was, now = %current, local_saved_at = ?local.saved_at,
            core_saved_at = ?core_saved.map(|c| c.to_rfc3339()),
            "task state in the local spool was delivered to a core that no longer holds it (a different or reset core); \
             taking core's view so no breach is suppressed");
        let t = task.to_string();
        if let Err(e) = self.with(move |s| s.discard_state(&t)).await {
            tracing::error!(task, error = %e, "cannot forget the task's local state");
        }
        Vetted::Core(state::unpack(row.as_ref()))
    }
}

/// A running task's watch on its state's core: checks again after every comeback of core,
/// and each cycle while the last check could not reach core.
pub struct Recheck {
    unchecked: bool,
    comebacks: u64,
}

impl Recheck {
    pub fn new(first: &Vetted, core: &CoreClient) -> Self {
        Recheck { unchecked: matches!(first, Vetted::Unchecked(_)), comebacks: core.comebacks() }
    }

    /// `Some(state)` when core's view replaces the task's state (`None` inside: start fresh).
    pub async fn again(&mut self, outbox: &Outbox, task: &str, core: &CoreClient) -> Option<Option<TaskState>> {
        if (!self.unchecked && core.comebacks() == self.comebacks) || core.is_down() {
            return None;
        }
        self.comebacks = core.comebacks();
        let v = outbox.vet(task, core).await;
        self.unchecked = matches!(v, Vetted::Unchecked(_));
        match v {
            Vetted::Core(Restored::Ours { state, .. }) => Some(Some(state)),
            Vetted::Core(Restored::Nothing) => Some(None),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::outbox::OutboxConfig;
    use crate::test_support::{self, HttpFake, Step};

    const MARKER: &str = "/component-state/nthlayer-host.core-identity";

    fn marker_row(m: &str) -> String {
        json!({"component": MARKER_KEY, "last_cursor": m, "hysteresis_state": null, "dedup_cache": null}).to_string()
    }

    fn client(fake: &HttpFake) -> CoreClient {
        let services = test_support::services(|c| c.core.core_url = fake.url().into());
        services.backends.core.with_retry(crate::backend::retry::RetryPolicy::none())
    }

    /// A spool whose task `t` committed state `{"n":1}` for core `url` with `marker`; returns
    /// the packed row as core holds it once delivered.
    async fn committed(url: &str, marker: &str, delivered: bool) -> (tempfile::TempDir, Arc<Outbox>, Value) {
        let dir = tempfile::tempdir().unwrap();
        let config = OutboxConfig::in_dir(dir.path());
        let outbox = Outbox::open(config).unwrap();
        let id = CoreIdentity { url: url.into(), marker: marker.into() };
        *outbox.identity.lock().unwrap() = Some((0, id));
        outbox.commit("t", "m", "1", Some(&json!({"n": 1}).into()), Vec::<super::super::Effect>::new()).await.unwrap();
        let head = outbox.with(|s| s.head("t", 10)).await.unwrap();
        let row: Value = serde_json::from_str(&head[0].body).unwrap();
        if delivered {
            let seq = head[0].seq;
            outbox.with(move |s| s.delivered(&[seq])).await.unwrap();
        }
        // A restart: nothing known about the core yet.
        *outbox.identity.lock().unwrap() = None;
        (dir, outbox, row)
    }

    #[tokio::test]
    async fn first_contact_writes_a_marker_and_reads_it_back() {
        let fake = HttpFake::start(vec![
            Step::get(MARKER).reply(404, r#"{"error":"not_found"}"#),
            Step::put(MARKER).body_contains(r#""last_cursor":""#).reply(200, "{}"),
            Step::get(MARKER).reply(200, &marker_row("theirs")),
        ]);
        let id = establish(&client(&fake)).await.unwrap();
        assert_eq!(id, CoreIdentity { url: fake.url().into(), marker: "theirs".into() });
        fake.finish();
    }

    #[tokio::test]
    async fn undelivered_state_wins_without_asking_core() {
        let fake = HttpFake::start(vec![]);
        let (_d, outbox, _) = committed(fake.url(), "a", false).await;
        assert!(
            matches!(outbox.vet("t", &client(&fake)).await, Vetted::Local(l) if l.state.to_value() == json!({"n": 1}))
        );
        fake.finish();
    }

    #[tokio::test]
    async fn delivered_state_stands_only_where_core_holds_it() {
        // The same core, holding what was delivered: the local state stands.
        let fake = HttpFake::start(vec![]);
        let (_d, outbox, row) = committed(fake.url(), "a", true).await;
        drop(fake);
        let fake = HttpFake::start(vec![
            Step::get(MARKER).reply(200, &marker_row("a")),
            Step::get("/component-state/t").reply(200, &row.to_string()),
        ]);
        // (The URL changed with the new fake: record it as the state's core.)
        let url = fake.url().to_string();
        let id = CoreIdentity { url, marker: "a".into() };
        outbox.with(move |s| s.set_state_core("t", &id)).await.unwrap();
        assert!(matches!(outbox.vet("t", &client(&fake)).await, Vetted::Local(_)));
        fake.finish();

        // Another core (new marker) that holds nothing: core's view, and the local copy goes.
        let fake = HttpFake::start(vec![
            Step::get(MARKER).reply(200, &marker_row("b")),
            Step::get("/component-state/t").reply(404, r#"{"error":"not_found"}"#),
        ]);
        assert_eq!(outbox.vet("t", &client(&fake)).await, Vetted::Core(Restored::Nothing));
        assert_eq!(outbox.local_state("t").await, None);
        fake.finish();
    }

    #[tokio::test]
    async fn a_reset_core_under_the_same_marker_is_not_trusted_either() {
        let fake = HttpFake::start(vec![
            Step::get(MARKER).reply(200, &marker_row("a")),
            Step::get("/component-state/t").reply(404, r#"{"error":"not_found"}"#),
        ]);
        let (_d, outbox, _) = committed(fake.url(), "a", true).await;
        assert_eq!(outbox.vet("t", &client(&fake)).await, Vetted::Core(Restored::Nothing));
        fake.finish();

        // Core not answering: the local state is used, unchecked.
        let (_d, outbox, _) = committed("http://127.0.0.1:9", "a", true).await;
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let services = test_support::services(|c| c.core.core_url = format!("http://127.0.0.1:{port}"));
        let core = services.backends.core.with_retry(crate::backend::retry::RetryPolicy::none());
        assert!(matches!(outbox.vet("t", &core).await, Vetted::Unchecked(_)));
    }
}

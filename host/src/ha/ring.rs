//! Which replica should lead each shard instance: rendezvous (highest random weight)
//! hashing over the live replicas. Each (replica, shard) pair gets a stable score and the
//! highest score owns the shard, so every replica computes the same owner from the same
//! live set without talking to the others, a joining replica takes from each other replica
//! only the shards it now scores highest on (about 1/(n+1) of them), and a leaving one's
//! shards spread over the rest while nothing else moves. A plain task (no shard) is not
//! assigned: every replica campaigns for it, as before.

use std::collections::BTreeSet;

use crate::capability::core::shard::{stable_hash, Shard};

/// The replica that should lead `instance` among `live`; None for a plain task, or when no
/// replica is live.
pub fn owner<'a>(instance: &str, live: impl IntoIterator<Item = &'a String>) -> Option<&'a String> {
    Shard::parse(instance)?;
    live.into_iter().max_by_key(|r| (stable_hash(&[r.as_str(), instance]), *r))
}

/// Whether `me` should campaign for (and keep) `instance`, given the replicas seen live (it
/// counts itself live: its own presence key may not be visible yet).
pub fn mine(instance: &str, me: &str, live: &BTreeSet<String>) -> bool {
    let mut all = live.clone();
    all.insert(me.to_string());
    owner(instance, &all).is_none_or(|o| o == me)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn replicas(n: usize) -> BTreeSet<String> {
        (0..n).map(|i| format!("host-{i}")).collect()
    }

    fn assign(shards: &[String], live: &BTreeSet<String>) -> BTreeMap<String, String> {
        shards.iter().map(|s| (s.clone(), owner(s, live).unwrap().clone())).collect()
    }

    /// Balance: with 64 shards over 4 replicas each gets a fair part; on a join only shards
    /// that go to the newcomer move; on a leave only the leaver's shards move.
    #[test]
    fn ownership_is_balanced_and_moves_minimally_on_join_and_leave() {
        let shards: Vec<String> = (1..=64).map(|k| Shard::name("measure", k, 64)).collect();
        let four = replicas(4);
        let before = assign(&shards, &four);
        for r in &four {
            let n = before.values().filter(|o| *o == r).count();
            assert!((8..=24).contains(&n), "{r} owns {n} of 64: {before:?}");
        }
        let five = replicas(5);
        let after = assign(&shards, &five);
        let moved: Vec<&String> = shards.iter().filter(|s| before[*s] != after[*s]).collect();
        assert!(!moved.is_empty());
        assert!(moved.iter().all(|s| after[*s] == "host-4"), "a join moves shards only to the newcomer");
        assert!(moved.len() <= 24, "{} of 64 moved on one join", moved.len());
        let mut three = four.clone();
        three.remove("host-1");
        let left = assign(&shards, &three);
        for s in &shards {
            if before[s] != "host-1" {
                assert_eq!(before[s], left[s], "{s} moved though its owner stayed");
            }
        }
        // Plain tasks are not assigned; a replica counts itself live.
        assert!(owner("measure", &four).is_none());
        assert!(mine("measure", "host-9", &four));
        let alone = BTreeSet::new();
        assert!(shards.iter().all(|s| mine(s, "solo", &alone)));
    }
}

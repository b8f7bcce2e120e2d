//! Breach severity, the deterministic governance rules and the one-way autonomy ratchet.
//! Kept free of I/O so every rule is pinned by a unit test.

/// Least to most restrictive. Observer is the floor: the agent may only watch.
pub const LADDER: [&str; 5] = ["fully_autonomous", "autonomous", "limited_autonomous", "advisor", "observer"];

/// Judgment types whose severity is the share of error budget consumed.
const BUDGET_TYPES: [&str; 5] =
    ["reversal_rate", "high_confidence_failure", "escalation", "outcomes", "audit_sampling"];

/// `low` under 200 % of budget consumed, `high` under 500 %, else `critical`; a target of
/// 100 leaves no budget, so any miss is critical. Types without a budget are `high`. A NaN
/// value fails both cuts and reads as critical, as in the reference.
pub fn severity(judgment_type: Option<&str>, target: f64, pct: f64) -> &'static str {
    if !judgment_type.is_some_and(|t| BUDGET_TYPES.contains(&t)) {
        return "high";
    }
    let budget = 100.0 - target;
    if budget <= 0.0 {
        return "critical";
    }
    let consumed = (target - pct) / budget * 100.0;
    if consumed < 200.0 {
        "low"
    } else if consumed < 500.0 {
        "high"
    } else {
        "critical"
    }
}

/// How far governance moves a service down the ladder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Move this many rungs toward observer.
    Drop(usize),
    /// At least this restrictive (an index into [`LADDER`]).
    Floor(usize),
}

/// Several open breaches floor the service (observer if any is critical, else advisor); a
/// single one drops by its severity: low 1, high 2, critical to observer.
pub fn step<'a>(breaching: &[&'a str], severity_of: impl Fn(&'a str) -> Option<&'a str>) -> Step {
    if breaching.len() > 1 {
        let critical = breaching.iter().any(|k| severity_of(k) == Some("critical"));
        return Step::Floor(if critical { 4 } else { 3 });
    }
    match breaching.first().and_then(|k| severity_of(k)).unwrap_or("high") {
        "low" => Step::Drop(1),
        "high" => Step::Drop(2),
        "critical" => Step::Floor(4),
        _ => Step::Drop(1),
    }
}

/// The ratchet: the result is never less restrictive than `current`. An unknown level fails
/// safe to advisor.
pub fn reduce(current: &str, step: Step) -> &'static str {
    let Some(cur) = LADDER.iter().position(|l| *l == current) else { return "advisor" };
    let target = match step {
        Step::Drop(n) => (cur + n).min(LADDER.len() - 1),
        Step::Floor(i) => i,
    };
    LADDER[cur.max(target)]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn severity_cuts_at_200_and_500_percent() {
        // The reference's observed case: 98.5 target, SLI 0.92 -> 433 % -> high.
        assert_eq!(severity(Some("reversal_rate"), 98.5, 92.0), "high");
        assert_eq!(severity(Some("reversal_rate"), 95.0, 90.0), "low"); // 100 %
        assert_eq!(severity(Some("outcomes"), 95.0, 94.0), "low");
        assert_eq!(severity(Some("escalation"), 95.0, 85.0), "high"); // 200 % is not < 200
        assert_eq!(severity(Some("escalation"), 95.0, 70.0000001), "high"); // 499.99 %
        assert_eq!(severity(Some("audit_sampling"), 95.0, 70.0), "critical"); // 500 %
        assert_eq!(severity(Some("high_confidence_failure"), 100.0, 99.9), "critical");
        assert_eq!(severity(Some("reversal_rate"), 99.0, f64::NAN), "critical");
        assert_eq!(severity(Some("calibration"), 90.0, 10.0), "high");
        assert_eq!(severity(None, 90.0, 89.0), "high");
    }

    #[test]
    fn governance_floors_several_and_steps_one() {
        let sev = |k: &str| -> Option<&str> {
            match k {
                "s:low" => Some("low"),
                "s:high" => Some("high"),
                "s:crit" => Some("critical"),
                "s:odd" => Some("weird"),
                _ => None,
            }
        };
        assert_eq!(step(&["s:low"], sev), Step::Drop(1));
        assert_eq!(step(&["s:high"], sev), Step::Drop(2));
        assert_eq!(step(&["s:crit"], sev), Step::Floor(4));
        assert_eq!(step(&["s:none"], sev), Step::Drop(2)); // default high
        assert_eq!(step(&["s:odd"], sev), Step::Drop(1));
        assert_eq!(step(&["s:low", "s:low"], sev), Step::Floor(3));
        assert_eq!(step(&["s:low", "s:crit"], sev), Step::Floor(4));
    }

    #[test]
    fn ratchet_never_raises() {
        assert_eq!(reduce("fully_autonomous", Step::Drop(2)), "limited_autonomous");
        assert_eq!(reduce("fully_autonomous", Step::Drop(1)), "autonomous");
        assert_eq!(reduce("advisor", Step::Drop(2)), "observer");
        assert_eq!(reduce("observer", Step::Drop(1)), "observer");
        assert_eq!(reduce("fully_autonomous", Step::Floor(3)), "advisor");
        // A floor above the current level does not promote.
        assert_eq!(reduce("observer", Step::Floor(3)), "observer");
        assert_eq!(reduce("advisor", Step::Floor(3)), "advisor");
        assert_eq!(reduce("supervised", Step::Drop(1)), "advisor");
        // Walking the whole ladder one step at a time ends at observer and stays.
        let mut level = "fully_autonomous";
        for want in ["autonomous", "limited_autonomous", "advisor", "observer", "observer"] {
            level = reduce(level, Step::Drop(1));
            assert_eq!(level, want);
        }
    }
}

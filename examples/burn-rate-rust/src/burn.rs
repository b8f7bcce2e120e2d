//! The SRE workbook's multi-window, multi-burn-rate rules (chapter 5, "Alerting on SLOs",
//! table 5-8) evaluated on an SLO's indicator.
//!
//! The burn rate over a window is the window's error ratio divided by the error budget
//! (`1 - objective/100`): 1 spends the budget exactly over the SLO window, 14.4 spends 2% of
//! a 30-day budget in one hour. A rule fires when both its long and its short window burn
//! faster than its factor: the long window makes it significant, the short one makes it
//! reset quickly once the burning stops.
//!
//! The error ratio over a window is `1 - avg_over_time((indicator)[window:step])`: any
//! indicator query (a ratio of good to total, an availability gauge) works unchanged.
//! `examples/burn-rate-python` implements the same arithmetic in the same order; the two
//! must produce identical records on the same data.

use serde_json::{json, Map, Value};

/// Every window a rule reads, with the resolution of its subquery.
pub const WINDOWS: [(&str, &str); 7] =
    [("5m", "1m"), ("30m", "1m"), ("1h", "1m"), ("2h", "1m"), ("6h", "5m"), ("1d", "15m"), ("3d", "30m")];

pub struct Rule {
    pub severity: &'static str,
    pub long: &'static str,
    pub short: &'static str,
    pub factor: f64,
}

/// Page on 14.4x over 1h and 5m, or 6x over 6h and 30m; ticket on 3x over 1d and 2h, or 1x
/// over 3d and 6h.
pub const RULES: [Rule; 4] = [
    Rule { severity: "page", long: "1h", short: "5m", factor: 14.4 },
    Rule { severity: "page", long: "6h", short: "30m", factor: 6.0 },
    Rule { severity: "ticket", long: "1d", short: "2h", factor: 3.0 },
    Rule { severity: "ticket", long: "3d", short: "6h", factor: 1.0 },
];

/// The PromQL for one window.
pub fn window_query(indicator: &str, window: &str, step: &str) -> String {
    format!("avg_over_time(({indicator})[{window}:{step}])")
}

/// The record's `data` for an SLO whose windows averaged `slis` (in [`WINDOWS`] order;
/// `None` = no data). `objective` is the manifest's target as given (percent).
pub fn evaluate(
    slo_name: &str,
    objective: &Value,
    window: &Value,
    at: i64,
    slis: &[Option<f64>],
) -> Map<String, Value> {
    let mut data = Map::new();
    data.insert("slo_name".into(), json!(slo_name));
    data.insert("objective".into(), objective.clone());
    data.insert("window".into(), window.clone());
    data.insert("evaluated_at".into(), json!(at));
    let target = objective.as_f64().unwrap_or(f64::NAN);
    let budget = (100.0 - target) / 100.0;
    // A NaN objective (not a number) leaves no budget either.
    if budget.is_nan() || budget <= 0.0 {
        data.insert("status".into(), json!("ERROR"));
        data.insert("error".into(), json!("objective leaves no error budget"));
        return data;
    }
    data.insert("error_budget".into(), json!(budget));
    let burns: Vec<Option<f64>> = slis.iter().map(|s| s.map(|sli| (1.0 - sli) / budget)).collect();
    let burn_of = |w: &str| WINDOWS.iter().position(|(name, _)| *name == w).and_then(|i| burns[i]);
    let mut rates = Map::new();
    for ((name, _), b) in WINDOWS.iter().zip(&burns) {
        rates.insert((*name).into(), b.map_or(Value::Null, |v| json!(v)));
    }
    data.insert("burn_rates".into(), Value::Object(rates));
    let firing: Vec<&Rule> = RULES
        .iter()
        .filter(|r| matches!((burn_of(r.long), burn_of(r.short)), (Some(l), Some(s)) if l > r.factor && s > r.factor))
        .collect();
    let severity = if firing.iter().any(|r| r.severity == "page") {
        "page"
    } else if firing.is_empty() {
        "none"
    } else {
        "ticket"
    };
    data.insert(
        "firing".into(),
        Value::Array(
            firing
                .iter()
                .map(|r| {
                    json!({"severity": r.severity, "long_window": r.long, "short_window": r.short, "factor": r.factor})
                })
                .collect(),
        ),
    );
    data.insert("severity".into(), json!(severity));
    let status = match severity {
        _ if burns.iter().all(Option::is_none) => "NO_DATA",
        "page" => "PAGE",
        "ticket" => "TICKET",
        _ => "OK",
    };
    data.insert("status".into(), json!(status));
    data
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(target: f64, slis: [Option<f64>; 7]) -> Map<String, Value> {
        evaluate("availability", &json!(target), &json!("30d"), 1_795_532_880, &slis)
    }

    #[test]
    fn a_fast_burn_pages_on_both_windows_only() {
        // 99.9%: budget 0.001; SLI 0.98 burns 20x.
        let d = run(99.9, [Some(0.98); 7]);
        assert_eq!(d["status"], "PAGE");
        assert_eq!(d["firing"].as_array().unwrap().len(), 4);
        // A spike in the short window alone does not page: the long window disagrees.
        let d =
            run(99.9, [Some(0.98), Some(0.9999), Some(0.9999), Some(0.9999), Some(0.9999), Some(0.9999), Some(0.9999)]);
        assert_eq!(d["status"], "OK");
        assert_eq!(d["severity"], "none");
    }

    #[test]
    fn a_slow_burn_opens_a_ticket() {
        // 99%: budget 0.01; SLI 0.965 burns 3.5x (> 3, < 6).
        let d = run(99.0, [Some(0.965); 7]);
        assert_eq!(d["status"], "TICKET");
        let firing: Vec<&str> =
            d["firing"].as_array().unwrap().iter().map(|f| f["long_window"].as_str().unwrap()).collect();
        assert_eq!(firing, ["1d", "3d"]);
        assert!((d["burn_rates"]["1h"].as_f64().unwrap() - 3.5).abs() < 1e-9);
    }

    #[test]
    fn missing_windows_never_fire_and_no_data_is_said() {
        let d = run(99.9, [None, Some(0.5), Some(0.5), None, None, None, None]);
        assert_eq!(d["status"], "OK");
        assert_eq!(d["burn_rates"]["5m"], Value::Null);
        assert_eq!(run(99.9, [None; 7])["status"], "NO_DATA");
        assert_eq!(run(100.0, [Some(1.0); 7])["status"], "ERROR");
    }
}

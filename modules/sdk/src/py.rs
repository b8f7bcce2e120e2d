//! The Python behaviours the reference's outputs depend on: `float()` / `int()` parsing,
//! `format(x, ".Nf")`, `repr(float)`, `round(x, 1)` and `json.dumps(indent=2)`. The deploy
//! gate's stdout must be byte-identical to the reference CLI, and the drift texts embed
//! formatted floats, so these cannot be approximated with Rust's defaults.

use serde_json::Value;

/// Python truthiness of a JSON value (`if not x:`, `x or y`): the reference branches on it
/// everywhere a manifest field may be missing, empty or zero.
pub fn truthy(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64() != Some(0.0),
        Value::String(s) => !s.is_empty(),
        Value::Array(a) => !a.is_empty(),
        Value::Object(o) => !o.is_empty(),
    }
}

/// The JSON type of a value, for messages that say what a field held instead.
pub fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// Python's `float(x)` for a JSON value: numbers as is, strings as `float(str)` accepts
/// them (surrounding whitespace, `_` between digits, `nan`/`inf`/`infinity` in any case),
/// booleans as 0/1. Anything else is the `TypeError`/`ValueError` case: `None`.
pub fn float(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::Bool(b) => Some(if *b { 1.0 } else { 0.0 }),
        Value::String(s) => float_str(s),
        _ => None,
    }
}

pub fn float_str(s: &str) -> Option<f64> {
    let t = s.trim();
    if t.is_empty() {
        return None;
    }
    let unsigned = t.strip_prefix(['+', '-']).unwrap_or(t);
    let lower = unsigned.to_ascii_lowercase();
    if matches!(lower.as_str(), "nan" | "inf" | "infinity") {
        return t.parse().ok();
    }
    // Rust's grammar is Python's minus underscores and the special words handled above.
    if !unsigned.bytes().all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'e' | b'E' | b'+' | b'-' | b'_')) {
        return None;
    }
    if t.contains('_') {
        if !underscores_between_digits(t) {
            return None;
        }
        return t.replace('_', "").parse().ok();
    }
    t.parse().ok()
}

/// Python's `int(str)` for ASCII input: whitespace, one sign, `_` between digits.
pub fn int_str(s: &str) -> Option<i128> {
    let t = s.trim();
    let (neg, digits) = match t.as_bytes().first() {
        Some(b'-') => (true, &t[1..]),
        Some(b'+') => (false, &t[1..]),
        _ => (false, t),
    };
    if digits.is_empty()
        || !digits.bytes().all(|b| b.is_ascii_digit() || b == b'_')
        || !underscores_between_digits(digits)
    {
        return None;
    }
    let n: i128 = digits.replace('_', "").parse().ok()?;
    Some(if neg { -n } else { n })
}

fn underscores_between_digits(s: &str) -> bool {
    let b = s.as_bytes();
    b.iter().enumerate().all(|(i, &c)| {
        c != b'_' || (i > 0 && i + 1 < b.len() && b[i - 1].is_ascii_digit() && b[i + 1].is_ascii_digit())
    })
}

/// `format(x, ".{prec}f")`. Rust's fixed formatting already rounds the exact binary value
/// half-to-even like CPython; only the non-finite spellings differ.
pub fn fixed(x: f64, prec: usize) -> String {
    if x.is_nan() {
        "nan".into()
    } else if x.is_infinite() {
        if x > 0.0 {
            "inf".into()
        } else {
            "-inf".into()
        }
    } else {
        format!("{x:.prec$}")
    }
}

/// `format(x, ".{prec}%")`: CPython multiplies by 100 in floating point, then formats.
pub fn percent(x: f64, prec: usize) -> String {
    format!("{}%", fixed(x * 100.0, prec))
}

/// `repr(x)` / `str(x)` for a float: shortest round-trip digits, exponent form below 1e-4 or
/// from 1e16 up, with Python's `e+XX` exponent spelling.
pub fn repr(x: f64) -> String {
    if x.is_nan() {
        return "nan".into();
    }
    if x.is_infinite() {
        return if x > 0.0 { "inf".into() } else { "-inf".into() };
    }
    // `{:e}` gives the shortest round-trip digits as d[.ddd]e<exp>.
    let sci = format!("{x:e}");
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let (sign, mantissa) = match mantissa.strip_prefix('-') {
        Some(m) => ("-", m),
        None => ("", mantissa),
    };
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    if !(-4..16).contains(&exp) {
        let (first, rest) = digits.split_at(1);
        let frac = if rest.is_empty() { String::new() } else { format!(".{rest}") };
        let esign = if exp < 0 { '-' } else { '+' };
        return format!("{sign}{first}{frac}e{esign}{:02}", exp.abs());
    }
    if exp < 0 {
        return format!("{sign}0.{}{digits}", "0".repeat((-exp - 1) as usize));
    }
    let int_len = exp as usize + 1;
    if digits.len() <= int_len {
        format!("{sign}{digits}{}.0", "0".repeat(int_len - digits.len()))
    } else {
        format!("{sign}{}.{}", &digits[..int_len], &digits[int_len..])
    }
}

/// `round(x, 1)`: correctly rounded, ties to even on the exact binary value, which is what
/// Rust's fixed formatting does too.
pub fn round1(x: f64) -> f64 {
    if !x.is_finite() {
        return x;
    }
    format!("{x:.1}").parse().unwrap_or(x)
}

/// `round(x, ndigits)`: correctly rounded on the exact binary value, like CPython.
pub fn round_n(x: f64, ndigits: usize) -> f64 {
    if !x.is_finite() {
        return x;
    }
    format!("{x:.ndigits$}").parse().unwrap_or(x)
}

/// `format(x, ".{prec}g")`: `prec` significant digits, exponent form when the exponent is
/// below -4 or at least `prec`, trailing zeros removed (no `#`).
pub fn general(x: f64, prec: usize) -> String {
    if !x.is_finite() {
        return fixed(x, 0);
    }
    let prec = prec.max(1);
    let sci = format!("{x:.*e}", prec - 1);
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    if exp < -4 || exp >= prec as i32 {
        let m = trim_zeros(mantissa);
        let esign = if exp < 0 { '-' } else { '+' };
        return format!("{m}e{esign}{:02}", exp.abs());
    }
    let decimals = (prec as i32 - 1 - exp).max(0) as usize;
    trim_zeros(&format!("{x:.decimals$}")).to_string()
}

fn trim_zeros(s: &str) -> &str {
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.')
    } else {
        s
    }
}

/// `json.dumps(value)` with the defaults (`ensure_ascii=True`, separators `", "` and
/// `": "`), on one line; with `sort_keys` every object's keys are sorted as Python sorts
/// str keys (by code point). Digests of such dumps identify state in the reference.
pub fn dumps(v: &Value, sort_keys: bool) -> String {
    let mut out = String::new();
    write_compact(&mut out, v, sort_keys);
    out
}

fn write_compact(out: &mut String, v: &Value, sort_keys: bool) {
    match v {
        Value::Array(a) => {
            out.push('[');
            for (i, item) in a.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_compact(out, item, sort_keys);
            }
            out.push(']');
        }
        Value::Object(o) => {
            let mut items: Vec<(&String, &Value)> = o.iter().collect();
            if sort_keys {
                items.sort_by(|a, b| a.0.chars().cmp(b.0.chars()));
            }
            out.push('{');
            for (i, (k, item)) in items.into_iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_str(out, k);
                out.push_str(": ");
                write_compact(out, item, sort_keys);
            }
            out.push('}');
        }
        scalar => write_value(out, scalar, 0),
    }
}

/// `json.dumps(value, indent=2)` with the defaults: `ensure_ascii=True`, separators `", "`
/// / `": "` (the item separator loses its space at line ends), key order as given.
pub fn dumps_indent2(v: &Value) -> String {
    let mut out = String::new();
    write_value(&mut out, v, 0);
    out
}

fn write_value(out: &mut String, v: &Value, depth: usize) {
    match v {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => match (n.as_i64(), n.as_u64()) {
            (Some(i), _) => out.push_str(&i.to_string()),
            (_, Some(u)) => out.push_str(&u.to_string()),
            _ => out.push_str(&json_float(n.as_f64().unwrap_or(f64::NAN))),
        },
        Value::String(s) => write_str(out, s),
        Value::Array(a) if a.is_empty() => out.push_str("[]"),
        Value::Object(o) if o.is_empty() => out.push_str("{}"),
        Value::Array(a) => {
            out.push('[');
            for (i, item) in a.iter().enumerate() {
                out.push_str(if i == 0 { "\n" } else { ",\n" });
                indent(out, depth + 1);
                write_value(out, item, depth + 1);
            }
            out.push('\n');
            indent(out, depth);
            out.push(']');
        }
        Value::Object(o) => {
            out.push('{');
            for (i, (k, item)) in o.iter().enumerate() {
                out.push_str(if i == 0 { "\n" } else { ",\n" });
                indent(out, depth + 1);
                write_str(out, k);
                out.push_str(": ");
                write_value(out, item, depth + 1);
            }
            out.push('\n');
            indent(out, depth);
            out.push('}');
        }
    }
}

/// `float.__repr__` as `json` uses it, with its own spellings for the non-finite values.
fn json_float(x: f64) -> String {
    if x.is_nan() {
        "NaN".into()
    } else if x.is_infinite() {
        if x > 0.0 {
            "Infinity".into()
        } else {
            "-Infinity".into()
        }
    } else {
        repr(x)
    }
}

fn indent(out: &mut String, depth: usize) {
    out.extend(std::iter::repeat_n(' ', depth * 2));
}

fn write_str(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            c if (c as u32) < 0x20 || (c as u32) > 0x7e => {
                let mut buf = [0u16; 2];
                for unit in c.encode_utf16(&mut buf) {
                    out.push_str(&format!("\\u{unit:04x}"));
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn float_parses_like_python() {
        assert!(float(&json!("NaN")).unwrap().is_nan());
        assert_eq!(float(&json!("+Inf")), Some(f64::INFINITY));
        assert_eq!(float(&json!("-infinity")), Some(f64::NEG_INFINITY));
        assert_eq!(float(&json!(" 0.5 ")), Some(0.5));
        assert_eq!(float(&json!("1_000.5")), Some(1000.5));
        assert_eq!(float(&json!("1__0")), None);
        assert_eq!(float(&json!("_1")), None);
        assert_eq!(float(&json!("abc")), None);
        assert_eq!(float(&json!("")), None);
        assert_eq!(float(&json!(null)), None);
        assert_eq!(float(&json!([1])), None);
        assert_eq!(float(&json!(3)), Some(3.0));
        assert_eq!(float(&json!(true)), Some(1.0));
    }

    #[test]
    fn int_parses_like_python() {
        assert_eq!(int_str("30"), Some(30));
        assert_eq!(int_str(" -5 "), Some(-5));
        assert_eq!(int_str("1_0"), Some(10));
        assert_eq!(int_str("1.5"), None);
        assert_eq!(int_str(""), None);
        assert_eq!(int_str("-"), None);
    }

    #[test]
    fn repr_matches_python() {
        // Values checked against CPython 3.11 `repr`.
        assert_eq!(repr(90.0), "90.0");
        assert_eq!(repr(0.0), "0.0");
        assert_eq!(repr(-0.0), "-0.0");
        assert_eq!(repr(1e16), "1e+16");
        assert_eq!(repr(1e15), "1000000000000000.0");
        assert_eq!(repr(1.5e-5), "1.5e-05");
        assert_eq!(repr(0.0001), "0.0001");
        assert_eq!(repr(123456789012345680.0), "1.2345678901234568e+17");
        assert_eq!(repr(90.00000000000054), "90.00000000000054");
        assert_eq!(repr(0.6000000000000001), "0.6000000000000001");
        assert_eq!(repr(-0.07), "-0.07");
        assert_eq!(repr(1e-300), "1e-300");
    }

    #[test]
    fn formatting_matches_python() {
        assert_eq!(fixed(0.125, 2), "0.12");
        assert_eq!(fixed(f64::NAN, 2), "nan");
        assert_eq!(percent(0.6000000000000001, 1), "60.0%");
        assert_eq!(percent(0.9, 1), "90.0%");
        assert_eq!(round1(90.00000000000054), 90.0);
        assert_eq!(round1(0.25), 0.2);
        assert_eq!(round1(12.35), 12.3); // 12.35 is below the tie in binary
    }

    #[test]
    fn dumps_matches_python_indent2() {
        let v = json!({"a": "x\u{2014}\u{1F600}\"\\\n\u{7f}", "b": [], "c": {}, "d": [1, 2.5, null, true], "e": 10.0});
        let want = "{\n  \"a\": \"x\\u2014\\ud83d\\ude00\\\"\\\\\\n\\u007f\",\n  \"b\": [],\n  \"c\": {},\n  \"d\": [\n    1,\n    2.5,\n    null,\n    true\n  ],\n  \"e\": 10.0\n}";
        assert_eq!(dumps_indent2(&v), want);
    }
    #[test]
    fn general_matches_python() {
        // Values checked against CPython 3.11 `format(x, ".12g")`.
        assert_eq!(general(0.08, 12), "0.08");
        assert_eq!(general(1e-5, 12), "1e-05");
        assert_eq!(general(123456789012345.0, 12), "1.23456789012e+14");
        assert_eq!(general(3600.0, 12), "3600");
        assert_eq!(general(0.1 + 0.2, 12), "0.3");
        assert_eq!(general(1e12, 12), "1e+12");
        assert_eq!(general(0.0, 12), "0");
        assert_eq!(general(0.05000000000001, 12), "0.05");
        assert_eq!(general(f64::INFINITY, 12), "inf");
        assert_eq!(round_n(92.00000000000001, 6), 92.0);
        assert_eq!(round_n(0.1234565, 6), 0.123456); // below the tie in binary
        assert_eq!(round_n(2.5e-7, 6), 0.0);
    }

    #[test]
    fn compact_dumps_matches_python() {
        let v = json!({"window": "30d", "bins": 10, "bounds": ["b", "a\u{e9}"], "x": {"z": 0.5, "y": null}});
        assert_eq!(
            dumps(&v, true),
            "{\"bins\": 10, \"bounds\": [\"b\", \"a\\u00e9\"], \"window\": \"30d\", \"x\": {\"y\": null, \"z\": 0.5}}"
        );
        assert_eq!(dumps(&json!([["k", 0.05]]), false), "[[\"k\", 0.05]]");
    }
}

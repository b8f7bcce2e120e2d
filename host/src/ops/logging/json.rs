//! One JSON object per line: time, level, target, the fields of every enclosing span (outer
//! first; the innermost span's `span` name) and the event's own fields. tracing-subscriber's
//! own JSON format nests span fields under `span`/`spans`; log shippers and `jq` filters
//! want them as top-level keys. On a clash a span's field wins (`module` is the module's
//! name on every line of a cycle) and the event's value is kept as `event_<key>`.

use std::fmt;

use serde_json::{Map, Value};
use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::fmt::format::{JsonFields, Writer};
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormattedFields};
use tracing_subscriber::registry::LookupSpan;

pub struct Flat;

impl<S> FormatEvent<S, JsonFields> for Flat
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn format_event(&self, ctx: &FmtContext<'_, S, JsonFields>, mut w: Writer<'_>, event: &Event<'_>) -> fmt::Result {
        let meta = event.metadata();
        let mut line = Map::new();
        let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
        line.insert("timestamp".into(), now.into());
        line.insert("level".into(), meta.level().as_str().into());
        line.insert("target".into(), meta.target().into());
        let mut own = Map::new();
        event.record(&mut Fields(&mut own));
        let mut spans = Map::new();
        if let Some(scope) = ctx.event_scope() {
            for span in scope.from_root() {
                spans.insert("span".into(), span.name().into());
                if let Some(f) = span.extensions().get::<FormattedFields<JsonFields>>() {
                    if let Ok(Value::Object(fields)) = serde_json::from_str::<Value>(f) {
                        spans.extend(fields);
                    }
                }
            }
        }
        for (k, v) in own {
            match spans.get(&k) {
                Some(s) if *s != v => {
                    line.insert(format!("event_{k}"), v);
                }
                _ => {
                    line.insert(k, v);
                }
            }
        }
        line.extend(spans);
        writeln!(w, "{}", Value::Object(line))
    }
}

/// An event's fields as JSON values (numbers and booleans kept as such).
struct Fields<'a>(&'a mut Map<String, Value>);

impl Visit for Fields<'_> {
    fn record_f64(&mut self, f: &Field, v: f64) {
        self.0.insert(f.name().into(), v.into());
    }
    fn record_i64(&mut self, f: &Field, v: i64) {
        self.0.insert(f.name().into(), v.into());
    }
    fn record_u64(&mut self, f: &Field, v: u64) {
        self.0.insert(f.name().into(), v.into());
    }
    fn record_bool(&mut self, f: &Field, v: bool) {
        self.0.insert(f.name().into(), v.into());
    }
    fn record_str(&mut self, f: &Field, v: &str) {
        self.0.insert(f.name().into(), v.into());
    }
    fn record_debug(&mut self, f: &Field, v: &dyn fmt::Debug) {
        self.0.insert(f.name().into(), format!("{v:?}").into());
    }
}

//! One JSON object per line, tracing-subscriber's JSON layout (`timestamp`, `level`,
//! `target`, the event's own fields under `fields`, which existing log consumers read)
//! plus the fields of every enclosing span as top-level keys (outer spans first, `span` the
//! innermost's name). tracing-subscriber nests span fields under `span`/`spans`, which a
//! log shipper cannot index without a transform; flattened, every line written during a
//! cycle carries `module`, `version` and `task` as keys of its own. A span field never
//! replaces one of the line's own keys.

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
        line.insert("fields".into(), Value::Object(own));
        if let Some(scope) = ctx.event_scope() {
            let mut spans = Map::new();
            for span in scope.from_root() {
                spans.insert("span".into(), span.name().into());
                if let Some(f) = span.extensions().get::<FormattedFields<JsonFields>>() {
                    if let Ok(Value::Object(fields)) = serde_json::from_str::<Value>(f) {
                        spans.extend(fields);
                    }
                }
            }
            for (k, v) in spans {
                line.entry(k).or_insert(v);
            }
        }
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

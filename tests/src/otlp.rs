//! A loopback OTLP/HTTP trace receiver (feature `otel`): accepts `POST /v1/traces` with
//! protobuf bodies, as a collector does, and decodes them with the OpenTelemetry project's
//! own message types. Plain std threads and HTTP/1.1 with Content-Length, which is all the
//! exporter speaks; anything else is answered 400 and kept out of the spans.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value as AnyValue;
use opentelemetry_proto::tonic::trace::v1::Span;
use prost::Message;

use crate::wait::wait_until;

pub struct Receiver {
    port: u16,
    spans: Arc<Mutex<Vec<Span>>>,
}

impl Receiver {
    pub fn start() -> Receiver {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the OTLP receiver");
        let port = listener.local_addr().unwrap().port();
        let spans: Arc<Mutex<Vec<Span>>> = Arc::default();
        let kept = spans.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming().flatten() {
                let kept = kept.clone();
                std::thread::spawn(move || serve(conn, &kept));
            }
        });
        Receiver { port, spans }
    }

    /// `OTEL_EXPORTER_OTLP_ENDPOINT` for the exporter (it appends `/v1/traces`).
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn spans(&self) -> Vec<Span> {
        self.spans.lock().unwrap().clone()
    }

    /// A `cycle` span with the module and task as attributes, and a `host_call` span
    /// (interface prometheus) whose parent is that cycle, in the same trace.
    pub fn assert_cycle_and_host_call_spans(&self, within: Duration) {
        wait_until("OTLP: a cycle span of observe.collect with a host_call child", within, || {
            let spans = self.spans();
            let cycle = spans.iter().find(|s| {
                s.name == "cycle" && attr(s, "task").as_deref() == Some("observe.collect") && {
                    let id = &s.span_id;
                    spans.iter().any(|c| c.name == "host_call" && &c.parent_span_id == id && c.trace_id == s.trace_id)
                }
            })?;
            assert_eq!(attr(cycle, "module").as_deref(), Some("observe"), "{cycle:?}");
            let call = spans.iter().find(|c| c.name == "host_call" && c.parent_span_id == cycle.span_id)?;
            assert!(attr(call, "interface").is_some(), "host_call names its interface: {call:?}");
            Some(())
        });
    }
}

/// A span attribute's string value.
pub fn attr(s: &Span, key: &str) -> Option<String> {
    s.attributes.iter().find(|a| a.key == key).and_then(|a| match a.value.as_ref()?.value.as_ref()? {
        AnyValue::StringValue(v) => Some(v.clone()),
        other => Some(format!("{other:?}")),
    })
}

fn serve(conn: TcpStream, kept: &Mutex<Vec<Span>>) {
    let mut out = conn.try_clone().expect("clone the connection");
    let mut r = BufReader::new(conn);
    loop {
        let mut start = String::new();
        if r.read_line(&mut start).unwrap_or(0) == 0 {
            return;
        }
        let mut len = 0usize;
        loop {
            let mut h = String::new();
            if r.read_line(&mut h).unwrap_or(0) == 0 {
                return;
            }
            let h = h.trim_end();
            if h.is_empty() {
                break;
            }
            if let Some((k, v)) = h.split_once(':') {
                if k.eq_ignore_ascii_case("content-length") {
                    len = v.trim().parse().unwrap_or(0);
                }
            }
        }
        let mut body = vec![0; len];
        if r.read_exact(&mut body).is_err() {
            return;
        }
        let status = match (start.starts_with("POST /v1/traces "), ExportTraceServiceRequest::decode(&body[..])) {
            (true, Ok(req)) => {
                let mut k = kept.lock().unwrap();
                for rs in req.resource_spans {
                    for ss in rs.scope_spans {
                        k.extend(ss.spans);
                    }
                }
                "200 OK"
            }
            _ => "400 Bad Request",
        };
        let reply = format!("HTTP/1.1 {status}\r\ncontent-type: application/x-protobuf\r\ncontent-length: 0\r\n\r\n");
        if out.write_all(reply.as_bytes()).is_err() {
            return;
        }
    }
}

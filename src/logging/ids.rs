//! The request id and trace id on every line written while a request is handled (a refresh
//! that failed, an upstream that broke), so one grep finds everything about one request.
//!
//! The ids are the task's (`trace::Scope`), read only when a line is written; requests that
//! write nothing but their request line pay nothing for this.

use std::fmt::Write as _;

use tracing::{Event, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

use super::LogFormat;
use crate::trace::Scope;

/// Wraps tracing-subscriber's own text or JSON formatter.
pub(super) struct WithIds<F> {
    pub(super) inner: F,
    pub(super) format: LogFormat,
}

impl<S, N, F> FormatEvent<S, N> for WithIds<F>
where
    F: FormatEvent<S, N>,
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> std::fmt::Result {
        let scope = match Scope::current() {
            Some(scope) if !writer.has_ansi_escapes() => scope,
            _ => return self.inner.format_event(ctx, writer, event),
        };
        let mut line = String::with_capacity(256);
        self.inner
            .format_event(ctx, Writer::new(&mut line), event)?;
        add_ids(
            &mut line,
            self.format,
            scope.request_id(),
            &scope.trace_id().hex(),
        );
        writer.write_str(&line)
    }
}

/// Appends the ids to one formatted line (before its newline, or inside its JSON object),
/// unless the event carries them itself.
fn add_ids(line: &mut String, format: LogFormat, request_id: Option<&str>, trace_id: &[u8; 32]) {
    let trace_id = std::str::from_utf8(trace_id).unwrap_or("-");
    let newline = line.ends_with('\n');
    if newline {
        line.pop();
    }
    match format {
        LogFormat::Json => {
            if line.ends_with('}') && !line.contains("\"trace_id\":") {
                line.pop();
                if let Some(id) = request_id.filter(|_| !line.contains("\"request_id\":")) {
                    let _ = write!(line, ",\"request_id\":{}", serde_json::Value::from(id));
                }
                let _ = write!(line, ",\"trace_id\":\"{trace_id}\"}}");
            }
        }
        LogFormat::Text => {
            if !line.contains(" trace_id=") {
                if let Some(id) = request_id.filter(|_| !line.contains(" request_id=")) {
                    let _ = write!(line, " request_id={id:?}");
                }
                let _ = write!(line, " trace_id={trace_id}");
            }
        }
    }
    if newline {
        line.push('\n');
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TRACE: &[u8; 32] = b"4bf92f3577b34da6a3ce929d0e0e4736";

    #[test]
    fn ids_join_json_objects_and_text_lines_once() {
        let mut json = "{\"level\":\"WARN\",\"message\":\"token refresh failed\"}\n".to_owned();
        add_ids(&mut json, LogFormat::Json, Some("req-1"), TRACE);
        let parsed: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(parsed["request_id"], "req-1");
        assert_eq!(parsed["trace_id"], "4bf92f3577b34da6a3ce929d0e0e4736");
        assert!(json.ends_with("}\n"));
        let before = json.clone();
        add_ids(&mut json, LogFormat::Json, Some("req-1"), TRACE);
        assert_eq!(json, before, "never twice");

        let mut text =
            "2026-12-07T00:00:00.000000Z  WARN rocketgate::refresh: token refresh failed\n"
                .to_owned();
        add_ids(&mut text, LogFormat::Text, Some("req-1"), TRACE);
        assert!(
            text.ends_with(" request_id=\"req-1\" trace_id=4bf92f3577b34da6a3ce929d0e0e4736\n"),
            "{text}"
        );
    }
}

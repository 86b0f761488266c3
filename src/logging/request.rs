//! The one log line every request writes, formatted without tracing's field visitors.
//!
//! The line is the largest per-request cost that is ours alone, and `tracing-subscriber`'s
//! formatter (field visitors, dynamic dispatch per field) makes it dearer still. Here it is
//! written straight into the log buffer, in exactly
//! the text or JSON shape that formatter produces (a test compares the two), so log pipelines
//! see no difference. It still obeys `ROCKETGATE_LOG`: a filter that turns
//! `rocketgate::request` off turns this line off. On a terminal (colours) and where
//! [`super::init`] did not install the subscriber (tests running proxies in-process), the line
//! goes through tracing as before.

use std::cell::RefCell;
use std::fmt::Write as _;
use std::net::IpAddr;
use std::sync::{OnceLock, Weak};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::LogFormat;

use super::Buffer;

/// Where request lines go when the fast path is on: the buffer of the installed subscriber.
pub(super) struct Direct {
    pub(super) buffer: Weak<Buffer>,
    pub(super) format: LogFormat,
}

pub(super) static DIRECT: OnceLock<Direct> = OnceLock::new();

/// What the request log records about one request.
pub struct RequestLine<'a> {
    pub method: &'a str,
    pub path: &'a str,
    pub status: u16,
    pub latency: Duration,
    pub client: IpAddr,
    /// The signed-in user, `None` when the request had none.
    pub user: Option<&'a str>,
    pub request_id: &'a str,
    /// The route that served a proxied request (`routes[2]`, `upstream`), else `None`.
    pub route: Option<&'a str>,
    /// The rule that refused the user (`routes[2].allowed_groups`), on a 403 only.
    pub denied: Option<&'a str>,
    /// Why a 5xx happened: the field and its value (`upstream_error=refused`).
    pub reason: Option<(&'static str, &'a str)>,
    /// The request's trace id (32 hex digits).
    pub trace_id: Option<&'a str>,
}

impl RequestLine<'_> {
    fn latency_ms(&self) -> f64 {
        self.latency.as_micros() as f64 / 1000.0
    }

    fn user(&self) -> &str {
        self.user.unwrap_or("-")
    }
}

/// Logs `line` at INFO under the `rocketgate::request` target.
pub fn log_request(line: &RequestLine<'_>) {
    if !tracing::enabled!(target: "rocketgate::request", tracing::Level::INFO) {
        return;
    }
    match DIRECT
        .get()
        .and_then(|d| Some((d.buffer.upgrade()?, d.format)))
    {
        Some((buffer, format)) => LINE.with_borrow_mut(|text| {
            text.clear();
            format_line(text, line, format, SystemTime::now());
            buffer.append(text.as_bytes());
        }),
        None => emit_event(line),
    }
}

/// The same line as a tracing event: used when no direct writer is set up (a test's or an
/// embedder's subscriber, a terminal with colours), and the shape `format_line` copies.
fn emit_event(line: &RequestLine<'_>) {
    let route = line.route.unwrap_or("-");
    let trace_id = line.trace_id.unwrap_or("-");
    // `None` fields are left out of the event, so `denied=` appears on refusals only. A
    // reason's field name is one of a few, each its own call (names are static in tracing).
    macro_rules! event {
        ($($reason:ident = $value:expr)?) => {
            tracing::info!(
                target: "rocketgate::request",
                method = %line.method,
                path = %line.path,
                status = line.status,
                latency_ms = line.latency_ms(),
                client = %line.client,
                user = %line.user(),
                request_id = %line.request_id,
                trace_id = %trace_id,
                route = %route,
                denied = line.denied.map(tracing::field::display),
                $($reason = %$value,)?
                "request"
            )
        };
    }
    match line.reason {
        None => event!(),
        Some(("upstream_error", v)) => event!(upstream_error = v),
        Some(("provider_error", v)) => event!(provider_error = v),
        Some(("store_error", v)) => event!(store_error = v),
        Some(("internal_error", v)) => event!(internal_error = v),
        Some((_, v)) => event!(error_source = v),
    }
}

thread_local! {
    /// Reused for every line this thread writes: no allocation per request.
    static LINE: RefCell<String> = RefCell::new(String::with_capacity(256));
}

fn format_line(out: &mut String, line: &RequestLine<'_>, format: LogFormat, now: SystemTime) {
    // `write!` into a String cannot fail.
    match format {
        LogFormat::Text => {
            timestamp(out, now);
            let _ = write!(
                out,
                "  INFO rocketgate::request: request method={} path={} status={} latency_ms={:?} client={} user=",
                line.method,
                line.path,
                line.status,
                line.latency_ms(),
                line.client,
            );
            text_value(out, line.user());
            out.push_str(" request_id=");
            text_value(out, line.request_id);
            out.push_str(" trace_id=");
            text_value(out, line.trace_id.unwrap_or("-"));
            out.push_str(" route=");
            text_value(out, line.route.unwrap_or("-"));
            if let Some(denied) = line.denied {
                out.push_str(" denied=");
                text_value(out, denied);
            }
            if let Some((field, value)) = line.reason {
                out.push(' ');
                out.push_str(reason_field(field));
                out.push('=');
                text_value(out, value);
            }
        }
        LogFormat::Json => {
            out.push_str("{\"timestamp\":\"");
            timestamp(out, now);
            out.push_str("\",\"level\":\"INFO\",\"message\":\"request\",\"method\":");
            json_string(out, line.method);
            out.push_str(",\"path\":");
            json_string(out, line.path);
            let _ = write!(
                out,
                ",\"status\":{},\"latency_ms\":{:?},\"client\":\"{}\",\"user\":",
                line.status,
                line.latency_ms(),
                line.client,
            );
            json_string(out, line.user());
            out.push_str(",\"request_id\":");
            json_string(out, line.request_id);
            out.push_str(",\"trace_id\":");
            json_string(out, line.trace_id.unwrap_or("-"));
            out.push_str(",\"route\":");
            json_string(out, line.route.unwrap_or("-"));
            if let Some(denied) = line.denied {
                out.push_str(",\"denied\":");
                json_string(out, denied);
            }
            if let Some((field, value)) = line.reason {
                out.push_str(",\"");
                out.push_str(reason_field(field));
                out.push_str("\":");
                json_string(out, value);
            }
            out.push_str(",\"target\":\"rocketgate::request\"}");
        }
    }
    out.push('\n');
}

/// The reason's field name as the event spells it (see `emit_event`).
fn reason_field(field: &str) -> &str {
    match field {
        "upstream_error" | "provider_error" | "store_error" | "internal_error" => field,
        _ => "error_source",
    }
}

/// A value as the text format shows it: bare when it is a plain token, otherwise quoted and
/// escaped, so a user id with a space or a newline cannot forge a field or a line.
fn text_value(out: &mut String, value: &str) {
    let plain = !value.is_empty()
        && value
            .bytes()
            .all(|b| b.is_ascii_graphic() && b != b'"' && b != b'\\');
    if plain {
        out.push_str(value);
    } else {
        let _ = write!(out, "{value:?}");
    }
}

fn json_string(out: &mut String, value: &str) {
    let mut bytes = std::mem::take(out).into_bytes();
    // Serialising a str cannot fail; on the impossible error the line stays as far as it got.
    let _ = serde_json::to_writer(&mut bytes, value);
    *out = String::from_utf8(bytes).unwrap_or_default();
}

/// `2026-11-28T03:21:52.948091Z`, as tracing-subscriber writes it. The date and time of day
/// are worked out once per second per thread.
fn timestamp(out: &mut String, now: SystemTime) {
    thread_local! {
        static SECOND: RefCell<(u64, String)> = const { RefCell::new((u64::MAX, String::new())) };
    }
    let since = now.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = since.as_secs();
    SECOND.with_borrow_mut(|(cached, text)| {
        if *cached != secs {
            text.clear();
            let _ = civil_time(text, secs);
            *cached = secs;
        }
        out.push_str(text);
    });
    let _ = write!(out, ".{:06}Z", since.subsec_micros());
}

/// `YYYY-MM-DDTHH:MM:SS` for seconds since the Unix epoch (proleptic Gregorian, UTC).
fn civil_time(out: &mut String, secs: u64) -> std::fmt::Result {
    let days = i64::try_from(secs / 86_400).unwrap_or(0);
    let of_day = secs % 86_400;
    // Howard Hinnant's days-from-civil inverse.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    write!(
        out,
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}",
        of_day / 3_600,
        of_day / 60 % 60,
        of_day % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    /// What tracing-subscriber's own formatter writes for the same event.
    fn through_tracing(line: &RequestLine<'_>, format: LogFormat) -> String {
        #[derive(Clone, Default)]
        struct Captured(Arc<Mutex<Vec<u8>>>);
        impl std::io::Write for Captured {
            fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
                self.0.lock().unwrap().extend_from_slice(b);
                Ok(b.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let captured = Captured::default();
        let writer = captured.clone();
        let builder = tracing_subscriber::fmt()
            .with_ansi(false)
            .with_writer(move || writer.clone());
        let emit = || emit_event(line);
        match format {
            LogFormat::Text => tracing::subscriber::with_default(builder.finish(), emit),
            LogFormat::Json => {
                tracing::subscriber::with_default(builder.json().flatten_event(true).finish(), emit)
            }
        }
        String::from_utf8(captured.0.lock().unwrap().clone()).unwrap()
    }

    /// Replaces the timestamp (the first 27 characters of the text line, the value of the
    /// JSON field) so lines written at different instants compare.
    fn without_time(line: &str) -> String {
        match line.find("\"timestamp\":\"") {
            Some(at) => {
                let start = at + "\"timestamp\":\"".len();
                format!("{}T{}", &line[..start], &line[start + 27..])
            }
            None => format!("T{}", &line[27..]),
        }
    }

    fn sample<'a>(user: Option<&'a str>, latency: Duration) -> RequestLine<'a> {
        RequestLine {
            method: "GET",
            path: "/reports/2024?tab=summary&q=%22x%22",
            status: 200,
            latency,
            client: "203.0.113.7".parse().unwrap(),
            user,
            request_id: "1461edbdd1434c769b81f6e31a88bd82",
            route: Some("routes[0]"),
            denied: None,
            reason: None,
            trace_id: Some("4bf92f3577b34da6a3ce929d0e0e4736"),
        }
    }

    #[test]
    fn lines_match_tracing_subscribers_text_and_json() {
        for format in [LogFormat::Text, LogFormat::Json] {
            for line in [
                sample(Some("1001"), Duration::from_micros(1517)),
                sample(None, Duration::from_micros(40)),
                sample(Some("user@example.com"), Duration::from_secs(3)),
                RequestLine {
                    route: None,
                    denied: Some("routes[1].allowed_groups"),
                    ..sample(Some("1001"), Duration::from_micros(9))
                },
                RequestLine {
                    status: 502,
                    reason: Some(("upstream_error", "refused")),
                    ..sample(None, Duration::from_micros(900))
                },
                RequestLine {
                    status: 503,
                    reason: Some(("provider_error", "timeout")),
                    trace_id: None,
                    ..sample(None, Duration::from_micros(900))
                },
                RequestLine {
                    status: 500,
                    reason: Some(("error_source", "upstream")),
                    ..sample(None, Duration::from_micros(900))
                },
            ] {
                let mut ours = String::new();
                format_line(&mut ours, &line, format, SystemTime::now());
                assert_eq!(
                    without_time(&ours),
                    without_time(&through_tracing(&line, format)),
                    "{format:?}"
                );
            }
        }
    }

    #[test]
    fn odd_user_ids_cannot_forge_fields_or_lines() {
        let line = sample(Some("a b\nstatus=500"), Duration::from_micros(1));
        let mut text = String::new();
        format_line(&mut text, &line, LogFormat::Text, SystemTime::now());
        assert_eq!(text.lines().count(), 1);
        assert!(
            text.contains(r#"user="a b\nstatus=500" request_id="#),
            "{text}"
        );
        let mut json = String::new();
        format_line(&mut json, &line, LogFormat::Json, SystemTime::now());
        let parsed: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(parsed["user"], "a b\nstatus=500");
        assert_eq!(parsed["status"], 200);
    }

    #[test]
    fn timestamps_are_utc_with_microseconds() {
        let mut out = String::new();
        timestamp(
            &mut out,
            UNIX_EPOCH + Duration::from_micros(1_795_837_312_948_091),
        );
        assert_eq!(out, "2026-11-28T03:41:52.948091Z");
        for (secs, expected) in [
            (0, "1970-01-01T00:00:00"),
            (951_782_400, "2000-02-29T00:00:00"),
            (4_107_542_399, "2100-02-28T23:59:59"),
            (1_709_164_800, "2024-02-29T00:00:00"),
        ] {
            let mut out = String::new();
            civil_time(&mut out, secs).unwrap();
            assert_eq!(out, expected, "{secs}");
        }
    }
}

//! Where log lines go: stdout, in batches.
//!
//! Every request writes a log line. Writing each one to stdout costs a system call on the
//! request's thread; handing each to a writer thread costs a cross-thread wake-up instead,
//! and either would be a large part of what a request costs. Here a line is appended
//! to an in-memory buffer (no system call, no wake-up) and a background thread writes the
//! buffer out every [`FLUSH_EVERY`]; a buffer that grows past [`FLUSH_AT`] is written at once by
//! whoever filled it, so memory stays bounded and a flood of lines slows requests down rather
//! than being dropped. [`LogGuard`] writes what is left when the process ends normally
//! (SIGTERM included); a SIGKILL loses at most the last [`FLUSH_EVERY`] of lines.

use std::io::Write as _;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::time::Duration;

/// How log lines are written: text for people, JSON for log pipelines.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

mod ids;
mod request;

pub use request::{RequestLine, log_request};

/// How long a line may wait in the buffer.
const FLUSH_EVERY: Duration = Duration::from_millis(50);
/// Buffered bytes past which the writer flushes at once.
const FLUSH_AT: usize = 256 * 1024;

/// Where a batch goes: stdout, or (in tests) somewhere to look at.
type Sink = Box<dyn Fn(&[u8]) + Send + Sync>;

struct Buffer {
    pending: Mutex<Vec<u8>>,
    sink: Sink,
}

impl Buffer {
    fn to_stdout() -> Self {
        Self {
            pending: Mutex::default(),
            sink: Box::new(|batch| {
                let mut out = std::io::stdout().lock();
                let _ = out.write_all(batch);
                let _ = out.flush();
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Vec<u8>> {
        // A panic while appending leaves at worst a partial line: keep logging.
        self.pending.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Appends one or more whole lines; writes the buffer out at once when it is full.
    fn append(&self, bytes: &[u8]) {
        let full = {
            let mut buffer = self.lock();
            buffer.extend_from_slice(bytes);
            buffer.len() >= FLUSH_AT
        };
        if full {
            self.flush();
        }
    }

    fn flush(&self) {
        let batch = std::mem::take(&mut *self.lock());
        if !batch.is_empty() {
            (self.sink)(&batch);
        }
    }
}

/// The `MakeWriter` handed to tracing: each event's formatted line is one `write` call.
#[derive(Clone)]
struct BatchWriter(Arc<Buffer>);

impl std::io::Write for BatchWriter {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.append(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for BatchWriter {
    type Writer = BatchWriter;

    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

/// Writes out whatever is still buffered when dropped (at the end of `run_proxy`).
pub struct LogGuard(Arc<Buffer>);

impl Drop for LogGuard {
    fn drop(&mut self) {
        self.0.flush();
    }
}

/// Installs the global subscriber: `ROCKETGATE_LOG` (or `RUST_LOG`) filters, default `info`;
/// colours only when stdout is a terminal, never in log files. `None` when a subscriber was
/// already installed (tests running several proxies in one process).
pub fn init(format: LogFormat) -> Option<LogGuard> {
    use std::io::IsTerminal as _;
    let filter = tracing_subscriber::EnvFilter::try_from_env("ROCKETGATE_LOG")
        .or_else(|_| tracing_subscriber::EnvFilter::try_from_default_env())
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let buffer = Arc::new(Buffer::to_stdout());
    let ansi = std::io::stdout().is_terminal();
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .with_writer(BatchWriter(buffer.clone()));
    let installed = match format {
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .event_format(ids::WithIds {
                inner: tracing_subscriber::fmt::format().json().flatten_event(true),
                format,
            })
            .try_init(),
        LogFormat::Text => builder
            .event_format(ids::WithIds {
                inner: tracing_subscriber::fmt::format(),
                format,
            })
            .try_init(),
    };
    installed.ok()?;
    if !ansi {
        let _ = request::DIRECT.set(request::Direct {
            buffer: Arc::downgrade(&buffer),
            format,
        });
    }
    let weak: Weak<Buffer> = Arc::downgrade(&buffer);
    let flusher = std::thread::Builder::new()
        .name("rocketgate-log".into())
        .spawn(move || {
            while let Some(buffer) = weak.upgrade() {
                buffer.flush();
                drop(buffer);
                std::thread::sleep(FLUSH_EVERY);
            }
        });
    if flusher.is_err() {
        eprintln!(
            "cannot start the log writer thread; log lines are written when the buffer fills"
        );
    }
    Some(LogGuard(buffer))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_wait_in_the_buffer_until_a_flush_or_the_threshold() {
        let written = Arc::new(Mutex::new(Vec::<usize>::new()));
        let seen = written.clone();
        let buffer = Arc::new(Buffer {
            pending: Mutex::default(),
            sink: Box::new(move |batch| seen.lock().unwrap().push(batch.len())),
        });
        let mut writer = BatchWriter(buffer.clone());
        writer.write_all(b"one line\n").unwrap();
        writer.write_all(b"two\n").unwrap();
        assert!(
            written.lock().unwrap().is_empty(),
            "nothing written per line"
        );
        buffer.flush();
        assert_eq!(
            *written.lock().unwrap(),
            vec![13],
            "both lines in one write"
        );
        writer.write_all(&vec![b'x'; FLUSH_AT]).unwrap();
        assert_eq!(
            written.lock().unwrap().len(),
            2,
            "a full buffer is written at once"
        );
        assert!(buffer.lock().is_empty());
        drop(LogGuard(buffer.clone()));
    }
}

//! Where the log's lines go: stderr, one `write` per line while the proxy serves one request
//! at a time, and gathered into one `write` per scheduler round while it serves several.
//!
//! Every request ends with an access-log line; written alone, each is a system call (a file
//! write, with the file system's work, or a pipe's wake-up of its reader) on the thread that
//! serves the requests. Under concurrent load the lines of the requests that finished in one
//! round of the runtime leave together, as nginx's `access_log … buffer=` does, but bounded
//! by the round instead of a timer: the line waits only until the runtime has run the tasks
//! that were ready (microseconds under load), never for more traffic. Warnings and errors,
//! lines from outside a runtime, and every line when at most one request is being served go
//! out at once (after whatever was gathered, so the order holds), so that a request served
//! alone has its line in the log before its answer leaves. [`flush`] writes what is left
//! at exit.

use std::io::{self, Write};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard};

use tracing::{Level, Metadata};
use tracing_subscriber::fmt::MakeWriter;

/// Gathered lines beyond this are written at once, whatever the round.
const MAX_GATHERED: usize = 64 * 1024;

/// The process's log, on stderr.
static STDERR: Gatherer = Gatherer::new(write_to_stderr);

/// The log's `MakeWriter`: see the module documentation.
#[derive(Debug, Clone, Copy, Default)]
pub struct GatheringStderr;

impl<'a> MakeWriter<'a> for GatheringStderr {
    type Writer = LineWriter;

    fn make_writer(&'a self) -> Self::Writer {
        LineWriter {
            to: &STDERR,
            urgent: true,
        }
    }

    fn make_writer_for(&'a self, meta: &Metadata<'_>) -> Self::Writer {
        LineWriter {
            to: &STDERR,
            urgent: is_urgent(meta.level()),
        }
    }
}

fn is_urgent(level: &Level) -> bool {
    *level <= Level::WARN
}

/// Counts a request as being served until dropped: lines are gathered only while more than
/// one is.
pub fn serving() -> Serving {
    STDERR.serving.fetch_add(1, Ordering::Relaxed);
    Serving(&STDERR)
}

#[derive(Debug)]
pub struct Serving(&'static Gatherer);

impl Drop for Serving {
    fn drop(&mut self) {
        self.0.serving.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Writes whatever was gathered (at exit).
pub fn flush() {
    STDERR.flush();
}

/// Lines on their way to one output.
#[derive(Debug)]
struct Gatherer {
    /// Lines gathered and not yet written.
    gathered: Mutex<Vec<u8>>,
    /// Whether a task that writes the gathered lines is on its way.
    flush_scheduled: AtomicBool,
    /// Requests being served.
    serving: AtomicUsize,
    /// Writes bytes out (errors are the output's own business: see [`write_to_stderr`]).
    output: fn(&[u8]),
}

impl Gatherer {
    const fn new(output: fn(&[u8])) -> Self {
        Self {
            gathered: Mutex::new(Vec::new()),
            flush_scheduled: AtomicBool::new(false),
            serving: AtomicUsize::new(0),
            output,
        }
    }

    fn write_line(&'static self, line: &[u8], urgent: bool) {
        let gathering = !urgent && self.serving.load(Ordering::Relaxed) > 1;
        let runtime = gathering
            .then(|| tokio::runtime::Handle::try_current().ok())
            .flatten();
        let mut gathered = self.gathered();
        match runtime {
            Some(runtime) if gathered.len() + line.len() <= MAX_GATHERED => {
                gathered.extend_from_slice(line);
                drop(gathered);
                if !self.flush_scheduled.swap(true, Ordering::AcqRel) {
                    let flush = ScheduledFlush(self);
                    runtime.spawn(async move {
                        // A yield goes to the back of the runtime's round: every task that
                        // was ready runs (and adds its line) first.
                        tokio::task::yield_now().await;
                        drop(flush);
                    });
                }
            }
            _ => self.write_out(&mut gathered, line),
        }
    }

    fn flush(&self) {
        let mut gathered = self.gathered();
        self.write_out(&mut gathered, &[]);
    }

    /// The gathered lines; a panic while they were held leaves them usable (they are bytes).
    fn gathered(&self) -> MutexGuard<'_, Vec<u8>> {
        self.gathered
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Writes the gathered lines, then `line`: one write when there are both, and under the
    /// lock, so that lines keep their order.
    fn write_out(&self, gathered: &mut Vec<u8>, line: &[u8]) {
        if gathered.is_empty() {
            if !line.is_empty() {
                (self.output)(line);
            }
            return;
        }
        gathered.extend_from_slice(line);
        (self.output)(gathered);
        gathered.clear();
        if gathered.capacity() > MAX_GATHERED {
            gathered.shrink_to(MAX_GATHERED);
        }
    }
}

/// Writes the gathered lines when dropped: after the round it waited for, or when its task
/// is dropped unrun (a runtime shutting down), so that no line is left behind and the next
/// one schedules a flush again.
struct ScheduledFlush(&'static Gatherer);

impl Drop for ScheduledFlush {
    fn drop(&mut self) {
        self.0.flush_scheduled.store(false, Ordering::Release);
        self.0.flush();
    }
}

/// Nothing useful can be done when stderr fails: the line is lost and the proxy keeps
/// serving (as tracing-subscriber's own stderr writer does).
fn write_to_stderr(bytes: &[u8]) {
    let _ = io::stderr().lock().write_all(bytes);
}

/// Writes one event's text (tracing-subscriber hands over a whole line per `write`).
#[derive(Debug)]
pub struct LineWriter {
    to: &'static Gatherer,
    urgent: bool,
}

impl Write for LineWriter {
    fn write(&mut self, line: &[u8]) -> io::Result<usize> {
        self.to.write_line(line, self.urgent);
        Ok(line.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One test's output: each write as it came.
    macro_rules! gatherer {
        ($writes:ident, $gatherer:ident) => {
            static $writes: Mutex<Vec<Vec<u8>>> = Mutex::new(Vec::new());
            static $gatherer: Gatherer = Gatherer::new(|bytes| {
                $writes.lock().unwrap().push(bytes.to_vec());
            });
        };
    }

    /// Yields enough times for a scheduled flush (itself one yield behind) to have run.
    async fn let_the_round_end() {
        for _ in 0..4 {
            tokio::task::yield_now().await;
        }
    }

    fn texts(writes: &Mutex<Vec<Vec<u8>>>) -> Vec<String> {
        let writes = writes.lock().unwrap();
        writes
            .iter()
            .map(|w| String::from_utf8_lossy(w).into_owned())
            .collect()
    }

    #[tokio::test]
    async fn a_request_served_alone_has_its_line_written_at_once() {
        gatherer!(WRITES, LOG);
        LOG.serving.store(1, Ordering::Relaxed);
        LOG.write_line(b"one\n", false);
        assert_eq!(texts(&WRITES), ["one\n"]);
    }

    #[tokio::test]
    async fn lines_of_one_round_leave_together_after_it() {
        gatherer!(WRITES, LOG);
        LOG.serving.store(3, Ordering::Relaxed);
        LOG.write_line(b"a\n", false);
        LOG.write_line(b"b\n", false);
        assert!(texts(&WRITES).is_empty(), "gathered until the round ends");
        // Another task of the same round adds its line before the flush runs.
        tokio::spawn(async { LOG.write_line(b"c\n", false) })
            .await
            .unwrap();
        let_the_round_end().await;
        assert_eq!(texts(&WRITES), ["a\nb\nc\n"]);
        // The next round schedules its own flush.
        LOG.write_line(b"d\n", false);
        let_the_round_end().await;
        assert_eq!(texts(&WRITES), ["a\nb\nc\n", "d\n"]);
    }

    #[tokio::test]
    async fn a_warning_goes_out_at_once_after_what_was_gathered() {
        gatherer!(WRITES, LOG);
        LOG.serving.store(2, Ordering::Relaxed);
        LOG.write_line(b"info\n", false);
        LOG.write_line(b"warn\n", true);
        assert_eq!(texts(&WRITES), ["info\nwarn\n"]);
        let_the_round_end().await;
        assert_eq!(texts(&WRITES).len(), 1, "nothing left for the flush");
    }

    #[test]
    fn a_runtime_stopped_before_its_round_ended_still_writes_the_lines() {
        gatherer!(WRITES, LOG);
        LOG.serving.store(2, Ordering::Relaxed);
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        runtime.block_on(async { LOG.write_line(b"last\n", false) });
        drop(runtime);
        assert_eq!(texts(&WRITES), ["last\n"]);
        assert!(
            !LOG.flush_scheduled.load(Ordering::Acquire),
            "the next line schedules again"
        );
    }

    #[test]
    fn outside_a_runtime_lines_go_out_at_once() {
        gatherer!(WRITES, LOG);
        LOG.serving.store(5, Ordering::Relaxed);
        LOG.write_line(b"from a plain thread\n", false);
        assert_eq!(texts(&WRITES), ["from a plain thread\n"]);
    }

    #[tokio::test]
    async fn a_full_gathering_is_written_without_waiting_and_flush_empties_it() {
        gatherer!(WRITES, LOG);
        LOG.serving.store(2, Ordering::Relaxed);
        let line = vec![b'x'; MAX_GATHERED / 2];
        LOG.write_line(&line, false);
        LOG.write_line(&line, false);
        assert!(texts(&WRITES).is_empty());
        LOG.write_line(b"\n", false);
        assert_eq!(WRITES.lock().unwrap()[0].len(), MAX_GATHERED + 1);
        LOG.write_line(b"left\n", false);
        LOG.flush();
        assert_eq!(texts(&WRITES)[1], "left\n");
    }

    #[test]
    fn warnings_and_errors_are_urgent() {
        assert!(is_urgent(&Level::ERROR) && is_urgent(&Level::WARN));
        assert!(!is_urgent(&Level::INFO) && !is_urgent(&Level::DEBUG));
    }
}

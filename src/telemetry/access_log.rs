//! Access log lines, from a worker's formatting buffer to disk: one JSON object
//! per request, written off the request path.
//!
//! Step 8 of a request's way. Each worker formats lines into its own
//! [`WorkerLog`] buffer; full buffers (and the worker's tick) go as batches to
//! the one `portcullis-log` writer thread, which writes them, reopens the file
//! on SIGUSR1 or rotation, and returns emptied buffers on a free list.
//!
//! Must not: block a worker (a full queue drops whole batches, counted; workers
//! only `try_lock` the free list), allocate per line in steady state, or spin.
//! It never looks inside a line: keeping tokens out is the callers' duty.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tracing::warn;

/// A worker hands its buffer to the writer once it holds more than this.
pub const FLUSH_BYTES: usize = 32 * 1024;
/// How long the writer blocks on the channel before its periodic duties.
const WAKE_EVERY: Duration = Duration::from_millis(250);
/// How often the writer checks that the path still names the open file.
const CHECK_EVERY: Duration = Duration::from_secs(1);

/// Where access log lines go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Destination {
    Stdout,
    File(PathBuf),
}

/// Shared between the writer thread, the workers and the admin endpoint.
#[derive(Debug, Default)]
pub struct AccessLogStats {
    pub lines_written: AtomicU64,
    pub lines_dropped: AtomicU64,
    pub reopens: AtomicU64,
}

/// Lines handed from one worker to the writer in one piece, and their count.
type Batch = (Vec<u8>, u64);

/// Handle to the writer thread (Clone + Send + Sync): workers get a
/// [`WorkerLog`] from it. The writer exits once every handle is dropped.
#[derive(Clone)]
pub struct AccessLog {
    tx: SyncSender<Batch>,
    stats: Arc<AccessLogStats>,
    reopen: Arc<AtomicBool>,
    free: Arc<Mutex<Vec<Vec<u8>>>>,
    /// Disconnects when the writer thread exits.
    done: Arc<Mutex<Receiver<()>>>,
}

impl AccessLog {
    /// Opens the destination (a file for append, created if missing) and
    /// starts the writer thread. `queue_batches` bounds the batches waiting to
    /// be written; beyond that, batches are dropped and counted.
    pub fn start(destination: Destination, queue_batches: usize) -> io::Result<AccessLog> {
        let (out, file): (Box<dyn Write + Send>, _) = match destination {
            Destination::Stdout => (Box::new(io::stdout()), None),
            Destination::File(path) => {
                let (opened, id) = open_append(&path)?;
                (Box::new(opened), Some((path, id)))
            }
        };
        let (tx, rx) = mpsc::sync_channel(queue_batches);
        let (done_tx, done_rx) = mpsc::channel::<()>();
        let log = AccessLog {
            tx,
            stats: Arc::default(),
            reopen: Arc::default(),
            free: Arc::default(),
            done: Arc::new(Mutex::new(done_rx)),
        };
        let mut writer = Writer {
            out,
            file,
            stats: Arc::clone(&log.stats),
            reopen: Arc::clone(&log.reopen),
            free: Arc::clone(&log.free),
            keep_free: queue_batches + 2,
            failing: false,
        };
        std::thread::Builder::new()
            .name("portcullis-log".into())
            .spawn(move || writer.run(&rx, done_tx))?;
        Ok(log)
    }

    pub fn stats(&self) -> Arc<AccessLogStats> {
        Arc::clone(&self.stats)
    }

    /// Asks the writer to reopen the file (what SIGUSR1 does): it does so
    /// before writing the next batch it receives, or within ~250 ms.
    pub fn reopen(&self) {
        self.reopen.store(true, Ordering::SeqCst);
    }

    /// Makes SIGUSR1 call [`AccessLog::reopen`]. The handler only sets a flag
    /// (`signal_hook::flag`), coexists with other signal-hook handlers, and
    /// stays installed for the life of the process. Call once.
    pub fn reopen_on_sigusr1(&self) -> io::Result<()> {
        signal_hook::flag::register(signal_hook::consts::SIGUSR1, Arc::clone(&self.reopen))?;
        Ok(())
    }

    /// A per-worker buffer feeding this log.
    pub fn worker(&self) -> WorkerLog {
        WorkerLog {
            buf: Vec::with_capacity(2 * FLUSH_BYTES),
            lines: 0,
            tx: self.tx.clone(),
            stats: Arc::clone(&self.stats),
            free: Arc::clone(&self.free),
        }
    }

    /// Drops this handle and waits up to `timeout` for the writer to write
    /// everything queued and exit, which it does once every other `AccessLog`
    /// and `WorkerLog` is gone. True if it exited in time.
    pub fn close(self, timeout: Duration) -> bool {
        drop(self.tx);
        let done = self.done.lock();
        done.is_ok_and(|rx| rx.recv_timeout(timeout) == Err(RecvTimeoutError::Disconnected))
    }
}

/// A worker's buffer (`Send`, but meant to stay on one worker).
pub struct WorkerLog {
    buf: Vec<u8>,
    lines: u64,
    tx: SyncSender<Batch>,
    stats: Arc<AccessLogStats>,
    free: Arc<Mutex<Vec<Vec<u8>>>>,
}

impl WorkerLog {
    /// Appends one line: `write` gets the buffer positioned at the start of a
    /// new line and must write exactly one JSON object without the trailing
    /// newline (added here). Past [`FLUSH_BYTES`], the buffer is handed over.
    pub fn line(&mut self, write: impl FnOnce(&mut Vec<u8>)) {
        let start = self.buf.len();
        write(&mut self.buf);
        debug_assert!(!self.buf[start..].contains(&b'\n'), "newline inside a line");
        self.buf.push(b'\n');
        self.lines += 1;
        if self.buf.len() > FLUSH_BYTES {
            self.flush();
        }
    }

    /// Hands buffered lines to the writer now, or drops them (counted) when
    /// the writer is behind. Never blocks.
    pub fn flush(&mut self) {
        if self.lines == 0 {
            return;
        }
        let buf = std::mem::take(&mut self.buf);
        let lines = std::mem::take(&mut self.lines);
        match self.tx.try_send((buf, lines)) {
            Ok(()) => {
                let recycled = self.free.try_lock().ok().and_then(|mut free| free.pop());
                self.buf = recycled.unwrap_or_else(|| Vec::with_capacity(2 * FLUSH_BYTES));
            }
            Err(TrySendError::Full((buf, _)) | TrySendError::Disconnected((buf, _))) => {
                self.stats.lines_dropped.fetch_add(lines, Ordering::Relaxed);
                self.buf = buf;
                self.buf.clear();
            }
        }
    }
}

impl Drop for WorkerLog {
    fn drop(&mut self) {
        self.flush();
    }
}

/// Opens `path` for append (creating it), with its (dev, ino).
fn open_append(path: &Path) -> io::Result<(File, (u64, u64))> {
    let file = OpenOptions::new().append(true).create(true).open(path)?;
    let meta = file.metadata()?;
    Ok((file, (meta.dev(), meta.ino())))
}

/// The writer thread's state.
struct Writer {
    out: Box<dyn Write + Send>,
    /// The file's path and the (dev, ino) it had when opened.
    file: Option<(PathBuf, (u64, u64))>,
    stats: Arc<AccessLogStats>,
    reopen: Arc<AtomicBool>,
    free: Arc<Mutex<Vec<Vec<u8>>>>,
    keep_free: usize,
    /// Whether the last write failed (one warning per failing streak).
    failing: bool,
}

impl Writer {
    /// Writes until every sender is gone and the queue is empty; `_done` then hangs up.
    fn run(&mut self, rx: &Receiver<Batch>, _done: mpsc::Sender<()>) {
        let mut last_check = Instant::now();
        loop {
            let received = rx.recv_timeout(WAKE_EVERY);
            let asked = self.reopen.swap(false, Ordering::SeqCst);
            if asked || last_check.elapsed() >= CHECK_EVERY {
                self.reopen_if(asked);
                last_check = Instant::now();
            }
            match received {
                Ok(batch) => self.write(batch),
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => return,
            }
        }
    }

    fn write(&mut self, (mut buf, lines): Batch) {
        let result = self.out.write_all(&buf).and_then(|()| self.out.flush());
        let counter = match &result {
            Ok(()) => &self.stats.lines_written,
            Err(_) => &self.stats.lines_dropped,
        };
        counter.fetch_add(lines, Ordering::Relaxed);
        if let (Err(error), false) = (&result, self.failing) {
            warn!(%error, "access log write failed; dropping lines until it recovers");
        }
        self.failing = result.is_err();
        // A buffer grown by a huge line is freed, not recycled.
        if buf.capacity() <= 4 * FLUSH_BYTES {
            buf.clear();
            match self.free.lock() {
                Ok(mut free) if free.len() < self.keep_free => free.push(buf),
                _ => {}
            }
        }
    }

    /// Reopens the file when `asked`, or when its path is gone or now names
    /// another file (moved away by rotation).
    fn reopen_if(&mut self, asked: bool) {
        let Some((path, id)) = &mut self.file else {
            return;
        };
        let moved = match std::fs::metadata(&*path) {
            Ok(meta) => (meta.dev(), meta.ino()) != *id,
            Err(error) => error.kind() == io::ErrorKind::NotFound,
        };
        if !asked && !moved {
            return;
        }
        match open_append(path) {
            Ok((file, new_id)) => {
                (self.out, *id) = (Box::new(file), new_id);
                self.stats.reopens.fetch_add(1, Ordering::Relaxed);
            }
            Err(error) => warn!(%error, path = %path.display(), "access log reopen failed"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::telemetry::format::write_json_str;
    use std::fs::{read_to_string, rename};

    /// A temporary directory and a log writing to `access.log` in it.
    fn file_log() -> (tempfile::TempDir, AccessLog) {
        let dir = tempfile::tempdir().unwrap();
        let log = AccessLog::start(Destination::File(dir.path().join("access.log")), 64).unwrap();
        (dir, log)
    }

    fn write_lines(log: &AccessLog, tag: &str, n: u64) {
        let mut worker = log.worker();
        for i in 0..n {
            worker.line(|out| {
                out.extend_from_slice(b"{\"tag\":");
                write_json_str(out, tag.as_bytes());
                let _ = write!(out, ",\"i\":{i}}}");
            });
        }
    }

    /// Writes 3 "old" lines, waits until they are on disk, moves the file away.
    fn write_then_rotate(log: &AccessLog, dir: &tempfile::TempDir) {
        write_lines(log, "old", 3);
        wait_for(|| log.stats().lines_written.load(Ordering::Relaxed) == 3);
        rename(dir.path().join("access.log"), dir.path().join("old.log")).unwrap();
    }

    /// Waits (at most 5 s) until `what` holds; returns how long it took.
    fn wait_for(what: impl Fn() -> bool) -> Duration {
        let started = Instant::now();
        while !what() && started.elapsed() < Duration::from_secs(5) {
            std::thread::sleep(Duration::from_millis(10));
        }
        started.elapsed()
    }

    // Lines from two workers on two threads all arrive whole, none interleaved.
    #[test]
    fn lines_from_two_workers_arrive_whole() {
        let (dir, log) = file_log();
        std::thread::scope(|s| {
            ["a", "b"].map(|tag| drop(s.spawn(|| write_lines(&log, tag, 10_000))))
        });
        assert!(log.close(Duration::from_secs(5)));
        let text = read_to_string(dir.path().join("access.log")).unwrap();
        let mut seen: Vec<(String, u64)> = (text.lines())
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter_map(|v| Some((v["tag"].as_str()?.to_owned(), v["i"].as_u64()?)))
            .collect();
        seen.sort();
        let expected = ["a", "b"].map(|t| (0..10_000).map(move |i| (t.to_owned(), i)));
        assert_eq!(seen, expected.into_iter().flatten().collect::<Vec<_>>());
    }

    // After the file is moved away and reopen() is called, new lines go to a new file.
    #[test]
    fn reopen_after_rename_writes_a_new_file() {
        let (dir, log) = file_log();
        write_then_rotate(&log, &dir);
        log.reopen();
        write_lines(&log, "new", 2);
        assert!(log.close(Duration::from_secs(5)));
        let read = |name| read_to_string(dir.path().join(name)).unwrap();
        let (old, new) = (read("old.log"), read("access.log"));
        let (old_n, new_n) = (old.lines().count(), new.lines().count());
        assert!(old_n == 3 && !old.contains("new") && new_n == 2 && !new.contains("old"));
    }

    // Without reopen(), the writer notices the moved path within ~2 s and reopens.
    #[test]
    fn moved_path_is_noticed_without_a_signal() {
        let (dir, log) = file_log();
        write_then_rotate(&log, &dir);
        let noticed = wait_for(|| log.stats().reopens.load(Ordering::Relaxed) == 1);
        write_lines(&log, "new", 2);
        assert!(log.close(Duration::from_secs(5)));
        let new = read_to_string(dir.path().join("access.log")).unwrap();
        assert!(noticed < Duration::from_secs(2) && new.lines().count() == 2);
    }

    // A writer stuck on a slow destination never blocks a worker: batches are dropped and counted.
    #[test]
    fn a_stuck_writer_drops_batches_instead_of_blocking() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo");
        let made = std::process::Command::new("mkfifo").arg(&fifo).status();
        assert!(made.is_ok_and(|s| s.success()), "mkfifo");
        // Opened read-write and never read: the writer fills the pipe and blocks.
        let _unread = File::options().read(true).write(true).open(&fifo);
        let log = AccessLog::start(Destination::File(fifo), 1).unwrap();
        let (done_tx, done_rx) = mpsc::channel();
        std::thread::spawn(move || {
            write_lines(&log, "flood", 100_000);
            let _ = done_tx.send(log.stats().lines_dropped.load(Ordering::Relaxed));
        });
        let dropped = done_rx.recv_timeout(Duration::from_secs(10));
        assert!(dropped.is_ok_and(|n| n > 0), "blocked, or none dropped");
    }
}

//! The load itself: `threads` OS threads, each with its own monoio runtime
//! and its share of the connections; each connection a task that sends one
//! request at a time and records what came back.
//!
//! Closed loop: a connection sends its next request as soon as the previous
//! answer is in; latency runs from sending (connecting, when it must) to the
//! answer's last byte. Open loop: connection `i` of `C` at total rate `R` has
//! its k-th request scheduled at `start + (i/C + k)·C/R`; it waits for that
//! time when early, and when late (the server stalled) the request queues and
//! is sent at once. Latency always runs from the *scheduled* time, so time
//! spent queueing behind a slow answer is counted, as a user would feel it
//! (no coordinated omission).
//!
//! Every run is bounded: no request starts after `duration` nor beyond
//! `max_requests`, and each request is bounded by `timeout`.

use crate::exchange::{exchange, ErrorKind};
use crate::progress::{self, Counters};
use crate::recorder::Recorder;
use crate::spec::{LoadSpec, Mode};
use crate::tls::TlsClient;
use crate::transport::{Connection, OpenError};
use crate::{request, runtime};
use anyhow::Context;
use portcullis::time::deadline::{Deadlines, TaskTimer};
use std::cell::RefCell;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The merged figures of a finished run.
pub struct Finished {
    pub recorder: Recorder,
    /// From the start to the end of the last request.
    pub elapsed: Duration,
    /// CPU seconds this process used during the run (user + system).
    pub cpu_seconds: f64,
}

/// What every thread shares.
struct Shared {
    spec: LoadSpec,
    request: Vec<u8>,
    tls: Option<TlsClient>,
    start: Instant,
    end: Instant,
    /// Requests started so far (against `max_requests`).
    started: AtomicU64,
    /// Set by Ctrl-C: start no more requests.
    stop: Arc<AtomicBool>,
    counters: Arc<Vec<Counters>>,
}

/// Runs the load described by `spec`; `stop` ends it early (Ctrl-C).
pub fn run(spec: LoadSpec, stop: Arc<AtomicBool>) -> anyhow::Result<Finished> {
    spec.validate()?;
    let tls = match &spec.tls {
        Some(tls) => Some(TlsClient::new(tls)?),
        None => None,
    };
    let cpu_before = crate::report::process_cpu_seconds();
    let start = Instant::now() + Duration::from_millis(20);
    let counters: Arc<Vec<Counters>> =
        Arc::new((0..spec.threads).map(|_| Counters::default()).collect());
    let shared = Arc::new(Shared {
        request: request::build(&spec),
        end: start + spec.duration,
        spec,
        tls,
        start,
        started: AtomicU64::new(0),
        stop,
        counters: counters.clone(),
    });
    let finished = Arc::new(AtomicBool::new(false));
    let progress = shared.spec.progress.then(|| {
        let (counters, finished) = (counters.clone(), finished.clone());
        std::thread::spawn(move || progress::report(counters, finished, start))
    });
    let handles: Vec<_> = (0..shared.spec.threads)
        .map(|thread| {
            let shared = shared.clone();
            std::thread::Builder::new()
                .name(format!("load-{thread}"))
                .spawn(move || runtime::block_on(thread_main(shared, thread)))
        })
        .collect::<Result<_, _>>()
        .context("starting load threads")?;
    let mut merged = Recorder::new(start);
    let mut failure = None;
    for handle in handles {
        match handle.join() {
            Ok(Ok(recorder)) => merged.merge(&recorder),
            Ok(Err(e)) => failure = Some(anyhow::Error::new(e).context("load thread runtime")),
            Err(_) => failure = Some(anyhow::anyhow!("a load thread panicked")),
        }
    }
    let elapsed = start.elapsed();
    finished.store(true, Ordering::Relaxed);
    if let Some(progress) = progress {
        let _ = progress.join();
    }
    if let Some(e) = failure {
        return Err(e);
    }
    Ok(Finished {
        recorder: merged,
        elapsed,
        cpu_seconds: crate::report::process_cpu_seconds() - cpu_before,
    })
}

/// One thread: its connections, each a task, until all are done.
async fn thread_main(shared: Arc<Shared>, thread: usize) -> Recorder {
    let deadlines = Rc::new(Deadlines::default());
    monoio::spawn(deadlines.clone().sweep());
    let recorder = Rc::new(RefCell::new(Recorder::new(shared.start)));
    let spec = &shared.spec;
    let tasks: Vec<_> = (thread..spec.connections)
        .step_by(spec.threads)
        .map(|index| {
            let (shared, recorder) = (shared.clone(), recorder.clone());
            let timer = deadlines.timer();
            monoio::spawn(connection_loop(shared, thread, index, timer, recorder))
        })
        .collect();
    for task in tasks {
        task.await;
    }
    let mut mine = recorder.borrow_mut();
    std::mem::replace(&mut *mine, Recorder::new(shared.start))
}

/// One connection's requests, one at a time.
async fn connection_loop(
    shared: Arc<Shared>,
    thread: usize,
    index: usize,
    timer: TaskTimer,
    recorder: Rc<RefCell<Recorder>>,
) {
    let spec = &shared.spec;
    let counters = &shared.counters[thread];
    let is_head = spec.method.eq_ignore_ascii_case("HEAD");
    let (mut next, interval) = match spec.mode {
        Mode::Closed => (shared.start, Duration::ZERO),
        Mode::Open { rate } => {
            let interval = Duration::from_secs_f64(spec.connections as f64 / rate);
            let offset = interval.mul_f64(index as f64 / spec.connections as f64);
            (shared.start + offset, interval)
        }
    };
    let mut conn: Option<Connection> = None;
    let mut request = shared.request.clone();
    if Instant::now() < shared.start {
        monoio::time::sleep_until(monoio::time::Instant::from_std(shared.start)).await;
    }
    // Closed loop: the next request is due when the previous one ended.
    let mut last_done = Instant::now();
    loop {
        let scheduled = match spec.mode {
            Mode::Closed => last_done,
            Mode::Open { .. } => next,
        };
        if scheduled >= shared.end || shared.stop.load(Ordering::Relaxed) {
            break;
        }
        if let Some(max) = spec.max_requests {
            if shared.started.fetch_add(1, Ordering::Relaxed) >= max {
                break;
            }
        }
        if matches!(spec.mode, Mode::Open { .. }) && Instant::now() < scheduled {
            monoio::time::sleep_until(monoio::time::Instant::from_std(scheduled)).await;
        }
        next = scheduled + interval;
        let deadline = timer.deadlines().after(spec.timeout);
        let outcome = timer
            .within(deadline, one_request(&shared, &mut conn, request, is_head))
            .await;
        let done = Instant::now();
        last_done = done;
        let result = match outcome {
            Ok((result, back)) => {
                request = back;
                result
            }
            Err(_) => {
                request = shared.request.clone();
                conn = None;
                Err(ErrorKind::Timeout)
            }
        };
        match result {
            Ok(status) => {
                recorder.borrow_mut().answer(status, done - scheduled, done);
            }
            Err(kind) => {
                recorder.borrow_mut().error(kind, done);
                counters.errors.fetch_add(1, Ordering::Relaxed);
            }
        }
        counters.done.fetch_add(1, Ordering::Relaxed);
    }
}

/// Connects when needed, sends, reads the answer; keeps the connection for
/// the next request only when both sides want keep-alive.
async fn one_request(
    shared: &Shared,
    conn: &mut Option<Connection>,
    request: Vec<u8>,
    is_head: bool,
) -> (Result<u16, ErrorKind>, Vec<u8>) {
    let mut open = match conn.take() {
        Some(open) => open,
        None => match Connection::open(shared.spec.target.addr, shared.tls.as_ref()).await {
            Ok(open) => open,
            Err(OpenError::Connect) => return (Err(ErrorKind::Connect), request),
            Err(OpenError::Tls) => return (Err(ErrorKind::Tls), request),
        },
    };
    let (result, request) = exchange(&mut open, request, is_head).await;
    match result {
        Ok(answer) => {
            if answer.reusable && shared.spec.keepalive {
                *conn = Some(open);
            }
            (Ok(answer.status), request)
        }
        Err(kind) => (Err(kind), request),
    }
}

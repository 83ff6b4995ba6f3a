//! The main thread: compile the first config (fail fast), bind every listener
//! once per worker with `SO_REUSEPORT`, start the workers, then wait for
//! signals: SIGHUP recompiles and publishes a new snapshot, SIGTERM/SIGINT
//! stop accepting and drain, SIGUSR2 starts a successor that takes over.
//! Startup checks, `sd_notify` and the takeover live in [`crate::service`].

use crate::admin::{self, AdminState};
use crate::config::{load_sources, ConfigError};
use crate::policy::usage::{flush, spawn_flusher, QuotaHandover, QuotaStore, UsageRegistry};
use crate::runtime::admission::AddressCounts;
use crate::runtime::control::spawn_watcher;
use crate::runtime::reload::{load_snapshot, Reloader};
use crate::runtime::worker::{self, WorkerSetup};
use crate::service::handover::{Channel, ControlListener};
use crate::service::notify::Notifier;
use crate::service::preflight::DriverChoice;
use crate::service::preflight::{self, PreflightError};
use crate::service::state::StateHandover;
use crate::service::takeover::{self, HandedListener, Inherited, SuccessorSlot, TakeoverError};
use crate::service::upgrade;
use crate::snapshot::{ListenerSpec, Snapshot, SnapshotStore};
use crate::telemetry::access_log::AccessLog;
use crate::telemetry::audit::spawn_security_summary;
use crate::telemetry::counters::{SharedWorkerStats, StatsRegistry};
use crate::telemetry::reloads::Trigger;
use arc_swap::ArcSwap;
use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM, SIGUSR1, SIGUSR2};
use signal_hook::iterator::Signals;
use socket2::{Domain, Protocol, Socket, Type};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use tracing::{error, info, warn};

/// Batches of access log lines that may wait for the writer before lines are dropped.
const ACCESS_LOG_QUEUE: usize = 64;

/// Pending connections the kernel queues per worker socket.
const LISTEN_BACKLOG: i32 = 4096;

/// How to run the gateway.
#[derive(Debug, Clone)]
pub struct ServerOptions {
    pub config_path: PathBuf,
    /// Worker threads; `None` means one per available core.
    pub workers: Option<usize>,
    pub driver: DriverChoice,
    /// Reload when the config file changes (SIGHUP reloads either way).
    pub watch: bool,
    /// How often refused connections and requests are summarised in the audit log.
    pub audit_period: std::time::Duration,
    /// Unix socket on which a successor asks for this process's sockets.
    pub control_socket: Option<PathBuf>,
    /// Take the sockets of the gateway listening on `control_socket` over.
    pub takeover: bool,
    /// Connections to size the file-descriptor limit for; `None` uses the
    /// default and only warns when the limit is too low.
    pub connections: Option<u64>,
}

/// Why the gateway could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("{0}")]
    Config(#[from] ConfigError),
    #[error("cannot listen on {address} (listener `{listener}`): {source}")]
    Bind {
        listener: String,
        address: SocketAddr,
        source: std::io::Error,
    },
    #[error("cannot start: {0}")]
    Io(#[from] std::io::Error),
    #[error("cannot use state_dir {0} for quota counts: {1}")]
    StateDir(String, std::io::Error),
    #[error("{0}")]
    Preflight(#[from] PreflightError),
    #[error("cannot start: {0}")]
    Takeover(#[from] TakeoverError),
    #[error("cannot start: --takeover needs --control-socket (the running gateway's)")]
    TakeoverWithoutControlSocket,
    #[error("cannot start: control socket {0} belongs to a running gateway; use --takeover to replace it")]
    ControlSocketInUse(PathBuf),
    #[error("cannot start: worker {0} stopped before serving (see the log above)")]
    WorkerFailed(usize),
}

/// Loads and compiles the config file and its includes (no DNS: what `check` runs).
pub fn compile_file(path: &Path) -> Result<Snapshot, ConfigError> {
    let (config, sources) = load_sources(path)?;
    Snapshot::compile_sources(&config, &sources)
}

/// Runs the gateway until SIGTERM or SIGINT, then drains and returns.
pub fn run(options: &ServerOptions) -> Result<(), StartError> {
    // SIGUSR1 (logrotate's reopen) is taken here too so that it never
    // terminates a gateway without an access log.
    let mut signals = Signals::new([SIGTERM, SIGINT, SIGHUP, SIGUSR1, SIGUSR2])?;
    let notifier = Notifier::from_env();
    // Quota counts cross a takeover through the control socket.
    let usage = Arc::new(UsageRegistry::default());
    let quota_handover = Arc::new(QuotaHandover::new(Arc::clone(&usage)));
    let state: Arc<dyn StateHandover> = quota_handover.clone();
    let cores = core_affinity::get_core_ids().unwrap_or_default();
    // Compiled once without counters to learn the listeners; checks come
    // before anything is bound or taken over.
    let config = compile_file(&options.config_path)?;
    let mut inherited = match (&options.control_socket, options.takeover) {
        (Some(path), true) => Some(takeover::request(path, state.as_ref())?),
        (None, true) => return Err(StartError::TakeoverWithoutControlSocket),
        (Some(path), false) => {
            refuse_live_control_socket(path)?;
            None
        }
        (None, false) => None,
    };
    let workers = takeover_workers(inherited.as_ref(), options.workers)
        .unwrap_or_else(|| options.workers.unwrap_or_else(|| cores.len().max(1)).max(1));
    let driver =
        preflight::driver_decision(options.driver, preflight::probe_io_uring(options.driver))?;
    preflight::ensure_fd_limit(
        config.listeners.len() as u64,
        workers as u64,
        options
            .connections
            .unwrap_or(preflight::DEFAULT_CONNECTIONS),
        options.connections.is_some(),
    )?;
    drop(config);
    let route_stats = Arc::new(StatsRegistry::new(workers));
    let mut snapshot = load_snapshot(&options.config_path, &route_stats)?;
    for warning in &snapshot.warnings {
        warn!("{warning}");
    }
    let quota_store = if snapshot.has_quotas() {
        let store = QuotaStore::open(&snapshot.state_dir)
            .map_err(|e| StartError::StateDir(snapshot.state_dir.display().to_string(), e))?;
        // After a takeover the predecessor's live counts are already seeded.
        if inherited.is_none() {
            let counts = store.load();
            info!(file = %store.path().display(), counters = counts.len(), "quota counts read back");
            usage.seed(counts);
        }
        Some(store)
    } else {
        None
    };
    quota_handover.set_store(quota_store.clone());
    snapshot.attach_usage(&usage, crate::time::clock::now());
    let state_dir = snapshot.state_dir.clone();
    let access_log = match &snapshot.access_log {
        Some(destination) => {
            let log = AccessLog::start(destination.clone(), ACCESS_LOG_QUEUE)?;
            log.reopen_on_sigusr1()?;
            Some(log)
        }
        None => None,
    };
    let mut sockets: Vec<Vec<std::net::TcpListener>> = (0..workers).map(|_| Vec::new()).collect();
    let mut bound = Vec::with_capacity(snapshot.listeners.len());
    for spec in &snapshot.listeners {
        let handed = inherited
            .as_mut()
            .and_then(|i| i.take_listener(&spec.name, spec.address));
        let address = match handed {
            Some(handed) => adopt(handed, &mut sockets)?,
            None => {
                preflight::check_port_free(&spec.name, spec.address)?;
                bind_for_workers(spec, &mut sockets)?
            }
        };
        info!(listener = %spec.name, address = %address, "listening");
        bound.push(address);
    }
    let mut handover_copies = copies_for_successor(&snapshot, &bound, &sockets)?;
    let admin_address = snapshot.admin;
    let store: SnapshotStore = Arc::new(ArcSwap::from_pointee(snapshot));
    let reloader = Arc::new(Reloader::new(
        options.config_path.clone(),
        Arc::clone(&store),
        bound,
        Arc::clone(&route_stats),
        Arc::clone(&usage),
    ));
    let ready = Arc::new(AtomicUsize::new(0));
    let worker_stats: Vec<Arc<SharedWorkerStats>> = (0..workers).map(|_| Arc::default()).collect();
    if let Some(address) = admin_address {
        let state = AdminState {
            store: Arc::clone(&store),
            reloads: Arc::clone(&reloader.stats),
            workers: worker_stats.clone(),
            ready_workers: Arc::clone(&ready),
            access_log: access_log.as_ref().map(AccessLog::stats),
        };
        let bind_error = |source| StartError::Bind {
            listener: "admin".into(),
            address,
            source,
        };
        let listener = match inherited.as_mut().and_then(|i| i.take_admin(address)) {
            Some(fd) => std::net::TcpListener::from(fd),
            None => {
                preflight::check_port_free("admin", address)?;
                std::net::TcpListener::bind(address).map_err(bind_error)?
            }
        };
        let copy = listener.try_clone().map_err(bind_error)?;
        let bound = admin::spawn_on(listener, Arc::new(state)).map_err(bind_error)?;
        handover_copies.push(HandedListener {
            name: "admin".into(),
            address: bound,
            sockets: vec![copy.into()],
            admin: true,
        });
    }
    if let Some(inherited) = &inherited {
        for gone in inherited.listeners.iter() {
            warn!(listener = %gone.name, address = %gone.address, "takeover: this listener is no longer configured; its sockets close");
        }
    }
    let stop = Arc::new(AtomicBool::new(false));
    let address_counts = Arc::new(AddressCounts::default());
    let mut handles = Vec::with_capacity(workers);
    for (id, listeners) in sockets.into_iter().enumerate() {
        let setup = WorkerSetup {
            id,
            core: (!cores.is_empty()).then(|| cores[id % cores.len()]),
            store: Arc::clone(&store),
            listeners,
            stop: Arc::clone(&stop),
            driver,
            stats: Arc::clone(&worker_stats[id]),
            ready: Arc::clone(&ready),
            access_log: access_log.clone(),
            address_counts: Arc::clone(&address_counts),
        };
        let handle = std::thread::Builder::new()
            .name(format!("portcullis-w{id}"))
            .spawn(move || worker::run(setup))?;
        handles.push(handle);
    }
    if options.watch {
        spawn_watcher(Arc::clone(&reloader))?;
    }
    spawn_security_summary(worker_stats.clone(), options.audit_period)?;
    spawn_flusher(Arc::clone(&usage), state_dir.clone(), quota_store.clone())?;
    wait_until_serving(&ready, &handles)?;
    let successor: SuccessorSlot = Arc::default();
    if let Some(path) = &options.control_socket {
        let control = ControlListener::bind(path)?;
        let status = match inherited {
            Some(inherited) => {
                let previous = inherited.predecessor.unwrap_or(0);
                inherited.serving(Arc::clone(&state), store.load().timeouts.drain)?;
                notifier.ready_as_main(&format!("serving; took over from pid {previous}"));
                format!("took over from pid {previous}")
            }
            None => {
                notifier.ready("serving");
                "fresh start".to_string()
            }
        };
        info!(target: "portcullis::telemetry::audit", workers, generation = store.load().generation, start = %status, "started: serving");
        upgrade::spawn_control_socket(
            control,
            handover_copies,
            Arc::clone(&state),
            Arc::clone(&successor),
            || {
                let _ = signal_hook::low_level::raise(SIGTERM);
            },
        )?;
    } else {
        notifier.ready("serving");
        info!(target: "portcullis::telemetry::audit", workers, generation = store.load().generation, "started: serving");
    }
    for signal in signals.forever() {
        match signal {
            SIGHUP => {
                notifier.reloading();
                // On a thread of its own at background priority (the main
                // thread keeps its own: a successor it starts inherits it).
                std::thread::scope(|scope| {
                    let _ = scope
                        .spawn(|| {
                            crate::service::threads::lower_thread_priority();
                            reloader.reload(Trigger::Signal);
                        })
                        .join();
                });
                notifier.ready(&format!("serving generation {}", store.load().generation));
            }
            SIGUSR1 => {} // the access log reopens on its own flag
            SIGUSR2 => match &options.control_socket {
                Some(_) => match upgrade::spawn_successor() {
                    Ok(pid) => {
                        info!(target: "portcullis::telemetry::audit", successor_pid = pid, "upgrade: started a successor to take over")
                    }
                    Err(e) => error!(error = %e, "upgrade: cannot start a successor"),
                },
                None => warn!("SIGUSR2 ignored: an upgrade needs --control-socket"),
            },
            _ => {
                if let Some(next) = lock(&successor).as_ref() {
                    info!(
                        successor_pid = next.pid,
                        "handing over: no new connections here, draining requests in flight"
                    );
                } else {
                    notifier.stopping("draining requests in flight");
                    info!(
                        signal,
                        "stopping: no new connections, draining requests in flight"
                    );
                }
                stop.store(true, Ordering::Release);
                break;
            }
        }
    }
    for handle in handles {
        match handle.join() {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => error!(error = %e, "worker failed"),
            Err(_) => error!("worker panicked"),
        }
    }
    // Quotas counted since the last flush are written before exit, unless a
    // successor took over: it owns the counts (and the file) now.
    let handed_over = lock(&successor).is_some();
    let counted = !usage
        .quota_counts(crate::time::clock::now().unix_secs)
        .is_empty();
    let store = quota_store.or_else(|| counted.then(|| QuotaStore::open(&state_dir).ok())?);
    if let Some(store) = store.filter(|_| !handed_over) {
        match flush(&usage, &store) {
            Ok(()) => info!(file = %store.path().display(), "quota counts saved"),
            Err(e) => {
                error!(file = %store.path().display(), error = %e, "cannot save quota counts")
            }
        }
    }
    if let Some(log) = access_log {
        if !log.close(std::time::Duration::from_secs(2)) {
            warn!("access log writer did not finish within 2 s; its last lines may be lost");
        }
    }
    if let Some(next) = lock(&successor).take() {
        let pid = next.pid;
        match next.finish(state.as_ref()) {
            Ok(()) => info!(successor_pid = pid, "handed over: drained"),
            Err(e) => {
                warn!(successor_pid = pid, error = %e, "could not report the end of the drain to the successor")
            }
        }
    }
    info!(target: "portcullis::telemetry::audit", "stopped");
    Ok(())
}

fn lock<T>(mutex: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    match mutex.lock() {
        Ok(guard) => guard,
        Err(poisoned) => poisoned.into_inner(),
    }
}

/// The worker count a takeover keeps: one worker per socket handed over.
fn takeover_workers(inherited: Option<&Inherited>, asked: Option<usize>) -> Option<usize> {
    let per_listener = inherited?.listeners.first()?.sockets.len();
    if asked.is_some_and(|n| n != per_listener) {
        warn!(
            workers = per_listener,
            "takeover keeps the worker count of the process it replaces (--workers ignored)"
        );
    }
    Some(per_listener).filter(|n| *n > 0)
}

/// A control socket that answers belongs to a gateway that is running.
fn refuse_live_control_socket(path: &Path) -> Result<(), StartError> {
    match Channel::connect(path) {
        Ok(_) => Err(StartError::ControlSocketInUse(path.to_path_buf())),
        Err(_) => Ok(()),
    }
}

/// Gives each worker one of the sockets handed over for a listener.
fn adopt(
    handed: HandedListener,
    sockets: &mut [Vec<std::net::TcpListener>],
) -> Result<SocketAddr, StartError> {
    if handed.sockets.len() != sockets.len() {
        return Err(StartError::Io(std::io::Error::other(format!(
            "listener `{}` was handed {} sockets for {} workers",
            handed.name,
            handed.sockets.len(),
            sockets.len()
        ))));
    }
    for (fd, worker_sockets) in handed.sockets.into_iter().zip(sockets.iter_mut()) {
        let listener = std::net::TcpListener::from(fd);
        listener.set_nonblocking(true)?;
        worker_sockets.push(listener);
    }
    Ok(handed.address)
}

/// A second handle on every listening socket, kept to hand to a successor.
fn copies_for_successor(
    snapshot: &Snapshot,
    bound: &[SocketAddr],
    sockets: &[Vec<std::net::TcpListener>],
) -> std::io::Result<Vec<HandedListener>> {
    snapshot
        .listeners
        .iter()
        .enumerate()
        .map(|(index, spec)| {
            let copies = sockets
                .iter()
                .map(|worker| worker[index].try_clone().map(std::os::fd::OwnedFd::from))
                .collect::<std::io::Result<Vec<_>>>()?;
            Ok(HandedListener {
                name: spec.name.clone(),
                address: bound[index],
                sockets: copies,
                admin: false,
            })
        })
        .collect()
}

/// Waits until every worker accepts; fails if one stops first.
fn wait_until_serving(
    ready: &AtomicUsize,
    handles: &[std::thread::JoinHandle<std::io::Result<worker::Driver>>],
) -> Result<(), StartError> {
    while ready.load(Ordering::Acquire) < handles.len() {
        if let Some(id) = handles.iter().position(|h| h.is_finished()) {
            return Err(StartError::WorkerFailed(id));
        }
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
    Ok(())
}

/// Binds one socket per worker for `spec`; the first resolves port 0 and the
/// others join it with `SO_REUSEPORT`. Returns the bound address.
fn bind_for_workers(
    spec: &ListenerSpec,
    sockets: &mut [Vec<std::net::TcpListener>],
) -> Result<SocketAddr, StartError> {
    let bind_error = |source| StartError::Bind {
        listener: spec.name.clone(),
        address: spec.address,
        source,
    };
    let mut address = spec.address;
    for worker_sockets in sockets.iter_mut() {
        let listener = bind_one(address).map_err(bind_error)?;
        address = listener.local_addr().map_err(bind_error)?;
        worker_sockets.push(listener);
    }
    Ok(address)
}

fn bind_one(address: SocketAddr) -> std::io::Result<std::net::TcpListener> {
    let socket = Socket::new(
        Domain::for_address(address),
        Type::STREAM,
        Some(Protocol::TCP),
    )?;
    socket.set_reuse_address(true)?;
    socket.set_reuse_port(true)?;
    socket.set_nonblocking(true)?;
    socket.bind(&address.into())?;
    socket.listen(LISTEN_BACKLOG)?;
    Ok(socket.into())
}

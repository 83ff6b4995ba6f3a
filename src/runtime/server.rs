//! The main thread: compile the first config (fail fast), bind every listener
//! once per worker with `SO_REUSEPORT`, start the workers, then wait for
//! signals: SIGHUP recompiles and publishes a new snapshot, SIGTERM/SIGINT
//! stop accepting and drain, SIGUSR2 starts a successor that takes over.
//! Startup checks, `sd_notify` and the takeover live in [`crate::service`].

use super::sockets::{self, WorkerSockets};
use crate::admin::{self, AdminState};
use crate::policy::usage::{flush, spawn_flusher, QuotaHandover, QuotaStore, UsageRegistry};
use crate::runtime::admission::AddressCounts;
use crate::runtime::control::spawn_watcher;
use crate::runtime::reload::{compile_file, load_snapshot, Reloader, ReloaderParts};
use crate::runtime::worker::{self, WorkerSetup};
use crate::service::handover::ControlListener;
use crate::service::notify::Notifier;
use crate::service::preflight::{self, DriverChoice};
use crate::service::state::StateHandover;
use crate::service::takeover::{self, HandedListener, Inherited, SuccessorSlot};
use crate::service::upgrade;
use crate::snapshot::{Snapshot, SnapshotStore};
use crate::telemetry::access_log::AccessLog;
use crate::telemetry::audit::spawn_security_summary;
use crate::telemetry::counters::{SharedWorkerStats, StatsRegistry};
use crate::telemetry::reloads::Trigger;
use arc_swap::ArcSwap;
use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM, SIGUSR1, SIGUSR2};
use signal_hook::iterator::Signals;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use tracing::{error, info, warn};

pub use super::start_error::StartError;

/// Batches of access log lines that may wait for the writer before lines are dropped.
const ACCESS_LOG_QUEUE: usize = 64;

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

/// Runs the gateway until SIGTERM or SIGINT, then drains and returns.
pub fn run(options: &ServerOptions) -> Result<(), StartError> {
    // SIGUSR1 (logrotate's reopen) is taken here too so that it never
    // terminates a gateway without an access log.
    let mut signals = Signals::new([SIGTERM, SIGINT, SIGHUP, SIGUSR1, SIGUSR2])?;
    let notifier = Notifier::from_env();
    let gateway = start(options, &notifier)?;
    serve_until_stopped(&mut signals, &gateway, options, &notifier);
    gateway.shut_down();
    Ok(())
}

/// A started gateway: what the signal loop and the shutdown work with.
struct Gateway {
    store: SnapshotStore,
    reloader: Arc<Reloader>,
    usage: Arc<UsageRegistry>,
    quota_store: Option<QuotaStore>,
    state_dir: PathBuf,
    access_log: Option<AccessLog>,
    workers: Vec<JoinHandle<std::io::Result<worker::Driver>>>,
    stop: Arc<AtomicBool>,
    successor: SuccessorSlot,
    state: Arc<dyn StateHandover>,
}

/// What is known before anything is bound: the takeover's sockets, the
/// worker count and the event driver, all checked.
struct Plan {
    inherited: Option<Inherited>,
    workers: usize,
    driver: DriverChoice,
    cores: Vec<core_affinity::CoreId>,
}

/// Starts everything and returns once every worker serves.
fn start(options: &ServerOptions, notifier: &Notifier) -> Result<Gateway, StartError> {
    // Quota counts cross a takeover through the control socket.
    let usage = Arc::new(UsageRegistry::default());
    let quota_handover = Arc::new(QuotaHandover::new(Arc::clone(&usage)));
    let state: Arc<dyn StateHandover> = quota_handover.clone();
    let mut plan = plan(options, state.as_ref())?;
    let route_stats = Arc::new(StatsRegistry::new(plan.workers));
    let names = Arc::new(crate::snapshot::NameTable::default());
    let (mut snapshot, compiled) = load_snapshot(&options.config_path, &route_stats, &names)?;
    for warning in &snapshot.warnings {
        warn!("{warning}");
    }
    let quota_store = open_quota_store(&snapshot, &usage, plan.inherited.is_none())?;
    quota_handover.set_store(quota_store.clone());
    crate::cluster::start(snapshot.cluster.as_ref(), &usage)?;
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
    let WorkerSockets { per_worker, bound } =
        sockets::open_listeners(&snapshot, plan.inherited.as_mut(), plan.workers)?;
    let mut handover_copies = sockets::copies_for_successor(&snapshot, &bound, &per_worker)?;
    let admin_address = snapshot.admin;
    let store: SnapshotStore = Arc::new(ArcSwap::from_pointee(snapshot));
    let reloader = Arc::new(Reloader::new(
        options.config_path.clone(),
        Arc::clone(&store),
        ReloaderParts {
            bound,
            route_stats: Arc::clone(&route_stats),
            usage: Arc::clone(&usage),
            names,
            compiled,
        },
    ));
    let ready = Arc::new(AtomicUsize::new(0));
    let worker_stats: Vec<Arc<SharedWorkerStats>> =
        (0..plan.workers).map(|_| Arc::default()).collect();
    if let Some(address) = admin_address {
        let state = AdminState {
            store: Arc::clone(&store),
            reloads: Arc::clone(&reloader.stats),
            workers: worker_stats.clone(),
            ready_workers: Arc::clone(&ready),
            access_log: access_log.as_ref().map(AccessLog::stats),
        };
        let (listener, copy) = sockets::open_admin(address, plan.inherited.as_mut())?;
        let bound =
            admin::spawn_on(listener, Arc::new(state)).map_err(|source| StartError::Bind {
                listener: "admin".into(),
                address,
                source,
            })?;
        handover_copies.push(HandedListener {
            name: "admin".into(),
            address: bound,
            sockets: vec![copy.into()],
            admin: true,
        });
    }
    sockets::report_left_over(plan.inherited.as_ref());
    let stop = Arc::new(AtomicBool::new(false));
    let address_counts = Arc::new(AddressCounts::default());
    let setups = per_worker
        .into_iter()
        .enumerate()
        .map(|(id, listeners)| WorkerSetup {
            id,
            core: (!plan.cores.is_empty()).then(|| plan.cores[id % plan.cores.len()]),
            store: Arc::clone(&store),
            listeners,
            stop: Arc::clone(&stop),
            driver: plan.driver,
            stats: Arc::clone(&worker_stats[id]),
            ready: Arc::clone(&ready),
            access_log: access_log.clone(),
            address_counts: Arc::clone(&address_counts),
        });
    let workers = start_workers(setups)?;
    if options.watch {
        spawn_watcher(Arc::clone(&reloader))?;
    }
    spawn_security_summary(worker_stats, options.audit_period)?;
    crate::proxy::health_check::spawn(Arc::clone(&store))?;
    crate::runtime::resolver::spawn(Arc::clone(&reloader), Arc::clone(&store))?;
    spawn_flusher(Arc::clone(&usage), state_dir.clone(), quota_store.clone())?;
    wait_until_serving(&ready, &workers)?;
    let successor: SuccessorSlot = Arc::default();
    announce(
        options,
        notifier,
        plan.inherited,
        &store,
        handover_copies,
        &state,
        &successor,
        workers.len(),
    )?;
    Ok(Gateway {
        store,
        reloader,
        usage,
        quota_store,
        state_dir,
        access_log,
        workers,
        stop,
        successor,
        state,
    })
}

/// Compiles the config once without counters to learn the listeners, takes
/// over a running gateway's sockets if asked, and runs the start-up checks,
/// all before anything is bound.
fn plan(options: &ServerOptions, state: &dyn StateHandover) -> Result<Plan, StartError> {
    let cores = core_affinity::get_core_ids().unwrap_or_default();
    let config = compile_file(&options.config_path)?;
    let inherited = match (&options.control_socket, options.takeover) {
        (Some(path), true) => Some(takeover::request(path, state)?),
        (None, true) => return Err(StartError::TakeoverWithoutControlSocket),
        (Some(path), false) => {
            sockets::refuse_live_control_socket(path)?;
            None
        }
        (None, false) => None,
    };
    let workers = sockets::takeover_workers(inherited.as_ref(), options.workers)
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
    Ok(Plan {
        inherited,
        workers,
        driver,
        cores,
    })
}

/// The quota file under `state_dir` when the config has quotas; its counts
/// seed the registry on a fresh start (after a takeover the predecessor's
/// live counts are already seeded).
fn open_quota_store(
    snapshot: &Snapshot,
    usage: &UsageRegistry,
    fresh_start: bool,
) -> Result<Option<QuotaStore>, StartError> {
    if !snapshot.has_quotas() {
        return Ok(None);
    }
    let store = QuotaStore::open(&snapshot.state_dir)
        .map_err(|e| StartError::StateDir(snapshot.state_dir.display().to_string(), e))?;
    // After a takeover the predecessor hands its live counts over (handover.rs).
    usage.set_counts_final(!fresh_start);
    if fresh_start {
        let saved = store.load();
        info!(file = %store.path().display(), counters = saved.counts.len(), complete = saved.complete, "quota counts read back");
        usage.set_counts_final(saved.complete);
        usage.seed(saved.counts);
    }
    Ok(Some(store))
}

fn start_workers(
    setups: impl Iterator<Item = WorkerSetup>,
) -> Result<Vec<JoinHandle<std::io::Result<worker::Driver>>>, StartError> {
    setups
        .map(|setup| {
            std::thread::Builder::new()
                .name(format!("portcullis-w{}", setup.id))
                .spawn(move || worker::run(setup))
                .map_err(StartError::from)
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

/// Tells systemd and the audit log that the gateway serves; with a control
/// socket, finishes a takeover and listens for a successor.
#[allow(clippy::too_many_arguments)]
fn announce(
    options: &ServerOptions,
    notifier: &Notifier,
    inherited: Option<Inherited>,
    store: &SnapshotStore,
    handover_copies: Vec<HandedListener>,
    state: &Arc<dyn StateHandover>,
    successor: &SuccessorSlot,
    workers: usize,
) -> Result<(), StartError> {
    let Some(path) = &options.control_socket else {
        notifier.ready("serving");
        info!(target: "portcullis::audit", workers, generation = store.load().generation, "started: serving");
        return Ok(());
    };
    let control = ControlListener::bind(path)?;
    let status = match inherited {
        Some(inherited) => {
            let previous = inherited.predecessor.unwrap_or(0);
            inherited.serving(Arc::clone(state), store.load().timeouts.drain)?;
            notifier.ready_as_main(&format!("serving; took over from pid {previous}"));
            format!("took over from pid {previous}")
        }
        None => {
            notifier.ready("serving");
            "fresh start".to_string()
        }
    };
    info!(target: "portcullis::audit", workers, generation = store.load().generation, start = %status, "started: serving");
    upgrade::spawn_control_socket(
        control,
        handover_copies,
        Arc::clone(state),
        Arc::clone(successor),
        || {
            let _ = signal_hook::low_level::raise(SIGTERM);
        },
    )?;
    Ok(())
}

/// Answers signals until SIGTERM or SIGINT (or a successor's takeover):
/// SIGHUP reloads, SIGUSR2 starts a successor; then tells workers to stop.
fn serve_until_stopped(
    signals: &mut Signals,
    gateway: &Gateway,
    options: &ServerOptions,
    notifier: &Notifier,
) {
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
                            gateway.reloader.reload(Trigger::Signal);
                        })
                        .join();
                });
                let generation = gateway.store.load().generation;
                notifier.ready(&format!("serving generation {generation}"));
            }
            SIGUSR1 => {} // the access log reopens on its own flag
            SIGUSR2 => match &options.control_socket {
                Some(_) => match upgrade::spawn_successor() {
                    Ok(pid) => {
                        info!(target: "portcullis::audit", successor_pid = pid, "upgrade: started a successor to take over")
                    }
                    Err(e) => error!(error = %e, "upgrade: cannot start a successor"),
                },
                None => warn!("SIGUSR2 ignored: an upgrade needs --control-socket"),
            },
            _ => {
                if let Some(next) = lock(&gateway.successor).as_ref() {
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
                gateway.stop.store(true, Ordering::Release);
                return;
            }
        }
    }
}

impl Gateway {
    /// Waits for the workers' drain, saves quota counts (unless a successor
    /// took over: it owns the counts and the file now), closes the access log
    /// and tells a successor the drain is over.
    fn shut_down(self) {
        for handle in self.workers {
            match handle.join() {
                Ok(Ok(_)) => {}
                Ok(Err(e)) => error!(error = %e, "worker failed"),
                Err(_) => error!("worker panicked"),
            }
        }
        let handed_over = lock(&self.successor).is_some();
        let counted = !self
            .usage
            .quota_counts(crate::time::clock::now().unix_secs)
            .is_empty();
        let state_dir = &self.state_dir;
        let store = self
            .quota_store
            .or_else(|| counted.then(|| QuotaStore::open(state_dir).ok())?);
        if let Some(store) = store.filter(|_| !handed_over) {
            match flush(&self.usage, &store) {
                Ok(()) => info!(file = %store.path().display(), "quota counts saved"),
                Err(e) => {
                    error!(file = %store.path().display(), error = %e, "cannot save quota counts")
                }
            }
        }
        if let Some(log) = self.access_log {
            if !log.close(std::time::Duration::from_secs(2)) {
                warn!("access log writer did not finish within 2 s; its last lines may be lost");
            }
        }
        if let Some(next) = lock(&self.successor).take() {
            let pid = next.pid;
            match next.finish(self.state.as_ref()) {
                Ok(()) => info!(successor_pid = pid, "handed over: drained"),
                Err(e) => {
                    warn!(successor_pid = pid, error = %e, "could not report the end of the drain to the successor")
                }
            }
        }
        info!(target: "portcullis::audit", "stopped");
    }
}

fn lock<T>(mutex: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    match mutex.lock() {
        Ok(guard) => guard,
        Err(poisoned) => poisoned.into_inner(),
    }
}

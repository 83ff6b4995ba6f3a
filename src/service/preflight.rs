//! Startup checks: the gateway refuses to start, with one clear line, when it
//! could not serve what it was configured for. Each check is a plain decision
//! function (tested as rules) plus the one system call that feeds it.
//!
//! | check | refuses when |
//! |---|---|
//! | config | it does not parse or validate (done by the config pipeline itself) |
//! | port | a listener's address is bound by a running process, another gateway included (with `SO_REUSEPORT` a second gateway could otherwise join the port silently); a socket left by a process that exited is waited for (a few seconds at most) |
//! | file descriptors | the soft limit, raised to the hard limit first, is below [`fds_needed`] for the configured connection target |
//! | io_uring | `--driver io-uring` is demanded and the kernel refuses to set up a ring |

use super::port_owner::{self, Owner};
use socket2::{Domain, Protocol, Socket, Type};
use std::io;
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use tracing::{info, warn};

/// Which event driver the operator asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DriverChoice {
    /// io_uring, falling back to epoll (with a warning) where it is unavailable.
    #[default]
    Auto,
    /// io_uring or refuse to start.
    IoUring,
    /// epoll only.
    Epoll,
}

/// Descriptors the process needs besides listeners and connections: stdio,
/// log files, the admin endpoint and its clients, the control and notify
/// sockets, the config watcher, DNS lookups.
pub const FD_RESERVE: u64 = 128;

/// Descriptors each worker holds for itself (its ring or epoll instance,
/// eventfd, timers).
pub const FDS_PER_WORKER: u64 = 8;

/// Descriptors per connection: the client's socket and one pooled upstream
/// socket. A budget, not a bound: a back-end connection holds a second
/// descriptor ([`crate::io::socket_handle::SocketHandle`]), and pooled
/// back-end connections are far fewer than client connections; a client
/// connection on the epoll driver takes one only while the process holds
/// under half its limit. The shipped unit's `LimitNOFILE=65536` for
/// `--connections 30000` is sized by this figure.
pub const FDS_PER_CONNECTION: u64 = 2;

/// Connections sized for when `--connections` is not given.
pub const DEFAULT_CONNECTIONS: u64 = 4096;

/// Why the gateway refuses to start.
#[derive(Debug, thiserror::Error)]
pub enum PreflightError {
    #[error(
        "cannot start: {address} (listener `{listener}`) is already in use by another process{owner}"
    )]
    PortInUse {
        listener: String,
        address: SocketAddr,
        owner: PidNote,
    },
    #[error("cannot start: {address} (listener `{listener}`) is still bound by a socket that no running process holds (a process that exited has not released it after {waited} s); try again")]
    PortOrphaned {
        listener: String,
        address: SocketAddr,
        waited: u64,
    },
    #[error("cannot start: file-descriptor limit {limit} (hard limit {hard}) is below the {needed} needed for {connections} connections, {workers} workers and {sockets} listening sockets; raise it (systemd: LimitNOFILE=, shell: ulimit -n) or lower --connections")]
    FdLimit {
        limit: u64,
        hard: u64,
        needed: u64,
        connections: u64,
        workers: u64,
        sockets: u64,
    },
    #[error("cannot start: --driver io-uring demands io_uring, which this kernel refuses ({0}); use --driver auto to fall back to epoll")]
    IoUringUnavailable(String),
    #[error("cannot start: {0}")]
    Io(#[from] io::Error),
}

/// The descriptors a gateway needs: [`FD_RESERVE`], plus per worker its own
/// ([`FDS_PER_WORKER`]) and one listening socket per listener (twice: the
/// worker's and the copy kept for a takeover), plus [`FDS_PER_CONNECTION`]
/// per connection of the target.
pub fn fds_needed(listeners: u64, workers: u64, connections: u64) -> u64 {
    FD_RESERVE
        + workers * (FDS_PER_WORKER + 2 * listeners)
        + connections.saturating_mul(FDS_PER_CONNECTION)
}

/// The soft limit to set, given the current `(soft, hard)` limits and the
/// need: raised to the hard limit when below the need, or an error when
/// even the hard limit is below it and the need was demanded (`strict`).
/// Returns `(new soft limit, enough)`.
pub fn fd_limit_decision(soft: u64, hard: u64, needed: u64) -> (u64, bool) {
    if soft >= needed {
        (soft, true)
    } else {
        (hard.max(soft), hard >= needed)
    }
}

/// Raises the soft `RLIMIT_NOFILE` to the hard limit when it is below
/// `needed`. `strict` (the operator set `--connections`) refuses to start
/// when the limit stays too low; otherwise that is a warning.
pub fn ensure_fd_limit(
    listeners: u64,
    workers: u64,
    connections: u64,
    strict: bool,
) -> Result<u64, PreflightError> {
    use rustix::process::{getrlimit, setrlimit, Resource, Rlimit};
    let needed = fds_needed(listeners, workers, connections);
    let current = getrlimit(Resource::Nofile);
    let soft = current.current.unwrap_or(u64::MAX);
    let hard = current.maximum.unwrap_or(u64::MAX);
    // An unlimited hard limit still stops at the kernel's fs.nr_open.
    let (target, enough) = fd_limit_decision(soft, hard.min(nr_open()), needed);
    let mut limit = soft;
    if target != soft {
        let raised = Rlimit {
            current: Some(target),
            maximum: current.maximum,
        };
        match setrlimit(Resource::Nofile, raised) {
            Ok(()) => {
                info!(from = soft, to = target, "raised the file-descriptor limit");
                limit = target;
            }
            Err(e) => warn!(error = %e, "cannot raise the file-descriptor limit"),
        }
    }
    if enough && limit >= needed {
        return Ok(limit);
    }
    let error = PreflightError::FdLimit {
        limit,
        hard,
        needed,
        connections,
        workers,
        sockets: listeners * workers,
    };
    if strict {
        Err(error)
    } else {
        warn!("{}", error.to_string().replacen("cannot start: ", "", 1));
        Ok(limit)
    }
}

/// The kernel's ceiling on descriptors per process (1,048,576 when
/// /proc/sys is hidden, e.g. by systemd's `ProcSubset=pid`).
fn nr_open() -> u64 {
    std::fs::read_to_string("/proc/sys/fs/nr_open")
        .ok()
        .and_then(|text| text.trim().parse().ok())
        .unwrap_or(1 << 20)
}

/// Longest wait for a listening socket that no running process holds (one a
/// process killed with SIGKILL still holds, or left while the kernel tears
/// its io_uring down) to be released.
pub const ORPHANED_SOCKET_WAIT: Duration = Duration::from_secs(5);

/// How often the port is probed again while waiting.
const PROBE_INTERVAL: Duration = Duration::from_millis(20);

/// Fails when `address` is bound by a live process: a probe bind without
/// `SO_REUSEPORT` (so an existing `SO_REUSEPORT` group does not let it join)
/// but with `SO_REUSEADDR` (so connections in TIME_WAIT do not count).
/// When the probe finds the address taken, `/proc` tells who holds it
/// ([`super::port_owner`]): a running process refuses the start at once; a
/// socket only a process being killed or one that has exited holds (right
/// after a `kill -9`) is waited for, up to [`ORPHANED_SOCKET_WAIT`], and so
/// is an owner `/proc` does not show (another user's process). Port 0
/// always passes.
pub fn check_port_free(listener: &str, address: SocketAddr) -> Result<(), PreflightError> {
    if address.port() == 0 {
        return Ok(());
    }
    let deadline = Instant::now() + ORPHANED_SOCKET_WAIT;
    let mut said = false;
    loop {
        if !probe_in_use(address)? {
            return Ok(());
        }
        let owner = port_owner::owner(address);
        let in_use = |pid| PreflightError::PortInUse {
            listener: listener.to_string(),
            address,
            owner: pid,
        };
        match owner {
            Owner::Live(pid) => return Err(in_use(PidNote(Some(pid)))),
            _ if Instant::now() < deadline => {
                if owner == Owner::Orphaned && !said {
                    info!(%address, "waiting for the socket an exited process left bound to be released");
                    said = true;
                }
                std::thread::sleep(PROBE_INTERVAL);
            }
            Owner::Orphaned => {
                return Err(PreflightError::PortOrphaned {
                    listener: listener.to_string(),
                    address,
                    waited: ORPHANED_SOCKET_WAIT.as_secs(),
                })
            }
            Owner::Unknown => return Err(in_use(PidNote(None))),
        }
    }
}

/// Whether a probe bind of `address` finds it taken.
fn probe_in_use(address: SocketAddr) -> Result<bool, PreflightError> {
    let probe = Socket::new(
        Domain::for_address(address),
        Type::STREAM,
        Some(Protocol::TCP),
    )?;
    probe.set_reuse_address(true)?;
    match probe.bind(&address.into()) {
        Ok(()) => Ok(false),
        Err(e) if e.kind() == io::ErrorKind::AddrInUse => Ok(true),
        // Anything else (no such address, permission) is reported by the real bind.
        Err(_) => Ok(false),
    }
}

/// The owner's process id in a refusal, when `/proc` showed it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PidNote(pub Option<u32>);

impl std::fmt::Display for PidNote {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            Some(pid) => write!(f, " (pid {pid})"),
            None => Ok(()),
        }
    }
}

/// The driver to start workers with, given what the operator asked for and
/// whether the kernel set up a probe ring.
pub fn driver_decision(
    choice: DriverChoice,
    probe: Result<(), String>,
) -> Result<DriverChoice, PreflightError> {
    match (choice, probe) {
        (DriverChoice::IoUring, Err(e)) => Err(PreflightError::IoUringUnavailable(e)),
        (DriverChoice::Auto, Err(e)) => {
            warn!(error = %e, "io_uring is unavailable; every worker runs on the epoll driver");
            Ok(DriverChoice::Epoll)
        }
        (choice, _) => Ok(choice),
    }
}

/// Sets up (and drops) a small io_uring, unless the epoll driver was chosen.
pub fn probe_io_uring(choice: DriverChoice) -> Result<(), String> {
    if choice == DriverChoice::Epoll {
        return Ok(());
    }
    io_uring::IoUring::new(8)
        .map(drop)
        .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    // Rule: the need counts reserve, per-worker descriptors, two per listening socket and two per connection.
    #[test]
    fn fds_needed_adds_up() {
        assert_eq!(fds_needed(2, 4, 1000), 128 + 4 * (8 + 4) + 2000);
    }

    // Rule: a soft limit already above the need is kept.
    #[test]
    fn enough_soft_limit_is_kept() {
        assert_eq!(fd_limit_decision(65536, 65536, 1000), (65536, true));
    }

    // Rule: a soft limit below the need is raised to the hard limit.
    #[test]
    fn low_soft_limit_is_raised_to_hard() {
        assert_eq!(fd_limit_decision(1024, 524288, 20000), (524288, true));
    }

    // Rule: when even the hard limit is below the need, it is not enough.
    #[test]
    fn low_hard_limit_is_not_enough() {
        assert_eq!(fd_limit_decision(1024, 4096, 20000), (4096, false));
    }

    // Rule: demanding io_uring where it is unavailable refuses to start.
    #[test]
    fn demanded_io_uring_unavailable_refuses() {
        let decision = driver_decision(DriverChoice::IoUring, Err("ENOSYS".into()));
        assert!(matches!(
            decision,
            Err(PreflightError::IoUringUnavailable(_))
        ));
    }

    // Rule: auto falls back to epoll where io_uring is unavailable.
    #[test]
    fn auto_falls_back_to_epoll() {
        let decision = driver_decision(DriverChoice::Auto, Err("EPERM".into()));
        assert_eq!(decision.unwrap(), DriverChoice::Epoll);
    }

    // Rule: a demanded io_uring that is available is used.
    #[test]
    fn demanded_io_uring_available_is_used() {
        let decision = driver_decision(DriverChoice::IoUring, Ok(()));
        assert_eq!(decision.unwrap(), DriverChoice::IoUring);
    }

    // Rule: a port bound by a plain listener is reported as in use.
    #[test]
    fn bound_port_is_in_use() {
        let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let address = taken.local_addr().unwrap();
        assert!(matches!(
            check_port_free("public", address),
            Err(PreflightError::PortInUse { .. })
        ));
    }
}

//! The listening sockets of a start: one per listener per worker, bound with
//! `SO_REUSEPORT` or adopted from the predecessor of a takeover, and a second
//! handle on each kept for a successor. The admin listener is opened the same
//! way.

use super::start_error::StartError;
use crate::service::handover::Channel;
use crate::service::preflight;
use crate::service::takeover::{HandedListener, Inherited};
use crate::snapshot::{ListenerSpec, Snapshot};
use socket2::{Domain, Protocol, Socket, Type};
use std::net::{SocketAddr, TcpListener};
use std::path::Path;
use tracing::{info, warn};

/// Pending connections the kernel queues per worker socket.
const LISTEN_BACKLOG: i32 = 4096;

/// Each worker's sockets (one per listener, in the snapshot's order) and
/// the address each listener is bound to.
pub struct WorkerSockets {
    pub per_worker: Vec<Vec<TcpListener>>,
    pub bound: Vec<SocketAddr>,
}

/// Binds (or adopts from `inherited`) every listener of `snapshot` once per worker.
pub fn open_listeners(
    snapshot: &Snapshot,
    mut inherited: Option<&mut Inherited>,
    workers: usize,
) -> Result<WorkerSockets, StartError> {
    let mut per_worker: Vec<Vec<TcpListener>> = (0..workers).map(|_| Vec::new()).collect();
    let mut bound = Vec::with_capacity(snapshot.listeners.len());
    for spec in &snapshot.listeners {
        let handed = inherited
            .as_mut()
            .and_then(|i| i.take_listener(&spec.name, spec.address));
        let address = match handed {
            Some(handed) => adopt(handed, &mut per_worker)?,
            None => {
                preflight::check_port_free(&spec.name, spec.address)?;
                bind_for_workers(spec, &mut per_worker)?
            }
        };
        info!(listener = %spec.name, address = %address, "listening");
        bound.push(address);
    }
    Ok(WorkerSockets { per_worker, bound })
}

/// Warns about the sockets a takeover handed over that no listener (nor the
/// admin endpoint) took: they close.
pub fn report_left_over(inherited: Option<&Inherited>) {
    for gone in inherited.iter().flat_map(|i| i.listeners.iter()) {
        warn!(listener = %gone.name, address = %gone.address, "takeover: this listener is no longer configured; its sockets close");
    }
}

/// The admin endpoint's listener (adopted or bound) and a copy for a successor.
pub fn open_admin(
    address: SocketAddr,
    inherited: Option<&mut Inherited>,
) -> Result<(TcpListener, TcpListener), StartError> {
    let bind_error = |source| StartError::Bind {
        listener: "admin".into(),
        address,
        source,
    };
    let listener = match inherited.and_then(|i| i.take_admin(address)) {
        Some(fd) => TcpListener::from(fd),
        None => {
            preflight::check_port_free("admin", address)?;
            TcpListener::bind(address).map_err(bind_error)?
        }
    };
    let copy = listener.try_clone().map_err(bind_error)?;
    Ok((listener, copy))
}

/// The worker count a takeover keeps: one worker per socket handed over.
pub fn takeover_workers(inherited: Option<&Inherited>, asked: Option<usize>) -> Option<usize> {
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
pub fn refuse_live_control_socket(path: &Path) -> Result<(), StartError> {
    match Channel::connect(path) {
        Ok(_) => Err(StartError::ControlSocketInUse(path.to_path_buf())),
        Err(_) => Ok(()),
    }
}

/// Gives each worker one of the sockets handed over for a listener.
fn adopt(
    handed: HandedListener,
    sockets: &mut [Vec<TcpListener>],
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
        let listener = TcpListener::from(fd);
        listener.set_nonblocking(true)?;
        worker_sockets.push(listener);
    }
    Ok(handed.address)
}

/// A second handle on every listening socket, kept to hand to a successor.
pub fn copies_for_successor(
    snapshot: &Snapshot,
    bound: &[SocketAddr],
    sockets: &[Vec<TcpListener>],
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

/// Binds one socket per worker for `spec`; the first resolves port 0 and the
/// others join it with `SO_REUSEPORT`. Returns the bound address.
fn bind_for_workers(
    spec: &ListenerSpec,
    sockets: &mut [Vec<TcpListener>],
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

fn bind_one(address: SocketAddr) -> std::io::Result<TcpListener> {
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

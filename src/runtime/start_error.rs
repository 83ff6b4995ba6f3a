//! Why the gateway could not start: every start-up failure as one variant with
//! a message for the operator (one line on stderr, then exit status 1).

use crate::config::ConfigError;
use crate::service::preflight::PreflightError;
use crate::service::takeover::TakeoverError;
use std::net::SocketAddr;
use std::path::PathBuf;

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

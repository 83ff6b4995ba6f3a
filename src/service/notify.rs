//! `sd_notify`: tells the service manager how the process is doing by sending
//! datagrams to the Unix socket named by `$NOTIFY_SOCKET` (a path, or an
//! abstract name written with a leading `@`).
//!
//! Without `$NOTIFY_SOCKET` (not started by systemd, or `Type=` is not
//! `notify`) every call does nothing. A failed send is logged once at debug
//! level and otherwise ignored: the manager's bookkeeping must never stop the
//! gateway from serving.

use std::os::unix::net::{SocketAddr, UnixDatagram};
use tracing::debug;

/// The environment variable systemd sets for `Type=notify` services.
pub const NOTIFY_SOCKET_ENV: &str = "NOTIFY_SOCKET";

/// A handle on the service manager's notification socket.
#[derive(Debug)]
pub struct Notifier {
    target: Option<(UnixDatagram, SocketAddr)>,
}

impl Notifier {
    /// The notifier for `$NOTIFY_SOCKET`, or one that does nothing when it is
    /// unset or unusable.
    pub fn from_env() -> Notifier {
        let target = std::env::var_os(NOTIFY_SOCKET_ENV).and_then(|name| {
            let name = name.to_string_lossy().into_owned();
            match connect(&name) {
                Ok(target) => Some(target),
                Err(e) => {
                    debug!(socket = %name, error = %e, "cannot use NOTIFY_SOCKET");
                    None
                }
            }
        });
        Notifier { target }
    }

    /// True when a service manager is listening.
    pub fn enabled(&self) -> bool {
        self.target.is_some()
    }

    /// Every worker serves: `READY=1` and a status line.
    pub fn ready(&self, status: &str) {
        self.send(&format!("READY=1\nSTATUS={status}\n"));
    }

    /// This process is now the service's main process (after a takeover), and
    /// it serves.
    pub fn ready_as_main(&self, status: &str) {
        self.send(&format!(
            "MAINPID={}\nREADY=1\nSTATUS={status}\n",
            std::process::id()
        ));
    }

    /// A reload starts: `RELOADING=1` with the monotonic time systemd wants.
    pub fn reloading(&self) {
        self.send(&format!(
            "RELOADING=1\nMONOTONIC_USEC={}\nSTATUS=reloading the configuration\n",
            monotonic_usec()
        ));
    }

    /// Draining before exit.
    pub fn stopping(&self, status: &str) {
        self.send(&format!("STOPPING=1\nSTATUS={status}\n"));
    }

    /// A free-form status line (`systemctl status` shows it).
    pub fn status(&self, status: &str) {
        self.send(&format!("STATUS={status}\n"));
    }

    fn send(&self, message: &str) {
        if let Some((socket, address)) = &self.target {
            if let Err(e) = socket.send_to_addr(message.as_bytes(), address) {
                debug!(error = %e, "sd_notify send failed");
            }
        }
    }
}

/// `CLOCK_MONOTONIC` in microseconds, as `MONOTONIC_USEC=` expects.
fn monotonic_usec() -> u64 {
    let now = rustix::time::clock_gettime(rustix::time::ClockId::Monotonic);
    (now.tv_sec as u64).saturating_mul(1_000_000) + (now.tv_nsec as u64) / 1_000
}

/// An unbound datagram socket and the address `name` designates.
fn connect(name: &str) -> std::io::Result<(UnixDatagram, SocketAddr)> {
    let address = socket_address(name)?;
    Ok((UnixDatagram::unbound()?, address))
}

/// `@name` is an abstract socket; anything else is a filesystem path.
fn socket_address(name: &str) -> std::io::Result<SocketAddr> {
    use std::os::linux::net::SocketAddrExt;
    match name.strip_prefix('@') {
        Some(abstract_name) => SocketAddr::from_abstract_name(abstract_name.as_bytes()),
        None if name.starts_with('/') => SocketAddr::from_pathname(name),
        None => Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "NOTIFY_SOCKET is neither an absolute path nor an abstract @name",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Rule: a message reaches a socket bound at a filesystem path.
    #[test]
    fn sends_to_a_path_socket() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify.sock");
        let server = UnixDatagram::bind(&path).unwrap();
        let (socket, address) = connect(path.to_str().unwrap()).unwrap();
        let notifier = Notifier {
            target: Some((socket, address)),
        };
        notifier.ready("serving");
        let mut buf = [0u8; 256];
        let n = server.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"READY=1\nSTATUS=serving\n");
    }

    // Rule: `@name` designates an abstract socket.
    #[test]
    fn sends_to_an_abstract_socket() {
        use std::os::linux::net::SocketAddrExt;
        let name = format!("portcullis-notify-test-{}", std::process::id());
        let server =
            UnixDatagram::bind_addr(&SocketAddr::from_abstract_name(name.as_bytes()).unwrap())
                .unwrap();
        let (socket, address) = connect(&format!("@{name}")).unwrap();
        Notifier {
            target: Some((socket, address)),
        }
        .stopping("draining");
        let mut buf = [0u8; 256];
        let n = server.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"STOPPING=1\nSTATUS=draining\n");
    }

    // Rule: a relative NOTIFY_SOCKET is refused rather than resolved against the cwd.
    #[test]
    fn relative_name_is_refused() {
        assert!(socket_address("notify.sock").is_err());
    }
}

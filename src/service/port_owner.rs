//! Who holds a listening address: the kernel's socket tables
//! (`/proc/net/tcp`, `/proc/net/tcp6`) and the processes' descriptor tables
//! (`/proc/PID/fd`). The start-up port check ([`super::preflight`]) asks this
//! when its probe bind fails, to tell a live listener from the listening
//! socket of a process that is dying: a gateway sent SIGKILL still holds its
//! sockets for a moment (the signal pending, its descriptors not yet
//! closed), then leaves them bound while the kernel tears its io_uring
//! instances down, held by no process's descriptor table.
//!
//! Reads `/proc` only; never on the request path.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// TCP state `LISTEN` in the kernel's socket tables.
const TCP_LISTEN: &str = "0A";

/// What holds a listening address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Owner {
    /// A running process has the socket open.
    Live(u32),
    /// Listening sockets on the address exist, and no running process has
    /// one of them open: only a process that has exited, or one that is
    /// being killed (SIGKILL pending, or a zombie).
    Orphaned,
    /// Cannot tell: `/proc` is unreadable, or some processes' descriptor
    /// tables are (another user's).
    Unknown,
}

/// Who holds `address`, as far as `/proc` tells.
pub fn owner(address: SocketAddr) -> Owner {
    let mut inodes = Vec::new();
    let mut readable = false;
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        if let Ok(text) = std::fs::read_to_string(table) {
            readable = true;
            inodes.extend(text.lines().filter_map(|l| listening_inode(l, address)));
        }
    }
    if !readable {
        return Owner::Unknown;
    }
    if inodes.is_empty() {
        // Released meanwhile (or held in a way the tables do not show).
        return Owner::Orphaned;
    }
    holder(&inodes)
}

/// The process that has one of `inodes` open, scanning every descriptor
/// table `/proc` shows.
fn holder(inodes: &[u64]) -> Owner {
    let Ok(processes) = std::fs::read_dir("/proc") else {
        return Owner::Unknown;
    };
    let mut complete = true;
    for process in processes.flatten() {
        let Some(pid) = process.file_name().to_str().and_then(|p| p.parse().ok()) else {
            continue;
        };
        let descriptors = match std::fs::read_dir(process.path().join("fd")) {
            Ok(descriptors) => descriptors,
            // Gone meanwhile: it holds nothing.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(_) => {
                complete = false;
                continue;
            }
        };
        for descriptor in descriptors.flatten() {
            let Ok(target) = std::fs::read_link(descriptor.path()) else {
                continue;
            };
            if socket_inode(&target.to_string_lossy()).is_some_and(|i| inodes.contains(&i)) {
                if !dying(pid) {
                    return Owner::Live(pid);
                }
                break;
            }
        }
    }
    if complete {
        Owner::Orphaned
    } else {
        Owner::Unknown
    }
}

/// True when process `pid` is being killed or has exited: a zombie (or dead),
/// or SIGKILL pending for it ([`killed`]).
fn dying(pid: u32) -> bool {
    let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status")) else {
        // Gone meanwhile.
        return true;
    };
    killed(&status)
}

/// Whether a `/proc/PID/status` text shows a process being killed: state
/// `Z` or `X`, or SIGKILL (signal 9: bit 8) in `SigPnd` or `ShdPnd`.
pub fn killed(status: &str) -> bool {
    status.lines().any(|line| {
        let Some((key, value)) = line.split_once(':') else {
            return false;
        };
        let value = value.trim();
        match key {
            "State" => value.starts_with('Z') || value.starts_with('X'),
            "SigPnd" | "ShdPnd" => {
                u64::from_str_radix(value, 16).is_ok_and(|mask| mask & (1 << 8) != 0)
            }
            _ => false,
        }
    })
}

/// The inode of a descriptor's link target `socket:[INODE]`.
fn socket_inode(target: &str) -> Option<u64> {
    target
        .strip_prefix("socket:[")?
        .strip_suffix(']')?
        .parse()
        .ok()
}

/// The inode of a `/proc/net/tcp{,6}` line's socket when it listens where
/// a bind of `address` would collide: the same port, and the same address
/// or either of them the unspecified one.
pub fn listening_inode(line: &str, address: SocketAddr) -> Option<u64> {
    let fields: Vec<&str> = line.split_whitespace().collect();
    if fields.get(3) != Some(&TCP_LISTEN) {
        return None;
    }
    let (ip, port) = fields.get(1)?.split_once(':')?;
    let port = u16::from_str_radix(port, 16).ok()?;
    let ip = table_address(ip)?;
    let collides = port == address.port()
        && (ip == address.ip() || ip.is_unspecified() || address.ip().is_unspecified());
    if !collides {
        return None;
    }
    fields.get(9)?.parse().ok()
}

/// An address as the kernel's tables print it: the bytes in network order,
/// read as native 32-bit words, each printed as 8 hex digits.
fn table_address(hex: &str) -> Option<IpAddr> {
    let word = |i: usize| -> Option<[u8; 4]> {
        let text = hex.get(i * 8..i * 8 + 8)?;
        Some(u32::from_str_radix(text, 16).ok()?.to_ne_bytes())
    };
    match hex.len() {
        8 => Some(IpAddr::V4(Ipv4Addr::from(word(0)?))),
        32 => {
            let mut bytes = [0u8; 16];
            for i in 0..4 {
                bytes[i * 4..i * 4 + 4].copy_from_slice(&word(i)?);
            }
            Some(IpAddr::V6(Ipv6Addr::from(bytes)))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `127.0.0.1` as a little- or big-endian machine's table prints it.
    fn loopback_hex() -> String {
        format!("{:08X}", u32::from_ne_bytes([127, 0, 0, 1]))
    }

    // Rule: a LISTEN line on the same address and port yields its inode.
    #[test]
    fn listening_line_on_the_address_matches() {
        let line = format!(
            "   0: {}:4870 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 151006 1 0 100 0 0 10 0",
            loopback_hex()
        );
        let address: SocketAddr = "127.0.0.1:18544".parse().unwrap();
        assert_eq!(listening_inode(&line, address), Some(151006));
    }

    // Rule: another port, or a socket that is not listening, does not match;
    // a wildcard listener collides with every address on its port.
    #[test]
    fn other_ports_and_states_do_not_match() {
        let address: SocketAddr = "127.0.0.1:18544".parse().unwrap();
        let other_port = format!(
            "0: {}:4871 00000000:0000 0A 0:0 0:0 0 0 0 7",
            loopback_hex()
        );
        let established = format!(
            "0: {}:4870 00000000:0000 01 0:0 0:0 0 0 0 7",
            loopback_hex()
        );
        let wildcard = "0: 00000000:4870 00000000:0000 0A 0:0 0:0 0 0 0 7";
        assert_eq!(
            [
                listening_inode(&other_port, address),
                listening_inode(&established, address),
                listening_inode(wildcard, address),
            ],
            [None, None, Some(7)]
        );
    }

    // Rule: a descriptor's `socket:[N]` link names inode N; other links none.
    #[test]
    fn socket_links_name_inodes() {
        assert_eq!(
            [socket_inode("socket:[151006]"), socket_inode("/dev/null")],
            [Some(151006), None]
        );
    }

    // Rule: a zombie, or a process with SIGKILL pending, is being killed; a running one is not.
    #[test]
    fn killed_processes_are_told_apart() {
        let running =
            "State:\tS (sleeping)\nSigPnd:\t0000000000000000\nShdPnd:\t0000000000000000\n";
        let sigkill = "State:\tR (running)\nSigPnd:\t0000000000000000\nShdPnd:\t0000000000000100\n";
        let zombie = "State:\tZ (zombie)\nSigPnd:\t0000000000000000\n";
        let sigterm = "State:\tR (running)\nShdPnd:\t0000000000004000\n";
        assert_eq!(
            [running, sigkill, zombie, sigterm].map(killed),
            [false, true, true, false]
        );
    }

    // Rule: a socket this process listens on has a live owner: this process.
    #[test]
    fn own_listener_is_live() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let address = listener.local_addr().unwrap();
        assert_eq!(owner(address), Owner::Live(std::process::id()));
    }
}

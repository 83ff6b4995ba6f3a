//! Listening addresses one process cannot bind together: the same port on the
//! same address, or on a wildcard address that covers the other (`0.0.0.0`
//! covers every IPv4 address; `[::]`, dual-stack as Linux binds it by default,
//! covers every address). Port 0 never collides: the kernel picks a free one.
//!
//! `check` must refuse what `run` cannot bind, and name both entries, rather
//! than let `run` fail later with "in use by another process". The admin
//! address is held to the same rule, and warned about off loopback.

use super::ListenerSpec;
use std::net::{IpAddr, SocketAddr};

/// Refuses an admin address that collides with a listener's; warns when it is
/// not a loopback address (the default is `127.0.0.1:9901`): `/config`,
/// `/usage` and `/metrics` hold no secret but name every route and subscriber.
pub fn check_admin(
    admin: SocketAddr,
    listeners: &[ListenerSpec],
    warnings: &mut Vec<String>,
) -> Result<(), String> {
    if let Some(other) = listeners.iter().find(|l| collide(l.address, admin)) {
        return Err(format!(
            "admin address {admin} overlaps listener `{}` at {}: the admin endpoint needs a port of its own",
            other.name, other.address
        ));
    }
    if !admin.ip().to_canonical().is_loopback() {
        warnings.push(format!(
            "the admin endpoint listens on {admin}, not a loopback address: anyone who reaches it can read /config, /usage and /metrics"
        ));
    }
    Ok(())
}

/// True when `a` and `b` cannot both be bound by the gateway.
pub fn collide(a: SocketAddr, b: SocketAddr) -> bool {
    if a.port() == 0 || a.port() != b.port() {
        return false;
    }
    let (a, b) = (a.ip().to_canonical(), b.ip().to_canonical());
    a == b || covers(a, b) || covers(b, a)
}

/// True when binding `wide` takes the port on `other` too.
fn covers(wide: IpAddr, other: IpAddr) -> bool {
    match wide {
        IpAddr::V6(v6) => v6.is_unspecified(),
        IpAddr::V4(v4) => v4.is_unspecified() && other.is_ipv4(),
    }
}

#[cfg(test)]
mod tests {
    use super::collide;

    fn pair(a: &str, b: &str) -> bool {
        collide(a.parse().unwrap(), b.parse().unwrap())
    }

    // Which address pairs collide, and which may be bound side by side.
    #[test]
    fn collisions() {
        for (a, b, expected) in [
            ("127.0.0.1:80", "127.0.0.1:80", true),
            ("0.0.0.0:80", "127.0.0.1:80", true),
            ("127.0.0.1:80", "0.0.0.0:80", true),
            ("[::]:80", "10.0.0.1:80", true),
            ("[::]:80", "[::1]:80", true),
            ("[::ffff:127.0.0.1]:80", "127.0.0.1:80", true),
            ("0.0.0.0:80", "[::1]:80", false),
            ("127.0.0.1:80", "127.0.0.2:80", false),
            ("127.0.0.1:80", "127.0.0.1:81", false),
            ("0.0.0.0:0", "0.0.0.0:0", false),
        ] {
            assert_eq!(pair(a, b), expected, "{a} / {b}");
        }
    }
}

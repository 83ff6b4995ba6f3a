//! Listening addresses one process cannot bind together: the same port on the
//! same address, or on a wildcard address that covers the other (`0.0.0.0`
//! covers every IPv4 address; `[::]`, dual-stack as Linux binds it by default,
//! covers every address). Port 0 never collides: the kernel picks a free one.
//!
//! `check` must refuse what `run` cannot bind, and name both entries, rather
//! than let `run` fail later with "in use by another process".

use std::net::{IpAddr, SocketAddr};

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

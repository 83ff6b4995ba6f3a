//! What the system says about names: the DNS servers of /etc/resolv.conf
//! (`nameserver` lines) and whether /etc/hosts names a host. Parsing is pure
//! (text in, answer out); the two file readers are thin.

use std::net::{IpAddr, SocketAddr};

/// The `nameserver` addresses of a resolv.conf text, port 53, in order.
/// Link-local IPv6 servers with a zone (`fe80::1%eth0`) are skipped.
pub fn nameservers_in(text: &str) -> Vec<SocketAddr> {
    text.lines()
        .filter_map(|line| {
            let mut words = line.split_whitespace();
            (words.next() == Some("nameserver"))
                .then(|| words.next())
                .flatten()
                .and_then(|ip| ip.parse::<IpAddr>().ok())
                .map(|ip| SocketAddr::new(ip, 53))
        })
        .collect()
}

/// True when a hosts-file text gives `host` an address (names compare
/// without case; `#` starts a comment).
pub fn hosts_names(text: &str, host: &str) -> bool {
    text.lines().any(|line| {
        let line = line.split('#').next().unwrap_or_default();
        let mut words = line.split_whitespace();
        words.next().is_some_and(|ip| ip.parse::<IpAddr>().is_ok())
            && words.any(|name| name.eq_ignore_ascii_case(host))
    })
}

/// The DNS servers of /etc/resolv.conf (none when it cannot be read).
pub fn system_nameservers() -> Vec<SocketAddr> {
    std::fs::read_to_string("/etc/resolv.conf")
        .map(|text| nameservers_in(&text))
        .unwrap_or_default()
}

/// True when /etc/hosts names `host`.
pub fn in_hosts_file(host: &str) -> bool {
    std::fs::read_to_string("/etc/hosts").is_ok_and(|text| hosts_names(&text, host))
}

#[cfg(test)]
mod tests {
    use super::*;

    // Only `nameserver` lines with an IP count, each on port 53.
    #[test]
    fn nameservers_are_read_in_order() {
        let text = "# comment\nsearch example.test\nnameserver 10.0.0.53\nnameserver ::1\nnameserver fe80::1%eth0\noptions ndots:2\n";
        assert_eq!(
            nameservers_in(text),
            vec![
                "10.0.0.53:53".parse::<SocketAddr>().unwrap(),
                "[::1]:53".parse().unwrap()
            ]
        );
    }

    // A hosts file names a host in any column after the address, any case, not in comments.
    #[test]
    fn hosts_file_names() {
        let text = "127.0.0.1 localhost Loopback\n# 10.0.0.1 hidden\n10.0.0.2 db # db2\n";
        let found: Vec<bool> = ["LOCALHOST", "loopback", "hidden", "db", "db2"]
            .iter()
            .map(|h| hosts_names(text, h))
            .collect();
        assert_eq!(found, [true, true, false, true, false]);
    }
}

//! IP network sets for allow/deny rules: parsing CIDR entries, merging them into
//! disjoint sorted ranges, and answering "is this address in the set?".
//!
//! Sits at two points of a request's way: the listener's ingress rules at accept time
//! (every new connection, before any byte is read) and the deployment's `network`
//! policy step (every request). Lookups are a binary search over merged ranges, so
//! they never allocate and cost O(log ranges) whatever the operator writes.
//! An IPv4-mapped IPv6 address (`::ffff:a.b.c.d`) is looked up as IPv4.
//!
//! It must not do I/O, log, or know about config files or sockets: it is given strings
//! at compile time and addresses at run time.

use std::net::{IpAddr, Ipv6Addr};

/// One entry of a CIDR list that could not be parsed: its position in the list given to
/// [`CidrSet::parse`], the entry as written, and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{entry}` is not an IP address or CIDR block: {reason}")]
pub struct CidrError {
    pub index: usize,
    pub entry: String,
    pub reason: &'static str,
}

/// A set of IP networks.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CidrSet {
    /// Disjoint, sorted, non-adjacent inclusive IPv4 ranges.
    v4: Vec<(u32, u32)>,
    /// Disjoint, sorted, non-adjacent inclusive IPv6 ranges.
    v6: Vec<(u128, u128)>,
}

/// The top 96 bits of `::ffff:0:0/96`, the block that holds IPv4-mapped addresses.
const V4_MAPPED_NETWORK: u128 = 0xffff;

impl CidrSet {
    /// Parses entries like "10.0.0.0/8", "192.0.2.7" (a single host), "2001:db8::/32", "::1".
    /// Rejects: bad addresses, prefix lengths over 32/128, host bits set beyond the prefix
    /// (e.g. "10.0.0.1/8" → error reason "host bits set"), empty strings, whitespace.
    /// An IPv6 entry inside `::ffff:0:0/96` is stored as the IPv4 block it maps.
    pub fn parse<S: AsRef<str>>(entries: &[S]) -> Result<CidrSet, CidrError> {
        let mut v4 = Vec::new();
        let mut v6 = Vec::new();
        for (index, entry) in entries.iter().enumerate() {
            let entry = entry.as_ref();
            let error = |reason| CidrError {
                index,
                entry: entry.to_owned(),
                reason,
            };
            match parse_entry(entry).map_err(error)? {
                (true, lo, hi) => v4.push((lo as u32, hi as u32)),
                (false, lo, hi) => v6.push((lo, hi)),
            }
        }
        Ok(CidrSet {
            v4: merge(v4, |x: u32| x.checked_add(1)),
            v6: merge(v6, |x: u128| x.checked_add(1)),
        })
    }

    /// Whether `ip` lies in one of the set's networks. Never allocates.
    pub fn contains(&self, ip: IpAddr) -> bool {
        match ip {
            IpAddr::V4(v4) => lookup(&self.v4, u32::from(v4)),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => lookup(&self.v4, u32::from(v4)),
                None => lookup(&self.v6, u128::from(v6)),
            },
        }
    }

    /// True when the set holds no network at all.
    pub fn is_empty(&self) -> bool {
        self.v4.is_empty() && self.v6.is_empty()
    }

    /// Number of disjoint ranges after merging.
    pub fn ranges(&self) -> usize {
        self.v4.len() + self.v6.len()
    }
}

/// Allow and deny lists: deny wins over allow; an empty allow list allows everyone.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NetworkRule {
    pub allow: CidrSet,
    pub deny: CidrSet,
}

impl NetworkRule {
    /// Whether a peer at `ip` may pass. Never allocates.
    pub fn permits(&self, ip: IpAddr) -> bool {
        !self.deny.contains(ip) && (self.allow.is_empty() || self.allow.contains(ip))
    }

    /// True when the rule can refuse anyone (some allow or deny entry exists).
    pub fn is_restrictive(&self) -> bool {
        !self.allow.is_empty() || !self.deny.is_empty()
    }
}

/// The /64 network prefix of an IPv6 address, for rate-limit keys.
pub fn ipv6_slash64(ip: Ipv6Addr) -> u64 {
    (u128::from(ip) >> 64) as u64
}

/// One entry as `(is IPv4, first, last)`, an inclusive range; IPv4 values fit in 32 bits.
fn parse_entry(entry: &str) -> Result<(bool, u128, u128), &'static str> {
    if entry.is_empty() {
        return Err("empty entry");
    }
    if entry.chars().any(char::is_whitespace) {
        return Err("whitespace is not allowed");
    }
    let (addr, prefix) = match entry.split_once('/') {
        Some((addr, prefix)) => (addr, Some(parse_prefix(prefix)?)),
        None => (entry, None),
    };
    let ip: IpAddr = addr.parse().map_err(|_| "bad address")?;
    let (base, bits, too_long) = match ip {
        IpAddr::V4(v4) => (u128::from(u32::from(v4)), 32, "prefix length over 32"),
        IpAddr::V6(v6) => (u128::from(v6), 128, "prefix length over 128"),
    };
    let prefix = prefix.unwrap_or(bits);
    if prefix > bits {
        return Err(too_long);
    }
    // The host part: the low `bits - prefix` bits (a shift by 128 means none).
    let host = (u128::MAX >> (128 - bits)).checked_shr(prefix).unwrap_or(0);
    if base & host != 0 {
        return Err("host bits set");
    }
    // A block inside ::ffff:0:0/96 only ever meets mapped addresses, looked up as IPv4.
    let is_v4 = bits == 32 || (prefix >= 96 && base >> 32 == V4_MAPPED_NETWORK);
    Ok((is_v4, base, base | host))
}

/// A prefix length: one to three ASCII digits (no sign, no spaces).
fn parse_prefix(text: &str) -> Result<u32, &'static str> {
    if text.is_empty() || text.len() > 3 || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err("bad prefix length");
    }
    text.parse().map_err(|_| "bad prefix length")
}

/// Sorts ranges and merges overlapping or adjacent ones into disjoint sorted ranges;
/// `next` is the address after `x`, `None` at the top of the family.
fn merge<T: Copy + Ord>(mut ranges: Vec<(T, T)>, next: fn(T) -> Option<T>) -> Vec<(T, T)> {
    ranges.sort_unstable();
    let mut merged: Vec<(T, T)> = Vec::with_capacity(ranges.len());
    for (lo, hi) in ranges {
        match merged.last_mut() {
            Some(last) if next(last.1).is_none_or(|after| lo <= after) => last.1 = last.1.max(hi),
            _ => merged.push((lo, hi)),
        }
    }
    merged.shrink_to_fit();
    merged
}

/// Binary search: is `x` inside one of the disjoint sorted inclusive `ranges`?
fn lookup<T: Copy + Ord>(ranges: &[(T, T)], x: T) -> bool {
    let after = ranges.partition_point(|&(lo, _)| lo <= x);
    after > 0 && ranges[after - 1].1 >= x
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    fn set(entries: &[&str]) -> CidrSet {
        CidrSet::parse(entries).unwrap()
    }

    /// Which of `addrs` the set parsed from `entries` contains.
    fn hits<const N: usize>(entries: &[&str], addrs: [&str; N]) -> [bool; N] {
        let s = set(entries);
        addrs.map(|a| s.contains(a.parse().unwrap()))
    }

    fn rule(allow: &[&str], deny: &[&str]) -> NetworkRule {
        NetworkRule {
            allow: set(allow),
            deny: set(deny),
        }
    }

    fn reason(entry: &str) -> &'static str {
        CidrSet::parse(&[entry]).unwrap_err().reason
    }

    #[test]
    fn single_host_matches_only_itself() {
        // An address without a prefix is one host.
        let got = hits(&["192.0.2.7"], ["192.0.2.7", "192.0.2.8"]);
        assert_eq!(got, [true, false]);
    }

    #[test]
    fn slash_zero_matches_its_whole_family() {
        // 0.0.0.0/0 holds every IPv4 address, ::/0 every (non-mapped) IPv6 address.
        let ends = [
            "0.0.0.0",
            "255.255.255.255",
            "::",
            "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
        ];
        assert_eq!(hits(&["0.0.0.0/0", "::/0"], ends), [true; 4]);
    }

    #[test]
    fn slash_32_is_one_host() {
        // /32 is a single IPv4 address.
        let got = hits(&["10.1.2.3/32"], ["10.1.2.3", "10.1.2.4"]);
        assert_eq!(got, [true, false]);
    }

    #[test]
    fn slash_128_is_one_host() {
        // /128 is a single IPv6 address.
        let got = hits(&["2001:db8::1/128"], ["2001:db8::1", "2001:db8::2"]);
        assert_eq!(got, [true, false]);
    }

    #[test]
    fn adjacent_ranges_merge() {
        // Two halves of a /24 become one range.
        assert_eq!(set(&["10.0.0.0/25", "10.0.0.128/25"]).ranges(), 1);
    }

    #[test]
    fn overlapping_ranges_merge() {
        // A block inside another, and duplicates, add no range.
        let s = set(&["10.0.0.0/8", "10.1.0.0/16", "10.0.0.0/8", "::1", "::1"]);
        assert_eq!(s.ranges(), 2);
    }

    #[test]
    fn mapped_v6_matches_v4_rules() {
        // ::ffff:a.b.c.d is looked up as a.b.c.d.
        assert_eq!(hits(&["10.0.0.0/8"], ["::ffff:10.9.8.7"]), [true]);
    }

    #[test]
    fn mapped_v6_entry_matches_v4_peer() {
        // A rule written inside ::ffff:0:0/96 applies to the IPv4 addresses it maps.
        assert_eq!(hits(&["::ffff:10.0.0.0/104"], ["10.9.8.7"]), [true]);
    }

    #[test]
    fn v4_rules_do_not_match_v6() {
        // 0.0.0.0/0 says nothing about native IPv6 peers.
        assert_eq!(hits(&["0.0.0.0/0"], ["2001:db8::1"]), [false]);
    }

    #[test]
    fn v6_rules_do_not_match_v4() {
        // ::/0 says nothing about IPv4 peers.
        assert_eq!(hits(&["::/0"], ["10.0.0.1"]), [false]);
    }

    #[test]
    fn deny_wins_over_allow() {
        // An address both allowed and denied is refused.
        let rule = rule(&["10.0.0.0/8"], &["10.0.0.0/24"]);
        assert!(!rule.permits("10.0.0.5".parse().unwrap()));
    }

    #[test]
    fn empty_allow_allows_all() {
        // With no allow entries, anyone not denied passes.
        let rule = rule(&[], &["10.0.0.0/24"]);
        assert!(rule.permits("192.0.2.1".parse().unwrap()));
    }

    #[test]
    fn empty_rule_is_not_restrictive() {
        // A rule with no entries can refuse nobody.
        assert!(!NetworkRule::default().is_restrictive());
    }

    #[test]
    fn each_malformed_entry_is_refused_with_its_reason() {
        // Typos are errors, never silently widened or narrowed rules.
        let cases = [
            ("10.0.0.256/8", "bad address"),
            ("10.0.0.0/33", "prefix length over 32"),
            ("2001:db8::/129", "prefix length over 128"),
            ("10.0.0.1/8", "host bits set"),
            ("", "empty entry"),
            (" 10.0.0.0/8", "whitespace is not allowed"),
            ("10.0.0.0/+8", "bad prefix length"),
        ];
        assert_eq!(
            cases.map(|(entry, _)| reason(entry)),
            cases.map(|(_, why)| why)
        );
    }

    #[test]
    fn error_names_the_entry_and_its_index() {
        // The error points at the offending entry.
        let err = CidrSet::parse(&["10.0.0.0/8", "nope"]).unwrap_err();
        assert_eq!((err.index, err.entry.as_str()), (1, "nope"));
    }

    #[test]
    fn range_boundaries_are_inclusive() {
        // First and last addresses are in; one below and one above are out.
        let addrs = ["10.0.0.255", "10.0.1.0", "10.0.1.255", "10.0.2.0"];
        let got = hits(&["10.0.1.0/24"], addrs);
        assert_eq!(got, [false, true, true, false]);
    }

    #[test]
    fn ten_thousand_slash_24s_found_and_neighbours_not() {
        // Every /24 of a large set is found at both ends; the addresses around it are not.
        let (mut x, mut bases, mut entries) = (0x2545_f491_4f6c_dd1d_u64, vec![], vec![]);
        for _ in 0..10_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            // Bit 8 clear: only even /24s, so each one's neighbours are never in the set.
            let base = ((x >> 32) as u32 & 0xffff_fe00) | 0x0200;
            bases.push(base);
            entries.push(format!("{}/24", Ipv4Addr::from(base)));
        }
        let s = CidrSet::parse(&entries).unwrap();
        let has = |x: u32| s.contains(IpAddr::V4(Ipv4Addr::from(x)));
        let ok = bases
            .iter()
            .all(|&b| has(b) && has(b + 255) && !has(b - 1) && !has(b + 256));
        assert!(ok);
    }

    #[test]
    fn slash64_is_the_network_half() {
        // The rate-limit key is the top 64 bits.
        assert_eq!(
            ipv6_slash64("2001:db8:1:2:3:4:5:6".parse().unwrap()),
            0x2001_0db8_0001_0002
        );
    }
}

//! IP network sets for allow/deny rules: parsing CIDR entries, merging them into
//! disjoint sorted ranges, and answering "is this address in the set?".
//!
//! Sits at two points of a request's way: the listener's ingress rules at accept time
//! (every new connection, before any byte is read) and the deployment's `network`
//! policy step (every request). Lookups never allocate and cost about the same for 10
//! networks as for 10,000. An IPv4-mapped IPv6 address (`::ffff:a.b.c.d`) is looked up
//! as IPv4. It must not do I/O, log, or know about config files or sockets: it is given
//! strings when a snapshot is compiled and addresses at run time.

use std::net::IpAddr;

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
    v4: Ranges<u32>,
    v6: Ranges<u128>,
}

impl CidrSet {
    /// Parses entries like "10.0.0.0/8", "192.0.2.7" (a single host), "2001:db8::/32", "::1".
    /// Rejects: bad addresses, prefix lengths over 32/128, host bits set beyond the prefix
    /// (e.g. "10.0.0.1/8" → error reason "host bits set"), empty strings, whitespace.
    /// An IPv6 entry inside `::ffff:0:0/96` is stored as the IPv4 block it maps.
    pub fn parse<S: AsRef<str>>(entries: &[S]) -> Result<CidrSet, CidrError> {
        let (mut v4, mut v6) = (Vec::new(), Vec::new());
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
        let (v4, v6) = (Ranges::new(v4), Ranges::new(v6));
        Ok(CidrSet { v4, v6 })
    }

    /// Whether `ip` lies in one of the set's networks. Never allocates.
    pub fn contains(&self, ip: IpAddr) -> bool {
        match ip {
            IpAddr::V4(v4) => self.v4.contains(u32::from(v4)),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => self.v4.contains(u32::from(v4)),
                None => self.v6.contains(u128::from(v6)),
            },
        }
    }

    /// True when the set holds no network at all.
    pub fn is_empty(&self) -> bool {
        self.v4.ranges.is_empty() && self.v6.ranges.is_empty()
    }

    /// Number of disjoint ranges after merging.
    pub fn ranges(&self) -> usize {
        self.v4.ranges.len() + self.v6.ranges.len()
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
}

/// The key that counts one client in a per-address limit: IPv4 as mapped
/// IPv6, IPv6 cut to its /64 (one host usually owns a whole /64).
pub fn address_key(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(v4) => u128::from(v4.to_ipv6_mapped()),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => u128::from(v4.to_ipv6_mapped()),
            None => u128::from(v6) & !((1u128 << 64) - 1),
        },
    }
}

/// One entry as `(is IPv4, first, last)`, an inclusive range; IPv4 values fit in 32 bits.
fn parse_entry(entry: &str) -> Result<(bool, u128, u128), &'static str> {
    // A prefix length is one to three ASCII digits: no sign, no spaces.
    let (addr, prefix) = match entry.split_once('/') {
        _ if entry.is_empty() => return Err("empty entry"),
        _ if entry.contains(char::is_whitespace) => return Err("whitespace is not allowed"),
        Some((a, p)) if (1..=3).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_digit()) => {
            (a, p.parse().ok())
        }
        Some(_) => return Err("bad prefix length"),
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
    let is_v4 = bits == 32 || (prefix >= 96 && base >> 32 == 0xffff);
    Ok((is_v4, base, base | host))
}

/// Disjoint, sorted, non-adjacent inclusive ranges of one address family, and a bucket
/// index that keeps a lookup's cost flat: a start's offset from the first start, shifted
/// right by `shift`, names its bucket; `index[b]` counts the ranges starting before bucket
/// `b`, so a lookup binary-searches one bucket (about one range when the networks are
/// spread out; a plain binary search over a dense cluster of them).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Ranges<T> {
    ranges: Vec<(T, T)>,
    index: Vec<u32>,
    first: u128,
    shift: u32,
}

impl<T: Copy + Default + Ord + Into<u128>> Ranges<T> {
    /// Sorts `ranges`, merges overlapping or adjacent ones, and builds the index.
    fn new(mut ranges: Vec<(T, T)>) -> Self {
        ranges.sort_unstable();
        let mut merged: Vec<(T, T)> = Vec::with_capacity(ranges.len());
        for (lo, hi) in ranges {
            match merged.last_mut() {
                Some(last) if last.1.into().checked_add(1).is_none_or(|n| lo.into() <= n) => {
                    last.1 = last.1.max(hi)
                }
                _ => merged.push((lo, hi)),
            }
        }
        let (Some(&(first, _)), Some(&(last, _))) = (merged.first(), merged.last()) else {
            return Self::default();
        };
        let first = first.into();
        // About two buckets per range; `shift` puts the last start in the last bucket.
        let buckets_log2 = usize::BITS - merged.len().leading_zeros();
        let span_bits = u128::BITS - (last.into() - first).leading_zeros();
        let shift = span_bits.saturating_sub(buckets_log2);
        let mut index = vec![0u32; (1 << buckets_log2) + 1];
        for &(lo, _) in &merged {
            index[((lo.into() - first) >> shift) as usize + 1] += 1;
        }
        let mut total = 0;
        for count in &mut index {
            total += *count;
            *count = total;
        }
        Ranges {
            ranges: merged,
            index,
            first,
            shift,
        }
    }

    /// Whether `x` lies in one of the ranges: one bucket's binary search, no allocation.
    fn contains(&self, x: T) -> bool {
        let Some(offset) = x.into().checked_sub(self.first) else {
            return false;
        };
        // Every range starts before a bucket past the index (or in a set without one).
        let before = |b: usize| self.index.get(b).map_or(self.ranges.len(), |&n| n as usize);
        let b = usize::try_from(offset >> self.shift).unwrap_or(usize::MAX);
        let (lo, hi) = (before(b), before(b.saturating_add(1)));
        let after = lo + self.ranges[lo..hi].partition_point(|&(start, _)| start <= x);
        after > 0 && self.ranges[after - 1].1 >= x
    }
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

    #[test]
    fn single_host_matches_only_itself() {
        // An address without a prefix is one host.
        let addrs = ["192.0.2.7", "192.0.2.8", "::7", "::8"];
        let got = hits(&["192.0.2.7", "::7"], addrs);
        assert_eq!(got, [true, false, true, false]);
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
    fn slash_32_and_slash_128_are_one_host() {
        // A full-length prefix is a single address.
        let addrs = ["10.1.2.3", "10.1.2.4", "2001:db8::1", "2001:db8::2"];
        let got = hits(&["10.1.2.3/32", "2001:db8::1/128"], addrs);
        assert_eq!(got, [true, false, true, false]);
    }

    #[test]
    fn overlapping_and_adjacent_ranges_merge() {
        // Two halves of a /24, a block inside one of them, and a duplicate make two ranges.
        let s = set(&["10.0.0.0/25", "10.0.0.128/25", "10.0.0.0/26", "::1", "::1"]);
        assert_eq!(s.ranges(), 2);
    }

    #[test]
    fn mapped_v6_is_ipv4() {
        // ::ffff:a.b.c.d meets IPv4 rules, and a rule written as ::ffff:a.b.c.d/n meets IPv4.
        let addrs = ["::ffff:10.9.8.7", "192.0.2.9"];
        let got = hits(&["10.0.0.0/8", "::ffff:192.0.2.0/120"], addrs);
        assert_eq!(got, [true, true]);
    }

    #[test]
    fn families_never_cross() {
        // 0.0.0.0/0 says nothing about native IPv6 peers, ::/0 nothing about IPv4 ones.
        let got = [
            hits(&["0.0.0.0/0"], ["2001:db8::1"]),
            hits(&["::/0"], ["10.0.0.1"]),
        ];
        assert_eq!(got, [[false]; 2]);
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
        assert!(rule(&[], &["10.0.0.0/24"]).permits("192.0.2.1".parse().unwrap()));
    }

    #[test]
    fn each_malformed_entry_is_refused_with_its_reason() {
        // Bad address, /33, /129, host bits, empty, whitespace, signed prefix: all errors.
        let cases = [
            ("10.0.0.256/8", "bad address"),
            ("10.0.0.0/33", "prefix length over 32"),
            ("2001:db8::/129", "prefix length over 128"),
            ("10.0.0.1/8", "host bits set"),
            ("", "empty entry"),
            (" 10.0.0.0/8", "whitespace is not allowed"),
            ("10.0.0.0/+8", "bad prefix length"),
        ];
        let got = cases.map(|(entry, _)| CidrSet::parse(&["10.0.0.0/8", entry]).unwrap_err());
        let want = cases.map(|(_, why)| (1, why));
        assert_eq!(got.map(|e| (e.index, e.reason)), want);
    }

    #[test]
    fn range_boundaries_are_inclusive() {
        // First and last addresses are in, one below and one above out, even far from a start.
        let addrs = [
            "127.255.255.255",
            "128.0.0.0",
            "199.255.255.255",
            "200.0.0.0",
            "200.0.0.255",
            "200.0.1.0",
        ];
        let got = hits(&["0.0.0.0/1", "200.0.0.0/24"], addrs);
        assert_eq!(got, [true, false, false, true, true, false]);
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
    fn address_key_is_the_v6_network_half_or_the_v4_address() {
        // Addresses of one /64 share a key; an IPv4 address and its mapped form are one.
        let key = |s: &str| address_key(s.parse().unwrap());
        assert_eq!(
            (
                key("2001:db8:1:2:3:4:5:6") == key("2001:db8:1:2::9"),
                key("2001:db8:1:2::") >> 64,
                key("192.0.2.7") == key("::ffff:192.0.2.7"),
            ),
            (true, 0x2001_0db8_0001_0002, true)
        );
    }
}

//! Network-rule lookup cost, paid at every accept and every request: `contains` for a hit
//! and a miss against sets of 10 and 10,000 IPv4 /24s and IPv6 /48s, and
//! `NetworkRule::permits` with 10,000 deny entries. The target: 10,000 entries within 2x
//! of 10.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use portcullis::net::cidr::{CidrSet, NetworkRule};
use std::hint::black_box;

/// A fixed-seed xorshift64, so every run benchmarks the same sets.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// `size` IPv4 /24s with bit 8 clear, so `base + 256` is never in the set.
fn v4_bases(size: usize) -> Vec<u32> {
    let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
    (0..size)
        .map(|_| (rng.next() >> 32) as u32 & 0xffff_fe00)
        .collect()
}

/// `size` IPv6 /48s with bit 80 clear, so `base + 2^80` is never in the set.
fn v6_bases(size: usize) -> Vec<u128> {
    let mut rng = XorShift(0x2545_f491_4f6c_dd1d);
    (0..size)
        .map(|_| (u128::from(rng.next()) << 64) & !((1u128 << 81) - 1))
        .collect()
}

fn v4_set(bases: &[u32]) -> CidrSet {
    let entries: Vec<String> = bases
        .iter()
        .map(|&b| format!("{}/24", Ipv4Addr::from(b)))
        .collect();
    CidrSet::parse(&entries).expect("generated entries are valid")
}

fn v6_set(bases: &[u128]) -> CidrSet {
    let entries: Vec<String> = bases
        .iter()
        .map(|&b| format!("{}/48", Ipv6Addr::from(b)))
        .collect();
    CidrSet::parse(&entries).expect("generated entries are valid")
}

fn bench_pair(
    c: &mut Criterion,
    group: &str,
    size: usize,
    set: &CidrSet,
    hit: IpAddr,
    miss: IpAddr,
) {
    assert!(set.contains(hit) && !set.contains(miss));
    let mut group = c.benchmark_group(group);
    group.bench_with_input(BenchmarkId::new("hit", size), &hit, |b, &ip| {
        b.iter(|| set.contains(black_box(ip)))
    });
    group.bench_with_input(BenchmarkId::new("miss", size), &miss, |b, &ip| {
        b.iter(|| set.contains(black_box(ip)))
    });
    group.finish();
}

fn contains(c: &mut Criterion) {
    for size in [10, 10_000] {
        let bases = v4_bases(size);
        let set = v4_set(&bases);
        let base = bases[size / 2];
        let hit = IpAddr::V4(Ipv4Addr::from(base + 77));
        let miss = IpAddr::V4(Ipv4Addr::from(base + 256 + 77));
        bench_pair(c, "cidr_v4", size, &set, hit, miss);

        let bases = v6_bases(size);
        let set = v6_set(&bases);
        let base = bases[size / 2];
        let hit = IpAddr::V6(Ipv6Addr::from(base + 0x1234_5678));
        let miss = IpAddr::V6(Ipv6Addr::from(base + (1u128 << 80) + 0x1234_5678));
        bench_pair(c, "cidr_v6", size, &set, hit, miss);
    }
}

fn permits(c: &mut Criterion) {
    let bases = v4_bases(10_000);
    let rule = NetworkRule {
        allow: CidrSet::default(),
        deny: v4_set(&bases),
    };
    let base = bases[5_000];
    let denied = IpAddr::V4(Ipv4Addr::from(base + 1));
    let allowed = IpAddr::V4(Ipv4Addr::from(base + 256 + 1));
    assert!(!rule.permits(denied) && rule.permits(allowed));
    let mut group = c.benchmark_group("network_rule_permits");
    group.bench_with_input(BenchmarkId::new("denied", 10_000), &denied, |b, &ip| {
        b.iter(|| rule.permits(black_box(ip)))
    });
    group.bench_with_input(BenchmarkId::new("allowed", 10_000), &allowed, |b, &ip| {
        b.iter(|| rule.permits(black_box(ip)))
    });
    group.finish();
}

criterion_group!(benches, contains, permits);
criterion_main!(benches);

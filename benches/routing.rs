//! Routing cost per request: one hit (with a path parameter) and one miss against tables
//! of 10, 1,000 and 10,000 routes shaped like a gateway's deployments. The target: the
//! 10,000-route table routes within 2x of the 10-route one.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use portcullis::route::table::{RouteTable, RouteTableBuilder};
use std::hint::black_box;

/// `size` routes: deployments `/dep{n}`, four routes each, as an operator would write them.
fn gateway_table(size: usize) -> RouteTable<usize> {
    let shapes = [
        "orders/{id}",
        "customers/{id}/invoices",
        "static/{rest*}",
        "v1/items",
    ];
    let mut builder = RouteTableBuilder::new();
    for i in 0..size {
        let pattern = format!("/dep{}/{}", i / shapes.len(), shapes[i % shapes.len()]);
        builder
            .insert(&pattern, i)
            .expect("generated pattern is valid");
    }
    builder.build()
}

fn routing(c: &mut Criterion) {
    let mut group = c.benchmark_group("routing");
    for size in [10, 1_000, 10_000] {
        let table = gateway_table(size);
        let dep = size / 4 / 2;
        let hit = format!("/dep{dep}/customers/12345/invoices");
        let miss = format!("/dep{dep}/customers/12345/payments");
        assert!(table.lookup(&hit).is_some() && table.lookup(&miss).is_none());
        group.bench_with_input(BenchmarkId::new("hit", size), &hit, |b, path| {
            b.iter(|| table.lookup(black_box(path)).map(|m| *m.value))
        });
        group.bench_with_input(BenchmarkId::new("miss", size), &miss, |b, path| {
            b.iter(|| table.lookup(black_box(path)).map(|m| *m.value))
        });
    }
    group.finish();
}

criterion_group!(benches, routing);
criterion_main!(benches);

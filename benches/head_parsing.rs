//! Request-head parsing throughput: a typical integration call head and a
//! 40-header head, through the gateway's full validation (httparse tokenising
//! plus framing, Host and field checks).

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use portcullis::http::request::{header_storage, parse_request, HeadLimits, Parsed};
use std::hint::black_box;

const LIMITS: HeadLimits = HeadLimits {
    max_head_bytes: 16384,
    max_uri_bytes: 4096,
    max_headers: 100,
};

/// A typical call into an integration flow through the gateway.
const TYPICAL: &[u8] = b"POST /orders/v1/orders/4711/lines?expand=items HTTP/1.1\r\n\
Host: api.example.com\r\n\
User-Agent: integration-client/2.3\r\n\
Accept: application/json\r\n\
Content-Type: application/json\r\n\
Authorization: Basic dXNlcjpwYXNzd29yZA==\r\n\
X-Client-Token: 8f14e45fceea167a5a36dedd4bea2543\r\n\
Content-Length: 128\r\n\r\n";

fn forty_header_head() -> Vec<u8> {
    let mut head = b"GET /api/v2/customers/12345/invoices?status=open&limit=50 HTTP/1.1\r\nHost: api.example.com\r\n".to_vec();
    for i in 0..39 {
        head.extend_from_slice(
            format!("X-Custom-Header-{i:02}: value-{i:02}-abcdefghijklmnopqrstuvwxyz\r\n")
                .as_bytes(),
        );
    }
    head.extend_from_slice(b"\r\n");
    head
}

fn parse(raw: &[u8]) -> usize {
    let mut storage = header_storage();
    match parse_request(raw, &LIMITS, &mut storage) {
        Ok(Parsed::Complete(head)) => head.len,
        _ => panic!("benchmark head must parse"),
    }
}

fn bench_heads(c: &mut Criterion) {
    let forty = forty_header_head();
    let mut group = c.benchmark_group("head_parsing");
    group.throughput(Throughput::Bytes(TYPICAL.len() as u64));
    group.bench_function("typical_integration_call", |b| {
        b.iter(|| parse(black_box(TYPICAL)))
    });
    group.throughput(Throughput::Bytes(forty.len() as u64));
    group.bench_function("forty_headers", |b| b.iter(|| parse(black_box(&forty))));
    group.finish();
}

criterion_group!(benches, bench_heads);
criterion_main!(benches);

//! Reload cost: parsing a config file and compiling it into a snapshot, for a config of
//! 1,000 routes (50 deployments of 20 routes, stock and http back ends, `{param}` paths).
//! The target: parse + compile under 50 ms.
//!
//! The full target is 1,000 routes *and 10,000 subscribers*; subscribers do not exist
//! yet, so that half is to be added to [`gateway_config`] with usage plans.

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use portcullis::config::parse_str;
use portcullis::snapshot::Snapshot;
use std::fmt::Write;
use std::path::Path;

const DEPLOYMENTS: usize = 50;
const ROUTES_PER_DEPLOYMENT: usize = 20;

/// One listener, `DEPLOYMENTS` deployments of `ROUTES_PER_DEPLOYMENT` routes each, in the
/// shapes an operator writes: stock answers, exact and `{param}` paths proxied to
/// IP-literal upstreams, and prefix routes.
fn gateway_config() -> String {
    let mut text = String::from("[[listeners]]\nname = \"public\"\naddress = \"127.0.0.1:8080\"\n");
    for d in 0..DEPLOYMENTS {
        let host = format!("127.0.{}.{}:{}", d / 250, d % 250 + 1, 9000 + d % 4);
        writeln!(
            text,
            "\n[[deployments]]\nname = \"dep{d}\"\nlistener = \"public\"\npath_prefix = \"/dep{d}\""
        )
        .unwrap();
        for r in 0..ROUTES_PER_DEPLOYMENT {
            let (path, methods, backend) = match r % 5 {
                0 => (
                    format!("/status{r}"),
                    "[\"GET\"]",
                    format!(
                        "{{ type = \"stock\", status = 200, headers = {{ \"Content-Type\" = \"application/json\" }}, body = \"{{\\\"ok\\\":{r}}}\" }}"
                    ),
                ),
                1 => (
                    format!("/items{r}/{{id}}"),
                    "[\"GET\", \"PUT\", \"DELETE\"]",
                    format!(
                        "{{ type = \"http\", url = \"http://{host}/v1/items/{{id}}\", connect_timeout = 5, read_timeout = 10, send_timeout = 10 }}"
                    ),
                ),
                2 => (
                    format!("/customers{r}/{{customer}}/orders/{{order}}"),
                    "[\"GET\", \"POST\"]",
                    format!(
                        "{{ type = \"http\", url = \"http://{host}/v2/customers/{{customer}}/orders/{{order}}?src=gw\" }}"
                    ),
                ),
                3 => (
                    format!("/files{r}/{{rest*}}"),
                    "[]",
                    format!("{{ type = \"http\", url = \"http://{host}/store\", read_timeout = 30 }}"),
                ),
                _ => (
                    format!("/v1/search{r}"),
                    "[\"GET\"]",
                    format!("{{ type = \"http\", url = \"http://{host}/search\" }}"),
                ),
            };
            writeln!(
                text,
                "\n[[deployments.routes]]\npath = \"{path}\"\nmethods = {methods}\nbackend = {backend}"
            )
            .unwrap();
        }
    }
    text
}

fn snapshot_compile(c: &mut Criterion) {
    let text = gateway_config();
    let path = Path::new("bench.toml");
    let config = parse_str(&text, path).expect("generated config parses");
    let routes: usize = config.deployments.iter().map(|d| d.routes.len()).sum();
    assert_eq!(routes, DEPLOYMENTS * ROUTES_PER_DEPLOYMENT);
    Snapshot::compile(&config, &text, path).expect("generated config compiles");

    let mut group = c.benchmark_group("snapshot_compile");
    group.sample_size(20);
    group.bench_function("parse_and_compile/1000_routes", |b| {
        b.iter(|| {
            let config = parse_str(black_box(&text), path).expect("parses");
            Snapshot::compile(&config, &text, path).expect("compiles")
        })
    });
    group.bench_function("compile_only/1000_routes", |b| {
        b.iter(|| Snapshot::compile(black_box(&config), &text, path).expect("compiles"))
    });
    group.finish();
}

criterion_group!(benches, snapshot_compile);
criterion_main!(benches);

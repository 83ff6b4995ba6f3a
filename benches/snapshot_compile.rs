//! Reload cost: parsing a config file and compiling it into a snapshot, for a config of
//! 1,000 routes (50 deployments of 20 routes, stock and http back ends, `{param}` paths),
//! alone and with 10,000 subscribers (two clients each, plain tokens hashed at compile
//! time) on three usage plans, and the registry step that hands a reloaded snapshot the
//! running buckets and quota counters, and a reload after an edit of the main file when
//! the subscribers live in an included file. The target: parse + compile under 50 ms.

use criterion::{criterion_group, criterion_main, Criterion};
use portcullis::config::{load_sources, parse_str};
use portcullis::snapshot::Snapshot;
use std::fmt::Write;
use std::hint::black_box;
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

const SUBSCRIBERS: usize = 10_000;

/// Three usage plans over the deployments and `SUBSCRIBERS` subscribers.
fn subscribers_config() -> String {
    let mut text = String::new();
    for (p, rate) in [(0, 10), (1, 100), (2, 1000)] {
        writeln!(
            text,
            "\n[[usage_plans]]\nname = \"plan{p}\"\n[[usage_plans.entitlements]]\nname = \"all\"\ndeployments = [\"dep0\", \"dep1\", \"dep2\"]\nrate_limit = {{ requests_per_second = {rate} }}\nquota = {{ limit = {}, period = \"day\" }}",
            rate * 1000
        )
        .unwrap();
    }
    for s in 0..SUBSCRIBERS {
        writeln!(
            text,
            "\n[[subscribers]]\nname = \"sub{s}\"\nusage_plans = [\"plan{}\"]\nclients = [{{ name = \"a\", token = \"token-a-{s:012}\" }}, {{ name = \"b\", token = \"token-b-{s:012}\" }}]",
            s % 3
        )
        .unwrap();
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
    let full = format!("{}{}", text, subscribers_config());
    group.bench_function("parse_and_compile/1000_routes_10000_subscribers", |b| {
        b.iter(|| {
            let config = parse_str(black_box(&full), path).expect("parses");
            Snapshot::compile(&config, &full, path).expect("compiles")
        })
    });
    let registry = portcullis::policy::usage::UsageRegistry::default();
    let full_config = parse_str(&full, path).expect("parses");
    group.bench_function(
        "compile_and_attach_state/1000_routes_10000_subscribers",
        |b| {
            b.iter(|| {
                let mut snapshot = Snapshot::compile(&full_config, &full, path).expect("compiles");
                snapshot.attach_usage(&registry, portcullis::time::clock::now());
                snapshot
            })
        },
    );
    // A reload after an edit of the main file: the 10,000 subscribers live in
    // an included file whose parse is reused when its text did not change.
    let dir = tempfile::tempdir().expect("tempdir");
    let main = dir.path().join("gateway.toml");
    std::fs::write(&main, format!("include = [\"subscribers.toml\"]\n{text}")).expect("write");
    std::fs::write(dir.path().join("subscribers.toml"), subscribers_config()).expect("write");
    group.bench_function(
        "reload_main_file_edit/1000_routes_10000_included_subscribers",
        |b| {
            b.iter(|| {
                let (config, sources) = load_sources(black_box(&main)).expect("loads");
                let mut snapshot = Snapshot::compile_sources(&config, &sources).expect("compiles");
                snapshot.attach_usage(&registry, portcullis::time::clock::now());
                snapshot
            })
        },
    );
    group.finish();
}

criterion_group!(benches, snapshot_compile);
criterion_main!(benches);

//! Unit tests of the scenario file format (`file.rs`).

use super::*;

/// Writes `text` as `NAME.toml` in a fresh directory and loads it.
fn load_text(text: &str) -> (tempfile::TempDir, anyhow::Result<Scenario>) {
    let dir = tempfile::tempdir().expect("temporary directory");
    let path = dir.path().join("ab.toml");
    std::fs::write(&path, text).expect("writing the scenario");
    let loaded = Scenario::load(&path);
    (dir, loaded)
}

const BASE: &str = r#"
description = "A/B"
baseline = "one"

[upstream]
ports = 3

[gateway]
name = "one"
config = "admin = \"${ADMIN}\"\n[[listeners]]\nname = \"public\"\naddress = \"${LISTEN}\"\n"

[[gateways]]
name = "two"
append = """
[cluster]
store = "redis://${REDIS}"
node_name = "bench-${NODE}"
"""
nodes = 2

[[services]]
name = "redis"
program = "redis-server"
args = ["--port", "${PORT}"]

[measure]
redis = "redis"
gateway_counters = [{ metric = "portcullis_cluster_store_round_trip_seconds_count", label = "2xx per round trip" }]

[load]
path = "/bench/hello"
"#;

// Every occurrence of a placeholder is replaced; unknown ones stay.
#[test]
fn placeholders() {
    assert_eq!(
        substitute("${A}-${A}-${B}", &[("A", "x")]),
        "x-x-${B}".to_string()
    );
}

// Every shipped scenario file parses.
#[test]
fn shipped_scenarios_parse() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios");
    let mut count = 0;
    for entry in std::fs::read_dir(dir).expect("scenarios directory") {
        let path = entry.expect("entry").path();
        if path.extension().is_some_and(|e| e == "toml") {
            let scenario =
                Scenario::load(&path).unwrap_or_else(|e| panic!("{}: {e:#}", path.display()));
            for (name, section) in scenario.gateway_peers() {
                let template = scenario
                    .gateway_template(section)
                    .unwrap_or_else(|e| panic!("{}: {name}: {e:#}", path.display()));
                let template = substitute(&template, &[("ROUTES", ""), ("SUBSCRIBERS", "")]);
                toml::from_str::<toml::Table>(&template)
                    .unwrap_or_else(|e| panic!("{}: {name}: not TOML: {e}", path.display()));
            }
            count += 1;
        }
    }
    assert!(count >= 12, "{count} scenario files");
}

// A second gateway peer without a config of its own gets [gateway]'s config
// with its text appended; names, nodes, services and measures are kept.
#[test]
fn second_gateway_appends_to_the_first_config() {
    let (_dir, loaded) = load_text(BASE);
    let scenario = loaded.expect("the scenario loads");
    let peers = scenario.gateway_peers();
    let names: Vec<&str> = peers.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["one", "two"]);
    assert_eq!((peers[0].1.nodes, peers[1].1.nodes), (1, 2));
    let first = scenario.gateway_template(peers[0].1).expect("first");
    let second = scenario.gateway_template(peers[1].1).expect("second");
    assert!(!first.contains("[cluster]"), "{first}");
    assert!(second.starts_with(first.trim_end()), "{second}");
    assert!(
        second.contains("[cluster]\nstore = \"redis://${REDIS}\""),
        "{second}"
    );
    assert_eq!(scenario.file.upstream.ports, 3);
    assert_eq!(scenario.file.services[0].args, ["--port", "${PORT}"]);
    assert_eq!(scenario.file.measure.redis.as_deref(), Some("redis"));
    assert_eq!(
        scenario.file.measure.gateway_counters[0].label,
        "2xx per round trip"
    );
    assert_eq!(placeholder_name("redis-a"), "REDIS_A");
}

// A [[gateways]] config_file is read relative to the scenario file.
#[test]
fn second_gateway_config_file_is_relative_to_the_scenario() {
    let text = BASE.replace(
        "name = \"two\"\n",
        "name = \"two\"\nconfig_file = \"gateway/two.toml\"\n",
    );
    let dir = tempfile::tempdir().expect("temporary directory");
    std::fs::create_dir(dir.path().join("gateway")).expect("mkdir");
    std::fs::write(dir.path().join("gateway/two.toml"), "admin = \"x\"\n").expect("write");
    let path = dir.path().join("ab.toml");
    std::fs::write(&path, text).expect("write");
    let scenario = Scenario::load(&path).expect("loads");
    let template = scenario
        .gateway_template(scenario.gateway_peers()[1].1)
        .expect("template");
    assert!(
        template.starts_with("admin = \"x\"\n\n[cluster]"),
        "{template}"
    );
}

// Mistakes are refused at load time, each with its own message.
#[test]
fn mistakes_are_named() {
    let cases = [
        (
            "name = \"two\"\n",
            "name = \"one\"\n",
            "two peers are named \"one\"",
        ),
        (
            "name = \"two\"\n",
            "name = \"nginx\"\n",
            "two peers are named \"nginx\"",
        ),
        (
            "name = \"two\"\n",
            "",
            "every [[gateways]] entry needs a name",
        ),
        (
            "baseline = \"one\"",
            "baseline = \"three\"",
            "baseline \"three\" names no peer",
        ),
        (
            "redis = \"redis\"",
            "redis = \"valkey\"",
            "names no service",
        ),
        ("name = \"redis\"", "name = \"re dis\"", "letters, digits"),
        ("nodes = 2", "nodes = 0", "nodes must be at least 1"),
        ("ports = 3", "ports = 0", "ports must be at least 1"),
        (
            "nodes = 2",
            "nodes = 2\nconfig = \"a\"\nconfig_file = \"b\"",
            "exclusive",
        ),
        ("[measure]", "[measure]\nunknown = 1", "unknown field"),
    ];
    for (from, to, expected) in cases {
        assert!(BASE.contains(from), "{from}");
        let (_dir, loaded) = load_text(&BASE.replacen(from, to, 1));
        let message = format!("{:#}", loaded.err().expect(expected));
        assert!(message.contains(expected), "{expected}: {message}");
    }
}

//! Rules of turning host names into servers: one server per address with
//! the URL's weight, identities that carry the address, and what depends on
//! the server list rebuilt.

use super::*;
use crate::snapshot::servers::BalanceSpec;
use std::path::Path;

fn compiled(backend: &str) -> Snapshot {
    let text = format!(
        "[[listeners]]\nname = \"l\"\naddress = \"127.0.0.1:0\"\n[[deployments]]\nname = \"d\"\nlistener = \"l\"\n[[deployments.routes]]\npath = \"/a\"\nbackend = {backend}\n"
    );
    let config = crate::config::parse_str(&text, Path::new("t.toml")).unwrap();
    Snapshot::compile(&config, &text, Path::new("t.toml")).unwrap()
}

fn http(snapshot: &Snapshot) -> &HttpBackendSpec {
    match &snapshot.routes[0].backend {
        BackendSpec::Http(h) => h,
        _ => unreachable!(),
    }
}

// Each address of a name is a server with the name's weight and its own pool key.
#[test]
fn each_address_is_a_server() {
    let names = NameTable::default();
    names.record("svc.names.test", &["10.0.0.1", "10.0.0.2"]);
    let mut s = compiled(
        "{ type = \"http\", servers = [{ url = \"http://svc.names.test:8080/x\", weight = 3 }, { url = \"http://10.0.0.9:8080/x\" }] }",
    );
    s.resolve_backends(&names, false);
    let servers: Vec<(&str, u32, Option<SocketAddr>)> = http(&s)
        .servers
        .iter()
        .map(|s| (&*s.pool_key, s.weight, s.addr))
        .collect();
    assert_eq!(
        servers,
        [
            (
                "http://svc.names.test:8080 (10.0.0.1)",
                3,
                Some("10.0.0.1:8080".parse().unwrap())
            ),
            (
                "http://svc.names.test:8080 (10.0.0.2)",
                3,
                Some("10.0.0.2:8080".parse().unwrap())
            ),
            (
                "http://10.0.0.9:8080",
                1,
                Some("10.0.0.9:8080".parse().unwrap())
            ),
        ]
    );
}

// The back end's label stays the URLs as written, however many addresses.
#[test]
fn the_label_names_the_urls() {
    let names = NameTable::default();
    names.record("svc.label.test", &["10.0.0.1", "10.0.0.2"]);
    let mut s = compiled("{ type = \"http\", url = \"http://svc.label.test:8080/x\" }");
    s.resolve_backends(&names, false);
    assert_eq!(http(&s).label(), "http://svc.label.test:8080");
}

// A URL of one name with two addresses ejects outliers by default, like two URLs.
#[test]
fn default_outlier_detection_follows_the_addresses() {
    let names = NameTable::default();
    names.record("svc.outlier.test", &["10.0.0.1", "10.0.0.2"]);
    let mut s = compiled("{ type = \"http\", url = \"http://svc.outlier.test:8080/x\" }");
    assert_eq!(http(&s).outlier.consecutive_failures, 0);
    s.resolve_backends(&names, false);
    assert_eq!(http(&s).outlier.consecutive_failures, 5);
}

// The hashing ring is rebuilt over the addresses.
#[test]
fn the_ring_covers_every_address() {
    let names = NameTable::default();
    names.record("svc.ring.test", &["10.0.0.1", "10.0.0.2", "10.0.0.3"]);
    let mut s = compiled(
        "{ type = \"http\", url = \"http://svc.ring.test:8080/x\", balance = \"consistent_hash\", hash_key = \"client_address\" }",
    );
    s.resolve_backends(&names, false);
    let BalanceSpec::ConsistentHash { ring, .. } = &http(&s).balance else {
        panic!("not consistent hashing");
    };
    let mut owners: Vec<u16> = ring.iter().map(|p| p.1).collect();
    owners.dedup();
    owners.sort();
    owners.dedup();
    assert_eq!(owners, [0, 1, 2]);
}

// A name the table has no address for stays one server without an address.
#[test]
fn unresolved_names_stay_one_server() {
    let names = NameTable::default();
    names.record("svc.none.test", &[]);
    let mut s = compiled("{ type = \"http\", url = \"http://svc.none.test:8080/x\" }");
    s.resolve_backends(&names, false);
    let servers = &http(&s).servers;
    assert_eq!((servers.len(), servers[0].addr), (1, None));
}

// Resolving names leaves a route's inventory entry alone (what `check
// --admin` compares with a running gateway); new addresses are a change.
#[test]
fn addresses_change_the_summary_not_the_routes() {
    let backend = "{ type = \"http\", url = \"http://svc.inv.test:8080/x\", balance = \"consistent_hash\", hash_key = \"client_address\" }";
    let (before, after) = (NameTable::default(), NameTable::default());
    before.record("svc.inv.test", &["10.0.0.1"]);
    after.record("svc.inv.test", &["10.0.0.1", "10.0.0.2"]);
    let written = compiled(backend);
    let mut old = compiled(backend);
    old.resolve_backends(&before, false);
    let mut new = compiled(backend);
    new.resolve_backends(&after, false);
    assert_eq!(written.inventory().routes, new.inventory().routes);
    assert!(!crate::snapshot::ChangeSummary::between(&old, &new).is_empty());
}

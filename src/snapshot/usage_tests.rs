//! Usage plans, subscribers and deployment limits as the snapshot compiles
//! them: errors name the key, tokens resolve to their subscriber and grant.

use super::Snapshot;
use std::path::Path;

const BASE: &str = "[[listeners]]\nname = \"l\"\naddress = \"127.0.0.1:0\"\n[[deployments]]\nname = \"d\"\nlistener = \"l\"\n[[usage_plans]]\nname = \"p\"\n[[usage_plans.entitlements]]\nname = \"e\"\ndeployments = [\"d\"]\n";

/// The compile error's key for `BASE` plus `extra`.
fn error_key(extra: &str) -> Option<String> {
    let text = format!("{BASE}{extra}");
    let config = crate::config::parse_str(&text, Path::new("t.toml")).unwrap();
    Snapshot::compile(&config, &text, Path::new("t.toml"))
        .err()
        .and_then(|e| e.key)
}

fn subscriber(name: &str, client: &str, token: &str) -> String {
    format!("[[subscribers]]\nname = \"{name}\"\nusage_plans = [\"p\"]\nclients = [{{ name = \"{client}\", token = \"{token}\" }}]\n")
}

// A repeated subscriber name is refused.
#[test]
fn duplicate_subscriber_refused() {
    let extra =
        subscriber("a", "c", "0123456789abcdef-1") + &subscriber("a", "c", "0123456789abcdef-2");
    assert_eq!(error_key(&extra).as_deref(), Some("subscribers[1].name"));
}

// The same token given to two clients is refused.
#[test]
fn duplicate_token_refused() {
    let extra =
        subscriber("a", "c", "0123456789abcdef-1") + &subscriber("b", "c", "0123456789abcdef-1");
    assert_eq!(
        error_key(&extra).as_deref(),
        Some("subscribers[1].clients[0].token")
    );
}

// An empty token is refused.
#[test]
fn empty_token_refused() {
    assert_eq!(
        error_key(&subscriber("a", "c", "")).as_deref(),
        Some("subscribers[0].clients[0].token")
    );
}

// A token location must be `header:NAME` or `query:NAME`.
#[test]
fn bad_token_location_refused() {
    let text = BASE.replace(
        "listener = \"l\"\n",
        "listener = \"l\"\nusage_plans = { token_locations = [\"cookie:x\"] }\n",
    );
    let config = crate::config::parse_str(&text, Path::new("t.toml")).unwrap();
    let key = Snapshot::compile(&config, &text, Path::new("t.toml"))
        .err()
        .and_then(|e| e.key);
    assert_eq!(
        key.as_deref(),
        Some("deployments[0].usage_plans.token_locations[0]")
    );
}

// A token is found by its hash; the first plan covering a deployment wins.
#[test]
fn token_lookup_and_grant() {
    let text = format!("{BASE}{}", subscriber("a", "c", "0123456789abcdef-1"));
    let config = crate::config::parse_str(&text, Path::new("t.toml")).unwrap();
    let snapshot = Snapshot::compile(&config, &text, Path::new("t.toml")).unwrap();
    let usage = &snapshot.usage;
    let client = usage.client_by_token(b"0123456789abcdef-1");
    assert_eq!(
        (
            client,
            usage.client_by_token(b"0123456789abcdef-2"),
            usage.grant_for(0, 0).is_some()
        ),
        (Some((0, 0)), None, true)
    );
}

//! Hot reload: editing the config file on a live gateway (write-then-rename and
//! in-place writes) switches every request to the new snapshot, a broken edit
//! changes nothing and says where it is wrong, a good edit after a bad one
//! applies, long keep-alive connections see changes at once, SIGHUP reloads
//! (and says `unchanged` when nothing changed), the audit line names every
//! change (listener rules and settings included), a listener's address change
//! is refused while its rules apply, and upstream pools survive unrelated edits.

mod common;

use common::*;
use std::path::Path;
use std::process::Command;

const BASE: &str = r#"
admin = "127.0.0.1:0"

[[listeners]]
name = "public"
address = "127.0.0.1:0"

[[deployments]]
name = "api"
listener = "public"
path_prefix = "/api"

[[deployments.routes]]
path = "/hello"
backend = { type = "stock", status = 200, body = "hi\n" }
"#;

const NEW_ROUTE: &str = r#"
[[deployments.routes]]
path = "/new"
backend = { type = "stock", status = 200, body = "new\n" }
"#;

/// Replaces the file the way editors save: write a new file, rename it over.
fn write_then_rename(path: &Path, text: &str) {
    let tmp = path.with_extension("toml.swp");
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

fn status_of(gw: &Gateway, path: &str) -> u16 {
    get(gw.addr(), path).status
}

// Rule: a route added by write-then-rename is served without a restart.
#[test]
fn write_then_rename_adds_route() {
    let gw = Gateway::start(BASE);
    assert_eq!(status_of(&gw, "/api/new"), 404);
    write_then_rename(gw.config_path(), &format!("{BASE}{NEW_ROUTE}"));
    assert!(
        eventually(|| status_of(&gw, "/api/new") == 200),
        "log:\n{}",
        gw.log_text()
    );
}

// Rule: a route added by rewriting the file in place is served without a restart.
#[test]
fn in_place_write_adds_route() {
    let gw = Gateway::start(BASE);
    std::fs::write(gw.config_path(), format!("{BASE}{NEW_ROUTE}")).unwrap();
    assert!(
        eventually(|| status_of(&gw, "/api/new") == 200),
        "log:\n{}",
        gw.log_text()
    );
}

// Rule: a broken edit keeps the running config, logs file, line and key, and a good edit after it applies.
#[test]
fn broken_edit_changes_nothing_then_good_edit_applies() {
    let gw = Gateway::start(BASE);
    write_then_rename(
        gw.config_path(),
        &format!("{BASE}{NEW_ROUTE}colour = \"blue\"\n"),
    );
    assert!(
        eventually(|| gw.log_text().contains("result=\"rejected\"")),
        "log:\n{}",
        gw.log_text()
    );
    let log = gw.log_text();
    assert!(
        log.contains("line") && log.contains("colour"),
        "log:\n{log}"
    );
    assert_eq!(
        (status_of(&gw, "/api/hello"), status_of(&gw, "/api/new")),
        (200, 404)
    );
    write_then_rename(gw.config_path(), &format!("{BASE}{NEW_ROUTE}"));
    assert!(
        eventually(|| status_of(&gw, "/api/new") == 200),
        "log:\n{}",
        gw.log_text()
    );
}

// Rule: a keep-alive connection opened before the edit sees the new route on its next request.
#[test]
fn keep_alive_connection_sees_new_route() {
    let gw = Gateway::start(BASE);
    let mut client = gw.connect();
    assert_eq!(client.roundtrip(get_req("/api/hello")).status, 200);
    write_then_rename(gw.config_path(), &format!("{BASE}{NEW_ROUTE}"));
    assert!(
        eventually(|| client.roundtrip(get_req("/api/new")).status == 200),
        "log:\n{}",
        gw.log_text()
    );
}

// Rule: a removed route stops being served.
#[test]
fn removed_route_is_gone() {
    let gw = Gateway::start(&format!("{BASE}{NEW_ROUTE}"));
    assert_eq!(status_of(&gw, "/api/new"), 200);
    write_then_rename(gw.config_path(), BASE);
    assert!(
        eventually(|| status_of(&gw, "/api/new") == 404),
        "log:\n{}",
        gw.log_text()
    );
}

// Rule: every applied reload writes one audit line with its generation and what changed.
#[test]
fn audit_line_names_changes() {
    let gw = Gateway::start(BASE);
    write_then_rename(gw.config_path(), &format!("{BASE}{NEW_ROUTE}"));
    assert!(
        eventually(|| gw.log_text().contains("result=\"applied\"")),
        "log:\n{}",
        gw.log_text()
    );
    let log = gw.log_text();
    let line = log
        .lines()
        .find(|l| l.contains("result=\"applied\""))
        .unwrap();
    assert!(
        line.contains("generation=2") && line.contains("/api/new"),
        "{line}"
    );
}

// Rule: SIGHUP reloads the file.
#[test]
fn sighup_reloads() {
    let gw = Gateway::start(BASE);
    let status = Command::new("kill")
        .arg("-HUP")
        .arg(gw.pid().to_string())
        .status()
        .unwrap();
    assert!(status.success());
    assert!(
        eventually(|| gw.log_text().contains("trigger=\"signal\"")),
        "log:\n{}",
        gw.log_text()
    );
}

/// The audit line of the first applied reload.
fn applied_line(gw: &Gateway) -> String {
    assert!(
        eventually(|| gw.log_text().contains("result=\"applied\"")),
        "log:\n{}",
        gw.log_text()
    );
    let log = gw.log_text();
    log.lines()
        .find(|l| l.contains("result=\"applied\""))
        .unwrap_or_default()
        .to_string()
}

/// Sends a GET from 127.0.0.2 and returns the status, or None if the connection was closed unanswered.
fn status_from_second_loopback(gw: &Gateway) -> Option<u16> {
    let mut c = Client::connect_from(gw.addr(), "127.0.0.2".parse().unwrap());
    let _ = c.try_send(get_req("/api/hello"));
    c.try_read_response(false).ok().map(|r| r.status)
}

// Rule: a listener's deny rule changed by a reload applies to the next connection, and
// the audit line names the listener and the key (it does not say "no change").
#[test]
fn listener_rule_change_is_named_and_applies() {
    let gw = Gateway::start(BASE);
    assert_eq!(status_from_second_loopback(&gw), Some(200));
    let denied = BASE.replace(
        "address = \"127.0.0.1:0\"",
        "address = \"127.0.0.1:0\"\ndeny = [\"127.0.0.2/32\"]",
    );
    write_then_rename(gw.config_path(), &denied);
    let line = applied_line(&gw);
    assert!(
        line.contains("generation=2") && line.contains("listeners ~1 [public (deny)]"),
        "{line}"
    );
    assert_eq!(status_from_second_loopback(&gw), None);
    assert_eq!(status_of(&gw, "/api/hello"), 200);
}

// Rule: limits and timeouts changed by a reload are named by key in the audit line.
#[test]
fn settings_change_is_named() {
    let gw = Gateway::start(BASE);
    let limited = format!("{BASE}[limits]\nmax_body_bytes = 10\n[timeouts]\nkeep_alive = 5\n");
    write_then_rename(gw.config_path(), &limited);
    let line = applied_line(&gw);
    assert!(
        line.contains("settings ~2 [limits.max_body_bytes, timeouts.keep_alive]"),
        "{line}"
    );
}

// Rule: a SIGHUP with the file unchanged writes `result="unchanged"`, publishes nothing
// (the generation stays) and /config's last_reload says so.
#[test]
fn sighup_with_unchanged_file_is_unchanged() {
    let gw = Gateway::start(BASE);
    let status = Command::new("kill")
        .arg("-HUP")
        .arg(gw.pid().to_string())
        .status()
        .unwrap();
    assert!(status.success());
    assert!(
        eventually(|| {
            let (generation, last) = reload_state(&gw);
            generation == 1 && last["result"] == "unchanged" && last["trigger"] == "signal"
        }),
        "{:?}\nlog:\n{}",
        reload_state(&gw),
        gw.log_text()
    );
    let log = gw.log_text();
    assert!(
        log.lines().any(|l| l.contains("result=\"unchanged\"")
            && l.contains("trigger=\"signal\"")
            && l.contains("generation=1")),
        "log:\n{log}"
    );
}

// Rule: changing a listener's address is refused with a message naming the listener, and the old config keeps serving.
#[test]
fn listener_change_is_refused() {
    let gw = Gateway::start(BASE);
    let moved = BASE.replace(
        "address = \"127.0.0.1:0\"",
        &format!("address = \"127.0.0.1:{}\"", unused_port()),
    );
    write_then_rename(gw.config_path(), &format!("{moved}{NEW_ROUTE}"));
    assert!(
        eventually(|| {
            let log = gw.log_text();
            log.contains("restart is needed") && log.contains("listeners changed (`public` at")
        }),
        "log:\n{}",
        gw.log_text()
    );
    assert_eq!(
        (status_of(&gw, "/api/hello"), status_of(&gw, "/api/new")),
        (200, 404)
    );
}

// Rule: an edit that leaves a back end alone keeps its pooled upstream connections.
#[test]
fn upstream_pool_survives_unrelated_edit() {
    let up = RecordingUpstream::ok();
    let config = format!(
        "{BASE}\n[[deployments.routes]]\npath = \"/up\"\nbackend = {{ type = \"http\", url = \"http://{}/up\" }}\n",
        up.addr()
    );
    let gw = Gateway::start(&config);
    assert_eq!(status_of(&gw, "/api/up"), 200);
    write_then_rename(gw.config_path(), &format!("{config}{NEW_ROUTE}"));
    assert!(
        eventually(|| status_of(&gw, "/api/new") == 200),
        "log:\n{}",
        gw.log_text()
    );
    assert_eq!(status_of(&gw, "/api/up"), 200);
    assert_eq!(
        up.connection_count(),
        1,
        "the pooled connection was reused across the reload"
    );
}

/// `/config`'s generation and `last_reload`.
fn reload_state(gw: &Gateway) -> (u64, serde_json::Value) {
    let report: serde_json::Value =
        serde_json::from_str(&get(gw.admin_addr(), "/config").text()).unwrap();
    (
        report["generation"].as_u64().unwrap(),
        report["last_reload"].clone(),
    )
}

// Rule: /config shows the last reload's result: a rejected edit (a file deleted,
// half written, or invalid) leaves the generation and says why, naming the file,
// while /readyz stays 200; the file recreated whole applies and clears the error.
#[test]
fn config_endpoint_shows_rejected_reloads_until_a_good_edit() {
    let gw = Gateway::start(BASE);
    assert_eq!(reload_state(&gw), (1, serde_json::Value::Null));
    let path = gw.config_path().to_path_buf();
    let name = path.file_name().unwrap().to_str().unwrap().to_string();
    let rejected_with = |needle: &str| {
        eventually(|| {
            let (generation, last) = reload_state(&gw);
            generation == 1
                && last["result"] == "rejected"
                && last["error"]
                    .as_str()
                    .is_some_and(|e| e.contains(&name) && e.contains(needle))
        })
    };
    std::fs::remove_file(&path).unwrap();
    assert!(rejected_with("cannot read"), "{:?}", reload_state(&gw));
    // The first half of a save: cut inside the route's inline table.
    let full = format!("{BASE}{NEW_ROUTE}");
    let cut = full.rfind("body").unwrap();
    std::fs::write(&path, &full[..cut]).unwrap();
    assert!(rejected_with("line"), "{:?}", reload_state(&gw));
    assert_eq!(status_of(&gw, "/api/hello"), 200, "the old config serves");
    assert_eq!(
        get(gw.admin_addr(), "/readyz").status,
        200,
        "still ready: it serves the running config"
    );
    std::fs::write(&path, &full).unwrap();
    assert!(
        eventually(|| {
            let (generation, last) = reload_state(&gw);
            generation == 2 && last["result"] == "applied" && last["error"].is_null()
        }),
        "{:?}\n{}",
        reload_state(&gw),
        gw.log_text()
    );
    assert_eq!(status_of(&gw, "/api/new"), 200);
}

// Rule: a config file that is a symbolic link to a file elsewhere reloads when
// that file is edited in place (its directory is watched too).
#[test]
fn edit_of_a_symlinked_config_target_reloads() {
    let gw = Gateway::start(BASE);
    let elsewhere = tempfile::tempdir().unwrap();
    let target = elsewhere.path().join("real.toml");
    std::fs::write(&target, BASE).unwrap();
    // Put the link in place the way an operator would: a new link renamed over the file.
    let link = gw.config_path().with_extension("link");
    std::os::unix::fs::symlink(&target, &link).unwrap();
    std::fs::rename(&link, gw.config_path()).unwrap();
    // The link now reads the same text: a reload with nothing to apply, after which the
    // target's directory is watched.
    gw.wait_metric("portcullis_config_reloads_total", 1.0);
    // The watch is added just after that reload is counted, so an edit may come a moment
    // before it: edit again until one is seen. Without the watch none ever would be.
    let edited = format!("{BASE}{NEW_ROUTE}");
    let deadline = std::time::Instant::now() + EVENT_TIMEOUT;
    loop {
        std::fs::write(&target, &edited).unwrap();
        if eventually_within(std::time::Duration::from_secs(1), || {
            status_of(&gw, "/api/new") == 200
        }) {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "an edit of the link's target was never applied; log:\n{}",
            gw.log_text()
        );
    }
}

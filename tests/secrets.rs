//! Secrets by reference over real sockets: a header value written as
//! `{ env = .. }` or `{ file = .. }` reaches the back end; a missing one makes
//! `portcullis check` fail with the key's location; a changed file is read
//! again at reload; and the values never appear in the log, `/config`,
//! `/metrics` or an error message.

mod common;

use common::*;
use std::path::Path;
use std::process::Command;

const ENV_VALUE: &str = "env-secret-7f3a91";
const FILE_VALUE: &str = "file-secret-c0ffee";

fn config(up: &RecordingUpstream, file: &Path) -> String {
    format!(
        r#"
[access_log]
path = "stdout"

[[listeners]]
name = "public"
address = "127.0.0.1:0"

[[deployments]]
name = "api"
listener = "public"
path_prefix = "/api"

[[deployments.routes]]
path = "/up"
backend = {{ type = "http", url = "http://{}/up" }}
request_headers = {{ set = [
    {{ name = "X-Api-Key", value = {{ env = "PORTCULLIS_TEST_HEADER_SECRET" }} }},
    {{ name = "X-Integration-Key", value = {{ file = "{}" }} }},
] }}
"#,
        up.addr(),
        file.display()
    )
}

fn write_secret(path: &Path, value: &str) {
    std::fs::write(path, format!("{value}\n")).unwrap();
}

fn sighup(gw: &Gateway) {
    let status = Command::new("kill")
        .arg("-HUP")
        .arg(gw.pid().to_string())
        .status()
        .unwrap();
    assert!(status.success());
}

// Rule: env and file secrets reach the back end as header values, and never show in
// the log, /config or /metrics.
#[test]
fn header_secrets_reach_the_back_end_and_nowhere_else() {
    let up = RecordingUpstream::ok();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("integration-key");
    write_secret(&file, FILE_VALUE);
    let gw = Gateway::start_with_env(
        &config(&up, &file),
        &[],
        &[("PORTCULLIS_TEST_HEADER_SECRET", ENV_VALUE)],
    );
    assert_eq!(get(gw.addr(), "/api/up").status, 200);
    let got = up.only_request();
    assert_eq!(
        (got.header("x-api-key"), got.header("x-integration-key")),
        (Some(ENV_VALUE), Some(FILE_VALUE))
    );
    let shown = format!(
        "{}\n{}\n{}",
        gw.log_text(),
        get(gw.admin_addr(), "/config").text(),
        gw.metrics()
    );
    assert!(
        !shown.contains(ENV_VALUE) && !shown.contains(FILE_VALUE),
        "{shown}"
    );
}

// Rule: a missing variable or file makes `check` fail, naming the key and the source
// (never a value).
#[test]
fn missing_secrets_fail_check_with_the_key() {
    let up = RecordingUpstream::ok();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("absent-key");
    let path = dir.path().join("gateway.toml");
    std::fs::write(&path, config(&up, &file)).unwrap();
    let check = |env: Option<&str>| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_portcullis"));
        cmd.args(["check", "--config", path.to_str().unwrap()])
            .env_remove("PORTCULLIS_TEST_HEADER_SECRET");
        if let Some(value) = env {
            cmd.env("PORTCULLIS_TEST_HEADER_SECRET", value);
        }
        let out = cmd.output().unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.success(), text)
    };
    let (ok, text) = check(None);
    assert!(!ok, "{text}");
    assert!(
        text.contains("request_headers.set[0].value")
            && text.contains("PORTCULLIS_TEST_HEADER_SECRET"),
        "{text}"
    );
    let (ok, text) = check(Some(ENV_VALUE));
    assert!(!ok, "{text}");
    assert!(
        text.contains("request_headers.set[1].value")
            && text.contains("absent-key")
            && !text.contains(ENV_VALUE),
        "{text}"
    );
    write_secret(&file, FILE_VALUE);
    let (ok, text) = check(Some(ENV_VALUE));
    assert!(ok, "{text}");
    assert!(
        !text.contains(ENV_VALUE) && !text.contains(FILE_VALUE),
        "{text}"
    );
}

// Rule: a file secret changed on disk takes effect at the next reload (SIGHUP).
#[test]
fn file_secret_is_read_again_at_reload() {
    let up = RecordingUpstream::ok();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("integration-key");
    write_secret(&file, "first-value");
    let gw = Gateway::start_with_env(
        &config(&up, &file),
        &[],
        &[("PORTCULLIS_TEST_HEADER_SECRET", ENV_VALUE)],
    );
    assert_eq!(get(gw.addr(), "/api/up").status, 200);
    write_secret(&file, "second-value-longer");
    sighup(&gw);
    gw.wait_log_line("an applied reload", |l| l.contains("result=\"applied\""));
    assert_eq!(get(gw.addr(), "/api/up").status, 200);
    let seen: Vec<String> = up
        .wait_for_requests(2)
        .iter()
        .map(|r| r.header("x-integration-key").unwrap_or("").to_string())
        .collect();
    assert_eq!(seen, ["first-value", "second-value-longer"]);
    assert!(!gw.log_text().contains("second-value-longer"));
}

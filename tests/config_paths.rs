//! Relative paths in a config follow the config file's directory, whatever
//! directory the gateway is started in; a config written when TLS files and
//! the access log followed the working directory keeps working, with a
//! warning naming the key. Driven through the real binary (`check` run from
//! another directory, `run` writing its access log).

mod common;
#[path = "support/tls.rs"]
mod support;

use common::*;
use std::path::Path;
use std::process::{Command, Output};
use support::*;

/// A TLS listener whose certificate and key are `certs/gw.pem` and
/// `certs/gw-key.pem`, written relative.
const RELATIVE_TLS: &str = r#"admin = ""
[[listeners]]
name = "secure"
address = "127.0.0.1:0"
tls = { certificates = [{ cert = "certs/gw.pem", key = "certs/gw-key.pem" }] }

[[deployments]]
name = "api"
listener = "secure"

[[deployments.routes]]
path = "/hello"
backend = { type = "stock", status = 200 }
"#;

/// `portcullis check --config etc/gw.toml`, run from `work/` under `root`.
fn check_from_work(root: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_portcullis"))
        .args(["check", "--config"])
        .arg(root.join("etc/gw.toml"))
        .current_dir(root.join("work"))
        .output()
        .expect("spawn portcullis")
}

/// A root with `etc/gw.toml` (the config above) and `work/`, and the
/// certificate pair copied into `certs/` under each directory of `places`.
fn layout(pki: &Pki, places: &[&str]) -> tempfile::TempDir {
    let root = tempfile::tempdir().unwrap();
    for dir in ["etc", "work"] {
        std::fs::create_dir(root.path().join(dir)).unwrap();
    }
    std::fs::write(root.path().join("etc/gw.toml"), RELATIVE_TLS).unwrap();
    for (i, place) in places.iter().enumerate() {
        let issued = pki.issue(&format!("gw{i}"), "gateway", &["localhost"]);
        let certs = root.path().join(place).join("certs");
        std::fs::create_dir(&certs).unwrap();
        std::fs::copy(&issued.cert, certs.join("gw.pem")).unwrap();
        std::fs::copy(&issued.key, certs.join("gw-key.pem")).unwrap();
    }
    root
}

fn stdout(out: &Output) -> String {
    assert!(
        out.status.success(),
        "check failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

// Rule: a relative certificate path is read from the config file's
// directory, not the working directory, and `check` prints it resolved.
#[test]
fn relative_tls_paths_follow_the_config_file() {
    let pki = Pki::new("paths");
    let root = layout(&pki, &["etc"]);
    let text = stdout(&check_from_work(root.path()));
    let cert = root.path().join("etc/certs/gw.pem");
    assert!(
        text.contains(&format!(
            "  listeners[0].tls.certificates[0].cert = {}\n",
            cert.display()
        )) && !text.contains("warning:"),
        "{text}"
    );
}

// Rule: an old config whose certificate is found only relative to the
// working directory still passes, with a warning naming the key.
#[test]
fn old_working_directory_paths_work_with_a_warning() {
    let pki = Pki::new("paths");
    let root = layout(&pki, &["work"]);
    let text = stdout(&check_from_work(root.path()));
    assert!(
        text.contains("warning: `listeners[0].tls.certificates[0].cert` = \"certs/gw.pem\" is not found relative to the config file's directory")
            && text.contains("warning: `listeners[0].tls.certificates[0].key`")
            && text.contains(&format!(
                "  listeners[0].tls.certificates[0].cert = {}\n",
                root.path().join("work/certs/gw.pem").display()
            )),
        "{text}"
    );
}

// Rule: with a file under both directories, the config directory's is used
// and the warning says the other is no longer read.
#[test]
fn config_directory_wins_over_the_working_directory() {
    let pki = Pki::new("paths");
    let root = layout(&pki, &["etc", "work"]);
    let text = stdout(&check_from_work(root.path()));
    assert!(
        text.contains(&format!(
            "  listeners[0].tls.certificates[0].cert = {}\n",
            root.path().join("etc/certs/gw.pem").display()
        )) && text.contains("relative to the working directory, is no longer used"),
        "{text}"
    );
}

// Rule: a relative access log path is written beside the config file by a
// gateway started in another directory.
#[test]
fn relative_access_log_is_written_beside_the_config() {
    let gw = Gateway::start(
        "[access_log]\npath = \"access.log\"\n[[listeners]]\nname = \"public\"\naddress = \"127.0.0.1:0\"\n[[deployments]]\nname = \"api\"\nlistener = \"public\"\n[[deployments.routes]]\npath = \"/hello\"\nbackend = { type = \"stock\", status = 200 }\n",
    );
    assert_eq!(get(gw.addr(), "/hello").status, 200);
    let log = gw.config_path().with_file_name("access.log");
    assert!(
        eventually(|| std::fs::read_to_string(&log).is_ok_and(|t| t.contains("/hello"))),
        "no access log line in {}",
        log.display()
    );
}

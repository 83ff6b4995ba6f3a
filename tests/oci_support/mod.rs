//! Helpers of `tests/oci_import.rs`: fixtures with their placeholders filled
//! in (the upstream's address, the test keys), runs of the real binary, and
//! JSON rewrites (the OCI CLI's kebab case, one node replaced).

#![allow(dead_code)]

use crate::auth_support::{claims, keys, sign};
use crate::common::{request, Gateway, RecordingUpstream, Response};
use jsonwebtoken::Algorithm;
use std::path::{Path, PathBuf};
use std::process::Command;

pub const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/oci");

/// A fixture copied into `dir` with its `__PLACEHOLDERS__` filled in.
pub fn fixture(dir: &Path, name: &str, vars: &[(&str, String)]) -> PathBuf {
    let text = std::fs::read_to_string(format!("{FIXTURES}/{name}")).expect("fixture");
    let text = vars.iter().fold(text, |t, (k, v)| t.replace(k, v));
    let path = dir.join(name.replace('/', "-"));
    std::fs::write(&path, text).expect("write fixture");
    path
}

/// What one run of the binary gave.
pub struct Run {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

pub fn portcullis(args: &[&str]) -> Run {
    let out = Command::new(env!("CARGO_BIN_EXE_portcullis"))
        .args(args)
        .env("NO_COLOR", "1")
        .output()
        .expect("run portcullis");
    Run {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// `import oci` with `flags` and the files (`--deployment`, `--usage-plans` or
/// `--subscribers` by their names), written to `out`.
pub fn import(args: &[&Path], flags: &[&str], out: &Path) -> Run {
    let mut all: Vec<String> = vec!["import".into(), "oci".into()];
    all.extend(flags.iter().map(|f| f.to_string()));
    for path in args {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let flag = if name.contains("deployment") {
            "--deployment"
        } else if name.contains("plan") {
            "--usage-plans"
        } else {
            "--subscribers"
        };
        all.push(flag.into());
        all.push(path.to_string_lossy().into_owned());
    }
    all.push("--out".into());
    all.push(out.to_string_lossy().into_owned());
    let refs: Vec<&str> = all.iter().map(String::as_str).collect();
    portcullis(&refs)
}

/// Asserts `portcullis check` accepts `config`.
pub fn assert_checks(config: &Path) {
    let run = portcullis(&["check", "--config", config.to_str().unwrap()]);
    assert_eq!(
        run.code,
        Some(0),
        "check refused the imported config:\n{}\n{}",
        run.stderr,
        std::fs::read_to_string(config).unwrap_or_default()
    );
}

pub fn call(gw: &Gateway, path: &str, headers: &[(&str, &str)]) -> Response {
    let mut raw = format!("GET {path} HTTP/1.1\r\nHost: gw.test\r\n");
    for (name, value) in headers {
        raw.push_str(&format!("{name}: {value}\r\n"));
    }
    raw.push_str("\r\n");
    request(gw.addr(), raw)
}

/// The full case's fixtures in `dir`, with the upstream and test keys filled in.
pub fn full_fixtures(dir: &Path, upstream: &RecordingUpstream) -> Vec<PathBuf> {
    let jwks: serde_json::Value = serde_json::from_str(&keys().jwks()).unwrap();
    let rsa = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["kid"] == "rsa")
        .unwrap();
    let pem = serde_json::to_string(&keys().rsa_public_pem).unwrap();
    let vars = [
        ("__UPSTREAM__", upstream.addr().to_string()),
        ("__RSA_N__", rsa["n"].as_str().unwrap().to_string()),
        ("__RSA_E__", rsa["e"].as_str().unwrap().to_string()),
        ("\"__RSA_PEM__\"", pem),
    ];
    [
        "full/deployment-orders.json",
        "full/deployment-partner.json",
        "full/plan-gold.json",
        "full/plan-free.json",
        "full/subscriber-acme.json",
        "full/subscribers-list.json",
    ]
    .iter()
    .map(|name| fixture(dir, name, &vars))
    .collect()
}

pub fn jwt(kid: &str, scope: &str) -> String {
    let (key, _) = keys().signer(Algorithm::RS256);
    format!(
        "Bearer {}",
        sign(Algorithm::RS256, Some(kid), &key, &claims(scope))
    )
}

/// `value` with every object member name in the OCI CLI's kebab case.
pub fn kebab_keys(value: &serde_json::Value) -> serde_json::Value {
    use serde_json::Value;
    match value {
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| {
                    let mut key = String::new();
                    for c in k.chars() {
                        if c.is_ascii_uppercase() {
                            key.push('-');
                            key.push(c.to_ascii_lowercase());
                        } else {
                            key.push(c);
                        }
                    }
                    (key, kebab_keys(v))
                })
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(kebab_keys).collect()),
        other => other.clone(),
    }
}

/// How many nodes `value` has, itself included.
pub fn count_nodes(value: &serde_json::Value) -> usize {
    1 + match value {
        serde_json::Value::Array(items) => items.iter().map(count_nodes).sum(),
        serde_json::Value::Object(map) => map.values().map(count_nodes).sum(),
        _ => 0,
    }
}

/// Replaces the node numbered `at` (depth first, the root is 0) by `mutant`.
pub fn replace_node(
    value: &mut serde_json::Value,
    at: &mut usize,
    mutant: &serde_json::Value,
) -> bool {
    if *at == 0 {
        *value = mutant.clone();
        return true;
    }
    *at -= 1;
    let children: Vec<&mut serde_json::Value> = match value {
        serde_json::Value::Array(items) => items.iter_mut().collect(),
        serde_json::Value::Object(map) => map.values_mut().collect(),
        _ => return false,
    };
    children
        .into_iter()
        .any(|child| replace_node(child, at, mutant))
}

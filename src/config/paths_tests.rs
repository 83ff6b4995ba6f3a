//! Unit tests of `paths.rs`: relative paths follow the config file, with the
//! working-directory fallback and its warnings.

use super::*;
use std::fs::{create_dir, write};

const LISTENER: &str = "[[listeners]]\nname = \"a\"\naddress = \"127.0.0.1:1\"\n";

/// Resolves `text` as if read from `config/gw.toml` under a fresh
/// directory, with `work/` as the working directory; `files` are created
/// there first (paths relative to that directory).
fn resolve_in(text: &str, files: &[&str]) -> (Config, Resolved, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    for sub in ["config", "work"] {
        create_dir(root.join(sub)).unwrap();
    }
    for file in files {
        write(root.join(file), "x").unwrap();
    }
    let mut config = crate::config::parse_str(text, Path::new("gw.toml")).unwrap();
    let work = root.join("work");
    let resolved = resolve(&mut config, &root.join("config"), Some(&work)).unwrap();
    (config, resolved, dir)
}

fn with_cert(cert: &str) -> String {
    format!("{LISTENER}tls = {{ certificates = [{{ cert = \"{cert}\", key = \"/k.pem\" }}] }}\n")
}

// A relative path becomes the absolute path under the config file's
// directory; an absolute one stays.
#[test]
fn relative_paths_follow_the_config_directory() {
    let (config, resolved, dir) = resolve_in(&with_cert("c.pem"), &["config/c.pem"]);
    let root = dir.path();
    let tls = config.listeners[0].tls.as_ref().unwrap();
    assert_eq!(
        (
            tls.certificates[0].cert.clone(),
            tls.certificates[0].key.as_str(),
            resolved.warnings.len()
        ),
        (root.join("config/c.pem").display().to_string(), "/k.pem", 0)
    );
}

// A file found only relative to the working directory is still used,
// with a warning naming the key.
#[test]
fn working_directory_file_is_used_with_a_warning() {
    let (config, resolved, dir) = resolve_in(&with_cert("c.pem"), &["work/c.pem"]);
    let root = dir.path();
    let cert = &config.listeners[0].tls.as_ref().unwrap().certificates[0].cert;
    assert_eq!(cert, &root.join("work/c.pem").display().to_string());
    assert!(
        resolved.warnings[0]
            .starts_with("`listeners[0].tls.certificates[0].cert` = \"c.pem\" is not found"),
        "{:?}",
        resolved.warnings
    );
}

// Two different files, one under each directory: the config directory's
// is used, with a warning naming the key.
#[test]
fn two_files_config_directory_wins_with_a_warning() {
    let (config, resolved, dir) = resolve_in(&with_cert("c.pem"), &["work/c.pem", "config/c.pem"]);
    let root = dir.path();
    let cert = &config.listeners[0].tls.as_ref().unwrap().certificates[0].cert;
    assert_eq!(cert, &root.join("config/c.pem").display().to_string());
    assert!(
        resolved.warnings[0].contains("is no longer used"),
        "{:?}",
        resolved.warnings
    );
}

// A file found nowhere resolves against the config directory, without a warning.
#[test]
fn missing_file_resolves_against_the_config_directory() {
    let (config, resolved, dir) = resolve_in(&with_cert("c.pem"), &[]);
    let root = dir.path();
    let cert = &config.listeners[0].tls.as_ref().unwrap().certificates[0].cert;
    assert_eq!(
        (cert.clone(), resolved.warnings.len()),
        (root.join("config/c.pem").display().to_string(), 0)
    );
}

// The access log needs only its directory: a directory found only under
// the working directory keeps the old place, with a warning.
#[test]
fn access_log_follows_its_directory() {
    let text = format!("[access_log]\npath = \"old/access.log\"\n{LISTENER}");
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    for sub in ["config", "work", "work/old"] {
        create_dir(root.join(sub)).unwrap();
    }
    let mut config = crate::config::parse_str(&text, Path::new("gw.toml")).unwrap();
    let resolved = resolve(&mut config, &root.join("config"), Some(&root.join("work"))).unwrap();
    let path = config.access_log.map(|a| a.path);
    assert_eq!(
        (path, resolved.warnings.len()),
        (
            Some(root.join("work/old/access.log").display().to_string()),
            1
        )
    );
}

// Keys that always followed the config directory (JWT files, state_dir,
// include) never fall back to the working directory, and `stdout` is no path.
#[test]
fn config_directory_keys_have_no_fallback() {
    let text = format!(
        "state_dir = \"s\"\ninclude = [\"i.toml\"]\n[access_log]\npath = \"stdout\"\n{LISTENER}[[deployments]]\nname = \"d\"\nlistener = \"a\"\nauthentication = {{ type = \"jwt\", public_keys = {{ type = \"static_keys\", jwks_file = \"j.json\" }} }}\n"
    );
    let (config, resolved, dir) = resolve_in(&text, &["work/j.json", "work/i.toml"]);
    let root = dir.path();
    let jwks = config.deployments[0]
        .authentication
        .as_ref()
        .unwrap()
        .public_keys
        .jwks_file
        .clone();
    assert_eq!(
        (
            jwks,
            config.include[0].clone(),
            config.state_dir.clone(),
            config.access_log.map(|a| a.path),
            resolved.warnings.len()
        ),
        (
            Some(root.join("config/j.json").display().to_string()),
            root.join("config/i.toml").display().to_string(),
            Some(root.join("config/s").display().to_string()),
            Some("stdout".to_string()),
            0
        )
    );
}

// A config in the working directory gets no warning.
#[test]
fn config_in_the_working_directory_gets_no_warning() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    write(root.join("c.pem"), "x").unwrap();
    let mut config = crate::config::parse_str(&with_cert("c.pem"), Path::new("gw.toml")).unwrap();
    let resolved = resolve(&mut config, root, Some(&root.join("."))).unwrap();
    assert_eq!(resolved.warnings, Vec::<String>::new());
}

// The config directory of a bare file name is the working directory, absolute.
#[test]
fn config_dir_is_absolute() {
    assert!(config_dir(Path::new("gw.toml")).is_absolute());
}

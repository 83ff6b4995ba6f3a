//! Every relative path in a configuration resolves against the directory of
//! the config file, once, when the file is loaded: [`resolve`] rewrites each
//! path-valued key of a [`Config`] to an absolute path, so nothing after
//! loading (snapshot, policies, TLS, access log) joins a base of its own.
//!
//! Older releases read `access_log.path`, the listener certificate, key and
//! `client_auth.ca` files and the back ends' `ca`, `client_cert` and
//! `client_key` relative to the working directory. For those keys, when the
//! config file is not in the working directory, the rule is:
//!
//! 1. found relative to the config file's directory: that file is used; when
//!    a different file exists under the working directory too, a warning says
//!    that one is no longer read;
//! 2. not found there but found relative to the working directory: the
//!    working-directory path is used, with a warning, so an old config keeps
//!    working until it is fixed;
//! 3. found in neither: the config-directory path (the error then names it).
//!
//! "Found" means the file exists; for `access_log.path`, a file the gateway
//! creates, it means its directory exists. `include`, `state_dir`, the JWT
//! files (`jwks_file`, `key_file`, `ca_file`) and validation's `body_schema`
//! always followed the config file's directory and get no fallback, nor do
//! secrets read from files (`{ file = .. }` in header values and back-end
//! credentials). Loading only: no reading of the files.

use super::Config;
use std::path::{Component, Path, PathBuf};

type Error = (String, String);

/// A path-valued key and the absolute path the gateway uses for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedPath {
    /// Dotted key, e.g. `listeners[0].tls.certificates[0].cert`.
    pub key: String,
    pub path: PathBuf,
}

/// Every path key of a configuration, resolved, and the warnings for paths an
/// older release would have read from somewhere else.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Resolved {
    pub paths: Vec<ResolvedPath>,
    pub warnings: Vec<String>,
}

/// Where a key's relative path was read from before every path followed the
/// config file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Was {
    /// Always the config file's directory: nothing to compare.
    ConfigDir,
    /// The working directory, a file that must exist.
    WorkingDir,
    /// The working directory, a file the gateway creates (its directory must exist).
    WorkingDirCreated,
}

/// The absolute directory of the config file at `file` (relative to the
/// working directory when `file` is relative).
pub fn config_dir(file: &Path) -> PathBuf {
    let parent = file
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    if parent.is_absolute() {
        return clean(parent);
    }
    match std::env::current_dir() {
        Ok(cwd) => clean(&cwd.join(parent)),
        Err(_) => parent.to_path_buf(),
    }
}

/// `path` without `.` components (`..` is kept: a symbolic link may stand before it).
fn clean(path: &Path) -> PathBuf {
    path.components()
        .filter(|c| !matches!(c, Component::CurDir))
        .collect()
}

/// Rewrites every path of `config` to an absolute one, relative paths taken
/// from `dir` (the config file's directory); `cwd` is the working directory,
/// for the keys that older releases read relative to it. An error is (key,
/// message).
pub fn resolve(
    config: &mut Config,
    dir: &Path,
    cwd: Option<&Path>,
) -> Result<Resolved, (String, String)> {
    let mut r = Resolver {
        dir,
        cwd,
        out: Resolved::default(),
    };
    for (i, name) in config.include.iter_mut().enumerate() {
        r.one(format!("include[{i}]"), name, Was::ConfigDir)?;
    }
    if let Some(dir) = config.state_dir.as_mut() {
        r.one("state_dir".into(), dir, Was::ConfigDir)?;
    }
    if let Some(log) = config.access_log.as_mut().filter(|l| l.path != "stdout") {
        r.one(
            "access_log.path".into(),
            &mut log.path,
            Was::WorkingDirCreated,
        )?;
    }
    for (i, listener) in config.listeners.iter_mut().enumerate() {
        let Some(tls) = listener.tls.as_mut() else {
            continue;
        };
        let key = format!("listeners[{i}].tls");
        for (j, pair) in tls.certificates.iter_mut().enumerate() {
            r.one(
                format!("{key}.certificates[{j}].cert"),
                &mut pair.cert,
                Was::WorkingDir,
            )?;
            r.one(
                format!("{key}.certificates[{j}].key"),
                &mut pair.key,
                Was::WorkingDir,
            )?;
        }
        if let Some(auth) = tls.client_auth.as_mut() {
            r.one(
                format!("{key}.client_auth.ca"),
                &mut auth.ca,
                Was::WorkingDir,
            )?;
        }
    }
    for (d, deployment) in config.deployments.iter_mut().enumerate() {
        if let Some(auth) = deployment.authentication.as_mut() {
            let secret = auth
                .introspection
                .as_mut()
                .and_then(|i| i.client_secret.as_mut());
            if let Some(secret) = secret {
                let key = format!("deployments[{d}].authentication.introspection.client_secret");
                r.secret(key, secret)?;
            }
            let key = format!("deployments[{d}].authentication.public_keys");
            let keys = &mut auth.public_keys;
            for (k, static_key) in keys.keys.iter_mut().enumerate() {
                r.optional(
                    format!("{key}.keys[{k}].key_file"),
                    &mut static_key.key_file,
                )?;
            }
            r.optional(format!("{key}.jwks_file"), &mut keys.jwks_file)?;
            r.optional(format!("{key}.ca_file"), &mut keys.ca_file)?;
        }
        for (n, route) in deployment.routes.iter_mut().enumerate() {
            for (key, source) in super::credentials::route_secrets_mut(route) {
                r.secret(format!("deployments[{d}].routes[{n}].{key}"), source)?;
            }
            let key = format!("deployments[{d}].routes[{n}].backend");
            r.backend_files(&key, &mut route.backend)?;
            if let Some(validation) = route.validation.as_mut() {
                r.optional(
                    format!("deployments[{d}].routes[{n}].validation.body_schema"),
                    &mut validation.body_schema,
                )?;
            }
            for (c, case) in route.backend.cases.iter_mut().flatten().enumerate() {
                r.backend_files(&format!("{key}.cases[{c}].backend"), &mut case.backend)?;
            }
        }
    }
    Ok(r.out)
}

struct Resolver<'a> {
    dir: &'a Path,
    cwd: Option<&'a Path>,
    out: Resolved,
}

impl Resolver<'_> {
    /// A back end's certificate and key files.
    fn backend_files(
        &mut self,
        key: &str,
        backend: &mut super::Backend,
    ) -> Result<(), (String, String)> {
        for (name, value) in [
            ("ca", &mut backend.ca),
            ("client_cert", &mut backend.client_cert),
            ("client_key", &mut backend.client_key),
        ] {
            if let Some(value) = value.as_mut() {
                self.one(format!("{key}.{name}"), value, Was::WorkingDir)?;
            }
        }
        Ok(())
    }

    fn optional(
        &mut self,
        key: String,
        value: &mut Option<String>,
    ) -> Result<(), (String, String)> {
        match value.as_mut() {
            Some(value) => self.one(key, value, Was::ConfigDir),
            None => Ok(()),
        }
    }

    /// Resolves a `{ file = .. }` secret's path in place; others are left.
    fn secret(&mut self, key: String, source: &mut super::SecretSource) -> Result<(), Error> {
        match source {
            super::SecretSource::File(path) => self.one(key, path, Was::ConfigDir),
            _ => Ok(()),
        }
    }

    /// Resolves one path in place; an empty one is left for the compiler to refuse.
    fn one(&mut self, key: String, value: &mut String, was: Was) -> Result<(), (String, String)> {
        if value.is_empty() {
            return Ok(());
        }
        let written = Path::new(value.as_str());
        let path = if written.is_absolute() {
            clean(written)
        } else {
            let new = clean(&self.dir.join(written));
            match self.cwd.filter(|_| was != Was::ConfigDir) {
                Some(cwd) => self.choose(&key, value, new, clean(&cwd.join(written)), was),
                None => new,
            }
        };
        let Some(text) = path.to_str() else {
            return Err((
                key,
                format!(
                    "the path {} is not valid UTF-8; write it as an absolute path",
                    path.display()
                ),
            ));
        };
        *value = text.to_string();
        self.out.paths.push(ResolvedPath { key, path });
        Ok(())
    }

    /// The rule of the module docs, for a key older releases read from the
    /// working directory: `new` from the config directory, `old` from the
    /// working directory.
    fn choose(
        &mut self,
        key: &str,
        written: &str,
        new: PathBuf,
        old: PathBuf,
        was: Was,
    ) -> PathBuf {
        if new == old {
            return new;
        }
        let found = |p: &Path| match was {
            Was::WorkingDirCreated => p.parent().is_some_and(Path::is_dir),
            _ => p.exists(),
        };
        if found(&new) {
            if old.exists() && !same_file(&new, &old) {
                self.out.warnings.push(format!(
                    "`{key}` = \"{written}\" is {} (relative paths follow the config file's directory); {}, relative to the working directory, is no longer used",
                    new.display(),
                    old.display()
                ));
            }
            new
        } else if found(&old) {
            self.out.warnings.push(format!(
                "`{key}` = \"{written}\" is not found relative to the config file's directory ({}); {}, relative to the working directory, is used for now: write the path from the config file's directory or make it absolute",
                new.display(),
                old.display()
            ));
            old
        } else {
            new
        }
    }
}

/// True when both paths name one existing file (through links or `..`).
fn same_file(a: &Path, b: &Path) -> bool {
    match (std::fs::canonicalize(a), std::fs::canonicalize(b)) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
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
        format!(
            "{LISTENER}tls = {{ certificates = [{{ cert = \"{cert}\", key = \"/k.pem\" }}] }}\n"
        )
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
        let (config, resolved, dir) =
            resolve_in(&with_cert("c.pem"), &["work/c.pem", "config/c.pem"]);
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
        let resolved =
            resolve(&mut config, &root.join("config"), Some(&root.join("work"))).unwrap();
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
        let mut config =
            crate::config::parse_str(&with_cert("c.pem"), Path::new("gw.toml")).unwrap();
        let resolved = resolve(&mut config, root, Some(&root.join("."))).unwrap();
        assert_eq!(resolved.warnings, Vec::<String>::new());
    }

    // The config directory of a bare file name is the working directory, absolute.
    #[test]
    fn config_dir_is_absolute() {
        assert!(config_dir(Path::new("gw.toml")).is_absolute());
    }
}

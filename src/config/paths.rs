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
#[path = "paths_tests.rs"]
mod tests;

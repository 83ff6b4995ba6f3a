//! Secrets by reference: any config key that holds a secret (a header value
//! carrying credentials, a back end's password or client secret, the cluster
//! store's password) is a [`SecretSource`], written one of three ways:
//!
//! ```toml
//! password = "inline value"                    # kept for small setups and tests
//! password = { env = "PORTCULLIS_BACKEND_PW" } # read from the environment
//! password = { file = "/run/credentials/pw" }  # read from a file, one trailing newline trimmed
//! ```
//!
//! A relative `file` is relative to the config file's directory
//! ([`SecretSource::resolve_in`] takes that directory). Reading happens when a
//! snapshot is compiled (start, `check`, every reload), so a file secret that
//! changed is picked up by the next reload, and a missing variable or file
//! fails the load with the key's location like any other config error.
//!
//! A resolved [`Secret`] never prints its value: `Debug` and `Display` show
//! `<secret>`, and nothing here derives `Serialize`, so `/config`, logs,
//! metrics and errors cannot carry one. Error messages name the variable or
//! the file, never the content.

use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::Deserialize;
use std::fmt;
use std::path::Path;

/// Where a secret comes from, as written in the config.
#[derive(Clone, PartialEq, Eq)]
pub enum SecretSource {
    /// The value itself, in the TOML.
    Inline(String),
    /// An environment variable of the gateway process.
    Env(String),
    /// A file (absolute, or relative to the config file's directory).
    File(String),
}

/// A secret's value, read from its source. Prints as `<secret>`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a value obtained elsewhere (e.g. a token fetched at run time).
    pub fn new(value: String) -> Secret {
        Secret(value)
    }

    /// The value, for the one place that sends it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<secret>")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<secret>")
    }
}

impl fmt::Debug for SecretSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SecretSource::Inline(_) => f.write_str("Inline(<secret>)"),
            SecretSource::Env(name) => write!(f, "Env({name:?})"),
            SecretSource::File(path) => write!(f, "File({path:?})"),
        }
    }
}

impl SecretSource {
    /// Reads the secret; `config_dir` anchors a relative `file`. The error
    /// names the source (variable or path), never a value.
    pub fn resolve_in(&self, config_dir: &Path) -> Result<Secret, String> {
        match self {
            SecretSource::Inline(value) => Ok(Secret(value.clone())),
            SecretSource::Env(name) => match std::env::var(name) {
                Ok(value) if !value.is_empty() => Ok(Secret(value)),
                Ok(_) => Err(format!("environment variable `{name}` is empty")),
                Err(std::env::VarError::NotPresent) => {
                    Err(format!("environment variable `{name}` is not set"))
                }
                Err(std::env::VarError::NotUnicode(_)) => {
                    Err(format!("environment variable `{name}` is not valid UTF-8"))
                }
            },
            SecretSource::File(path) => {
                let full = config_dir.join(path);
                let text = std::fs::read_to_string(&full)
                    .map_err(|e| format!("cannot read secret file {}: {e}", full.display()))?;
                let value = text
                    .strip_suffix("\r\n")
                    .or_else(|| text.strip_suffix('\n'))
                    .unwrap_or(&text);
                if value.is_empty() {
                    return Err(format!("secret file {} is empty", full.display()));
                }
                Ok(Secret(value.to_string()))
            }
        }
    }

    /// Where the secret comes from, for `check`'s summary and `/config`
    /// (`inline`, `env:NAME`, `file:PATH`): never the value.
    pub fn describe(&self) -> String {
        match self {
            SecretSource::Inline(_) => "inline".to_string(),
            SecretSource::Env(name) => format!("env:{name}"),
            SecretSource::File(path) => format!("file:{path}"),
        }
    }
}

impl<'de> Deserialize<'de> for SecretSource {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(SourceVisitor)
    }
}

struct SourceVisitor;

impl<'de> Visitor<'de> for SourceVisitor {
    type Value = SecretSource;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(r#"a string, `{ env = "NAME" }` or `{ file = "PATH" }`"#)
    }

    fn visit_str<E: de::Error>(self, value: &str) -> Result<SecretSource, E> {
        Ok(SecretSource::Inline(value.to_string()))
    }

    fn visit_string<E: de::Error>(self, value: String) -> Result<SecretSource, E> {
        Ok(SecretSource::Inline(value))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<SecretSource, A::Error> {
        let mut found: Option<SecretSource> = None;
        while let Some(key) = map.next_key::<String>()? {
            let value: String = map.next_value()?;
            let source = match key.as_str() {
                "env" => SecretSource::Env(value),
                "file" => SecretSource::File(value),
                other => {
                    return Err(de::Error::custom(format!(
                        "unknown secret source `{other}`: expected `env` or `file`"
                    )))
                }
            };
            if value_is_blank(&source) {
                return Err(de::Error::custom(format!("`{key}` must not be empty")));
            }
            if found.replace(source).is_some() {
                return Err(de::Error::custom(
                    "a secret takes exactly one of `env` or `file`",
                ));
            }
        }
        found.ok_or_else(|| de::Error::custom("a secret needs `env` or `file`"))
    }
}

fn value_is_blank(source: &SecretSource) -> bool {
    match source {
        SecretSource::Env(v) | SecretSource::File(v) | SecretSource::Inline(v) => v.is_empty(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Deserialize)]
    struct Holder {
        pw: SecretSource,
    }

    fn parse(text: &str) -> Result<SecretSource, String> {
        toml::from_str::<Holder>(text)
            .map(|h| h.pw)
            .map_err(|e| e.to_string())
    }

    #[test]
    fn three_ways_to_write_a_secret() {
        assert_eq!(
            parse(r#"pw = "x""#).unwrap(),
            SecretSource::Inline("x".into())
        );
        assert_eq!(
            parse(r#"pw = { env = "A" }"#).unwrap(),
            SecretSource::Env("A".into())
        );
        assert_eq!(
            parse(r#"pw = { file = "f" }"#).unwrap(),
            SecretSource::File("f".into())
        );
    }

    #[test]
    fn bad_references_are_clear_errors() {
        assert!(parse(r#"pw = { vault = "x" }"#)
            .unwrap_err()
            .contains("unknown secret source `vault`"));
        assert!(parse(r#"pw = { env = "A", file = "f" }"#)
            .unwrap_err()
            .contains("exactly one"));
        assert!(parse(r#"pw = {}"#)
            .unwrap_err()
            .contains("needs `env` or `file`"));
        assert!(parse(r#"pw = { env = "" }"#).unwrap_err().contains("empty"));
        assert!(parse("pw = 3").is_err());
    }

    #[test]
    fn file_secret_trims_one_newline_and_resolves_relative() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("pw"), "s3cret\n").unwrap();
        let secret = SecretSource::File("pw".into())
            .resolve_in(dir.path())
            .unwrap();
        assert_eq!(secret.expose(), "s3cret");
        let missing = SecretSource::File("nope".into())
            .resolve_in(dir.path())
            .unwrap_err();
        assert!(missing.contains("nope"), "{missing}");
    }

    #[test]
    fn env_secret_and_missing_variable() {
        let name = "PORTCULLIS_TEST_SECRET_REF_UNSET_7731";
        let err = SecretSource::Env(name.into())
            .resolve_in(Path::new("/"))
            .unwrap_err();
        assert!(err.contains(name) && err.contains("not set"), "{err}");
        let path_var = SecretSource::Env("PATH".into())
            .resolve_in(Path::new("/"))
            .unwrap();
        assert!(!path_var.expose().is_empty());
    }

    #[test]
    fn secrets_never_print() {
        let secret = Secret::new("hunter2".into());
        assert_eq!(format!("{secret:?} {secret}"), "<secret> <secret>");
        let source = SecretSource::Inline("hunter2".into());
        assert!(!format!("{source:?}").contains("hunter2"));
        assert_eq!(source.describe(), "inline");
    }
}

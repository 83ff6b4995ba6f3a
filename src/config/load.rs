//! Reading a config file into [`Config`], with errors that name the file, line,
//! column and key.
//!
//! Parse errors come from `toml` (which knows the byte span); the key path comes
//! from `serde_path_to_error` (for a syntax error, the nearest key from
//! [`super::locate`]); messages are put in operator words by [`super::words`].
//! Semantic errors found later by the snapshot compiler carry a key path too
//! and are placed with [`super::locate_key`]. Every relative path is resolved
//! against the main file's directory here ([`super::paths`]), once.

use super::locate::{line_column, locate_key, nearest_key};
use super::paths::{config_dir, Resolved};
use super::{Config, Fragment};
use serde::Deserialize;
use std::collections::HashMap;
use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

/// A config file that cannot be used, with enough context to fix it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub file: PathBuf,
    pub line: Option<usize>,
    pub column: Option<usize>,
    /// Dotted key path, e.g. `deployments[0].routes[1].backend.url`.
    pub key: Option<String>,
    pub message: String,
}

impl ConfigError {
    /// An error at `key` in the file whose text is `source`.
    pub fn at_key(file: &Path, source: &str, key: &str, message: impl Into<String>) -> Self {
        let position = locate_key(source, key);
        ConfigError {
            file: file.to_path_buf(),
            line: position.map(|p| p.0),
            column: position.map(|p| p.1),
            key: Some(key.to_string()),
            message: message.into(),
        }
    }

    /// An error about the file as a whole (unreadable, empty of listeners, ...).
    pub fn whole_file(file: &Path, message: impl Into<String>) -> Self {
        ConfigError {
            file: file.to_path_buf(),
            line: None,
            column: None,
            key: None,
            message: message.into(),
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let (Some(line), Some(column)) = (self.line, self.column) {
            write!(f, ": line {line}, column {column}")?;
        }
        if let Some(key) = &self.key {
            write!(f, ": key `{key}`")?;
        }
        write!(f, ": {}", self.message)
    }
}

impl std::error::Error for ConfigError {}

/// Reads and parses the file at `path`; returns the config and its text.
pub fn load_file(path: &Path) -> Result<(Config, String), ConfigError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| ConfigError::whole_file(path, format!("cannot read config file: {e}")))?;
    let config = parse_str(&text, path)?;
    Ok((config, text))
}

/// Parses config text; `file` is only used in error messages.
pub fn parse_str(text: &str, file: &Path) -> Result<Config, ConfigError> {
    parse_as(text, file)
}

fn parse_as<T: for<'de> Deserialize<'de>>(text: &str, file: &Path) -> Result<T, ConfigError> {
    let deserializer =
        toml::de::Deserializer::parse(text).map_err(|e| from_toml(file, text, &e, None))?;
    T::deserialize_with_path(deserializer).map_err(|e| {
        let path = e.path().to_string();
        from_toml(file, text, e.inner(), Some(path))
    })
}

/// One file of a configuration, and which entries of the merged lists came from it.
#[derive(Debug, Clone)]
pub struct SourceFile {
    pub path: PathBuf,
    pub text: String,
    usage_plans: Range<usize>,
    subscribers: Range<usize>,
}

/// The files a configuration was read from: the main file first, then its
/// includes. Errors found in merged lists are placed back in their own file.
#[derive(Debug, Clone)]
pub struct Sources {
    pub files: Vec<SourceFile>,
    /// The config's path keys as resolved by [`load_sources`] (none for
    /// [`Sources::single`], whose config keeps its paths as written), and the
    /// warnings about paths older releases read from the working directory.
    pub resolved: Resolved,
}

impl Sources {
    /// A configuration that is one text (tests, benches, `check` of a candidate).
    pub fn single(path: &Path, text: &str, config: &Config) -> Sources {
        Sources {
            files: vec![SourceFile {
                path: path.to_path_buf(),
                text: text.to_string(),
                usage_plans: 0..config.usage_plans.len(),
                subscribers: 0..config.subscribers.len(),
            }],
            resolved: Resolved::default(),
        }
    }

    /// The main file.
    pub fn main_path(&self) -> &Path {
        &self.files[0].path
    }

    /// The absolute directory of the main file, which relative paths follow.
    pub fn config_dir(&self) -> PathBuf {
        config_dir(self.main_path())
    }

    /// An error at a key of the merged configuration, placed in the file the
    /// entry came from (`subscribers[1200].clients[0]` → `subscribers.toml`,
    /// `subscribers[200].clients[0]`).
    pub fn error_at(&self, key: &str, message: impl Into<String>) -> ConfigError {
        for (list, range_of) in [
            (
                "subscribers[",
                (|f: &SourceFile| f.subscribers.clone()) as fn(&SourceFile) -> Range<usize>,
            ),
            ("usage_plans[", |f: &SourceFile| f.usage_plans.clone()),
        ] {
            let Some(rest) = key.strip_prefix(list) else {
                continue;
            };
            let Some((index, tail)) = rest.split_once(']') else {
                continue;
            };
            let Ok(index) = index.parse::<usize>() else {
                continue;
            };
            for file in &self.files {
                let range = range_of(file);
                if range.contains(&index) {
                    let local = format!("{list}{}]{tail}", index - range.start);
                    return ConfigError::at_key(&file.path, &file.text, &local, message);
                }
            }
        }
        let main = &self.files[0];
        ConfigError::at_key(&main.path, &main.text, key, message)
    }

    /// SHA-256 over every file's text, in order.
    pub fn digest_input(&self) -> String {
        if let [only] = &self.files[..] {
            return only.text.clone();
        }
        let mut all = String::new();
        for file in &self.files {
            all.push_str(&file.text);
            all.push('\0');
        }
        all
    }
}

/// The last parse of each included file, by path: a reload whose edit did not
/// touch a (large) subscribers file reuses its parse instead of parsing it
/// again (parsing 10,000 subscribers is most of a reload's cost).
static FRAGMENTS: std::sync::OnceLock<std::sync::Mutex<HashMap<PathBuf, (String, Fragment)>>> =
    std::sync::OnceLock::new();

fn parse_fragment_cached(path: &Path, text: &str) -> Result<Fragment, ConfigError> {
    let cache = FRAGMENTS.get_or_init(Default::default);
    if let Ok(cached) = cache.lock() {
        if let Some((old_text, fragment)) = cached.get(path) {
            if old_text == text {
                return Ok(fragment.clone());
            }
        }
    }
    let fragment: Fragment = parse_as(text, path)?;
    if let Ok(mut cached) = cache.lock() {
        cached.insert(path.to_path_buf(), (text.to_string(), fragment.clone()));
    }
    Ok(fragment)
}

/// Reads the main file and every file it includes; included `usage_plans`
/// and `subscribers` are appended to the main file's. Every relative path of
/// the config (`include` too) is made absolute against the main file's
/// directory ([`super::paths`]).
pub fn load_sources(path: &Path) -> Result<(Config, Sources), ConfigError> {
    let (mut config, text) = load_file(path)?;
    let mut sources = Sources::single(path, &text, &config);
    let written = config.include.clone();
    let cwd = std::env::current_dir().ok();
    sources.resolved = super::paths::resolve(&mut config, &sources.config_dir(), cwd.as_deref())
        .map_err(|(key, message)| ConfigError::at_key(path, &text, &key, message))?;
    let main = sources
        .config_dir()
        .join(path.file_name().unwrap_or_default());
    for (i, (name, included)) in written.iter().zip(config.include.clone()).enumerate() {
        let included = PathBuf::from(included);
        if included == main || sources.files[1..].iter().any(|f| f.path == included) {
            return Err(ConfigError::at_key(
                path,
                &text,
                &format!("include[{i}]"),
                format!("`{name}` is included twice"),
            ));
        }
        let fragment_text = std::fs::read_to_string(&included).map_err(|e| {
            ConfigError::at_key(
                path,
                &text,
                &format!("include[{i}]"),
                format!("cannot read included file {}: {e}", included.display()),
            )
        })?;
        let fragment = parse_fragment_cached(&included, &fragment_text)?;
        let plans = config.usage_plans.len()..config.usage_plans.len() + fragment.usage_plans.len();
        let subscribers =
            config.subscribers.len()..config.subscribers.len() + fragment.subscribers.len();
        config.usage_plans.extend(fragment.usage_plans);
        config.subscribers.extend(fragment.subscribers);
        sources.files.push(SourceFile {
            path: included,
            text: fragment_text,
            usage_plans: plans,
            subscribers,
        });
    }
    Ok((config, sources))
}

trait DeserializeWithPath: Sized {
    fn deserialize_with_path(
        d: toml::de::Deserializer<'_>,
    ) -> Result<Self, serde_path_to_error::Error<toml::de::Error>>;
}

impl<T: for<'de> Deserialize<'de>> DeserializeWithPath for T {
    fn deserialize_with_path(
        d: toml::de::Deserializer<'_>,
    ) -> Result<Self, serde_path_to_error::Error<toml::de::Error>> {
        serde_path_to_error::deserialize(d)
    }
}

fn from_toml(
    file: &Path,
    text: &str,
    error: &toml::de::Error,
    path: Option<String>,
) -> ConfigError {
    let raw = error.message().trim();
    let key = path
        .filter(|p| !p.is_empty() && p != ".")
        .map(|p| match unknown_field(raw) {
            Some(field) if !p.ends_with(field) => format!("{p}.{field}"),
            _ => p,
        })
        .or_else(|| unknown_field(raw).map(str::to_string))
        .or_else(|| error.span().and_then(|span| nearest_key(text, span.start)));
    let position = error
        .span()
        .map(|span| line_column(text, span.start))
        .or_else(|| key.as_deref().and_then(|k| locate_key(text, k)));
    ConfigError {
        file: file.to_path_buf(),
        line: position.map(|p| p.0),
        column: position.map(|p| p.1),
        message: super::words::reword(raw, key.as_deref()),
        key,
    }
}

/// The field name in serde's "unknown field `x`, expected ..." message.
fn unknown_field(message: &str) -> Option<&str> {
    let rest = message.strip_prefix("unknown field `")?;
    rest.split('`').next()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Config, ConfigError> {
        parse_str(text, Path::new("test.toml"))
    }

    // An unknown key is an error naming the key and its line.
    #[test]
    fn unknown_key_is_located() {
        let err = parse("[[listeners]]\nname = \"a\"\naddress = \"127.0.0.1:1\"\nport = 3\n")
            .unwrap_err();
        assert_eq!(
            (err.line, err.key.as_deref()),
            (Some(4), Some("listeners[0].port"))
        );
    }

    // A value of the wrong type names its key path.
    #[test]
    fn wrong_type_names_the_key() {
        let err = parse("[limits]\nmax_head_bytes = \"big\"\n").unwrap_err();
        assert_eq!(
            (err.line, err.key.as_deref()),
            (Some(2), Some("limits.max_head_bytes"))
        );
    }

    // Invalid TOML syntax reports its line.
    #[test]
    fn syntax_error_has_line() {
        let err = parse("[limits\n").unwrap_err();
        assert_eq!(err.line, Some(1));
    }
}

//! Layers of settings and the one rule that stacks them:
//! defaults < file < environment < command line.
//!
//! A layer is the keys one source set, each checked on its own against
//! [`Settings`] when the layer is read, so a mistake is reported where it
//! was made: `file:line:column` for a file, the JSON pointer for JSON, the
//! variable for the environment, the flag for the command line. Stacking
//! replaces a key as a whole (a list or table given later replaces the
//! earlier one), and remembers which source set each key.

use std::collections::BTreeMap;
use std::fmt;

use indexmap::IndexMap;
use serde::Deserialize;
use toml::de::{DeTable, DeValue, ValueDeserializer};

use crate::SettingsError;
use crate::settings::{Settings, canonical};

/// Where a setting's value came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// trawl's default.
    Default,
    /// A key in a file (a spider file's `[settings]` or a `--config` file).
    File {
        path: String,
        line: usize,
        column: usize,
    },
    /// A `TRAWL_*` environment variable.
    Env(String),
    /// A command-line flag (`--per-host`).
    Flag(String),
    /// A JSON document (an API job), at this pointer.
    Json(String),
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Default => f.write_str("default"),
            Source::File { path, line, column } => write!(f, "{path}:{line}:{column}"),
            Source::Env(var) => f.write_str(var),
            Source::Flag(flag) => f.write_str(flag),
            Source::Json(pointer) => write!(f, "JSON {pointer}"),
        }
    }
}

/// The keys one source set, with their values.
#[derive(Debug, Clone, Default)]
pub struct Layer {
    entries: IndexMap<String, (toml::Value, Source)>,
}

impl Layer {
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The keys set, in the order they were set.
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.entries.keys().map(String::as_str)
    }

    /// Set `key` (an alias is stored as the key it stands for). Checked
    /// when the layers are stacked; a caller that has not checked the
    /// value itself uses [`Layer::checked`].
    pub fn set(&mut self, key: &str, value: toml::Value, source: Source) {
        self.entries
            .insert(canonical(key).to_string(), (value, source));
    }

    /// Check every value of the layer against [`Settings`]; the first bad
    /// one is reported at its source.
    pub fn checked(self) -> Result<Layer, SettingsError> {
        for (key, (value, source)) in &self.entries {
            let mut table = toml::Table::new();
            table.insert(key.clone(), value.clone());
            if let Err(e) = Settings::deserialize(toml::Value::Table(table)) {
                return Err(SettingsError::at(source, key, e.message()));
            }
        }
        Ok(self)
    }

    /// The top-level table of a settings file (`--config trawl.toml`), or
    /// the table under `section` (`settings` in a spider file). A file
    /// without that section gives an empty layer.
    pub fn from_toml(
        path: &str,
        text: &str,
        section: Option<&str>,
    ) -> Result<Layer, SettingsError> {
        let located = |span: Option<std::ops::Range<usize>>, message: String| {
            let (line, column) = span.map_or((1, 1), |s| line_col(text, s.start));
            SettingsError::File {
                path: path.to_string(),
                line,
                column,
                message,
            }
        };
        let doc = DeTable::parse(text).map_err(|e| located(e.span(), e.message().to_string()))?;
        let (span, table) = match section {
            None => (0..text.len(), doc.get_ref().clone()),
            Some(name) => match doc.get_ref().get(name) {
                None => return Ok(Layer::default()),
                Some(v) => match v.get_ref() {
                    DeValue::Table(t) => (v.span(), t.clone()),
                    _ => return Err(located(Some(v.span()), format!("`{name}` must be a table"))),
                },
            },
        };
        if let Some((twin, first)) =
            same_setting_twice(table.iter().map(|(k, _)| k.get_ref().as_ref()))
        {
            let span = table
                .iter()
                .map(|(k, _)| k)
                .find(|k| k.get_ref().as_ref() == twin)
                .map(|k| k.span());
            return Err(located(
                span,
                format!("`{twin}` and `{first}` are the same setting"),
            ));
        }
        // The whole table through serde: unknown keys and bad values come
        // back with their span.
        let whole =
            ValueDeserializer::from(toml::Spanned::new(span, DeValue::Table(table.clone())));
        Settings::deserialize(whole).map_err(|e| located(e.span(), e.message().to_string()))?;
        let mut layer = Layer::default();
        for (key, value) in table.iter() {
            let name = key.get_ref().to_string();
            let (line, column) = line_col(text, key.span().start);
            let plain = toml::Value::deserialize(ValueDeserializer::from(value.clone()))
                .map_err(|e| located(e.span().or(Some(value.span())), e.message().to_string()))?;
            layer.set(
                &name,
                plain,
                Source::File {
                    path: path.to_string(),
                    line,
                    column,
                },
            );
        }
        Ok(layer)
    }

    /// A JSON object of settings (an API job's `settings`); `base` is the
    /// pointer of that object in its document (`""` for the whole).
    pub fn from_json(value: &serde_json::Value, base: &str) -> Result<Layer, SettingsError> {
        let json_error = |pointer: String, message: String| SettingsError::Json {
            pointer: if pointer.is_empty() {
                "/".into()
            } else {
                pointer
            },
            message,
        };
        let Some(object) = value.as_object() else {
            return Err(json_error(
                base.to_string(),
                "settings must be an object".into(),
            ));
        };
        // Null means "not set": leave those keys out.
        let set: serde_json::Map<String, serde_json::Value> = object
            .iter()
            .filter(|(_, v)| !v.is_null())
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        if let Some((twin, first)) = same_setting_twice(set.keys().map(String::as_str)) {
            return Err(json_error(
                format!("{base}/{twin}"),
                format!("`{twin}` and `{first}` are the same setting"),
            ));
        }
        let doc = serde_json::Value::Object(set.clone());
        if let Err(e) = serde_path_to_error::deserialize::<_, Settings>(&doc) {
            let mut pointer = format!("{base}{}", json_pointer(e.path()));
            let message = e.inner().to_string();
            // serde names an unknown key only in its message.
            if let Some(key) = unknown_field(&message)
                && !pointer.ends_with(&format!("/{key}"))
            {
                pointer.push('/');
                pointer.push_str(&key);
            }
            return Err(json_error(pointer, message));
        }
        let mut layer = Layer::default();
        for (key, value) in set {
            let pointer = format!("{base}/{key}");
            let plain = toml::Value::try_from(&value)
                .map_err(|e| json_error(pointer.clone(), e.to_string()))?;
            layer.set(&key, plain, Source::Json(pointer));
        }
        Ok(layer)
    }

    /// `TRAWL_<KEY>` variables (`TRAWL_PER_HOST=4`, `TRAWL_DELAY=500ms`,
    /// `TRAWL_PROXIES=http://a:3128,http://b:3128`). A value is read as
    /// TOML (`64`, `true`, `["a", "b"]`), else as text, else as a
    /// comma-separated list. Variables that name no setting are returned
    /// as warnings, not errors: other tools may share the prefix.
    pub fn from_env(
        vars: impl IntoIterator<Item = (String, String)>,
    ) -> Result<(Layer, Vec<String>), SettingsError> {
        let keys = Settings::keys();
        let mut layer = Layer::default();
        let mut warnings = Vec::new();
        for (var, text) in vars {
            let Some(rest) = var.strip_prefix(ENV_PREFIX) else {
                continue;
            };
            let key = rest.to_ascii_lowercase();
            let name = canonical(&key);
            if !keys.contains(&name) {
                warnings.push(format!("{var} is not a trawl setting; ignored"));
                continue;
            }
            let value = env_value(name, &text).map_err(|message| SettingsError::Env {
                var: var.clone(),
                message,
            })?;
            layer.set(name, value, Source::Env(var));
        }
        Ok((layer, warnings))
    }
}

/// The first key that names a setting an earlier key named (an alias and
/// the key it stands for), with that earlier key.
fn same_setting_twice<'a>(keys: impl IntoIterator<Item = &'a str>) -> Option<(&'a str, &'a str)> {
    let mut seen: BTreeMap<&str, &str> = BTreeMap::new();
    for key in keys {
        if let Some(first) = seen.insert(canonical(key), key) {
            return Some((key, first));
        }
    }
    None
}

/// The prefix of settings in the environment.
pub const ENV_PREFIX: &str = "TRAWL_";

/// The first reading of an environment value that `key` accepts.
fn env_value(key: &str, text: &str) -> Result<toml::Value, String> {
    let fits = |value: &toml::Value| {
        let mut table = toml::Table::new();
        table.insert(key.to_string(), value.clone());
        Settings::deserialize(toml::Value::Table(table)).map_err(|e| e.message().to_string())
    };
    let mut candidates = Vec::new();
    if let Ok(doc) = format!("v = {text}").parse::<toml::Table>()
        && let Some(v) = doc.get("v")
    {
        candidates.push(v.clone());
    }
    candidates.push(toml::Value::String(text.to_string()));
    let parts: Vec<&str> = text
        .split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .collect();
    candidates.push(toml::Value::Array(
        parts
            .iter()
            .map(|p| toml::Value::String(p.to_string()))
            .collect(),
    ));
    let typed: Option<Vec<toml::Value>> = parts
        .iter()
        .map(|p| {
            format!("v = {p}")
                .parse::<toml::Table>()
                .ok()
                .and_then(|t| t.get("v").cloned())
        })
        .collect();
    candidates.extend(typed.map(toml::Value::Array));
    let mut first_error = None;
    for candidate in candidates {
        match fits(&candidate) {
            Ok(_) => return Ok(candidate),
            Err(e) => {
                first_error.get_or_insert(e);
            }
        }
    }
    // What the first reading said: a TOML value if it is one (`0`), else
    // the text (`soon`).
    Err(first_error.unwrap_or_else(|| "invalid value".into()))
}

/// The JSON pointer (RFC 6901) of a serde path: `/proxy_pools/res/strategy`.
pub fn json_pointer(path: &serde_path_to_error::Path) -> String {
    let mut pointer = String::new();
    for segment in path.iter() {
        use serde_path_to_error::Segment;
        match segment {
            Segment::Seq { index } => pointer.push_str(&format!("/{index}")),
            Segment::Map { key } | Segment::Enum { variant: key } => {
                pointer.push('/');
                pointer.push_str(&key.replace('~', "~0").replace('/', "~1"));
            }
            Segment::Unknown => {}
        }
    }
    pointer
}

/// `unknown field `x`, expected …` → `x`.
fn unknown_field(message: &str) -> Option<String> {
    let rest = message.strip_prefix("unknown field `")?;
    Some(rest[..rest.find('`')?].to_string())
}

pub use trawl_core::config::line_col;

/// Settings with the source of every value: the layers stacked on the
/// defaults.
#[derive(Debug, Clone)]
pub struct Effective {
    pub settings: Settings,
    sources: BTreeMap<String, Source>,
}

impl Effective {
    /// Stack `layers` (lowest first) on the defaults.
    pub fn stack(layers: &[Layer]) -> Result<Effective, SettingsError> {
        let mut table = toml::Table::try_from(Settings::default())
            .map_err(|e| SettingsError::Internal(format!("the defaults: {e}")))?;
        let mut sources = BTreeMap::new();
        for layer in layers {
            for (key, (value, source)) in &layer.entries {
                table.insert(key.clone(), value.clone());
                sources.insert(key.clone(), source.clone());
            }
        }
        match Settings::deserialize(toml::Value::Table(table)) {
            Ok(settings) => Ok(Effective { settings, sources }),
            Err(e) => {
                // Each layer was checked alone; name the first key that
                // does not fit anyway.
                for layer in layers.iter().rev() {
                    layer.clone().checked()?;
                }
                Err(SettingsError::Internal(e.message().to_string()))
            }
        }
    }

    /// Where `key`'s value came from.
    pub fn source(&self, key: &str) -> Source {
        self.sources.get(key).cloned().unwrap_or(Source::Default)
    }

    /// Whether some layer set `key` (it is not at its default because no
    /// one said otherwise).
    pub fn is_set(&self, key: &str) -> bool {
        self.sources.contains_key(key)
    }

    /// The settings as TOML, each key followed by where its value came
    /// from; keys without a value are listed as comments. Passwords in
    /// URLs are masked.
    pub fn to_annotated_toml(&self) -> Result<String, SettingsError> {
        let table = toml::Table::try_from(&self.settings)
            .map_err(|e| SettingsError::Internal(e.to_string()))?;
        let mut scalars = String::new();
        let mut tables = String::new();
        for key in Settings::keys() {
            let source = self.source(key);
            match table.get(*key) {
                None => scalars.push_str(&format!("# {key} is not set\n")),
                Some(toml::Value::Table(t)) if t.is_empty() => {
                    scalars.push_str(&format!("{key} = {{}}  # {source}\n"));
                }
                Some(value @ (toml::Value::Table(_) | toml::Value::Array(_)))
                    if is_section(value) =>
                {
                    let mut one = toml::Table::new();
                    one.insert(key.to_string(), value.clone());
                    let text = toml::to_string(&one)
                        .map_err(|e| SettingsError::Internal(e.to_string()))?;
                    tables.push_str(&format!("\n# {key}: {source}\n{}", mask_passwords(&text)));
                }
                Some(value) => {
                    let mut one = toml::Table::new();
                    one.insert(key.to_string(), value.clone());
                    let text = toml::to_string(&one)
                        .map_err(|e| SettingsError::Internal(e.to_string()))?;
                    let line = mask_passwords(text.trim_end());
                    scalars.push_str(&format!("{line}  # {source}\n"));
                }
            }
        }
        Ok(scalars + &tables)
    }
}

/// Tables and arrays of tables print as sections of their own.
fn is_section(value: &toml::Value) -> bool {
    match value {
        toml::Value::Table(_) => true,
        toml::Value::Array(a) => !a.is_empty() && a.iter().all(toml::Value::is_table),
        _ => false,
    }
}

/// `scheme://user:secret@host` → `scheme://user:***@host`.
pub fn mask_passwords(text: &str) -> String {
    static URL_PASSWORD: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
        regex::Regex::new(r"(://[^:/@\s]*:)[^@\s/]+@").expect("a valid regex")
    });
    URL_PASSWORD.replace_all(text, "${1}***@").into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_masked() {
        assert_eq!(
            mask_passwords("proxies = [\"http://u:secret@p:3128\", \"socks5://p2:1080\"]"),
            "proxies = [\"http://u:***@p:3128\", \"socks5://p2:1080\"]"
        );
    }
}

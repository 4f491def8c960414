//! Why settings cannot be used, said where the mistake is.

use crate::layer::Source;

/// A setting that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    /// A key or value in a file.
    #[error("{path}:{line}:{column}: {message}")]
    File {
        path: String,
        line: usize,
        column: usize,
        message: String,
    },
    /// A key or value in a JSON document, at its JSON pointer.
    #[error("JSON {pointer}: {message}")]
    Json { pointer: String, message: String },
    /// A `TRAWL_*` variable.
    #[error("{var}: {message}")]
    Env { var: String, message: String },
    /// A command-line flag.
    #[error("{flag}: {message}")]
    Flag { flag: String, message: String },
    /// A setting at its default (or one whose source is unknown).
    #[error("{key}: {message}")]
    Setting { key: String, message: String },
    /// A file a setting names cannot be read.
    #[error("{at}: reading {path}: {source}")]
    Read {
        at: String,
        path: String,
        source: std::io::Error,
    },
    #[error("settings: {0}")]
    Internal(String),
}

impl SettingsError {
    /// `message` about `key`, reported where `source` set it.
    pub fn at(source: &Source, key: &str, message: impl Into<String>) -> SettingsError {
        let message = message.into();
        match source {
            Source::File { path, line, column } => SettingsError::File {
                path: path.clone(),
                line: *line,
                column: *column,
                message: format!("{key}: {message}"),
            },
            Source::Json(pointer) => SettingsError::Json {
                pointer: pointer.clone(),
                message,
            },
            Source::Env(var) => SettingsError::Env {
                var: var.clone(),
                message,
            },
            Source::Flag(flag) => SettingsError::Flag {
                flag: flag.clone(),
                message,
            },
            Source::Default => SettingsError::Setting {
                key: key.to_string(),
                message,
            },
        }
    }
}

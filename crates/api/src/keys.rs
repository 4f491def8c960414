//! API keys: only a hash is stored (`keys.json` in the server's data
//! directory); a request names its key as `Authorization: Bearer KEY`, and
//! every job is scoped to the key that made it (another key never sees
//! it). `trawl serve keys add|list|revoke` manages the file.

use std::path::{Path, PathBuf};

use rand::RngCore;
use serde::{Deserialize, Serialize};

/// The file of keys in a data directory.
pub const KEYS_FILE: &str = "keys.json";

/// One key as stored: its name, the hash of its secret, a prefix to
/// recognise it by.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredKey {
    pub name: String,
    /// blake3 of the key, hex.
    pub hash: String,
    /// The first characters of the key (`trawl_1a2b…`), for `list`.
    pub prefix: String,
    /// Seconds since the Unix epoch.
    pub created: u64,
    /// May read the server-wide figures (`/metrics`, the dashboard): every
    /// job's counts and the hosts crawled, whoever's they are.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub admin: bool,
}

/// Why the key file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}: not a key file: {message}")]
    Format { path: String, message: String },
    #[error("a key named {0:?} exists already")]
    Exists(String),
    #[error("no key named {0:?}")]
    Unknown(String),
    #[error("a key name must be 1 to 64 letters, digits, `-` or `_`")]
    BadName,
}

/// The keys of a data directory.
#[derive(Debug, Clone, Default)]
pub struct Keys {
    path: PathBuf,
    keys: Vec<StoredKey>,
}

fn hash(secret: &str) -> String {
    blake3::hash(secret.as_bytes()).to_hex().to_string()
}

impl Keys {
    /// Read `dir/keys.json` (none yet: no keys).
    pub fn load(dir: &Path) -> Result<Keys, KeyError> {
        let path = dir.join(KEYS_FILE);
        let shown = path.display().to_string();
        let keys = match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| KeyError::Format {
                path: shown,
                message: e.to_string(),
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(source) => {
                return Err(KeyError::Io {
                    path: shown,
                    source,
                });
            }
        };
        Ok(Keys { path, keys })
    }

    fn save(&self) -> Result<(), KeyError> {
        let io = |source| KeyError::Io {
            path: self.path.display().to_string(),
            source,
        };
        if let Some(dir) = self.path.parent() {
            std::fs::create_dir_all(dir).map_err(io)?;
        }
        let text = serde_json::to_vec_pretty(&self.keys).map_err(|e| KeyError::Format {
            path: self.path.display().to_string(),
            message: e.to_string(),
        })?;
        let tmp = self.path.with_extension("json.tmp");
        std::fs::write(&tmp, text).map_err(io)?;
        std::fs::rename(&tmp, &self.path).map_err(io)
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    pub fn list(&self) -> &[StoredKey] {
        &self.keys
    }

    /// Make a key named `name`; returns its secret (shown once, stored
    /// only as a hash).
    pub fn add(&mut self, name: &str) -> Result<String, KeyError> {
        self.add_key(name, false)
    }

    /// Make an admin key named `name` (see [`StoredKey::admin`]).
    pub fn add_admin(&mut self, name: &str) -> Result<String, KeyError> {
        self.add_key(name, true)
    }

    fn add_key(&mut self, name: &str, admin: bool) -> Result<String, KeyError> {
        if name.is_empty()
            || name.len() > 64
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            return Err(KeyError::BadName);
        }
        if self.keys.iter().any(|k| k.name == name) {
            return Err(KeyError::Exists(name.to_string()));
        }
        let mut bytes = [0u8; 24];
        rand::rng().fill_bytes(&mut bytes);
        let secret = format!(
            "trawl_{}",
            bytes.iter().map(|b| format!("{b:02x}")).collect::<String>()
        );
        let created = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        self.keys.push(StoredKey {
            name: name.to_string(),
            hash: hash(&secret),
            prefix: secret[..12].to_string(),
            created,
            admin,
        });
        self.save()?;
        Ok(secret)
    }

    /// Remove the key named `name`.
    pub fn revoke(&mut self, name: &str) -> Result<(), KeyError> {
        let before = self.keys.len();
        self.keys.retain(|k| k.name != name);
        if self.keys.len() == before {
            return Err(KeyError::Unknown(name.to_string()));
        }
        self.save()
    }

    /// The name of the key whose secret is `secret`.
    pub fn check(&self, secret: &str) -> Option<&str> {
        self.find(secret).map(|k| k.name.as_str())
    }

    /// The stored key whose secret is `secret`.
    pub fn find(&self, secret: &str) -> Option<&StoredKey> {
        let h = hash(secret);
        self.keys.iter().find(|k| k.hash == h)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn keys_are_stored_as_hashes_and_checked() {
        let dir = tempfile::tempdir().unwrap();
        let mut keys = Keys::load(dir.path()).unwrap();
        assert!(keys.is_empty());
        let a = keys.add("team-a").unwrap();
        let b = keys.add("team-b").unwrap();
        assert_ne!(a, b);
        assert!(matches!(keys.add("team-a"), Err(KeyError::Exists(_))));
        assert!(matches!(keys.add("bad name"), Err(KeyError::BadName)));
        let file = std::fs::read_to_string(dir.path().join(KEYS_FILE)).unwrap();
        assert!(!file.contains(&a) && !file.contains(&b), "a secret on disk");
        let keys = Keys::load(dir.path()).unwrap();
        assert_eq!(keys.check(&a), Some("team-a"));
        assert_eq!(keys.check(&b), Some("team-b"));
        assert_eq!(keys.check("trawl_nope"), None);
        let mut keys = keys;
        keys.revoke("team-a").unwrap();
        assert_eq!(Keys::load(dir.path()).unwrap().check(&a), None);
        assert!(matches!(keys.revoke("team-a"), Err(KeyError::Unknown(_))));
    }
}

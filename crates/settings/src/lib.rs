//! trawl-settings: the one settings layer.
//!
//! [`Settings`] is the user's contract everywhere: a spider file's
//! `[settings]`, a `--config` file, `TRAWL_*` variables, command-line flags
//! and the JSON of an API job all set the same typed, documented keys.
//!
//! - [`settings`]: the keys, their types and defaults (`docs/settings.md`
//!   documents each one).
//! - [`values`]: typed values (durations, sizes, counts, words) checked
//!   where they are read.
//! - [`layer`]: reading layers from files, JSON and the environment, and
//!   stacking them: defaults < file < environment < command line, with the
//!   source of every value kept for `trawl config`.
//! - [`build`]: one `build()` from settings to what the engine, the
//!   downloader, the frontier and the sinks are made from; `trawl check`
//!   runs the same.

pub mod build;
pub mod error;
pub mod layer;
pub mod settings;
pub mod values;

pub use build::{Plan, SpiderParts};
pub use error::SettingsError;
pub use layer::{Effective, Layer, Source};
pub use settings::{PoolSettings, RenderSetting, Settings, SinkSetting, UserAgents};

impl Settings {
    /// Every key, in the order of the struct (and of `trawl config`).
    pub fn keys() -> &'static [&'static str] {
        static KEYS: std::sync::OnceLock<Vec<&'static str>> = std::sync::OnceLock::new();
        KEYS.get_or_init(|| {
            field_names::<Settings>()
                .into_iter()
                .filter(|name| settings::canonical(name) == *name)
                .collect()
        })
    }
}

/// The field names a struct asks its deserializer for.
pub fn field_names<T: for<'de> serde::Deserialize<'de>>() -> Vec<&'static str> {
    use serde::de::{self, Deserializer, Visitor};

    struct FieldNames<'a>(&'a mut Vec<&'static str>);

    impl<'de> Deserializer<'de> for FieldNames<'_> {
        type Error = de::value::Error;

        fn deserialize_struct<V: Visitor<'de>>(
            self,
            _name: &'static str,
            fields: &'static [&'static str],
            _visitor: V,
        ) -> Result<V::Value, Self::Error> {
            self.0.extend_from_slice(fields);
            Err(de::Error::custom("field names recorded"))
        }

        fn deserialize_any<V: Visitor<'de>>(self, _visitor: V) -> Result<V::Value, Self::Error> {
            Err(de::Error::custom("not a struct"))
        }

        serde::forward_to_deserialize_any! {
            bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
            bytes byte_buf option unit unit_struct newtype_struct seq tuple
            tuple_struct map enum identifier ignored_any
        }
    }

    let mut names = Vec::new();
    let _ = T::deserialize(FieldNames(&mut names));
    names
}

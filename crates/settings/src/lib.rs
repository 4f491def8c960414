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
            trawl_core::config::field_names::<Settings>()
                .into_iter()
                .filter(|name| settings::canonical(name) == *name)
                .collect()
        })
    }
}

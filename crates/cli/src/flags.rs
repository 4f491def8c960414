//! From command-line flags to a settings layer, and the layers of a run:
//! defaults < `--config` file < spider file `[settings]` < `TRAWL_*` <
//! flags.

use std::path::Path;

use anyhow::Context;
use trawl_settings::{Effective, Layer, Settings, Source};

use crate::args::SettingsFlags;

/// Every settings flag with the key it sets, for help texts and errors.
/// Flags that are the key's name with dashes are found without it.
const RENAMED: &[(&str, &str, &str)] = &[
    // (clap argument id, settings key, flag)
    ("ignore_robots", "obey_robots", "--ignore-robots"),
    ("no_pacing", "pacing", "--no-pacing"),
    ("no_traps", "traps", "--no-traps"),
    ("headers", "headers", "--header"),
    ("proxies", "proxies", "--proxy"),
    ("proxy_pools", "proxy_pools", "--proxy-pool"),
    ("host_pools", "host_pools", "--host-pool"),
    ("sink", "sinks", "--sink"),
    ("ban_statuses", "ban_statuses", "--ban-status"),
    ("ban_patterns", "ban_patterns", "--ban-pattern"),
    ("ca_certs", "ca_certs", "--ca-cert"),
];

/// The settings key a clap argument sets, and its flag.
fn key_and_flag(id: &str) -> (String, String) {
    match RENAMED.iter().find(|(arg, _, _)| *arg == id) {
        Some((_, key, flag)) => (key.to_string(), flag.to_string()),
        None => (id.to_string(), format!("--{}", id.replace('_', "-"))),
    }
}

fn text(d: std::time::Duration) -> toml::Value {
    toml::Value::String(humantime::format_duration(d).to_string())
}

fn path(p: &Path) -> toml::Value {
    toml::Value::String(p.display().to_string())
}

fn int<T: TryInto<i64>>(n: T) -> toml::Value {
    toml::Value::Integer(n.try_into().unwrap_or(i64::MAX))
}

fn strings(list: &[String]) -> toml::Value {
    toml::Value::Array(list.iter().cloned().map(toml::Value::String).collect())
}

impl SettingsFlags {
    /// The settings the flags given on the command line set.
    pub fn layer(&self) -> anyhow::Result<Layer> {
        let mut layer = Layer::default();
        let mut put = |id: &str, value: toml::Value| {
            let (key, flag) = key_and_flag(id);
            layer.set(&key, value, Source::Flag(flag));
        };
        macro_rules! opt {
            ($field:ident, $conv:expr) => {
                if let Some(v) = &self.$field {
                    #[allow(clippy::redundant_closure_call)]
                    put(stringify!($field), ($conv)(v));
                }
            };
        }
        macro_rules! on {
            ($field:ident, $value:expr) => {
                if self.$field {
                    put(stringify!($field), toml::Value::Boolean($value));
                }
            };
        }
        macro_rules! list {
            ($field:ident) => {
                if !self.$field.is_empty() {
                    put(stringify!($field), strings(&self.$field));
                }
            };
        }
        let word = |w: &dyn std::fmt::Display| toml::Value::String(w.to_string());
        opt!(output, |p: &std::path::PathBuf| path(p));
        on!(append, true);
        list!(sink);
        opt!(errors, |p: &std::path::PathBuf| path(p));
        opt!(dead_letter, |p: &std::path::PathBuf| path(p));
        opt!(sink_attempts, |n: &usize| int(*n));
        opt!(sink_backoff, |d: &std::time::Duration| text(*d));
        opt!(batch_size, |n: &usize| int(*n));
        opt!(concurrency, |n: &usize| int(*n));
        opt!(per_host, |n: &usize| int(*n));
        opt!(delay, |d: &std::time::Duration| text(*d));
        opt!(scope, |s: &trawl_core::ScopeMode| word(s));
        list!(include);
        list!(exclude);
        opt!(max_depth, |n: &u32| int(*n));
        opt!(max_pages, |n: &u64| int(*n));
        opt!(max_pages_per_host, |n: &u64| int(*n));
        opt!(max_url_len, |n: &usize| int(*n));
        on!(ignore_robots, false);
        on!(sitemaps, true);
        opt!(user_agent, |s: &String| toml::Value::String(s.clone()));
        opt!(user_agents, |u: &trawl_settings::UserAgents| {
            toml::Value::try_from(u).unwrap_or(toml::Value::String("builtin".into()))
        });
        if !self.headers.is_empty() {
            let mut table = toml::Table::new();
            for (k, v) in &self.headers {
                table.insert(k.clone(), toml::Value::String(v.clone()));
            }
            put("headers", toml::Value::Table(table));
        }
        list!(proxies);
        opt!(proxy_file, |p: &std::path::PathBuf| path(p));
        if !self.proxy_pools.is_empty() {
            // The same name again adds proxies.
            let mut pools: indexmap::IndexMap<String, trawl_settings::PoolSettings> =
                indexmap::IndexMap::new();
            for (name, pool) in &self.proxy_pools {
                let entry = pools.entry(name.clone()).or_default();
                entry.proxies.extend(pool.proxies.iter().cloned());
                if pool.file.is_some() {
                    entry.file = pool.file.clone();
                }
            }
            put(
                "proxy_pools",
                toml::Value::try_from(&pools).context("--proxy-pool")?,
            );
        }
        if !self.host_pools.is_empty() {
            let mut table = toml::Table::new();
            for (pattern, pool) in &self.host_pools {
                table.insert(pattern.clone(), toml::Value::String(pool.clone()));
            }
            put("host_pools", toml::Value::Table(table));
        }
        opt!(proxy_strategy, |s: &trawl_fetch::proxy::Strategy| word(s));
        opt!(sessions, |n: &usize| int(*n));
        opt!(session_max_uses, |n: &u32| int(*n));
        if !self.ban_statuses.is_empty() {
            put(
                "ban_statuses",
                toml::Value::Array(self.ban_statuses.iter().map(|s| int(*s)).collect()),
            );
        }
        list!(ban_patterns);
        opt!(ban_min_body, |n: &usize| int(*n));
        opt!(proxy_cooldown, |d: &std::time::Duration| text(*d));
        opt!(proxy_attempts, |n: &u32| int(*n));
        on!(no_pacing, false);
        on!(no_traps, false);
        opt!(duplicates, |p: &trawl_engine::DuplicatePolicy| word(p));
        opt!(near_duplicate_distance, |n: &u32| int(*n));
        opt!(trap_window, |n: &u32| int(*n));
        opt!(trap_duplicate_rate, |f: &f64| toml::Value::Float(*f));
        opt!(trap_own_links, |f: &f64| toml::Value::Float(*f));
        opt!(revisit_interval, |d: &std::time::Duration| text(*d));
        opt!(revisit_min, |d: &std::time::Duration| text(*d));
        opt!(revisit_max, |d: &std::time::Duration| text(*d));
        opt!(rate_limit_retries, |n: &u32| int(*n));
        opt!(render, |m: &trawl_core::RenderMode| toml::Value::try_from(
            m
        )
        .unwrap_or(toml::Value::String("never".into())));
        opt!(render_tabs, |n: &usize| int(*n));
        opt!(render_timeout, |d: &std::time::Duration| text(*d));
        opt!(wait_for, |s: &String| toml::Value::String(s.clone()));
        opt!(network_idle, |d: &std::time::Duration| text(*d));
        on!(block_stylesheets, true);
        on!(block_third_party, true);
        on!(screenshots, true);
        on!(pdfs, true);
        opt!(render_dir, |p: &std::path::PathBuf| path(p));
        opt!(render_memory, |b: &trawl_settings::values::ByteSize| word(
            b
        ));
        opt!(chromium, |p: &std::path::PathBuf| path(p));
        on!(autothrottle, true);
        opt!(autothrottle_target, |f: &f64| toml::Value::Float(*f));
        opt!(autothrottle_max_delay, |d: &std::time::Duration| text(*d));
        opt!(timeout, |d: &std::time::Duration| text(*d));
        opt!(connect_timeout, |d: &std::time::Duration| text(*d));
        opt!(max_body, |b: &trawl_settings::values::ByteSize| word(b));
        if !self.ca_certs.is_empty() {
            put(
                "ca_certs",
                toml::Value::Array(self.ca_certs.iter().map(|p| path(p)).collect()),
            );
        }
        opt!(retries, |n: &u32| int(*n));
        opt!(max_retry_after, |d: &std::time::Duration| text(*d));
        opt!(parse_threads, |n: &usize| int(*n));
        opt!(state, |p: &std::path::PathBuf| path(p));
        opt!(redis, |s: &String| toml::Value::String(s.clone()));
        opt!(crawl, |s: &String| toml::Value::String(s.clone()));
        opt!(worker_id, |s: &String| toml::Value::String(s.clone()));
        opt!(lease_timeout, |d: &std::time::Duration| text(*d));
        opt!(seen_set, |s: &String| toml::Value::String(s.clone()));
        Ok(layer.checked()?)
    }
}

/// Settings files and the environment a run reads, below its flags.
#[derive(Default)]
pub struct Files<'a> {
    /// A spider file's path and text (its `[settings]`).
    pub spider: Option<(&'a Path, &'a str)>,
}

/// Stack the layers of a run: defaults < `--config` < spider file
/// `[settings]` < `TRAWL_*` < flags. Warnings (variables that name no
/// setting) go to stderr.
pub fn load(flags: &SettingsFlags, files: Files<'_>) -> anyhow::Result<Effective> {
    Ok(Effective::stack(&layers(flags, files)?)?)
}

/// The layers [`load`] stacks, lowest first.
pub fn layers(flags: &SettingsFlags, files: Files<'_>) -> anyhow::Result<Vec<Layer>> {
    let mut layers = Vec::new();
    if let Some(config) = &flags.config {
        let text = std::fs::read_to_string(config)
            .with_context(|| format!("--config: reading {}", config.display()))?;
        layers.push(Layer::from_toml(
            &config.display().to_string(),
            &text,
            None,
        )?);
    }
    if let Some((path, text)) = files.spider {
        layers.push(Layer::from_toml(
            &path.display().to_string(),
            text,
            Some("settings"),
        )?);
    }
    let (env, warnings) = Layer::from_env(std::env::vars())?;
    for warning in warnings {
        eprintln!("trawl: warning: {warning}");
    }
    layers.push(env);
    layers.push(flags.layer()?);
    Ok(layers)
}

/// `--help` shows each settings flag's default, read from
/// [`Settings::default`] (the one place defaults are written).
pub fn with_defaults(mut cmd: clap::Command) -> clap::Command {
    let Ok(defaults) = toml::Table::try_from(Settings::default()) else {
        return cmd;
    };
    for sub in ["crawl", "run", "worker", "demo", "config", "check"] {
        cmd = cmd.mut_subcommand(sub, |mut c| {
            let ids: Vec<String> = c.get_arguments().map(|a| a.get_id().to_string()).collect();
            for id in ids {
                let (key, _) = key_and_flag(&id);
                let Some(value) = defaults.get(&key) else {
                    continue;
                };
                let shown = match value {
                    toml::Value::String(s) => s.clone(),
                    toml::Value::Boolean(_) => continue,
                    toml::Value::Array(a) if a.is_empty() => continue,
                    toml::Value::Table(_) => continue,
                    other => other.to_string(),
                };
                c = c.mut_arg(id.as_str(), |a| {
                    let help = a.get_help().map(|h| h.to_string()).unwrap_or_default();
                    a.help(format!("{help} [default: {shown}]"))
                });
            }
            c
        });
    }
    cmd
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::{CommandFactory, FromArgMatches};

    fn flags(args: &[&str]) -> SettingsFlags {
        let mut argv = vec!["trawl", "crawl", "http://a.test/"];
        argv.extend_from_slice(args);
        let cmd = crate::args::Cli::command();
        let matches = cmd.try_get_matches_from(argv).unwrap();
        match crate::args::Cli::from_arg_matches(&matches)
            .unwrap()
            .command
        {
            crate::args::Command::Crawl(c) => c.settings,
            _ => unreachable!(),
        }
    }

    /// Every settings flag sets a key of [`Settings`], and every key has a
    /// flag.
    #[test]
    fn every_key_has_a_flag_and_every_flag_a_key() {
        let cmd = crate::args::Cli::command();
        let crawl = cmd.find_subcommand("crawl").unwrap();
        let run_only = [
            "seeds",
            "print_config",
            "stats_json",
            "recrawl",
            "due",
            "resume",
            "fresh",
            "quiet",
            "progress",
            "metrics_addr",
            "metrics_hosts",
            "metrics_linger",
            "config",
            "help",
        ];
        let mut keys = std::collections::BTreeSet::new();
        for arg in crawl.get_arguments() {
            let id = arg.get_id().as_str();
            if run_only.contains(&id) {
                continue;
            }
            let (key, _) = key_and_flag(id);
            assert!(
                Settings::keys().contains(&key.as_str()),
                "--{id} sets no key ({key})"
            );
            keys.insert(key);
        }
        for key in Settings::keys() {
            assert!(keys.contains(*key), "setting {key} has no flag");
        }
    }

    #[test]
    fn flags_set_their_keys_with_their_names() {
        let eff = Effective::stack(&[flags(&[
            "-c",
            "7",
            "--delay",
            "250ms",
            "--ignore-robots",
            "--no-pacing",
            "-H",
            "X-A: 1",
            "--proxy-pool",
            "res=http://p1:3128",
            "--proxy-pool",
            "res=http://p2:3128",
            "--host-pool",
            "*.shop.test=res",
            "--max-body",
            "64k",
            "--ban-status",
            "403,429",
        ])
        .layer()
        .unwrap()])
        .unwrap();
        let s = &eff.settings;
        assert_eq!(s.concurrency, 7);
        assert_eq!(s.delay, std::time::Duration::from_millis(250));
        assert!(!s.obey_robots && !s.pacing);
        assert_eq!(s.headers.get("X-A").map(String::as_str), Some("1"));
        assert_eq!(
            s.proxy_pools["res"].proxies,
            ["http://p1:3128", "http://p2:3128"]
        );
        assert_eq!(s.host_pools["*.shop.test"], "res");
        assert_eq!(s.max_body.bytes(), 64 << 10);
        assert_eq!(s.ban_statuses, [403, 429]);
        assert_eq!(
            eff.source("concurrency"),
            Source::Flag("--concurrency".into())
        );
        assert_eq!(
            eff.source("obey_robots"),
            Source::Flag("--ignore-robots".into())
        );
        assert_eq!(eff.source("per_host"), Source::Default);
    }
}

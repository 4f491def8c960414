//! From settings to the configs the components are made from: one
//! `build()` for every entry point, and the check `trawl check` runs.
//!
//! Files the settings name (proxy lists, CA certificates, User-Agent
//! lists) are read here, so a missing one fails before any request.

use std::path::PathBuf;
use std::sync::Arc;

use trawl_core::{RenderMode, RenderSpec, ScopeConfig, Url};
use trawl_engine::{CrawlConfig, SinkOptions};
use trawl_fetch::FetchConfig;
use trawl_fetch::proxy::{HostRule, NamedPool, ProxySpec, RouteTable, parse_list};
use trawl_frontier::{FrontierKind, FrontierSpec};
use trawl_sink::SinkSpec;

use crate::SettingsError;
use crate::layer::Effective;
use crate::settings::{Settings, UserAgents};

/// What a spider file adds to the settings: its own proxy pools (with
/// their `hosts`), its crawl-wide `render`, whether any rule renders, and
/// its `[[sinks]]`.
#[derive(Debug, Clone, Default)]
pub struct SpiderParts {
    pub proxy_pools: Vec<NamedPool>,
    pub host_rules: Vec<HostRule>,
    pub render: Option<RenderSpec>,
    pub renders: bool,
    pub sinks: Vec<SinkSpec>,
}

/// Everything a crawl is made from.
#[derive(Debug, Clone)]
pub struct Plan {
    /// The engine's settings, with the downloader's and the browser's.
    pub crawl: CrawlConfig,
    /// Which frontier, with its host limit.
    pub frontier: FrontierSpec,
    /// The outputs: `output`, `sinks` and the spider's.
    pub outputs: Vec<SinkSpec>,
    /// Where a spider's error records go, when the settings say.
    pub errors: Option<PathBuf>,
    /// Append to fresh output files instead of truncating them.
    pub append: bool,
}

const CERT_BEGIN: &str = "-----BEGIN CERTIFICATE-----";

impl Effective {
    /// Build the plan of a crawl from `seeds` and a spider's parts.
    pub fn build(&self, seeds: Vec<Url>, spider: &SpiderParts) -> Result<Plan, SettingsError> {
        let s = &self.settings;
        let err = |key: &str, message: String| SettingsError::at(&self.source(key), key, message);
        let read = |key: &str, path: &std::path::Path| {
            std::fs::read(path).map_err(|source| SettingsError::Read {
                at: self.source(key).to_string(),
                path: path.display().to_string(),
                source,
            })
        };
        let defaults = FetchConfig::default();

        let mut extra_root_certs = Vec::new();
        for path in &s.ca_certs {
            let pem = read("ca_certs", path)?;
            if !pem
                .windows(CERT_BEGIN.len())
                .any(|w| w == CERT_BEGIN.as_bytes())
            {
                return Err(err(
                    "ca_certs",
                    format!(
                        "{} is not a PEM certificate file (no \"{CERT_BEGIN}\" line)",
                        path.display()
                    ),
                ));
            }
            extra_root_certs.push(pem);
        }
        let headers = s
            .headers
            .iter()
            .map(|(k, v)| trawl_fetch::identity::parse_header_line(&format!("{k}: {v}")))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| err("headers", e))?;
        let identities = match &s.user_agents {
            None => None,
            Some(UserAgents::Builtin) => Some(trawl_fetch::identity::Identities::builtin()),
            Some(UserAgents::List(list)) => Some(
                trawl_fetch::identity::Identities::from_user_agents(list.clone())
                    .map_err(|e| err("user_agents", e))?,
            ),
            Some(UserAgents::File(path)) => {
                let text = String::from_utf8_lossy(&read("user_agents", path)?).into_owned();
                let list = text
                    .lines()
                    .map(str::trim)
                    .filter(|l| !l.is_empty() && !l.starts_with('#'))
                    .map(str::to_string)
                    .collect();
                Some(
                    trawl_fetch::identity::Identities::from_user_agents(list)
                        .map_err(|e| err("user_agents", format!("{}: {e}", path.display())))?,
                )
            }
        };
        let proxies = self.default_proxies()?;
        let proxy_pools = self.proxy_pools(spider)?;
        let host_pools = self.host_rules(spider)?;
        RouteTable::new(&proxy_pools, &host_pools).map_err(|e| {
            let key = if s.host_pools.is_empty() {
                "proxy_pools"
            } else {
                "host_pools"
            };
            err(key, e.to_string())
        })?;
        let ban_rules = if s.ban_patterns.is_empty() {
            trawl_fetch::proxy::BanRules::default()
                .with_statuses(s.ban_statuses.clone())
                .with_min_body(s.ban_min_body)
        } else {
            trawl_fetch::proxy::BanRules::new(
                s.ban_statuses.clone(),
                &s.ban_patterns,
                s.ban_min_body,
            )
            .map_err(|e| err("ban_patterns", e.to_string()))?
        };
        let render = if self.is_set("render")
            || [
                "wait_for",
                "network_idle",
                "block_stylesheets",
                "block_third_party",
                "screenshots",
                "pdfs",
            ]
            .iter()
            .any(|k| self.is_set(k))
        {
            self.render_spec()?
        } else {
            spider.render.clone().unwrap_or_default()
        };
        let fetch = FetchConfig {
            user_agent: s.user_agent.clone().unwrap_or(defaults.user_agent.clone()),
            obey_robots: s.obey_robots,
            connect_timeout: s.connect_timeout,
            timeout: s.timeout,
            max_body: usize::try_from(s.max_body.bytes()).unwrap_or(usize::MAX),
            retries: s.retries,
            max_retry_after: s.max_retry_after,
            per_host: s.per_host,
            delay: s.delay,
            extra_root_certs,
            headers,
            identities: identities.map(Arc::new),
            proxies,
            proxy_pools,
            host_pools,
            proxy_strategy: s.proxy_strategy,
            proxy_health: trawl_fetch::proxy::HealthConfig {
                cooldown_base: s.proxy_cooldown,
                ..Default::default()
            },
            ban_rules,
            sessions: s.sessions.map(|n| trawl_fetch::config::SessionConfig {
                max_sessions: n.max(1),
                max_uses: s.session_max_uses,
                ..Default::default()
            }),
            proxy_attempts: s.proxy_attempts,
            pacing: trawl_fetch::pacing::PacingConfig {
                enabled: s.pacing,
                ..Default::default()
            },
            rate_limit_retries: s.rate_limit_retries,
            render,
            autothrottle: s
                .autothrottle
                .then(|| trawl_fetch::autothrottle::AutoThrottleConfig {
                    target_concurrency: s.autothrottle_target,
                    max_delay: s.autothrottle_max_delay,
                    min_delay: s.delay,
                    ..Default::default()
                }),
            ..defaults
        };
        let scope = ScopeConfig {
            mode: s.scope,
            include: s.include.clone(),
            exclude: s.exclude.clone(),
            max_url_len: s.max_url_len,
            ..ScopeConfig::default()
        };
        let host_limit = fetch.host_concurrency();
        let browser =
            (fetch.render.mode != RenderMode::Never || spider.renders).then(|| s.browser());
        let mut crawl = CrawlConfig {
            seeds,
            concurrency: s.concurrency,
            fetch,
            scope,
            max_depth: s.max_depth,
            max_pages: s.max_pages,
            max_pages_per_host: Some(s.max_pages_per_host),
            sitemaps: s.sitemaps,
            batch_size: s.batch_size,
            sinks: SinkOptions {
                attempts: u32::try_from(s.sink_attempts).unwrap_or(u32::MAX),
                backoff: s.sink_backoff,
                dead_letter_dir: s.dead_letter.clone(),
                ..SinkOptions::default()
            },
            render: browser,
            render_dir: s.render_dir.clone(),
            duplicates: trawl_engine::DuplicateConfig {
                near_distance: s.near_duplicate_distance,
                policy: s.duplicates,
                traps: trawl_traps::TrapConfig {
                    enabled: s.traps,
                    window: s.trap_window,
                    duplicate_rate: s.trap_duplicate_rate,
                    own_links: s.trap_own_links,
                    ..trawl_traps::TrapConfig::default()
                },
                revisit: trawl_traps::RevisitPolicy {
                    initial: s.revisit_interval,
                    min: s.revisit_min,
                    max: s.revisit_max,
                },
            },
            ..CrawlConfig::default()
        };
        if let Some(n) = s.parse_threads {
            crawl.parse_threads = n.max(1);
        }
        let kind = match (&s.state, &s.redis) {
            (Some(_), Some(_)) => {
                return Err(err(
                    "redis",
                    "a crawl keeps its state in Redis or in a directory (`state`), not both".into(),
                ));
            }
            (Some(dir), None) => FrontierKind::Disk { dir: dir.clone() },
            (None, Some(url)) => FrontierKind::Redis {
                url: url.clone(),
                crawl: s.crawl.clone(),
                worker_id: s.worker_id.clone(),
                lease_timeout: s.lease_timeout,
                seen: s.seen_set.parse().map_err(|e: String| err("seen_set", e))?,
            },
            (None, None) => FrontierKind::Memory,
        };
        if s.crawl.is_empty() || s.crawl.contains(['{', '}']) {
            return Err(err(
                "crawl",
                "a crawl name must be non-empty and without braces".into(),
            ));
        }
        let frontier = FrontierSpec {
            kind,
            host_limit,
            host_delay: s.delay,
            near_distance: s.near_duplicate_distance,
        };
        let mut outputs: Vec<SinkSpec> = s.sinks.iter().map(|x| x.0.clone()).collect();
        outputs.extend(spider.sinks.iter().cloned());
        if s.output != std::path::Path::new("-") || outputs.is_empty() {
            outputs.insert(0, SinkSpec::jsonl(s.output.clone()));
        }
        trawl_sink::open::check_distinct(&outputs).map_err(|e| err("sinks", e.to_string()))?;
        Ok(Plan {
            crawl,
            frontier,
            outputs,
            errors: s.errors.clone(),
            append: s.append,
        })
    }

    /// The crawl-wide render spec the settings give: `render` with the
    /// waits, blocks and outputs of the other render settings.
    fn render_spec(&self) -> Result<RenderSpec, SettingsError> {
        use trawl_core::render::{Blocked, STEP_TIMEOUT, Until, Wait};
        let s = &self.settings;
        let mut spec = s.render.0.clone();
        if let Some(sel) = &s.wait_for {
            scraper_check(sel)
                .map_err(|e| SettingsError::at(&self.source("wait_for"), "wait_for", e))?;
            spec.wait.push(Wait {
                until: Until::Selector(sel.clone()),
                timeout: STEP_TIMEOUT.min(s.render_timeout),
            });
        }
        if let Some(quiet) = s.network_idle {
            spec.wait.push(Wait {
                until: Until::NetworkIdle(quiet),
                timeout: STEP_TIMEOUT.min(s.render_timeout),
            });
        }
        if s.block_stylesheets && !spec.block.contains(&Blocked::Stylesheet) {
            spec.block.push(Blocked::Stylesheet);
        }
        if s.block_third_party && !spec.block.contains(&Blocked::ThirdParty) {
            spec.block.push(Blocked::ThirdParty);
        }
        spec.screenshot |= s.screenshots;
        spec.pdf |= s.pdfs;
        Ok(spec)
    }

    /// The default pool: `proxies` and `proxy_file`.
    pub fn default_proxies(&self) -> Result<Vec<ProxySpec>, SettingsError> {
        let s = &self.settings;
        let mut out = Vec::new();
        for p in &s.proxies {
            out.push(ProxySpec::parse(p).map_err(|e| {
                SettingsError::at(&self.source("proxies"), "proxies", e.to_string())
            })?);
        }
        if let Some(path) = &s.proxy_file {
            out.extend(self.proxy_list_file("proxy_file", path)?);
        }
        Ok(out)
    }

    fn proxy_list_file(
        &self,
        key: &str,
        path: &std::path::Path,
    ) -> Result<Vec<ProxySpec>, SettingsError> {
        let text = std::fs::read_to_string(path).map_err(|source| SettingsError::Read {
            at: self.source(key).to_string(),
            path: path.display().to_string(),
            source,
        })?;
        parse_list(&text).map_err(|e| {
            SettingsError::at(&self.source(key), key, format!("{}: {e}", path.display()))
        })
    }

    /// Named pools: the settings' `proxy_pools`, then the spider's.
    pub fn proxy_pools(&self, spider: &SpiderParts) -> Result<Vec<NamedPool>, SettingsError> {
        let err = |message: String| {
            SettingsError::at(&self.source("proxy_pools"), "proxy_pools", message)
        };
        let mut pools = Vec::new();
        for (name, pool) in &self.settings.proxy_pools {
            let mut proxies = Vec::new();
            for p in &pool.proxies {
                proxies.push(ProxySpec::parse(p).map_err(|e| err(format!("{name}: {e}")))?);
            }
            if let Some(path) = &pool.file {
                proxies.extend(self.proxy_list_file("proxy_pools", path)?);
            }
            pools.push(NamedPool {
                name: name.clone(),
                proxies,
                strategy: pool.strategy,
            });
        }
        for pool in &spider.proxy_pools {
            if pools.iter().any(|p| p.name == pool.name) {
                return Err(err(format!(
                    "proxy pool {:?} is given by the settings and by the spider file",
                    pool.name
                )));
            }
            pools.push(pool.clone());
        }
        Ok(pools)
    }

    /// Host rules: the settings' pools' `hosts`, `host_pools`, then the
    /// spider's.
    fn host_rules(&self, spider: &SpiderParts) -> Result<Vec<HostRule>, SettingsError> {
        let mut rules = Vec::new();
        for (name, pool) in &self.settings.proxy_pools {
            for host in &pool.hosts {
                rules.push(HostRule {
                    pattern: host
                        .parse()
                        .map_err(|e: trawl_fetch::proxy::HostPatternError| {
                            SettingsError::at(
                                &self.source("proxy_pools"),
                                "proxy_pools",
                                e.to_string(),
                            )
                        })?,
                    pool: name.clone(),
                });
            }
        }
        for (pattern, pool) in &self.settings.host_pools {
            rules.push(HostRule {
                pattern: pattern
                    .parse()
                    .map_err(|e: trawl_fetch::proxy::HostPatternError| {
                        SettingsError::at(&self.source("host_pools"), "host_pools", e.to_string())
                    })?,
                pool: pool.clone(),
            });
        }
        rules.extend(spider.host_rules.iter().cloned());
        Ok(rules)
    }

    /// Every pool's proxy list as the settings and files give it now (the
    /// default pool first): what a reload hands the downloader.
    pub fn proxy_lists(
        &self,
        spider: &SpiderParts,
    ) -> Result<Vec<(String, Vec<ProxySpec>)>, SettingsError> {
        let mut lists = vec![(
            trawl_fetch::proxy::DEFAULT.to_string(),
            self.default_proxies()?,
        )];
        for pool in self.proxy_pools(spider)? {
            lists.push((pool.name, pool.proxies));
        }
        Ok(lists)
    }

    /// The proxy files the settings name (watched for changes).
    pub fn proxy_files(&self) -> Vec<PathBuf> {
        let s = &self.settings;
        s.proxy_file
            .iter()
            .cloned()
            .chain(s.proxy_pools.values().filter_map(|p| p.file.clone()))
            .collect()
    }
}

/// A CSS selector the browser will be asked to wait for.
fn scraper_check(selector: &str) -> Result<(), String> {
    scraper::Selector::parse(selector)
        .map(|_| ())
        .map_err(|e| format!("invalid CSS selector `{selector}`: {e}"))
}

impl Settings {
    /// The browser pool these settings ask for (`render_tabs`,
    /// `render_timeout`, `render_memory`, `chromium`).
    pub fn browser(&self) -> trawl_render::RenderConfig {
        let mut rc = trawl_render::RenderConfig {
            tabs: self.render_tabs,
            page_timeout: self.render_timeout,
            memory_ceiling: Some(self.render_memory.bytes()),
            ..trawl_render::RenderConfig::default()
        };
        if let Some(path) = &self.chromium {
            rc.launch.executable = path.clone();
        }
        rc
    }
}

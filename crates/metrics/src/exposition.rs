//! The Prometheus (OpenMetrics text) exposition of a board, written with
//! the official client's encoder from a snapshot taken at scrape time: the
//! crawl's hot paths bump plain atomics and pay nothing for the exporter.
//!
//! Conventions: every name starts with `trawl_`; counters end in `_total`
//! (the encoder adds it); times are seconds and sizes bytes; labels are
//! few and bounded — status class, error kind, stage queue, sink, and only
//! the N slowest hosts and N busiest exits (see [`Board`]).

use std::fmt::Write as _;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric, NoLabelSet};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::Registry;
use trawl_core::{HistogramSnapshot, StatsSnapshot};

use crate::board::{Board, Identity};

/// The content type of [`render`]'s text.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Extra series a caller adds (a server's job counts).
#[derive(Debug, Clone)]
pub struct ExtraGauge {
    pub name: &'static str,
    pub help: &'static str,
    pub label: &'static str,
    pub values: Vec<(String, i64)>,
}

/// The board's metrics as OpenMetrics text.
pub fn render(board: &Board, extra: Vec<ExtraGauge>) -> String {
    let view = View {
        identity: board.identity().clone(),
        stats: board.snapshot(),
        running: board.running() as i64,
        host_series: board.host_series,
        exit_series: board.exit_series,
        extra,
    };
    let mut registry = Registry::default();
    registry.register_collector(Box::new(view));
    let mut out = String::new();
    if let Err(error) = prometheus_client::encoding::text::encode(&mut out, &registry) {
        tracing::error!(%error, "Encoding the metrics failed.");
        let _ = writeln!(out, "# EOF");
    }
    out
}

#[derive(Debug)]
struct View {
    identity: Identity,
    stats: StatsSnapshot,
    running: i64,
    host_series: usize,
    exit_series: usize,
    extra: Vec<ExtraGauge>,
}

type Result = std::result::Result<(), std::fmt::Error>;

/// Writes one family after another.
struct Out<'a, 'b>(&'b mut DescriptorEncoder<'a>);

impl Out<'_, '_> {
    fn gauge_f64(&mut self, name: &str, help: &str, value: f64) -> Result {
        let m = self
            .0
            .encode_descriptor(name, help, None, MetricType::Gauge)?;
        ConstGauge::new(value).encode(m)
    }

    fn counter(&mut self, name: &str, help: &str, value: u64) -> Result {
        let m = self
            .0
            .encode_descriptor(name, help, None, MetricType::Counter)?;
        ConstCounter::new(value).encode(m)
    }

    fn gauge(&mut self, name: &str, help: &str, value: i64) -> Result {
        let m = self
            .0
            .encode_descriptor(name, help, None, MetricType::Gauge)?;
        ConstGauge::new(value).encode(m)
    }

    fn counters<'v>(
        &mut self,
        name: &str,
        help: &str,
        label: &str,
        values: impl IntoIterator<Item = (&'v str, u64)>,
    ) -> Result {
        let mut family = self
            .0
            .encode_descriptor(name, help, None, MetricType::Counter)?;
        for (value_label, value) in values {
            let labels = [(label, value_label)];
            let m = family.encode_family(&labels)?;
            ConstCounter::new(value).encode(m)?;
        }
        Ok(())
    }

    fn gauges<'v>(
        &mut self,
        name: &str,
        help: &str,
        label: &str,
        values: impl IntoIterator<Item = (&'v str, i64)>,
    ) -> Result {
        let mut family = self
            .0
            .encode_descriptor(name, help, None, MetricType::Gauge)?;
        for (value_label, value) in values {
            let labels = [(label, value_label)];
            let m = family.encode_family(&labels)?;
            ConstGauge::new(value).encode(m)?;
        }
        Ok(())
    }

    /// The encoder sums the buckets itself: they go in per bucket.
    fn histogram(&mut self, name: &str, help: &str, h: &HistogramSnapshot) -> Result {
        let mut m = self
            .0
            .encode_descriptor(name, help, None, MetricType::Histogram)?;
        m.encode_histogram::<NoLabelSet>(h.sum_seconds, h.count(), &buckets(h), None)
    }
}

/// Per-bucket counts as the encoder wants them: it writes `+Inf` for an
/// upper bound of `f64::MAX` (and `inf`, which parsers refuse, for
/// infinity).
fn buckets(h: &HistogramSnapshot) -> Vec<(f64, u64)> {
    h.buckets()
        .into_iter()
        .map(|(bound, n)| (if bound.is_finite() { bound } else { f64::MAX }, n))
        .collect()
}

/// Every status class, zeros included, so a series exists from the start.
fn classes(map: &std::collections::BTreeMap<String, u64>) -> Vec<(&'static str, u64)> {
    trawl_core::stats::STATUS_CLASSES
        .iter()
        .map(|class| (*class, map.get(*class).copied().unwrap_or(0)))
        .collect()
}

fn as_gauge(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

impl Collector for View {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result {
        let s = &self.stats;
        let mut out = Out(&mut encoder);
        {
            let mut info = out.0.encode_descriptor(
                "trawl_process",
                "Who reports: the crawl and this worker.",
                None,
                MetricType::Info,
            )?;
            let labels = [
                ("crawl", self.identity.crawl.as_str()),
                ("worker", self.identity.worker.as_str()),
                ("version", env!("CARGO_PKG_VERSION")),
            ];
            info.encode_info(&labels)?;
        }
        out.gauge(
            "trawl_crawls_running",
            "Crawls (jobs) running in this process.",
            self.running,
        )?;
        out.gauge_f64(
            "trawl_uptime_seconds",
            "Seconds since the process began reporting.",
            s.elapsed_secs,
        )?;

        // Pages and bytes.
        out.counters(
            "trawl_pages",
            "Pages done (one item each), by final status class; `none`: no answer.",
            "status_class",
            classes(&s.pages_by_class),
        )?;
        out.counters(
            "trawl_page_bytes",
            "Body bytes of the pages done, by final status class.",
            "status_class",
            classes(&s.bytes_by_class),
        )?;
        out.counters(
            "trawl_responses",
            "HTTP exchanges (robots.txt, redirects and retries included), by status class.",
            "status_class",
            classes(&s.responses_by_class),
        )?;
        out.counter("trawl_received_bytes", "Body bytes received.", s.bytes)?;
        out.counter("trawl_requests", "HTTP requests sent.", s.requests)?;
        out.counter("trawl_retries", "Requests retried.", s.retries)?;
        out.counter("trawl_redirects", "Redirects followed.", s.redirects)?;
        out.counter(
            "trawl_truncated_pages",
            "Bodies cut at the size limit.",
            s.truncated,
        )?;
        out.counter(
            "trawl_unchanged_pages",
            "Revisits that found the page unchanged (304 Not Modified or the same body).",
            s.unchanged,
        )?;
        out.counters(
            "trawl_revisits",
            "Revisited pages (--recrawl) by what changed.",
            "change",
            [
                ("unchanged", s.unchanged),
                ("near_duplicate_change", s.near_duplicate_changes),
                ("changed", s.changed),
            ],
        )?;
        out.counters(
            "trawl_duplicate_pages",
            "Pages repeating an earlier page: the same body (exact) or text within the near-duplicate distance (near).",
            "kind",
            [("exact", s.duplicate_pages), ("near", s.near_duplicate_pages)],
        )?;
        out.gauge(
            "trawl_trap_patterns",
            "URL patterns found to be crawler traps.",
            as_gauge(s.traps.len() as u64),
        )?;
        out.counter(
            "trawl_trap_blocked_links",
            "Links not followed because their URL pattern is a crawler trap.",
            s.trap_blocked,
        )?;
        out.counter(
            "trawl_robots_denied",
            "URLs not fetched because robots.txt disallows them.",
            s.robots_denied,
        )?;
        out.counters(
            "trawl_page_errors",
            "Failed pages by kind of failure.",
            "kind",
            s.errors_by_kind.iter().map(|(k, v)| (k.as_str(), *v)),
        )?;
        out.counter(
            "trawl_links_filtered",
            "Links dropped by scope, depth, budgets or trap guards.",
            s.filtered,
        )?;
        out.counter("trawl_links_duplicate", "Links already seen.", s.duplicates)?;
        out.counter(
            "trawl_items_written",
            "Items the sinks wrote.",
            s.items_written,
        )?;
        out.counter(
            "trawl_items_dropped",
            "Items an item pipeline stage dropped.",
            s.items_dropped,
        )?;
        out.counter("trawl_item_errors", "Spider error records.", s.item_errors)?;
        out.histogram(
            "trawl_fetch_duration_seconds",
            "Time from sending a request to the end of its body.",
            &s.fetch_seconds,
        )?;

        // Concurrency and parallelism.
        out.gauge(
            "trawl_requests_in_flight",
            "HTTP requests on the wire: the crawl's concurrency.",
            as_gauge(s.in_flight),
        )?;
        out.gauge(
            "trawl_parse_workers_busy",
            "Parse workers working: the crawl's parallelism.",
            as_gauge(s.cpu_busy),
        )?;
        out.gauge(
            "trawl_parse_workers_idle",
            "Parse workers waiting for pages.",
            as_gauge(s.cpu_workers.saturating_sub(s.cpu_busy)),
        )?;
        out.gauge(
            "trawl_parse_workers",
            "Size of the parse pool.",
            as_gauge(s.cpu_workers),
        )?;
        out.gauges("trawl_stage_queue_depth", "Work waiting between stages: `parse` (fetched pages), `route` (parsed pages), `items` (items for the sink stage).", "queue", s.queues.iter().map(|q| (q.name.as_str(), as_gauge(q.depth))))?;
        out.gauges(
            "trawl_stage_queue_capacity",
            "Capacity of each stage queue.",
            "queue",
            s.queues
                .iter()
                .map(|q| (q.name.as_str(), as_gauge(q.capacity))),
        )?;
        out.gauge(
            "trawl_frontier_queued",
            "Requests queued in the frontier.",
            as_gauge(s.queued),
        )?;
        out.gauge(
            "trawl_frontier_leased",
            "Requests leased (being fetched or written).",
            as_gauge(s.leased),
        )?;

        // Sinks.
        let sinks = &s.sinks;
        out.counters(
            "trawl_sink_items",
            "Items (or records) a sink wrote.",
            "sink",
            sinks.iter().map(|k| (k.name.as_str(), k.items)),
        )?;
        out.counters(
            "trawl_sink_written_bytes",
            "Bytes a sink wrote.",
            "sink",
            sinks.iter().map(|k| (k.name.as_str(), k.bytes)),
        )?;
        out.counters(
            "trawl_sink_batches",
            "Batches a sink wrote.",
            "sink",
            sinks.iter().map(|k| (k.name.as_str(), k.batches)),
        )?;
        out.counters(
            "trawl_sink_retries",
            "Failed batch writes retried.",
            "sink",
            sinks.iter().map(|k| (k.name.as_str(), k.retries)),
        )?;
        out.counters(
            "trawl_sink_failed_batches",
            "Batches given up on (to the dead-letter file).",
            "sink",
            sinks.iter().map(|k| (k.name.as_str(), k.failed_batches)),
        )?;
        out.counters(
            "trawl_sink_dead_lettered_items",
            "Items written to the dead-letter file.",
            "sink",
            sinks.iter().map(|k| (k.name.as_str(), k.dead_lettered)),
        )?;
        out.gauges(
            "trawl_sink_queue_depth",
            "Batches waiting for a sink.",
            "sink",
            sinks
                .iter()
                .map(|k| (k.name.as_str(), as_gauge(k.queue_depth))),
        )?;
        {
            let mut family = out.0.encode_descriptor(
                "trawl_sink_write_duration_seconds",
                "Time a batch write took, retries included.",
                None,
                MetricType::Histogram,
            )?;
            for sink in sinks {
                let h = &sink.write_seconds;
                let labels = [("sink", sink.name.as_str())];
                let mut m = family.encode_family(&labels)?;
                m.encode_histogram::<NoLabelSet>(h.sum_seconds, h.count(), &buckets(h), None)?;
            }
        }

        // Anti-ban.
        out.counter("trawl_bans", "Responses judged bans.", s.bans)?;
        out.counter(
            "trawl_rate_limited",
            "Responses judged rate limits (429, 503 with Retry-After, ...).",
            s.rate_limited,
        )?;
        out.counter(
            "trawl_proxy_failures",
            "Requests failed by the proxy itself.",
            s.proxy_failures,
        )?;
        out.counter(
            "trawl_rotations",
            "Requests moved to another exit after a ban or failure.",
            s.rotations,
        )?;
        out.counter(
            "trawl_proxy_waits",
            "Times a request waited because no exit was usable.",
            s.proxy_waits,
        )?;
        out.counter(
            "trawl_pace_waits",
            "Times a request waited for its exit's pace to the host.",
            s.pace_waits,
        )?;
        out.counter(
            "trawl_latency_climbs",
            "Answers slow enough that an exit's pace was cut.",
            s.latency_climbs,
        )?;
        self.encode_exits(&mut out)?;

        // Rendering.
        out.counter(
            "trawl_rendered_pages",
            "Pages rendered in the browser.",
            s.rendered,
        )?;
        out.gauge(
            "trawl_render_tabs_busy",
            "Browser tabs rendering now.",
            as_gauge(s.render_busy),
        )?;
        out.gauge(
            "trawl_render_tabs",
            "Browser tabs open.",
            as_gauge(s.render_tabs),
        )?;

        // The slowest hosts (bounded).
        let hosts: Vec<_> = s.slowest_hosts.iter().take(self.host_series).collect();
        out.counters(
            "trawl_host_requests",
            "Requests to each of the slowest hosts.",
            "host",
            hosts.iter().map(|h| (h.host.as_str(), h.requests)),
        )?;
        {
            let mut family = out.0.encode_descriptor(
                "trawl_host_request_seconds",
                "Time spent on requests to each of the slowest hosts.",
                None,
                MetricType::Counter,
            )?;
            for h in &hosts {
                let labels = [("host", h.host.as_str())];
                let m = family.encode_family(&labels)?;
                ConstCounter::new(h.seconds).encode(m)?;
            }
        }

        for extra in &self.extra {
            out.gauges(
                extra.name,
                extra.help,
                extra.label,
                extra.values.iter().map(|(l, v)| (l.as_str(), *v)),
            )?;
        }
        Ok(())
    }
}

impl View {
    /// One series per exit (proxy), the busiest `exit_series`, from the
    /// proxy table the downloader publishes (passwords already masked).
    fn encode_exits(&self, out: &mut Out) -> Result {
        let rows: Vec<&serde_json::Value> = self
            .stats
            .proxies
            .as_ref()
            .and_then(|p| p.get("proxies"))
            .and_then(|p| p.as_array())
            .map(|rows| rows.iter().collect())
            .unwrap_or_default();
        let number =
            |row: &serde_json::Value, key: &str| row.get(key).and_then(|v| v.as_u64()).unwrap_or(0);
        let mut rows = rows;
        rows.sort_by_key(|r| std::cmp::Reverse(number(r, "requests")));
        rows.truncate(self.exit_series);
        let names: Vec<(String, String, String)> = rows
            .iter()
            .map(|r| {
                let text = |k: &str| r.get(k).and_then(|v| v.as_str()).unwrap_or("").to_string();
                (text("proxy"), text("pool"), text("state"))
            })
            .collect();
        for (metric, key, help) in [
            (
                "trawl_exit_requests",
                "requests",
                "Exchanges through each exit (proxy).",
            ),
            ("trawl_exit_bans", "bans", "Bans through each exit."),
            (
                "trawl_exit_rate_limits",
                "rate_limits",
                "Rate-limit answers through each exit.",
            ),
            (
                "trawl_exit_failures",
                "failures",
                "Failures of each exit itself.",
            ),
        ] {
            let mut family = out
                .0
                .encode_descriptor(metric, help, None, MetricType::Counter)?;
            for (row, (exit, pool, _)) in rows.iter().zip(&names) {
                let labels = [("exit", exit.as_str()), ("pool", pool.as_str())];
                let m = family.encode_family(&labels)?;
                ConstCounter::new(number(row, key)).encode(m)?;
            }
        }
        let mut family = out.0.encode_descriptor(
            "trawl_exit_in_flight",
            "Requests on each exit now.",
            None,
            MetricType::Gauge,
        )?;
        for (row, (exit, pool, _)) in rows.iter().zip(&names) {
            let labels = [("exit", exit.as_str()), ("pool", pool.as_str())];
            let m = family.encode_family(&labels)?;
            ConstGauge::new(as_gauge(number(row, "in_flight"))).encode(m)?;
        }
        let mut states: std::collections::BTreeMap<&str, i64> = std::collections::BTreeMap::new();
        for (_, _, state) in &names {
            *states.entry(state.as_str()).or_default() += 1;
        }
        out.gauges(
            "trawl_exits",
            "Exits by state (`active`, `cooling_down`, `down`, ...).",
            "state",
            states,
        )?;
        let cooling: u64 = rows.iter().map(|r| number(r, "cooling_hosts")).sum();
        out.gauge(
            "trawl_exit_host_cooldowns",
            "(exit, host) pairs cooling down after a ban.",
            as_gauge(cooling),
        )
    }
}

//! The live progress line and the end-of-crawl summary.

use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use trawl_core::{CrawlStats, StatsSnapshot};

/// Human-readable byte count.
pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit < UNITS.len() - 1 {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[unit])
    }
}

/// One progress line from the live counters.
pub fn line(stats: &CrawlStats, elapsed: Duration, rate: f64) -> String {
    format!(
        "pages {} | {:.0}/s | in flight {} | cpu {}/{} busy | queued {} | errors {} | {}",
        stats.pages.load(Relaxed),
        rate,
        stats.in_flight.load(Relaxed),
        stats.cpu_busy.load(Relaxed),
        stats.cpu_workers.load(Relaxed),
        stats.queued.load(Relaxed),
        stats.errors.load(Relaxed),
        bytes(stats.bytes.load(Relaxed)),
    ) + &render_part(stats, elapsed)
        + &proxies_part(stats)
        + &sinks_part(stats)
        + &format!(" | {:.0}s", elapsed.as_secs_f64())
}

/// Tabs busy and pages rendered, when the crawl renders.
fn render_part(stats: &CrawlStats, elapsed: Duration) -> String {
    let tabs = stats.render_tabs.load(Relaxed);
    if tabs == 0 {
        return String::new();
    }
    let rendered = stats.rendered.load(Relaxed);
    format!(
        " | render {}/{} tabs, {} pages, {:.1}/s",
        stats.render_busy.load(Relaxed),
        tabs,
        rendered,
        rendered as f64 / elapsed.as_secs_f64().max(0.001)
    )
}

/// Paced hosts (per exit) shown in the summary.
const SUMMARY_PACE_ROWS: usize = 5;

/// One pace row: host, state and rate.
fn pace_line(p: &serde_json::Value) -> String {
    let mut line = format!(
        "{} {} at {} r/s",
        p["host"].as_str().unwrap_or("?"),
        p["state"].as_str().unwrap_or("?"),
        p["rate"].as_f64().map_or("-".into(), |r| format!("{r:.1}")),
    );
    if let Some(sent) = p["sent_rate"].as_f64() {
        line.push_str(&format!(" (sending {sent:.1})"));
    }
    if let Some(policy) = p["policy_rate"].as_f64() {
        line.push_str(&format!(", site states {policy:.1} r/s"));
    }
    line.push_str(&format!(
        ", {} rate limits, {} Retry-After",
        p["rate_limits"], p["retry_afters"]
    ));
    line
}

/// Rate limits, bans and rotations, when there are any.
fn proxies_part(stats: &CrawlStats) -> String {
    let proxies = stats.proxies.lock();
    let Some(v) = proxies.as_ref() else {
        return String::new();
    };
    let limited = stats.rate_limited.load(Relaxed);
    let mut out = if limited > 0 {
        format!(" | rate limited {limited}")
    } else {
        String::new()
    };
    if v.get("proxies").is_none() && stats.bans.load(Relaxed) == 0 {
        return out;
    }
    out.push_str(&format!(
        " | bans {} rotated {}",
        stats.bans.load(Relaxed),
        stats.rotations.load(Relaxed)
    ));
    if let Some(list) = v.get("proxies").and_then(|p| p.as_array()) {
        let up = list.iter().filter(|p| p["state"] == "active").count();
        out.push_str(&format!(" | proxies {up}/{} clear", list.len()));
    }
    out
}

/// The sinks on the progress line: items written and queue fill, and
/// retries or dead letters when there are any.
fn sinks_part(stats: &CrawlStats) -> String {
    let sinks = stats.sinks.lock();
    let mut out = String::new();
    for s in sinks.iter() {
        let kind = s.name.split(':').next().unwrap_or("sink");
        out.push_str(&format!(
            " | {kind} {} q{}/{}",
            s.items.load(Relaxed),
            s.queue_depth.load(Relaxed),
            s.queue_capacity.load(Relaxed)
        ));
        let retries = s.retries.load(Relaxed);
        if retries > 0 {
            out.push_str(&format!(" r{retries}"));
        }
        let dead = s.dead_lettered.load(Relaxed);
        if dead > 0 {
            out.push_str(&format!(" dead {dead}"));
        }
    }
    out
}

/// Redraw the progress line on stderr until aborted.
pub async fn run(stats: Arc<CrawlStats>) {
    let started = Instant::now();
    let mut ticker = tokio::time::interval(Duration::from_millis(250));
    let mut last = (Instant::now(), 0u64);
    let mut rate = 0.0;
    loop {
        ticker.tick().await;
        let now = Instant::now();
        let pages = stats.pages.load(Relaxed);
        let dt = now.duration_since(last.0).as_secs_f64();
        if dt >= 1.0 {
            // Smooth over a second so the figure is readable.
            rate = (pages - last.1) as f64 / dt;
            last = (now, pages);
        } else if last.1 == 0 {
            // Until the first full second, the average so far.
            rate = pages as f64 / started.elapsed().as_secs_f64().max(0.001);
        }
        let mut err = std::io::stderr().lock();
        let _ = write!(err, "\r\x1b[2K{}", line(&stats, started.elapsed(), rate));
        let _ = err.flush();
    }
}

/// Clear the progress line.
pub fn clear() {
    let mut err = std::io::stderr().lock();
    let _ = write!(err, "\r\x1b[2K");
    let _ = err.flush();
}

/// The end-of-crawl summary.
pub fn summary(s: &StatsSnapshot, left_queued: u64) -> String {
    let mut out = String::new();
    let head = if s.output_closed {
        "Crawl stopped (its output was closed by the reader)"
    } else if s.interrupted {
        "Crawl interrupted"
    } else {
        "Crawl finished"
    };
    out.push_str(&format!("{head} in {:.1}s\n", s.elapsed_secs));
    out.push_str(&format!(
        "  pages         {} ({} ok, {} errors)\n",
        s.pages, s.pages_ok, s.errors
    ));
    out.push_str(&format!("  rate          {:.1} pages/s\n", s.pages_per_sec));
    out.push_str(&format!(
        "  requests      {} ({} retries, {} redirects)\n",
        s.requests, s.retries, s.redirects
    ));
    out.push_str(&format!(
        "  received      {} ({} truncated)\n",
        bytes(s.bytes),
        s.truncated
    ));
    out.push_str(&format!("  robots denied {}\n", s.robots_denied));
    out.push_str(&format!(
        "  links         {} filtered, {} duplicates\n",
        s.filtered, s.duplicates
    ));
    out.push_str(&format!("  items written {}\n", s.items_written));
    if s.items_dropped > 0 {
        out.push_str(&format!(
            "  items dropped {} (item pipeline)\n",
            s.items_dropped
        ));
    }
    if let Some(r) = &s.render {
        out.push_str(&format!(
            "  rendered      {} pages in {} tabs ({:.1}/s; p50 {} ms, p90 {} ms, p99 {} ms; {} failed, {} timed out, {} tab crashes, {} browser restarts; browser peak {} MiB)\n",
            s.rendered,
            r["tabs"],
            r["rendered_per_sec"].as_f64().unwrap_or(0.0),
            r["p50_ms"],
            r["p90_ms"],
            r["p99_ms"],
            r["failed"],
            r["timeouts"],
            r["crashes"],
            r["restarts"],
            r["browser_peak_rss_mb"],
        ));
        if let Some(a) = r.get("auto") {
            out.push_str(&format!(
                "  render auto   {} plain ({} ms avg), {} rendered ({} ms avg, fetch + render; {} by URL pattern)\n",
                a["plain"], a["plain_avg_ms"], a["rendered"], a["rendered_avg_ms"], a["rendered_by_pattern"]
            ));
        }
    }
    if s.rate_limited > 0 || s.latency_climbs > 0 {
        out.push_str(&format!(
            "  rate limits   {} answers (429, 503 + Retry-After, RateLimit quota) and {} latency climbs: paced per exit and host; {} waits for a ready exit\n",
            s.rate_limited, s.latency_climbs, s.pace_waits
        ));
    }
    for p in s
        .proxies
        .as_ref()
        .and_then(|v| v.get("pacing"))
        .and_then(|p| p.as_array())
        .into_iter()
        .flatten()
        .take(SUMMARY_PACE_ROWS)
    {
        out.push_str(&format!("  paced         {}\n", pace_line(p)));
    }
    if let Some(v) = s.proxies.as_ref().filter(|v| v.get("proxies").is_some()) {
        out.push_str(&format!(
            "  bans          {} ({} requests moved to another proxy/session, {} proxy failures, {} waits for a usable proxy)\n",
            s.bans, s.rotations, s.proxy_failures, s.proxy_waits
        ));
        for p in v
            .get("proxies")
            .and_then(|p| p.as_array())
            .into_iter()
            .flatten()
        {
            let pool = match p["pool"].as_str() {
                Some(name) if name != trawl_fetch::proxy::DEFAULT => format!(" [{name}]"),
                _ => String::new(),
            };
            out.push_str(&format!(
                "  proxy         {}{pool} {}: {} requests, {} ok, {} rate limits, {} bans, {} failures, {} ms\n",
                p["proxy"].as_str().unwrap_or("?"),
                p["state"].as_str().unwrap_or("?"),
                p["requests"],
                p["successes"],
                p["rate_limits"],
                p["bans"],
                p["failures"],
                p["latency_ms"]
                    .as_f64()
                    .map_or("-".to_string(), |l| format!("{l:.0}"))
            ));
            let mut hosts: Vec<&serde_json::Value> = p["hosts"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|h| h["seen"] != "ok" || h["pace"]["state"] == "paced")
                .collect();
            hosts.sort_by_key(|h| std::cmp::Reverse(h["requests"].as_u64().unwrap_or(0)));
            for h in hosts.iter().take(SUMMARY_PACE_ROWS) {
                let pace = if h["pace"].is_object() {
                    format!(", {}", pace_line(&h["pace"]))
                } else {
                    String::new()
                };
                out.push_str(&format!(
                    "                  {} {}: {} requests, {} rate limits, {} bans{pace}\n",
                    h["host"].as_str().unwrap_or("?"),
                    h["seen"].as_str().unwrap_or("?"),
                    h["requests"],
                    h["rate_limits"],
                    h["bans"],
                ));
            }
        }
    }
    for k in &s.sinks {
        out.push_str(&format!(
            "  sink          {}: {} items, {}, {} batches, {} retries",
            k.name,
            k.items,
            bytes(k.bytes),
            k.batches,
            k.retries
        ));
        if k.failed_batches > 0 {
            out.push_str(&format!(
                ", {} batches gave up ({} items to the dead-letter file)",
                k.failed_batches, k.dead_lettered
            ));
        }
        out.push('\n');
    }
    if s.item_errors > 0 {
        out.push_str(&format!(
            "  item errors   {} (see the error output)\n",
            s.item_errors
        ));
    }
    if s.unchanged + s.near_duplicate_changes + s.changed > 0 {
        out.push_str(&format!(
            "  revisits      {} unchanged (304 or same body), {} near-duplicate changes, {} changed\n",
            s.unchanged, s.near_duplicate_changes, s.changed
        ));
    }
    if s.duplicate_pages + s.near_duplicate_pages > 0 {
        out.push_str(&format!(
            "  duplicates    {} pages repeat another's body, {} are near-duplicates\n",
            s.duplicate_pages, s.near_duplicate_pages
        ));
    }
    for t in &s.traps {
        out.push_str(&format!(
            "  trap          {}: {} pages, {} duplicates, {} links not followed\n",
            t.pattern, t.pages, t.duplicates, t.blocked_links
        ));
    }
    out.push_str(&format!("  left queued   {left_queued}\n"));
    out
}

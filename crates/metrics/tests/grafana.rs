//! The Grafana dashboard in `docs/grafana/trawl.json` only names metrics
//! trawl exports: every `trawl_…` series its queries use is in the
//! exposition of a crawl that used every feature (sinks, proxies, hosts,
//! a server's jobs).

#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use trawl_core::{CrawlStats, SinkStats};
use trawl_metrics::{Board, ExtraGauge, Identity};

fn busy_board() -> Board {
    let stats = Arc::new(CrawlStats::default());
    stats.pages.store(3, Relaxed);
    stats.page_done(Some(200), 1000);
    stats.page_done(Some(404), 10);
    stats.page_done(None, 0);
    stats.error_kind("timeout");
    stats.exchange_done("example.org", Some(200), Duration::from_millis(30));
    stats.exchange_done("example.org", None, Duration::from_secs(2));
    stats.queues.lock().push(trawl_core::QueueProbe {
        name: "parse",
        depth: Box::new(|| Some((1, 8))),
    });
    let sink = Arc::new(SinkStats::new("jsonl:items.jsonl".into()));
    sink.write_seconds.observe(Duration::from_millis(4));
    stats.sinks.lock().push(sink);
    *stats.proxies.lock() = Some(serde_json::json!({"proxies": [
        {"proxy": "http://u:***@p1:8080", "pool": "default", "state": "active",
         "requests": 5, "bans": 1, "rate_limits": 0, "failures": 0, "in_flight": 1, "cooling_hosts": 1}
    ]}));
    Board::single(
        Identity {
            crawl: "c".into(),
            worker: "w".into(),
        },
        stats,
    )
}

#[test]
fn every_series_the_grafana_dashboard_queries_is_exported() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/grafana/trawl.json");
    let dashboard: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let exprs: Vec<String> = dashboard["panels"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|p| p["targets"].as_array().unwrap().iter())
        .map(|t| t["expr"].as_str().unwrap().to_string())
        .collect();
    assert!(exprs.len() >= 15, "{exprs:?}");
    let text = trawl_metrics::render(
        &busy_board(),
        vec![ExtraGauge {
            name: "trawl_api_jobs",
            help: "jobs",
            label: "state",
            values: vec![("running".into(), 1)],
        }],
    );
    let names = regex_lite_names(&exprs.join(" "));
    assert!(names.len() >= 20, "{names:?}");
    for name in names {
        let exported = text.lines().any(|l| {
            !l.starts_with('#')
                && (l.starts_with(&format!("{name}{{")) || l.starts_with(&format!("{name} ")))
        });
        assert!(
            exported,
            "the dashboard queries {name}, which is not exported:\n{text}"
        );
    }
}

/// The `trawl_…` identifiers in `text`.
fn regex_lite_names(text: &str) -> std::collections::BTreeSet<String> {
    let mut out = std::collections::BTreeSet::new();
    let bytes = text.as_bytes();
    let mut i = 0;
    while let Some(at) = text[i..].find("trawl_") {
        let start = i + at;
        let mut end = start;
        while end < bytes.len() && (bytes[end].is_ascii_alphanumeric() || bytes[end] == b'_') {
            end += 1;
        }
        out.insert(text[start..end].to_string());
        i = end;
    }
    out
}

#[test]
fn histograms_are_cumulative_with_a_plus_inf_bucket() {
    let text = trawl_metrics::render(&busy_board(), Vec::new());
    assert!(
        text.contains("trawl_fetch_duration_seconds_bucket{le=\"0.05\"} 1\n"),
        "{text}"
    );
    assert!(
        text.contains("trawl_fetch_duration_seconds_bucket{le=\"2.5\"} 2\n"),
        "{text}"
    );
    assert!(
        text.contains("trawl_fetch_duration_seconds_bucket{le=\"+Inf\"} 2\n"),
        "{text}"
    );
    assert!(
        text.contains("trawl_fetch_duration_seconds_count 2\n"),
        "{text}"
    );
    assert!(text.contains("trawl_pages_total{status_class=\"none\"} 1\n"));
    assert!(
        text.contains(
            "trawl_exit_requests_total{exit=\"http://u:***@p1:8080\",pool=\"default\"} 5\n"
        ),
        "{text}"
    );
    assert!(!text.contains("pw"), "no password in the exposition");
    assert!(text.ends_with("# EOF\n"));
}

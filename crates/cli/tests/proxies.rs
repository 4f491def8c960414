//! Proxy rotation and anti-ban end to end, with real proxy servers
//! (tinyproxy for HTTP/CONNECT, microsocks for SOCKS5), each sending from
//! its own loopback address (127.0.0.2, 127.0.0.3, …), so the test site
//! sees a distinct client IP per proxy: real IP rotation on one machine.

#![allow(clippy::unwrap_used)]

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use common::trawl;
use serde_json::Value;
use trawl_testsite::proxies::{MicroSocks, ProxyOptions, TinyProxy};
use trawl_testsite::{BanAnswer, BanKey, Defense, SiteConfig, TestSite};

fn ip(last: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(127, 0, 0, last))
}

/// Run `trawl crawl` to completion; returns (exit code, stderr, stats),
/// the stats with the failed pages' errors under `failed_pages` for
/// assertion messages.
fn crawl(seed: &str, args: &[String]) -> (i32, String, Value) {
    let (code, stderr, mut stats, items) = common::crawl_with_stats(seed, args);
    let failed: Vec<Value> = items
        .iter()
        .filter(|i| !i["error"].is_null())
        .map(|i| serde_json::json!([i["url"], i["error"]]))
        .collect();
    stats["failed_pages"] = failed.into();
    (code, stderr, stats)
}

/// The lines a child writes to its (piped) stderr, as they come.
fn stderr_lines(child: &mut std::process::Child) -> std::sync::mpsc::Receiver<String> {
    use std::io::BufRead;
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            let _ = tx.send(line);
        }
    });
    rx
}

/// Open tinyproxies sending from 127.0.0.N for each N of `lasts`.
fn tinyproxies(lasts: &[u8]) -> Vec<TinyProxy> {
    lasts
        .iter()
        .map(|&n| TinyProxy::start(ProxyOptions::new(ip(n))).unwrap())
        .collect()
}

/// A site defence: `max_requests` per second per `by`, then banned for a
/// second with `answer`.
fn defense(max_requests: u32, answer: BanAnswer, by: BanKey) -> Defense {
    Defense {
        max_requests,
        window: Duration::from_secs(1),
        answer,
        by,
        ban_for: Duration::from_secs(1),
    }
}

fn proxy_args(urls: &[String]) -> Vec<String> {
    urls.iter()
        .flat_map(|u| ["--proxy".to_string(), u.clone()])
        .collect()
}

fn site(pages: usize, defended: Option<Defense>) -> TestSite {
    start_site(pages, defended, false)
}

fn start_site(pages: usize, defended: Option<Defense>, tls: bool) -> TestSite {
    let cfg = SiteConfig {
        pages,
        fanout: 4,
        defended,
        ..Default::default()
    };
    serve(cfg, tls)
}

/// A site whose every page takes 20 ms, so a crawl can be caught midway.
fn slow_site(pages: usize) -> TestSite {
    let cfg = SiteConfig {
        pages,
        fanout: 4,
        latency: Some(Duration::from_millis(20)),
        ..Default::default()
    };
    serve(cfg, false)
}

/// Serve `cfg` on a runtime of its own that lives as long as the test.
fn serve(cfg: SiteConfig, tls: bool) -> TestSite {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let site = rt
        .block_on(async {
            if tls {
                TestSite::start_tls(cfg).await
            } else {
                TestSite::start(cfg).await
            }
        })
        .unwrap();
    // The site serves on the runtime's worker thread; keep it alive.
    std::mem::forget(rt);
    site
}

#[test]
fn requests_spread_over_the_proxies_and_never_go_direct() {
    let site = site(60, None);
    let proxies = [
        TinyProxy::start(ProxyOptions::new(ip(2)).with_auth("alice", "s3cret")).unwrap(),
        TinyProxy::start(ProxyOptions::new(ip(3))).unwrap(),
    ];
    let socks = MicroSocks::start(ProxyOptions::new(ip(4)).with_auth("bob", "hunter2")).unwrap();
    let urls = vec![proxies[0].url(), proxies[1].url(), socks.url()];
    let seed = format!("{}/", site.base_url());
    let mut args = proxy_args(&urls);
    args.extend(["--proxy-strategy".into(), "round-robin".into()]);
    let (code, stderr, stats) = crawl(&seed, &args);
    assert_eq!(code, 0, "{stderr}");
    let total = site.site().ground_truth().len() as u64;
    assert_eq!(stats["pages_ok"].as_u64(), Some(total), "{stderr}");

    let by_client = site.stats().by_client;
    // Nothing went out directly from 127.0.0.1.
    assert!(!by_client.contains_key(&ip(1)), "{by_client:?}");
    // Round-robin among the proxies ready for the host: each carried a
    // share; one whose per-host in-flight places are taken (microsocks
    // answers in ~40 ms here, tinyproxy in ~1 ms) is skipped for a ready
    // one, so the faster ones carry more.
    let requests: u64 = by_client.values().map(|c| c.ok).sum();
    for last in [2, 3, 4] {
        let n = by_client.get(&ip(last)).map_or(0, |c| c.ok);
        assert!(
            n * 20 >= requests,
            "127.0.0.{last} carried {n} of {requests}: {by_client:?}"
        );
    }
    for last in [2, 3] {
        let n = by_client.get(&ip(last)).map_or(0, |c| c.ok);
        assert!(
            n * 4 >= requests,
            "127.0.0.{last} carried {n} of {requests}: {by_client:?}"
        );
    }
    // Per-proxy stats, passwords masked.
    let list = stats["proxies"]["proxies"].as_array().unwrap();
    assert_eq!(list.len(), 3);
    let text = serde_json::to_string(&stats).unwrap() + &stderr;
    assert!(
        !text.contains("s3cret") && !text.contains("hunter2"),
        "{text}"
    );
    assert!(text.contains("alice:***@"), "{text}");
    for p in list {
        assert_eq!(p["state"], "active", "{p}");
        assert!(p["successes"].as_u64().unwrap() > 0, "{p}");
    }
}

#[test]
fn a_dead_proxy_is_named_masked_and_skipped() {
    let site = site(40, None);
    let live = TinyProxy::start(ProxyOptions::new(ip(5))).unwrap();
    let dead_port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dead = format!("http://carol:topsecret@127.0.0.1:{dead_port}");
    let seed = format!("{}/", site.base_url());
    let mut args = proxy_args(&[dead, live.url()]);
    args.extend(["-v".into()]);
    let (code, stderr, stats) = crawl(&seed, &args);
    assert_eq!(code, 0, "{stderr}");
    let total = site.site().ground_truth().len() as u64;
    assert_eq!(stats["pages_ok"].as_u64(), Some(total), "{stderr}");
    assert!(!stderr.contains("topsecret"), "{stderr}");
    assert!(
        stderr.contains(&format!("carol:***@127.0.0.1:{dead_port}")),
        "the failing proxy is named: {stderr}"
    );
    let list = stats["proxies"]["proxies"].as_array().unwrap();
    let dead = list
        .iter()
        .find(|p| {
            p["proxy"]
                .as_str()
                .unwrap()
                .contains(&dead_port.to_string())
        })
        .unwrap();
    assert!(dead["failures"].as_u64().unwrap() >= 1, "{dead}");
    assert_eq!(dead["successes"], 0, "{dead}");
    assert_ne!(dead["state"], "active", "{dead}");
    assert!(stats["proxy_failures"].as_u64().unwrap() >= 1);
}

#[test]
fn with_rotation_the_defended_site_is_crawled_without_it_a_trickle() {
    // At most 6 requests per client IP per second, then banned for a second
    // with 403s (a 429 would be a rate limit, paced rather than rotated
    // away from: see tests/ratelimit.rs).
    let defense = defense(6, BanAnswer::Forbidden, BanKey::ClientIp);
    let direct_site = site(60, Some(defense.clone()));
    let seed = format!("{}/", direct_site.base_url());
    let common = ["-c", "8", "--per-host", "8", "--max-retry-after", "0s"].map(String::from);
    // Without proxies (and without retries, which would only wait out the
    // bans): everything past the first few requests is refused.
    let mut direct_args = common.to_vec();
    direct_args.extend(["--retries".to_string(), "0".to_string()]);
    let (code, stderr, direct) = crawl(&seed, &direct_args);
    assert_eq!(code, 0, "{stderr}");
    let total = direct_site.site().ground_truth().len() as u64;
    let direct_ok = direct["pages_ok"].as_u64().unwrap();
    assert!(direct_ok * 2 < total, "direct got {direct_ok} of {total}");

    // With four proxies (HTTP and SOCKS5), bans cool a proxy for a second
    // and the request moves on; the whole site comes through.
    let rotated_site = site(60, Some(defense));
    let tiny = tinyproxies(&[6, 7]);
    let socks = [
        MicroSocks::start(ProxyOptions::new(ip(8))).unwrap(),
        MicroSocks::start(ProxyOptions::new(ip(9))).unwrap(),
    ];
    let urls: Vec<String> = tiny
        .iter()
        .map(|p| p.url())
        .chain(socks.iter().map(|p| p.url()))
        .collect();
    let mut args = common.to_vec();
    args.extend(proxy_args(&urls));
    args.extend(["--proxy-cooldown", "1s", "--proxy-attempts", "50"].map(String::from));
    let seed = format!("{}/", rotated_site.base_url());
    let (code, stderr, rotated) = crawl(&seed, &args);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(
        rotated["pages_ok"].as_u64(),
        Some(total),
        "{} pages {} errors {} retries {} rotations {}",
        rotated["failed_pages"],
        rotated["pages"],
        rotated["errors"],
        rotated["retries"],
        rotated["rotations"]
    );
    assert!(rotated["bans"].as_u64().unwrap() > 0, "the site did ban");

    // Banned proxies cooled down and came back: some client IP was banned
    // and served normally afterwards.
    let log = rotated_site.stats().log;
    let mut came_back = BTreeSet::new();
    let mut banned_at: BTreeMap<IpAddr, std::time::Instant> = BTreeMap::new();
    for e in &log {
        if e.banned {
            banned_at.entry(e.client_ip).or_insert(e.started);
        } else if banned_at.get(&e.client_ip).is_some_and(|t| e.started > *t) {
            came_back.insert(e.client_ip);
        }
    }
    assert!(!came_back.is_empty(), "no proxy came back after a ban");
    // Every proxy was used.
    let by_client = rotated_site.stats().by_client;
    for last in [6, 7, 8, 9] {
        assert!(
            by_client.get(&ip(last)).is_some_and(|c| c.ok > 0),
            "{by_client:?}"
        );
    }
}

#[test]
fn sticky_sessions_keep_their_proxy_and_cookies() {
    // Counted by session cookie, with a limit never reached: the site just
    // hands out `sid` cookies and logs which client IP sends which sid.
    let defense = Defense {
        max_requests: 10_000,
        window: Duration::from_secs(60),
        answer: BanAnswer::TooManyRequests,
        by: BanKey::SessionCookie,
        ban_for: Duration::from_secs(1),
    };
    let site = site(50, Some(defense));
    let proxies = tinyproxies(&[10, 11, 12]);
    let urls: Vec<String> = proxies.iter().map(|p| p.url()).collect();
    let mut args = proxy_args(&urls);
    args.extend(
        [
            "--sessions",
            "2",
            "--session-max-uses",
            "0",
            "--user-agents",
            "builtin",
        ]
        .map(String::from),
    );
    let seed = format!("{}/", site.base_url());
    let (code, stderr, stats) = crawl(&seed, &args);
    assert_eq!(code, 0, "{stderr}");
    let total = site.site().ground_truth().len() as u64;
    assert_eq!(stats["pages_ok"].as_u64(), Some(total), "{stderr}");

    let log = site.stats().log;
    // A session's cookie always comes back through the same proxy, with
    // the same User-Agent.
    let mut by_sid: BTreeMap<String, BTreeSet<(IpAddr, Option<String>)>> = BTreeMap::new();
    for e in log.iter().filter(|e| e.path_and_query != "/robots.txt") {
        if let Some(sid) = &e.sid {
            by_sid
                .entry(sid.clone())
                .or_default()
                .insert((e.client_ip, e.user_agent.clone()));
        }
    }
    assert!(!by_sid.is_empty());
    for (sid, seen) in &by_sid {
        assert_eq!(seen.len(), 1, "session {sid} moved: {seen:?}");
    }
    // Cookies were kept: the requests carried only a handful of sids (two
    // sessions; the first request of each gets its cookie), not one per page.
    let with_cookie = log.iter().filter(|e| e.sid.is_some()).count();
    assert!(
        by_sid.len() <= 4,
        "{} sids for {with_cookie} requests",
        by_sid.len()
    );
    assert!(with_cookie as u64 >= total - 4);
    assert_eq!(
        stats["proxies"]["sessions"]["created"], 2,
        "{}",
        stats["proxies"]
    );
}

#[test]
fn https_goes_through_connect_tunnels_and_garbage_proxies_are_dropped() {
    let site = start_site(30, None, true);
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, site.ca_pem().unwrap()).unwrap();
    let tunnel = TinyProxy::start(ProxyOptions::new(ip(13)).with_auth("dave", "pw1")).unwrap();
    // A "proxy" that answers every connection with garbage.
    let garbage = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let garbage_port = garbage.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for conn in garbage.incoming() {
            let Ok(mut conn) = conn else { return };
            use std::io::Write;
            let _ = conn.write_all(b"SSH-2.0-OpenSSH_9.2 hello\r\n\r\nnot http at all\r\n");
        }
    });
    let seed = format!("{}/", site.base_url());
    assert!(seed.starts_with("https://"));
    let mut args = proxy_args(&[format!("http://127.0.0.1:{garbage_port}"), tunnel.url()]);
    args.extend(["--ca-cert".to_string(), ca.display().to_string()]);
    let (code, stderr, stats) = crawl(&seed, &args);
    assert_eq!(code, 0, "{stderr}");
    let total = site.site().ground_truth().len() as u64;
    assert_eq!(
        stats["pages_ok"].as_u64(),
        Some(total),
        "{}",
        stats["failed_pages"]
    );
    // Every page came through the tunnel's outgoing address.
    let by_client = site.stats().by_client;
    assert_eq!(
        by_client.keys().collect::<Vec<_>>(),
        vec![&ip(13)],
        "{by_client:?}"
    );
    let list = stats["proxies"]["proxies"].as_array().unwrap();
    let bad = list
        .iter()
        .find(|p| {
            p["proxy"]
                .as_str()
                .unwrap()
                .contains(&garbage_port.to_string())
        })
        .unwrap();
    assert_eq!(bad["successes"], 0, "{bad}");
    assert!(bad["failures"].as_u64().unwrap() >= 1, "{bad}");
}

#[test]
fn a_spider_file_sets_proxies_and_identities() {
    let site = site(20, None);
    let proxy = MicroSocks::start(ProxyOptions::new(ip(14))).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let spider = dir.path().join("s.toml");
    std::fs::write(
        &spider,
        format!(
            r#"name = "s"
start_urls = ["{}/"]

[[follow]]
pattern = "/p/"

[items.page]
match = "/p/"
[items.page.fields]
title = {{ selector = "title" }}

[settings]
proxies = ["{}"]
user_agents = ["UA-One/1.0", "UA-Two/2.0"]
headers = {{ "X-Trawl-Test" = "yes" }}
"#,
            site.base_url(),
            proxy.url()
        ),
    )
    .unwrap();
    let out = common::trawl_with_warnings()
        .arg("run")
        .arg(&spider)
        .arg("-q")
        .arg("-o")
        .arg(dir.path().join("items.jsonl"))
        .arg("--errors")
        .arg(dir.path().join("errors.jsonl"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let log = site.stats().log;
    assert!(log.len() > 5);
    for e in &log {
        assert_eq!(e.client_ip, ip(14), "{}", e.path_and_query);
        let ua = e.user_agent.as_deref().unwrap_or("");
        assert!(ua == "UA-One/1.0" || ua == "UA-Two/2.0", "{ua}");
    }
    let uas: BTreeSet<_> = log.iter().map(|e| e.user_agent.clone()).collect();
    assert_eq!(uas.len(), 2, "both identities were used: {uas:?}");
}

#[test]
fn autothrottle_spaces_requests_by_the_measured_latency() {
    // Every page takes 100 ms to answer. AutoThrottle aiming at one request
    // in flight sets the host's delay near 100 ms: requests are spread out
    // although the crawl may run 8 at once on that host.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let site = rt
        .block_on(TestSite::start(SiteConfig {
            pages: 16,
            fanout: 4,
            latency: Some(Duration::from_millis(100)),
            ..Default::default()
        }))
        .unwrap();
    let seed = format!("{}/", site.base_url());
    let args = [
        "-c",
        "8",
        "--per-host",
        "8",
        "--autothrottle",
        "--autothrottle-target",
        "1",
    ]
    .map(String::from);
    let (code, stderr, stats) = crawl(&seed, &args);
    assert_eq!(code, 0, "{stderr}");
    let total = site.site().ground_truth().len() as u64;
    assert_eq!(
        stats["pages_ok"].as_u64(),
        Some(total),
        "{}",
        stats["failed_pages"]
    );
    let throttle = stats["proxies"]["throttle"].as_array().unwrap();
    assert_eq!(throttle.len(), 1, "{throttle:?}");
    let delay = throttle[0]["delay_ms"].as_u64().unwrap();
    assert!(
        (60..=400).contains(&delay),
        "delay {delay} ms: {throttle:?}"
    );
    // At the site: request starts on /p/ pages are spaced, not bunched.
    let mut starts: Vec<_> = site
        .stats()
        .log
        .iter()
        .filter(|e| e.path_and_query.starts_with("/p/"))
        .map(|e| e.started)
        .collect();
    starts.sort();
    let mut gaps: Vec<Duration> = starts.windows(2).map(|w| w[1] - w[0]).collect();
    gaps.sort();
    let median = gaps[gaps.len() / 2];
    assert!(
        median >= Duration::from_millis(50),
        "median gap {median:?}: {gaps:?}"
    );
    drop(rt);
}

#[test]
fn each_host_goes_through_its_own_pool() {
    hosts_through_their_pools(&[]);
}

#[test]
fn sessions_stay_inside_their_hosts_pool() {
    hosts_through_their_pools(&["--sessions", "2"]);
}

/// Four sites on four ports: two named pools, the default pool, direct.
fn hosts_through_their_pools(extra: &[&str]) {
    let sites: Vec<TestSite> = (0..4).map(|_| site(12, None)).collect();
    let pool_a = TinyProxy::start(ProxyOptions::new(ip(20))).unwrap();
    let pool_b = MicroSocks::start(ProxyOptions::new(ip(21)).with_auth("carol", "pw-b")).unwrap();
    let default = TinyProxy::start(ProxyOptions::new(ip(22))).unwrap();
    let host = |s: &TestSite| s.base_url().trim_start_matches("http://").to_string();
    // Pool b comes from a proxy list file (`NAME=@FILE`).
    let dir = tempfile::tempdir().unwrap();
    let list = dir.path().join("pool-b.txt");
    std::fs::write(&list, format!("# pool b\n{}\n", pool_b.url())).unwrap();
    let mut args = vec![
        "--proxy".to_string(),
        default.url(),
        "--proxy-pool".into(),
        format!("a={}", pool_a.url()),
        "--proxy-pool".into(),
        format!("b=@{}", list.display()),
        "--host-pool".into(),
        format!("{}=a", host(&sites[0])),
        "--host-pool".into(),
        format!("{}=b", host(&sites[1])),
        "--host-pool".into(),
        format!("{}=direct", host(&sites[3])),
    ];
    for s in &sites[1..] {
        args.push(format!("{}/", s.base_url()));
    }
    args.extend(extra.iter().map(|a| a.to_string()));
    let (code, stderr, stats) = crawl(&format!("{}/", sites[0].base_url()), &args);
    assert_eq!(code, 0, "{stderr}");
    let total: usize = sites.iter().map(|s| s.site().ground_truth().len()).sum();
    assert_eq!(stats["pages_ok"].as_u64(), Some(total as u64), "{stats}");
    // Every request to a site came from its pool's address, robots.txt too.
    for (s, expected) in sites.iter().zip([ip(20), ip(21), ip(22), ip(1)]) {
        let by_client = s.stats().by_client;
        let clients: Vec<_> = by_client.keys().copied().collect();
        assert_eq!(clients, vec![expected], "{}: {by_client:?}", s.base_url());
        assert!(s.stats().by_path.contains_key("/robots.txt"));
    }
    // Each proxy's row names its pool.
    let rows = stats["proxies"]["proxies"].as_array().unwrap();
    let pools: BTreeMap<String, String> = rows
        .iter()
        .map(|p| {
            (
                p["pool"].as_str().unwrap().to_string(),
                p["proxy"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(pools.len(), 3, "{rows:?}");
    assert!(pools["b"].contains("carol:***@"), "{pools:?}");
    for p in rows {
        assert!(p["successes"].as_u64().unwrap() > 0, "{p}");
    }
}

#[test]
fn an_unknown_pool_is_refused_before_the_crawl() {
    let (code, stderr, _) = crawl(
        "http://127.0.0.1:9/",
        &["--host-pool".into(), "*.shop.test=residental".into()],
    );
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("unknown proxy pool \"residental\"") && stderr.contains("default, direct"),
        "{stderr}"
    );
    let (code, stderr, _) = crawl(
        "http://127.0.0.1:9/",
        &["--host-pool".into(), "http://shop.test/=direct".into()],
    );
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("invalid host pattern"), "{stderr}");
}

/// A spider file whose `[[follow]]` rule sends the pages it finds through
/// its own pool with its own headers; the start page goes direct.
fn rule_spider(base: &str, proxy: &str) -> String {
    format!(
        r#"name = "rules"
start_urls = ["{base}/"]

[proxy_pools.pages]
proxies = ["{proxy}"]
strategy = "least-used"

[[follow]]
pattern = "/p/"
proxy_pool = "pages"
headers = {{ "X-Rule" = "pages", Referer = "https://referer.test/" }}

[items.page]
match = "/p/"
[items.page.fields]
title = {{ selector = "title" }}

[settings]
headers = {{ "X-Crawl" = "all", "X-Rule" = "overridden" }}
"#
    )
}

#[test]
fn a_rules_pool_and_headers_go_with_its_requests_across_a_kill_and_resume() {
    let site = slow_site(300);
    let proxy = MicroSocks::start(ProxyOptions::new(ip(23))).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let spider = dir.path().join("s.toml");
    std::fs::write(&spider, rule_spider(&site.base_url(), &proxy.url())).unwrap();
    let run = |extra: &[&str]| {
        let mut cmd = common::trawl_with_warnings();
        cmd.arg("run")
            .arg(&spider)
            .args(["-q", "--concurrency", "4", "--per-host", "4"])
            .arg("-o")
            .arg(dir.path().join("items.jsonl"))
            .arg("--errors")
            .arg(dir.path().join("errors.jsonl"))
            .arg("--state")
            .arg(dir.path().join("state"))
            .args(extra)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped());
        cmd
    };
    // Kill the first run once the queue on disk holds rule requests.
    let mut child = run(&[]).spawn().unwrap();
    common::wait_until("40 pages fetched", Duration::from_secs(60), || {
        site.stats().log.len() >= 40 || child.try_wait().unwrap().is_some()
    });
    assert!(
        child.try_wait().unwrap().is_none(),
        "the crawl ended before the kill"
    );
    child.kill().unwrap();
    child.wait().unwrap();
    let before_resume = site.stats().log.len();
    let out = run(&["--resume"]).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let log = site.stats().log;
    assert!(
        log.len() > before_resume + 20,
        "the resumed run fetched pages"
    );
    let header = |e: &trawl_testsite::RequestLogEntry, name: &str| {
        e.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    };
    let mut rule_pages = 0;
    for e in &log {
        let path = e.path_and_query.as_str();
        // The crawl-wide headers go with every request, robots.txt too.
        assert_eq!(header(e, "x-crawl").as_deref(), Some("all"), "{path}");
        if path.starts_with("/p/") {
            rule_pages += 1;
            assert_eq!(e.client_ip, ip(23), "{path} went through the rule's pool");
            assert_eq!(header(e, "x-rule").as_deref(), Some("pages"), "{path}");
            assert_eq!(
                header(e, "referer").as_deref(),
                Some("https://referer.test/"),
                "{path}"
            );
        } else {
            // The start page and robots.txt: the host's route, direct.
            assert_eq!(e.client_ip, ip(1), "{path}");
            assert_ne!(header(e, "x-rule").as_deref(), Some("pages"), "{path}");
        }
    }
    assert!(rule_pages > 40, "{rule_pages}");
    // Every page of the site has its item, once, after the resume.
    let items = std::fs::read_to_string(dir.path().join("items.jsonl")).unwrap();
    let paths: Vec<String> = items
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .map(|v| {
            trawl_core::Url::parse(v["url"].as_str().unwrap())
                .unwrap()
                .path()
                .to_string()
        })
        .collect();
    let unique: BTreeSet<String> = paths.iter().cloned().collect();
    assert_eq!(unique.len(), paths.len(), "no item twice");
    let expected: BTreeSet<String> = site
        .site()
        .ground_truth()
        .into_iter()
        .filter(|p| p.starts_with("/p/"))
        .collect();
    assert_eq!(unique, expected);
}

#[test]
fn a_spider_rule_naming_an_unknown_pool_points_at_it() {
    let dir = tempfile::tempdir().unwrap();
    let spider = dir.path().join("s.toml");
    let text = rule_spider("http://127.0.0.1:9", "http://127.0.0.1:3128")
        .replace("proxy_pool = \"pages\"", "proxy_pool = \"pagez\"");
    std::fs::write(&spider, &text).unwrap();
    let out = trawl().arg("run").arg(&spider).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    let line = text
        .lines()
        .position(|l| l.starts_with("proxy_pool"))
        .unwrap()
        + 1;
    assert!(
        stderr.contains(&format!("s.toml:{line}:14: unknown proxy pool \"pagez\"")),
        "{stderr}"
    );
}

#[test]
fn proxies_refusing_the_credentials_are_named_and_the_crawl_goes_on() {
    let site = site(30, None);
    let http = TinyProxy::start(ProxyOptions::new(ip(24)).with_auth("dave", "right-pw")).unwrap();
    let socks = MicroSocks::start(ProxyOptions::new(ip(25)).with_auth("erin", "right-pw")).unwrap();
    let good = TinyProxy::start(ProxyOptions::new(ip(26))).unwrap();
    let wrong = |p: &str| p.replace("right-pw", "wrong-pw");
    let seed = format!("{}/", site.base_url());
    let args = proxy_args(&[wrong(&http.url()), wrong(&socks.url()), good.url()]);
    let (code, stderr, stats) = crawl(&seed, &args);
    assert_eq!(code, 0, "{stderr}");
    let total = site.site().ground_truth().len() as u64;
    assert_eq!(stats["pages_ok"].as_u64(), Some(total), "{stderr}");
    assert!(!stderr.contains("wrong-pw"), "{stderr}");
    // Only the good proxy's address reached the site.
    let clients: Vec<IpAddr> = site.stats().by_client.keys().copied().collect();
    assert_eq!(clients, vec![ip(26)]);
    let list = stats["proxies"]["proxies"].as_array().unwrap();
    for (user, port) in [("dave", http.port()), ("erin", socks.port())] {
        let named = format!("{user}:***@127.0.0.1:{port}");
        assert!(
            stderr.contains(&named) && stderr.contains("authentication"),
            "the message names {named} and says why: {stderr}"
        );
        let row = list
            .iter()
            .find(|p| p["proxy"].as_str().unwrap().contains(&named))
            .unwrap();
        assert_eq!(row["successes"], 0, "{row}");
        assert!(row["failures"].as_u64().unwrap() >= 1, "{row}");
        assert_ne!(row["state"], "active", "{row}");
    }
}

/// A `trawl crawl` running in the background, its stderr read as it comes.
struct LiveCrawl {
    child: std::process::Child,
    lines: std::sync::mpsc::Receiver<String>,
    /// Every stderr line read so far.
    seen: Vec<String>,
    dir: tempfile::TempDir,
}

impl LiveCrawl {
    fn start(seed: &str, args: &[&str]) -> LiveCrawl {
        let dir = tempfile::tempdir().unwrap();
        let mut child = common::trawl_with_warnings()
            .args(["crawl", seed, "-q"])
            .args(args)
            .arg("-o")
            .arg(dir.path().join("items.jsonl"))
            .arg("--stats-json")
            .arg(dir.path().join("stats.json"))
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let lines = stderr_lines(&mut child);
        LiveCrawl {
            child,
            lines,
            seen: Vec::new(),
            dir,
        }
    }

    /// Wait until `count` stderr lines contain `text`; the crawl must still
    /// be running then.
    fn wait_for_lines(&mut self, text: &str, count: usize) {
        let (child, lines, seen) = (&mut self.child, &self.lines, &mut self.seen);
        common::wait_until(text, Duration::from_secs(30), || {
            seen.extend(lines.try_iter());
            seen.iter().filter(|l| l.contains(text)).count() >= count
                || child.try_wait().unwrap().is_some()
        });
        assert!(self.child.try_wait().unwrap().is_none(), "{:#?}", self.seen);
    }

    /// Wait for the crawl to exit 0; its stats.
    fn finish(mut self) -> (Value, Vec<String>) {
        let mut status = None;
        common::wait_until("the crawl to end", Duration::from_secs(60), || {
            status = self.child.try_wait().unwrap();
            status.is_some()
        });
        self.seen.extend(self.lines.try_iter());
        assert_eq!(status.unwrap().code(), Some(0), "{:#?}", self.seen);
        let text = std::fs::read_to_string(self.dir.path().join("stats.json")).unwrap();
        (serde_json::from_str(&text).unwrap(), self.seen)
    }
}

#[test]
fn a_proxy_that_is_down_at_the_start_does_not_cost_the_hosts_robots_txt() {
    let site = site(20, None);
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let proxy = format!("http://127.0.0.1:{port}");
    let mut crawl = LiveCrawl::start(
        &format!("{}/", site.base_url()),
        &[
            "--proxy",
            &proxy,
            "--proxy-cooldown",
            "200ms",
            "--proxy-attempts",
            "1",
        ],
    );
    // Start the proxy once trawl has found it down more often than one
    // request may rotate (1 + --proxy-attempts): robots.txt must wait for
    // it rather than count the host as unreachable.
    crawl.wait_for_lines("Proxy failed", 3);
    let _proxy = TinyProxy::start(ProxyOptions::new(ip(27)).on_port(port)).unwrap();
    let (stats, seen) = crawl.finish();
    // robots.txt was read through the proxy once it was up (a host taken
    // as unreachable would be disallowed: no page at all).
    assert!(
        site.stats()
            .log
            .iter()
            .any(|e| e.path_and_query == "/robots.txt"),
        "{seen:#?}"
    );
    let total = site.site().ground_truth().len() as u64;
    assert_eq!(stats["pages_ok"].as_u64(), Some(total), "{seen:#?}");
    assert_eq!(
        site.stats().by_client.keys().copied().collect::<Vec<_>>(),
        vec![ip(27)]
    );
}

#[test]
fn when_the_only_proxy_dies_the_crawl_pauses_and_loses_no_page() {
    let site = slow_site(80);
    let first = TinyProxy::start(ProxyOptions::new(ip(28))).unwrap();
    let port = first.port();
    let proxy = first.url();
    let mut crawl = LiveCrawl::start(
        &format!("{}/", site.base_url()),
        &[
            "--proxy",
            &proxy,
            "--proxy-cooldown",
            "200ms",
            "-c",
            "4",
            "--per-host",
            "4",
        ],
    );
    common::wait_until(
        "20 pages through the proxy",
        Duration::from_secs(30),
        || site.stats().log.len() >= 20,
    );
    drop(first);
    crawl.wait_for_lines("the crawl pauses", 1);
    let during = site.stats().log.len();
    // The same proxy address comes back, sending from another IP.
    let _second = TinyProxy::start(ProxyOptions::new(ip(29)).on_port(port)).unwrap();
    let (stats, seen) = crawl.finish();
    // Nothing was failed for want of a proxy: every page arrived.
    let total = site.site().ground_truth().len() as u64;
    assert_eq!(stats["pages_ok"].as_u64(), Some(total), "{seen:#?}");
    assert!(stats["proxy_waits"].as_u64().unwrap() > 0);
    let by_client = site.stats().by_client;
    assert!(by_client.contains_key(&ip(28)) && by_client.contains_key(&ip(29)));
    assert!(!by_client.contains_key(&ip(1)), "nothing went direct");
    assert!(site.stats().log.len() > during);
}

#[test]
fn captcha_pages_served_with_200_are_bans_not_content() {
    // The site answers a banned client with a 200 CAPTCHA page: only the
    // body tells. Every page must still arrive as itself.
    let defense = defense(6, BanAnswer::Captcha, BanKey::ClientIp);
    let site = site(50, Some(defense));
    let proxies = tinyproxies(&[30, 31, 32]);
    let urls: Vec<String> = proxies.iter().map(|p| p.url()).collect();
    let mut args = proxy_args(&urls);
    args.extend(
        [
            "-c",
            "8",
            "--per-host",
            "8",
            "--proxy-cooldown",
            "1s",
            "--proxy-attempts",
            "50",
        ]
        .map(String::from),
    );
    let dir = tempfile::tempdir().unwrap();
    let items = dir.path().join("items.jsonl");
    let stats_path = dir.path().join("stats.json");
    let out = common::trawl_with_warnings()
        .args(["crawl", &format!("{}/", site.base_url()), "-q"])
        .arg("-o")
        .arg(&items)
        .arg("--stats-json")
        .arg(&stats_path)
        .args(&args)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let stats: Value =
        serde_json::from_str(&std::fs::read_to_string(&stats_path).unwrap()).unwrap();
    assert!(
        site.stats().banned > 0 && stats["bans"].as_u64().unwrap() > 0,
        "the site did ban, and trawl saw it"
    );
    let text = std::fs::read_to_string(&items).unwrap();
    let records: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let total = site.site().ground_truth().len();
    assert_eq!(records.len(), total);
    for r in &records {
        assert!(r["title"].is_string(), "{r}");
        assert_ne!(
            r["title"].as_str(),
            Some(trawl_testsite::CAPTCHA_TEXT),
            "a CAPTCHA page was taken for content: {r}"
        );
        assert!(r["error"].is_null(), "{r}");
    }
}

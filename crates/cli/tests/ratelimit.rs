//! Rate limits are not bans: trawl against a real nginx (`limit_req` per
//! client IP or per session cookie, 429, `Retry-After`, `RateLimit-Policy`,
//! a 403 block page for one exit), directly and through real tinyproxy
//! exits on distinct 127.0.0.x source addresses. Every rate asserted here
//! is read from nginx's own access log, not from trawl's stats.

#![allow(clippy::unwrap_used)]

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr};

use common::trawl;
use serde_json::Value;
use trawl_testsite::nginx::{
    LimitKey, LogLine, Nginx, NginxOptions, RateLimit, write_linked_pages,
};
use trawl_testsite::proxies::{ProxyOptions, TinyProxy};

fn ip(last: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(127, 0, 0, last))
}

/// A linked static site of `pages` pages in a temporary directory.
fn site(pages: usize) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    write_linked_pages(dir.path(), pages).unwrap();
    dir
}

/// Run `trawl crawl --ignore-robots`; returns (exit code, stderr, stats,
/// items).
fn crawl(seed: &str, args: &[String]) -> (i32, String, Value, Vec<Value>) {
    let mut all = vec!["--ignore-robots".to_string()];
    all.extend_from_slice(args);
    common::crawl_with_stats(seed, &all)
}

/// Owned arguments for [`crawl`].
fn strings(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

fn ok_items(items: &[Value]) -> usize {
    items.iter().filter(|i| i["status"] == 200).count()
}

/// 200 answers per second over the log's span.
fn ok_rate(log: &[LogLine]) -> f64 {
    let ok = log.iter().filter(|l| l.status == 200).count();
    let first = log.iter().map(|l| l.time).fold(f64::INFINITY, f64::min);
    let last = log.iter().map(|l| l.time).fold(0.0, f64::max);
    ok as f64 / (last - first).max(0.001)
}

fn count(log: &[LogLine], status: u16) -> usize {
    log.iter().filter(|l| l.status == status).count()
}

fn exits(lasts: &[u8]) -> (Vec<TinyProxy>, Vec<String>) {
    let proxies: Vec<TinyProxy> = lasts
        .iter()
        .map(|&n| TinyProxy::start(ProxyOptions::new(ip(n))).unwrap())
        .collect();
    let mut args = Vec::new();
    for p in &proxies {
        args.push("--proxy".to_string());
        args.push(p.url());
    }
    (proxies, args)
}

/// With no flag but `--proxy` four times, a site limited per client IP is
/// crawled at about four times the rate one exit gets, every exit takes
/// its share, and few requests are answered 429 (the exits are paced, not
/// cooled down for 30 s).
#[test]
fn four_exits_crawl_four_times_as_fast_as_one() {
    const LIMIT: u32 = 20;
    let root = site(600);
    let mut opts = NginxOptions::new(root.path());
    opts.limit = Some(RateLimit::per_ip(LIMIT, 5));
    let nginx = Nginx::start(opts).unwrap();

    let (_one, one_args) = exits(&[2]);
    let (code, stderr, _, items) = crawl(
        &nginx.url(),
        &[one_args, strings(&["--max-pages", "100"])].concat(),
    );
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(ok_items(&items), 100, "{stderr}");
    let one_log = nginx.access_log();
    let one_rate = ok_rate(&one_log);
    assert!(
        one_rate <= f64::from(LIMIT) * 1.5 + 5.0,
        "one exit above the limit: {one_rate:.1}/s"
    );

    let (_four, four_args) = exits(&[3, 4, 5, 6]);
    let (code, stderr, stats, items) = crawl(
        &nginx.url(),
        &[four_args, strings(&["--max-pages", "400"])].concat(),
    );
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(ok_items(&items), 400, "{stderr}");
    let log: Vec<LogLine> = nginx.access_log().split_off(one_log.len());
    let four_rate = ok_rate(&log);
    assert!(
        four_rate > 2.5 * one_rate,
        "4 exits: {four_rate:.1}/s, 1 exit: {one_rate:.1}/s"
    );
    let share_429 = count(&log, 429) as f64 / log.len() as f64;
    assert!(
        share_429 < 0.10,
        "{} of {} answered 429",
        count(&log, 429),
        log.len()
    );
    let mut per_exit: BTreeMap<IpAddr, usize> = BTreeMap::new();
    for line in &log {
        *per_exit.entry(line.client).or_default() += 1;
    }
    assert_eq!(per_exit.len(), 4, "{per_exit:?}");
    for (client, n) in &per_exit {
        let share = *n as f64 / log.len() as f64;
        assert!(
            (0.15..=0.35).contains(&share),
            "{client}: {n} of {} requests",
            log.len()
        );
    }
    // A rate limit never cooled an exit down.
    assert_eq!(stats["bans"], 0, "{stats}");
    for proxy in stats["proxies"]["proxies"].as_array().unwrap() {
        assert_eq!(proxy["state"], "active", "{proxy}");
    }
    assert!(!stderr.contains("cooling down"), "{stderr}");
}

/// nginx `limit_req` without `nodelay` queues the excess: answers slow
/// down instead of failing. That latency climb is a rate limit too: paced,
/// the crawl keeps the server's queue short, where without pacing every
/// request waits in it.
#[test]
fn a_latency_climb_is_a_rate_limit() {
    let root = site(200);
    let mut opts = NginxOptions::new(root.path());
    opts.limit = Some(RateLimit {
        nodelay: false,
        ..RateLimit::per_ip(20, 100)
    });
    let nginx = Nginx::start(opts).unwrap();
    let args = |extra: &[&str]| {
        let mut a: Vec<String> = ["--max-pages", "100", "--per-host", "16"]
            .map(String::from)
            .to_vec();
        a.extend(extra.iter().map(|s| s.to_string()));
        a
    };
    // The median time a request spent at the server over the second half.
    let queued = |log: &[LogLine]| {
        let mut times: Vec<f64> = log[log.len() / 2..]
            .iter()
            .map(|l| l.request_time)
            .collect();
        times.sort_by(f64::total_cmp);
        times[times.len() / 2]
    };
    let (code, stderr, _, items) = crawl(&nginx.url(), &args(&["--no-pacing"]));
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(ok_items(&items), 100);
    let unpaced_log = nginx.access_log();
    let unpaced = queued(&unpaced_log);

    let (code, stderr, stats, items) = crawl(&nginx.url(), &args(&[]));
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(ok_items(&items), 100);
    let paced_log = nginx.access_log().split_off(unpaced_log.len());
    let paced = queued(&paced_log);
    assert_eq!(count(&paced_log, 429), 0);
    assert!(
        paced * 3.0 < unpaced,
        "median time queued at the server: paced {paced:.3} s, unpaced {unpaced:.3} s"
    );
    let pacing = &stats["proxies"]["pacing"][0];
    assert!(pacing["latency_climbs"].as_u64().unwrap() >= 1, "{stats}");
}

/// A `Retry-After` on a 429 holds back that client (the pair) for as long
/// as it says; the pages still all arrive.
#[test]
fn retry_after_is_honoured_for_the_pair() {
    let root = site(80);
    let mut opts = NginxOptions::new(root.path());
    opts.limit = Some(RateLimit {
        retry_after: Some(1),
        ..RateLimit::per_ip(10, 2)
    });
    let nginx = Nginx::start(opts).unwrap();
    let (code, stderr, stats, items) = crawl(
        &nginx.url(),
        &strings(&["--max-pages", "40", "--per-host", "4"]),
    );
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(ok_items(&items), 40, "{stderr}");
    let log = nginx.access_log();
    let limited: Vec<f64> = log
        .iter()
        .filter(|l| l.status == 429)
        .map(|l| l.time)
        .collect();
    assert!(!limited.is_empty(), "the site never rate limited: {log:?}");
    // After a 429 with Retry-After: 1, requests that started after the
    // answer arrived wait the second out (a few already on their way may
    // land just after it).
    for &t in &limited {
        let early = log
            .iter()
            .filter(|l| l.time > t + 0.1 && l.time < t + 0.9)
            .count();
        assert!(early <= 1, "{early} requests within 0.9 s of a 429 at {t}");
    }
    assert!(stats["rate_limited"].as_u64().unwrap() >= 1, "{stats}");
    let pacing = stats["proxies"]["pacing"].as_array().unwrap();
    assert!(
        pacing[0]["retry_afters"].as_u64().unwrap() >= 1,
        "{pacing:?}"
    );
}

/// A site that states its quota (`RateLimit-Policy`) is crawled just under
/// it, without being asked twice.
#[test]
fn a_stated_policy_is_kept_to() {
    let root = site(120);
    let mut opts = NginxOptions::new(root.path());
    opts.limit = Some(RateLimit::per_ip(20, 5));
    opts.headers = vec![("RateLimit-Policy".into(), "20;w=1".into())];
    let nginx = Nginx::start(opts).unwrap();
    let (code, stderr, stats, items) = crawl(
        &nginx.url(),
        &strings(&["--max-pages", "100", "--per-host", "8"]),
    );
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(ok_items(&items), 100);
    let log = nginx.access_log();
    // The first answers arrive before the policy is known.
    assert!(count(&log, 429) <= 3, "{} answered 429", count(&log, 429));
    assert!(ok_rate(&log) <= 21.0 + 5.0, "{:.1}/s", ok_rate(&log));
    let _ = stats;
}

/// One exit is blocked for good (a 403 block page): it is banned on that
/// host after its first answers, the others carry the crawl, and nothing
/// is lost.
#[test]
fn a_blocked_exit_is_banned_and_the_others_carry_on() {
    let root = site(200);
    let mut opts = NginxOptions::new(root.path());
    opts.blocked = vec![ip(11)];
    let nginx = Nginx::start(opts).unwrap();
    let (_exits, args) = exits(&[10, 11, 12]);
    let (code, stderr, stats, items) = crawl(
        &nginx.url(),
        &[args, strings(&["--max-pages", "150"])].concat(),
    );
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(ok_items(&items), 150, "{stderr}");
    let log = nginx.access_log();
    let blocked: Vec<&LogLine> = log.iter().filter(|l| l.client == ip(11)).collect();
    assert!(
        !blocked.is_empty() && blocked.len() <= 4,
        "{} requests through the blocked exit",
        blocked.len()
    );
    assert!(blocked.iter().all(|l| l.status == 403));
    let others: BTreeSet<IpAddr> = log
        .iter()
        .filter(|l| l.status == 200)
        .map(|l| l.client)
        .collect();
    assert_eq!(others, [ip(10), ip(12)].into_iter().collect());
    let proxies = stats["proxies"]["proxies"].as_array().unwrap();
    let banned: Vec<&Value> = proxies
        .iter()
        .filter(|p| p["bans"].as_u64().unwrap() > 0)
        .collect();
    assert_eq!(banned.len(), 1, "{proxies:?}");
    assert_eq!(banned[0]["hosts"][0]["seen"], "banned");
    assert_eq!(banned[0]["rate_limits"], 0);
}

/// A limit keyed on a session cookie: with four sessions each has its own
/// quota, and the crawl goes faster than one session may.
#[test]
fn per_session_limits_with_sessions() {
    const LIMIT: u32 = 10;
    let root = site(200);
    let mut opts = NginxOptions::new(root.path());
    opts.limit = Some(RateLimit {
        key: LimitKey::SessionCookie,
        ..RateLimit::per_ip(LIMIT, 3)
    });
    let nginx = Nginx::start(opts).unwrap();
    let (code, stderr, _stats, items) = crawl(
        &nginx.url(),
        &strings(&[
            "--max-pages",
            "120",
            "--sessions",
            "4",
            "--session-max-uses",
            "1000",
            "--per-host",
            "4",
        ]),
    );
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(ok_items(&items), 120, "{stderr}");
    let log = nginx.access_log();
    let sessions: BTreeSet<&String> = log.iter().filter_map(|l| l.session.as_ref()).collect();
    assert!(sessions.len() >= 4, "{sessions:?}");
    let rate = ok_rate(&log);
    assert!(rate > 1.3 * f64::from(LIMIT), "{rate:.1}/s with 4 sessions");
    // Four slow starts from 100 r/s down to 10 r/s each cost a few 429s.
    let share_429 = count(&log, 429) as f64 / log.len() as f64;
    assert!(
        share_429 < 0.25,
        "{} of {} answered 429",
        count(&log, 429),
        log.len()
    );
}

/// The proxy list is read again on SIGHUP while the crawl runs: a proxy
/// taken out of the file is not used again, new ones are.
#[test]
fn the_proxy_list_reloads_on_sighup() {
    let root = site(300);
    let mut opts = NginxOptions::new(root.path());
    opts.limit = Some(RateLimit::per_ip(15, 3));
    let nginx = Nginx::start(opts).unwrap();
    let (old, _) = exits(&[40]);
    let (new, _) = exits(&[41, 42]);
    let dir = tempfile::tempdir().unwrap();
    let list = dir.path().join("proxies.txt");
    std::fs::write(&list, format!("{}\n", old[0].url())).unwrap();
    let stats_path = dir.path().join("stats.json");
    let child = trawl()
        .args([
            "crawl",
            &nginx.url(),
            "-q",
            "--ignore-robots",
            "--max-pages",
            "150",
        ])
        .arg("--proxy-file")
        .arg(&list)
        .arg("-o")
        .arg(dir.path().join("items.jsonl"))
        .arg("--stats-json")
        .arg(&stats_path)
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    common::wait_until(
        "20 requests through the first exit",
        std::time::Duration::from_secs(30),
        || nginx.access_log().len() >= 20,
    );
    // The file watch would see the change within 2 s; SIGHUP makes the
    // reload prompt.
    std::fs::write(
        &list,
        format!("# moved\n{}\n{}\n", new[0].url(), new[1].url()),
    )
    .unwrap();
    let status = std::process::Command::new("kill")
        .args(["-HUP", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let reloaded_at = nginx.access_log().last().unwrap().time;
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let log = nginx.access_log();
    let old_after: Vec<&LogLine> = log
        .iter()
        .filter(|l| l.client == ip(40) && l.time > reloaded_at + 0.5)
        .collect();
    assert!(
        old_after.is_empty(),
        "the removed exit went on: {old_after:?}"
    );
    for n in [41, 42] {
        assert!(
            log.iter().any(|l| l.client == ip(n)),
            "exit 127.0.0.{n} unused"
        );
    }
    assert!(log.iter().all(|l| l.client != ip(1)), "nothing went direct");
    let stats: Value =
        serde_json::from_str(&std::fs::read_to_string(&stats_path).unwrap()).unwrap();
    assert_eq!(stats["pages_ok"], 150, "{stderr}");
    let states: Vec<&str> = stats["proxies"]["proxies"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["state"].as_str().unwrap())
        .collect();
    assert_eq!(states, ["removed", "active", "active"]);
}

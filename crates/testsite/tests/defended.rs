//! Integration tests of the defended mode: per-IP and per-session rate
//! limits, the three ban answers, ban expiry, statistics and the CLI flags.

#![allow(clippy::unwrap_used)]

mod common;

use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};

use common::wait_until;
use trawl_testsite::{
    BanAnswer, BanKey, CAPTCHA_TEXT, ClientCounts, Defense, STATS_PATH, SiteConfig, SiteStats,
    TestSite,
};

const IP1: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);
const IP2: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2));

/// A cookie-less client whose connections come from `ip`.
fn client_from(ip: IpAddr) -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .local_address(ip)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

async fn start(defense: Defense) -> TestSite {
    TestSite::start(SiteConfig {
        defended: Some(defense),
        ..SiteConfig::default()
    })
    .await
    .unwrap()
}

struct Answer {
    status: u16,
    retry_after: Option<u64>,
    set_sid: Option<String>,
    body: String,
}

async fn get(http: &reqwest::Client, url: &str, sid: Option<&str>) -> Answer {
    let mut req = http.get(url);
    if let Some(sid) = sid {
        req = req.header("cookie", format!("theme=dark; sid={sid}"));
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    let retry_after = resp
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().parse().unwrap());
    let cookies: Vec<_> = resp.headers().get_all("set-cookie").iter().collect();
    assert!(cookies.len() <= 1, "{cookies:?}");
    let set_sid = cookies.first().map(|c| {
        let c = c.to_str().unwrap();
        assert!(c.ends_with("; Path=/; HttpOnly; SameSite=Lax"), "{c}");
        let sid = c.strip_prefix("sid=").unwrap().split(';').next().unwrap();
        assert_eq!(sid.len(), 16, "{c}");
        assert!(sid.bytes().all(|b| b.is_ascii_hexdigit()), "{c}");
        sid.to_owned()
    });
    let body = resp.text().await.unwrap();
    Answer {
        status,
        retry_after,
        set_sid,
        body,
    }
}

fn is_captcha(a: &Answer) -> bool {
    a.body.contains("captcha") && a.body.contains(CAPTCHA_TEXT)
}

/// A normal page: 200 and not the CAPTCHA.
fn assert_served(a: &Answer, what: &str) {
    assert_eq!(a.status, 200, "{what}: {}", a.body);
    assert!(!is_captcha(a), "{what}: got the CAPTCHA");
    assert!(a.body.contains("<a href="), "{what}: not a page");
}

fn assert_banned(a: &Answer, answer: BanAnswer, max_retry: u64, what: &str) {
    match answer {
        BanAnswer::TooManyRequests => {
            assert_eq!(a.status, 429, "{what}");
            let s = a.retry_after.unwrap();
            assert!((1..=max_retry).contains(&s), "{what}: Retry-After {s}");
        }
        BanAnswer::Forbidden => assert_eq!(a.status, 403, "{what}"),
        BanAnswer::Captcha => {
            assert_eq!(a.status, 200, "{what}");
            assert!(is_captcha(a), "{what}: {}", a.body);
            assert!(a.body.len() < 1024, "{what}: CAPTCHA page too long");
            assert!(!a.body.contains("href"), "{what}: CAPTCHA page has links");
        }
    }
    if answer != BanAnswer::TooManyRequests {
        assert_eq!(a.retry_after, None, "{what}");
    }
}

async fn settled_stats(site: &TestSite) -> SiteStats {
    let host = site.addr().to_string();
    assert!(
        wait_until(Duration::from_secs(5), || async {
            site.in_flight(&host) == 0
        })
        .await
    );
    site.stats()
}

#[tokio::test]
async fn ip_over_the_limit_is_banned_with_each_answer() {
    for answer in [
        BanAnswer::TooManyRequests,
        BanAnswer::Forbidden,
        BanAnswer::Captcha,
    ] {
        let site = start(Defense {
            max_requests: 5,
            window: Duration::from_secs(30),
            answer,
            by: BanKey::ClientIp,
            ban_for: Duration::from_secs(20),
        })
        .await;
        let one = client_from(IP1);
        let two = client_from(IP2);
        // robots.txt is never counted (nor gets a cookie)...
        for _ in 0..8 {
            let r = get(&one, &site.url("/robots.txt"), None).await;
            assert_eq!((r.status, r.set_sid), (200, None));
        }
        let mut sids = Vec::new();
        for i in 0..5 {
            let r = get(&one, &site.url(&format!("/p/{i}")), None).await;
            assert_served(&r, &format!("{answer:?}: request {i}"));
            sids.push(r.set_sid.unwrap());
        }
        // A cookie-less client starts a new session with every request.
        sids.sort();
        sids.dedup();
        assert_eq!(sids.len(), 5);
        for i in 5..8 {
            let r = get(&one, &site.url(&format!("/p/{i}")), None).await;
            assert_banned(&r, answer, 20, &format!("{answer:?}: request {i}"));
            assert!(r.set_sid.is_some(), "banned answers still set the cookie");
        }
        // ...nor banned.
        let r = get(&one, &site.url("/robots.txt"), None).await;
        assert_eq!(r.status, 200);
        assert!(r.body.contains("User-agent"));
        // Another client IP is served normally.
        for i in 0..5 {
            let r = get(&two, &site.url(&format!("/p/{}", 10 + i)), None).await;
            assert_served(&r, &format!("{answer:?}: second IP, request {i}"));
        }
        assert_banned(
            &get(&two, &site.url("/"), None).await,
            answer,
            20,
            "second IP over the limit",
        );

        let stats = settled_stats(&site).await;
        assert_eq!(stats.requests, 9 + 8 + 6);
        assert_eq!(stats.banned, 3 + 1);
        assert_eq!(
            stats.by_client,
            [
                (
                    IP1,
                    ClientCounts {
                        ok: 9 + 5,
                        banned: 3
                    }
                ),
                (IP2, ClientCounts { ok: 5, banned: 1 }),
            ]
            .into()
        );
        // One session per non-robots request.
        assert_eq!(stats.by_session.len(), 5 + 3 + 6);
        assert!(stats.by_session.values().all(|c| c.ok + c.banned == 1));
        let logged: Vec<_> = stats
            .log
            .iter()
            .map(|e| (e.client_ip, e.path_and_query.as_str(), e.banned))
            .collect();
        assert_eq!(logged[8], (IP1, "/p/0", false));
        assert_eq!(logged[13], (IP1, "/p/5", true));
        assert_eq!(logged[16], (IP1, "/robots.txt", false));
        assert_eq!(logged[17], (IP2, "/p/10", false));
        assert_eq!(logged[22], (IP2, "/", true));
        for e in &stats.log {
            assert_eq!(e.sid.is_none(), e.path_and_query == "/robots.txt", "{e:?}");
        }
        site.shutdown().await;
    }
}

#[tokio::test]
async fn bans_expire() {
    let ban_for = Duration::from_millis(400);
    let site = start(Defense {
        max_requests: 2,
        window: Duration::from_secs(30),
        answer: BanAnswer::TooManyRequests,
        by: BanKey::ClientIp,
        ban_for,
    })
    .await;
    let http = client_from(IP1);
    let url = site.url("/p/1");
    for _ in 0..2 {
        assert_served(&get(&http, &url, None).await, "before the ban");
    }
    let banned_at = Instant::now();
    let r = get(&http, &url, None).await;
    assert_banned(&r, BanAnswer::TooManyRequests, 1, "over the limit");
    assert_eq!(r.retry_after, Some(1));
    // Served again once the ban is over, not before.
    let deadline = Instant::now() + Duration::from_secs(10);
    let served_at = loop {
        let r = get(&http, &url, None).await;
        if r.status == 200 {
            break Instant::now();
        }
        assert_banned(&r, BanAnswer::TooManyRequests, 1, "during the ban");
        assert!(Instant::now() < deadline, "still banned after 10 s");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let waited = served_at - banned_at;
    assert!(waited >= ban_for, "served after {waited:?}");
    // The window started afresh: one more request is fine, then banned.
    assert_served(&get(&http, &url, None).await, "second of the new window");
    assert_banned(
        &get(&http, &url, None).await,
        BanAnswer::TooManyRequests,
        1,
        "over the limit again",
    );
    // reset_defense lifts the ban.
    site.reset_defense();
    assert_served(&get(&http, &url, None).await, "after reset_defense");
    site.shutdown().await;
}

#[tokio::test]
async fn window_slides() {
    let window = Duration::from_millis(600);
    let site = start(Defense {
        max_requests: 3,
        window,
        answer: BanAnswer::Forbidden,
        by: BanKey::ClientIp,
        ban_for: Duration::from_secs(30),
    })
    .await;
    let http = client_from(IP1);
    let url = site.url("/");
    // Three requests, then wait a window: the next three are fine again.
    for _ in 0..3 {
        assert_served(&get(&http, &url, None).await, "first window");
    }
    tokio::time::sleep(window + Duration::from_millis(50)).await;
    for _ in 0..3 {
        assert_served(&get(&http, &url, None).await, "after the window");
    }
    assert_banned(
        &get(&http, &url, None).await,
        BanAnswer::Forbidden,
        0,
        "fourth",
    );
    site.shutdown().await;
}

#[tokio::test]
async fn session_cookie_mode_bans_the_session_only() {
    let site = start(Defense {
        max_requests: 3,
        window: Duration::from_secs(30),
        answer: BanAnswer::Captcha,
        by: BanKey::SessionCookie,
        ban_for: Duration::from_secs(30),
    })
    .await;
    let http = client_from(IP1);
    let first = get(&http, &site.url("/"), None).await;
    assert_served(&first, "first");
    let sid = first.set_sid.unwrap();
    for i in 1..3 {
        let r = get(&http, &site.url(&format!("/p/{i}")), Some(&sid)).await;
        assert_served(&r, &format!("request {i} of the session"));
        assert_eq!(r.set_sid, None, "a known sid is not set again");
    }
    for i in 3..5 {
        let r = get(&http, &site.url(&format!("/p/{i}")), Some(&sid)).await;
        assert_banned(&r, BanAnswer::Captcha, 0, &format!("request {i}"));
        assert_eq!(r.set_sid, None);
    }
    // The banned sid is banned from another IP too.
    let other = client_from(IP2);
    assert_banned(
        &get(&other, &site.url("/"), Some(&sid)).await,
        BanAnswer::Captcha,
        0,
        "banned sid, other IP",
    );
    // Same IP, no cookie: a new session, served.
    let fresh = get(&http, &site.url("/p/9"), None).await;
    assert_served(&fresh, "new session");
    let sid2 = fresh.set_sid.unwrap();
    assert_ne!(sid2, sid);
    assert_served(
        &get(&http, &site.url("/p/10"), Some(&sid2)).await,
        "new session, second request",
    );
    // An unknown (forged) sid is replaced.
    let forged = get(&http, &site.url("/p/11"), Some("0123456789abcdef")).await;
    assert_served(&forged, "forged sid");
    assert!(forged.set_sid.is_some_and(|s| s != sid && s != sid2));

    let stats = settled_stats(&site).await;
    assert_eq!(stats.by_session[&sid], ClientCounts { ok: 3, banned: 3 });
    assert_eq!(stats.by_session[&sid2], ClientCounts { ok: 2, banned: 0 });
    assert_eq!(stats.by_session.len(), 3);
    assert_eq!(stats.by_client[&IP1], ClientCounts { ok: 6, banned: 2 });
    assert_eq!(stats.by_client[&IP2], ClientCounts { ok: 0, banned: 1 });
    assert!(
        stats
            .log
            .iter()
            .filter(|e| e.sid.as_deref() == Some(sid.as_str()))
            .map(|e| e.banned)
            .eq([false, false, false, true, true, true])
    );
    site.shutdown().await;
}

#[tokio::test]
async fn both_mode_bans_ips_and_sessions_separately() {
    let site = start(Defense {
        max_requests: 2,
        window: Duration::from_secs(30),
        answer: BanAnswer::Forbidden,
        by: BanKey::Both,
        ban_for: Duration::from_secs(30),
    })
    .await;
    let ip3 = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 3));
    let (one, two, three) = (client_from(IP1), client_from(IP2), client_from(ip3));
    let sid = get(&one, &site.url("/"), None).await.set_sid.unwrap();
    // Fresh sessions do not help an IP over its limit.
    assert_served(&get(&one, &site.url("/p/1"), None).await, "IP1, second");
    let r = get(&one, &site.url("/p/2"), None).await;
    assert_banned(&r, BanAnswer::Forbidden, 0, "IP1, third, new session");
    // The session's second request, from another IP, is fine; its third
    // is banned from any IP, and does not count for that IP.
    assert_served(
        &get(&two, &site.url("/p/3"), Some(&sid)).await,
        "sid via IP2",
    );
    assert_banned(
        &get(&three, &site.url("/p/4"), Some(&sid)).await,
        BanAnswer::Forbidden,
        0,
        "sid's third request, via IP3",
    );
    assert_served(
        &get(&three, &site.url("/p/5"), None).await,
        "IP3, new session",
    );
    assert_served(&get(&three, &site.url("/p/6"), None).await, "IP3, second");
    let stats = settled_stats(&site).await;
    assert_eq!(stats.by_session[&sid], ClientCounts { ok: 2, banned: 1 });
    assert_eq!(stats.by_client[&ip3], ClientCounts { ok: 2, banned: 1 });
    site.shutdown().await;
}

#[tokio::test]
async fn undefended_site_sets_no_cookie_but_counts_clients() {
    let site = TestSite::start(SiteConfig::default()).await.unwrap();
    for ip in [IP1, IP2, IP2] {
        let r = get(&client_from(ip), &site.url("/p/1"), None).await;
        assert_served(&r, "undefended");
        assert_eq!(r.set_sid, None);
    }
    let stats = settled_stats(&site).await;
    assert_eq!(stats.banned, 0);
    assert!(stats.by_session.is_empty());
    assert_eq!(stats.by_client[&IP1], ClientCounts { ok: 1, banned: 0 });
    assert_eq!(stats.by_client[&IP2], ClientCounts { ok: 2, banned: 0 });
    assert!(stats.log.iter().all(|e| e.sid.is_none() && !e.banned));
    // The JSON endpoint carries the per-client counts.
    let json: SiteStats = reqwest::Client::builder()
        .no_proxy()
        .build()
        .unwrap()
        .get(site.url(STATS_PATH))
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .map(|b| serde_json::from_slice(&b).unwrap())
        .unwrap();
    assert_eq!(json.by_client, stats.by_client);
    site.shutdown().await;
}

#[test]
fn binary_flags() {
    let exe = env!("CARGO_BIN_EXE_trawl-testsite");
    let out = std::process::Command::new(exe)
        .args(["--ban-answer", "captcha"])
        .output()
        .unwrap();
    assert!(!out.status.success(), "--ban-answer without --defended");
    let out = std::process::Command::new(exe)
        .args(["--defended", "3"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("N/WINDOW"));

    let mut child = std::process::Command::new(exe)
        .args(["--pages", "20", "--no-log", "--defended", "2/1m"])
        .args([
            "--ban-answer",
            "403",
            "--ban-by",
            "both",
            "--ban-for",
            "90s",
        ])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(child.stdout.take().unwrap()),
        &mut line,
    )
    .unwrap();
    let base = line.trim().to_owned();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let statuses = rt.block_on(async {
        let http = client_from(IP1);
        let mut s = Vec::new();
        for _ in 0..3 {
            s.push(get(&http, &format!("{base}/p/0"), None).await.status);
        }
        s
    });
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(statuses, [200, 200, 403]);
}

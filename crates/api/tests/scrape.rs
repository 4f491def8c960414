//! `POST /v1/scrape` over real sockets: the API server on a loopback port,
//! the test shop as the site, reqwest as the client.

#![allow(clippy::unwrap_used)]

use std::net::SocketAddr;

use serde_json::{Value, json};
use trawl_api::ApiConfig;
use trawl_testsite::{SiteConfig, TestSite};

async fn server(cfg: ApiConfig) -> (SocketAddr, tokio::sync::oneshot::Sender<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(trawl_api::serve(listener, cfg, async {
        let _ = stopped.await;
    }));
    (addr, stop)
}

async fn shop() -> TestSite {
    TestSite::start(SiteConfig {
        pages: 10,
        shop: true,
        shop_products: 5,
        ..Default::default()
    })
    .await
    .unwrap()
}

async fn post(addr: SocketAddr, body: &str) -> (u16, Value) {
    let res = reqwest::Client::new()
        .post(format!("http://{addr}/v1/scrape"))
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    let status = res.status().as_u16();
    let text = res.text().await.unwrap();
    let value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"));
    (status, value)
}

fn private_ok() -> ApiConfig {
    ApiConfig {
        allow_private: true,
        ..ApiConfig::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scrape_returns_fields_and_formats() {
    let site = shop().await;
    let (api, _stop) = server(private_ok()).await;
    let health = reqwest::get(format!("http://{api}/healthz")).await.unwrap();
    assert_eq!(health.status().as_u16(), 200);
    let ready = reqwest::get(format!("http://{api}/readyz")).await.unwrap();
    assert_eq!(ready.status().as_u16(), 200);

    let product = site.site().products().into_iter().next().unwrap();
    let body = json!({
        "url": format!("{}{}", site.base_url(), product.path),
        "fields": {
            "name": {"selector": "h1.product-title"},
            "price": {"selector": "span.price", "type": "number"},
            "sku": {"selector": ".sku", "regex": "SKU-\\d+"},
            "missing": {"selector": ".nowhere", "default": "none"}
        },
        "formats": ["json", "markdown", "links", "raw_html"],
        "extractors": ["json_ld", "opengraph"]
    });
    let (status, answer) = post(api, &body.to_string()).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["status"], 200);
    assert_eq!(answer["fields"]["name"], product.name.as_str());
    assert_eq!(answer["fields"]["price"].as_f64(), Some(product.price));
    assert_eq!(answer["fields"]["missing"], "none");
    assert_eq!(answer["fields"]["sku"], product.sku.as_str());
    assert!(answer["markdown"].as_str().unwrap().contains(&product.name));
    assert!(answer["raw_html"].as_str().unwrap().contains("<h1"));
    assert!(!answer["links"].as_array().unwrap().is_empty());
    let json_ld = answer["extracted"]["json_ld"].as_array().unwrap();
    assert!(
        json_ld.iter().any(|v| v.to_string().contains(&product.sku)),
        "{json_ld:?}"
    );
    assert!(answer["extracted"]["opengraph"].is_object());
    assert!(answer["timings"]["fetch_ms"].is_u64());
    assert!(answer["timings"]["total_ms"].as_u64() >= answer["timings"]["fetch_ms"].as_u64());
    site.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_answer_a_code_and_the_pointer() {
    let (api, _stop) = server(ApiConfig {
        max_body: 4096,
        ..private_ok()
    })
    .await;
    let cases: [(&str, u16, &str, Option<&str>); 9] = [
        ("{not json", 400, "invalid_json", None),
        (
            "{\"url\": \"http://a.test/\", \"extractors\": [\"json_ld\", \"recipes\"]}",
            400,
            "invalid_request",
            Some("/extractors/1"),
        ),
        ("{}", 400, "invalid_request", Some("/url")),
        (
            "{\"url\": \"http://a.test/\", \"colour\": 1}",
            400,
            "invalid_request",
            Some("/colour"),
        ),
        (
            "{\"url\": \"ftp://a.test/\"}",
            400,
            "invalid_url",
            Some("/url"),
        ),
        (
            "{\"url\": \"http://a.test/\", \"fields\": {\"p\": {\"selector\": \"div[\"}}}",
            400,
            "invalid_request",
            Some("/fields/p/selector"),
        ),
        (
            "{\"url\": \"http://a.test/\", \"fields\": {\"p\": {\"selector\": \"b\", \"type\": \"money\"}}}",
            400,
            "invalid_request",
            Some("/fields/p/type"),
        ),
        (
            "{\"url\": \"http://a.test/\", \"formats\": [\"json\", \"pdf\"]}",
            400,
            "invalid_request",
            Some("/formats/1"),
        ),
        (
            "{\"url\": \"http://a.test/\", \"timeout\": \"soon\"}",
            400,
            "invalid_request",
            Some("/timeout"),
        ),
    ];
    for (body, status, code, pointer) in cases {
        let (got, answer) = post(api, body).await;
        assert_eq!(got, status, "{body}: {answer}");
        assert_eq!(answer["error"]["code"], code, "{body}: {answer}");
        assert_eq!(
            answer["error"]["pointer"].as_str(),
            pointer,
            "{body}: {answer}"
        );
        assert!(
            answer["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty())
        );
    }
    let big = format!(
        "{{\"url\": \"http://a.test/\", \"pad\": \"{}\"}}",
        "x".repeat(8192)
    );
    let (got, answer) = post(api, &big).await;
    assert_eq!(got, 413, "{answer}");
    assert_eq!(answer["error"]["code"], "payload_too_large");

    // Field rules have limits of their own (within the body limit).
    let long = format!(
        "{{\"url\": \"http://a.test/\", \"fields\": {{\"p\": {{\"selector\": \"{}\"}}}}}}",
        "b ".repeat(1100)
    );
    let (got, answer) = post(api, &long).await;
    assert_eq!(got, 400, "{answer}");
    assert_eq!(answer["error"]["pointer"], "/fields/p/selector");
    let fields: Vec<String> = (0..101)
        .map(|i| format!("\"f{i}\": {{\"selector\": \"b\"}}"))
        .collect();
    let many = format!(
        "{{\"url\": \"http://a.test/\", \"fields\": {{{}}}}}",
        fields.join(",")
    );
    let (got, answer) = post(api, &many).await;
    assert_eq!(got, 400, "{answer}");
    assert_eq!(answer["error"]["pointer"], "/fields");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn loopback_targets_are_refused_by_default() {
    let site = shop().await;
    let (api, _stop) = server(ApiConfig::default()).await;
    let port = site.addr().port();
    for host in [
        "127.0.0.1",
        "2130706433",
        "0x7f.1",
        "[::ffff:127.0.0.1]",
        "localhost",
        "0.0.0.0",
    ] {
        let body = json!({"url": format!("http://{host}:{port}/")});
        let (status, answer) = post(api, &body.to_string()).await;
        assert_eq!(status, 422, "{host}: {answer}");
        assert_eq!(answer["error"]["code"], "target_refused", "{host}");
        assert_eq!(answer["error"]["pointer"], "/url");
    }
    // A name other than `localhost` that resolves to loopback (from
    // /etc/hosts): refused where it resolves, not by its spelling.
    let hosts = std::fs::read_to_string("/etc/hosts").unwrap();
    let name = hosts
        .lines()
        .filter(|l| l.trim_start().starts_with("127."))
        .flat_map(|l| l.split_whitespace().skip(1))
        .find(|n| !n.contains("localhost"))
        .expect("/etc/hosts names this machine with a loopback address");
    let (status, answer) = post(
        api,
        &json!({"url": format!("http://{name}:{port}/")}).to_string(),
    )
    .await;
    assert_eq!(status, 422, "{name}: {answer}");
    assert_eq!(answer["error"]["code"], "target_refused");
    assert!(
        answer["error"]["message"]
            .as_str()
            .unwrap()
            .contains("resolves to"),
        "{answer}"
    );
    assert_eq!(site.stats().requests, 0, "the site was reached");

    // A redirect from an allowed address (127.0.0.2 stands for the
    // outside world) to loopback is refused at the hop.
    let target = format!("http://127.0.0.1:{port}/");
    let redirector = axum::Router::new().fallback(move || {
        let target = target.clone();
        async move { axum::response::Redirect::temporary(&target) }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.2:0").await.unwrap();
    let hop = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, redirector).await });
    let (outside, _stop) = server(ApiConfig {
        allow_addresses: vec!["127.0.0.2".parse().unwrap()],
        obey_robots: false,
        ..ApiConfig::default()
    })
    .await;
    let (status, answer) = post(
        outside,
        &json!({"url": format!("http://{hop}/page")}).to_string(),
    )
    .await;
    assert_eq!(status, 422, "{answer}");
    assert_eq!(answer["error"]["code"], "target_refused");
    assert_eq!(site.stats().requests, 0, "the site was reached");

    // With --allow-private the same targets are fetched.
    let (open, _stop) = server(private_ok()).await;
    for url in [
        format!("http://2130706433:{port}/"),
        format!("http://{name}:{port}/"),
    ] {
        let (status, answer) = post(open, &json!({"url": url}).to_string()).await;
        assert_eq!(status, 200, "{url}: {answer}");
    }
    site.shutdown().await;
}

/// Rendering and proxies through `/v1/scrape`: a page built by script
/// (real Chromium, real nginx) with a screenshot; a page through a named
/// pool of the server's settings (real tinyproxy sending from 127.0.0.5).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scrape_renders_screenshots_and_goes_through_a_named_pool() {
    use trawl_testsite::nginx::{Nginx, NginxOptions};
    use trawl_testsite::proxies::{ProxyOptions, TinyProxy};
    let root = tempfile::tempdir().unwrap();
    trawl_testsite::js_site::write_js_site(root.path(), 3).unwrap();
    let nginx = Nginx::start(NginxOptions::new(root.path())).unwrap();
    let proxy =
        TinyProxy::start(ProxyOptions::new(std::net::IpAddr::from([127, 0, 0, 5]))).unwrap();
    let settings = trawl_settings::Layer::from_toml(
        "server.toml",
        &format!("[proxy_pools.via]\nproxies = [\"{}\"]\n", proxy.url()),
        None,
    )
    .unwrap();
    let (api, stop) = server(ApiConfig {
        settings: vec![settings],
        ..private_ok()
    })
    .await;
    let list = format!("{}js/list.html", nginx.url());

    // Without rendering the list is not there; rendered it is, with a
    // screenshot.
    let (status, plain) = post(api, &json!({"url": list, "formats": ["links"]}).to_string()).await;
    assert_eq!(status, 200, "{plain}");
    assert!(plain["rendered"].is_null());
    let (status, rendered) = post(
        api,
        &json!({
            "url": list,
            "render": {"mode": "always", "wait": [{"selector": "ul.products li", "timeout": "10s"}]},
            "formats": ["links", "screenshot"],
        })
        .to_string(),
    )
    .await;
    assert_eq!(status, 200, "{rendered}");
    assert!(rendered["rendered"]["ms"].is_u64(), "{rendered}");
    let links: Vec<&str> = rendered["links"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|l| l["url"].as_str().or(l.as_str()))
        .filter(|u| u.contains("product-"))
        .collect();
    assert_eq!(links.len(), 3, "the script's list: {}", rendered["links"]);
    let png = data_encoding::BASE64
        .decode(rendered["screenshot"].as_str().unwrap().as_bytes())
        .unwrap();
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
    let plain_links = plain["links"].as_array().unwrap().len();
    assert!(plain_links < links.len(), "{}", plain["links"]);

    // A named pool: the site sees the proxy's address.
    let site = shop().await;
    let url = format!("{}/p/1", site.base_url());
    let (status, via) = post(api, &json!({"url": url, "proxy_pool": "via"}).to_string()).await;
    assert_eq!(status, 200, "{via}");
    let log = site.stats().log;
    assert!(
        log.iter()
            .any(|e| e.path_and_query == "/p/1"
                && e.client_ip == std::net::IpAddr::from([127, 0, 0, 5])),
        "fetched through the pool"
    );
    let (status, unknown) = post(api, &json!({"url": url, "proxy_pool": "nope"}).to_string()).await;
    assert_eq!(status, 400, "{unknown}");
    assert_eq!(unknown["error"]["pointer"], "/proxy_pool");
    let _ = stop.send(());
    site.shutdown().await;
}

/// `/v1/map`: the site's sitemaps (robots.txt → index → urlsets, one
/// gzipped) and the page's links, same host, each once, bounded.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn map_lists_a_sites_urls_from_sitemaps_and_links() {
    let site = TestSite::start(SiteConfig {
        pages: 60,
        fanout: 4,
        ..Default::default()
    })
    .await
    .unwrap();
    let (api, _stop) = server(private_ok()).await;
    let seed = format!("{}/", site.base_url());
    let res = reqwest::Client::new()
        .post(format!("http://{api}/v1/map"))
        .json(&json!({"url": seed}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 200);
    let map: Value = res.json().await.unwrap();
    let links: Vec<&str> = map["links"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l.as_str().unwrap())
        .collect();
    assert!(map["from_sitemaps"].as_u64().unwrap() > 0, "{map}");
    assert!(map["from_page"].as_u64().unwrap() > 0, "{map}");
    assert_eq!(links[0], seed, "the page first");
    let mut unique = links.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), links.len(), "each once");
    assert!(
        links
            .iter()
            .all(|l| l.starts_with(site.base_url().as_str()))
    );
    let listed: Value = reqwest::get(format!("{}/sitemap.txt", site.base_url()))
        .await
        .unwrap()
        .text()
        .await
        .map(|t| json!(t.lines().map(str::to_string).collect::<Vec<_>>()))
        .unwrap();
    for url in listed.as_array().unwrap() {
        assert!(
            links.contains(&url.as_str().unwrap()),
            "{url} from the sitemaps"
        );
    }

    let res = reqwest::Client::new()
        .post(format!("http://{api}/v1/map"))
        .json(&json!({"url": seed, "limit": 3, "search": "/P/1"}))
        .send()
        .await
        .unwrap();
    let few: Value = res.json().await.unwrap();
    let few = few["links"].as_array().unwrap();
    assert!(!few.is_empty() && few.len() <= 3, "{few:?}");
    assert!(few.iter().all(|l| l.as_str().unwrap().contains("/p/1")));

    for (body, code, pointer) in [
        (
            json!({"url": seed, "limit": 0}),
            "invalid_request",
            "/limit",
        ),
        (json!({"url": "nope"}), "invalid_url", "/url"),
    ] {
        let res = reqwest::Client::new()
            .post(format!("http://{api}/v1/map"))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status().as_u16(), 400);
        let answer: Value = res.json().await.unwrap();
        assert_eq!(answer["error"]["code"], code);
        assert_eq!(answer["error"]["pointer"], pointer);
    }
    // Loopback is refused by default.
    let (guarded, _stop) = server(ApiConfig::default()).await;
    let res = reqwest::Client::new()
        .post(format!("http://{guarded}/v1/map"))
        .json(&json!({"url": seed}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 422);
    site.shutdown().await;
}

/// Named sessions: the scrapes of one session send back the cookie the
/// site gave it (the defended test site's `sid`), another session gets
/// its own, and scrapes without a session keep none (no key sees
/// another's cookies).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_keeps_its_cookies_across_scrapes() {
    let site = TestSite::start(SiteConfig {
        pages: 10,
        defended: Some(trawl_testsite::Defense::new(
            1000,
            std::time::Duration::from_secs(60),
        )),
        ..Default::default()
    })
    .await
    .unwrap();
    let (api, _stop) = server(private_ok()).await;
    let page = |n: u32, session: Option<&str>| {
        let mut body = json!({"url": format!("{}/p/{n}", site.base_url()), "formats": ["links"]});
        if let Some(s) = session {
            body["session"] = json!(s);
        }
        body.to_string()
    };
    for (n, session) in [
        (1, Some("a")),
        (2, Some("a")),
        (3, Some("b")),
        (4, Some("b")),
        (5, None),
        (6, None),
    ] {
        let (status, answer) = post(api, &page(n, session)).await;
        assert_eq!(status, 200, "{answer}");
    }
    let log = site.stats().log;
    let sid = |n: u32| {
        log.iter()
            .find(|e| e.path_and_query == format!("/p/{n}"))
            .unwrap_or_else(|| panic!("/p/{n} was fetched"))
            .sid
            .clone()
    };
    // The log has the session the site counted each request in: the one
    // its cookie named, or a new one it issued.
    let a = sid(1).expect("a session cookie");
    assert_eq!(sid(2), Some(a.clone()), "the session sent its cookie back");
    let b = sid(3).expect("a session cookie");
    assert_eq!(sid(4), Some(b.clone()), "the session sent its cookie back");
    assert_ne!(a, b, "sessions do not share cookies");
    assert_ne!(sid(5), sid(6), "scrapes without a session keep no cookie");
    let (status, answer) = post(api, &page(7, Some("no spaces"))).await;
    assert_eq!(status, 400, "{answer}");
    assert_eq!(answer["error"]["pointer"], "/session");
    site.shutdown().await;
}

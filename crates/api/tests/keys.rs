//! API keys over real sockets: calls without a valid key are refused, and
//! one key never sees another's jobs.

#![allow(clippy::unwrap_used)]

use std::net::SocketAddr;
use std::time::Duration;

use serde_json::{Value, json};
use trawl_api::ApiConfig;
use trawl_api::keys::Keys;
use trawl_testsite::{SiteConfig, TestSite};

async fn call(
    method: reqwest::Method,
    url: String,
    key: Option<&str>,
    body: Option<Value>,
) -> (u16, Value) {
    let mut req = reqwest::Client::new().request(method, url);
    if let Some(k) = key {
        req = req.bearer_auth(k);
    }
    if let Some(b) = body {
        req = req.json(&b);
    }
    let res = req.send().await.unwrap();
    let status = res.status().as_u16();
    let text = res.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_are_required_and_jobs_are_scoped_to_theirs() {
    let site = TestSite::start(SiteConfig {
        pages: 400,
        latency: Some(Duration::from_millis(50)),
        ..Default::default()
    })
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut keys = Keys::load(dir.path()).unwrap();
    let a = keys.add("a").unwrap();
    let b = keys.add("b").unwrap();
    let api = serve_with_keys(dir.path()).await;
    let url = |p: &str| format!("http://{api}{p}");
    use reqwest::Method;

    // Health needs no key; the API does.
    let (status, _) = call(Method::GET, url("/healthz"), None, None).await;
    assert_eq!(status, 200);
    let scrape = json!({"url": format!("{}/", site.base_url())});
    for key in [None, Some("trawl_wrong"), Some("")] {
        let (status, answer) =
            call(Method::POST, url("/v1/scrape"), key, Some(scrape.clone())).await;
        assert_eq!(status, 401, "{key:?}: {answer}");
        assert_eq!(answer["error"]["code"], "unauthorized");
    }
    let (status, answer) = call(Method::POST, url("/v1/scrape"), Some(&a), Some(scrape)).await;
    assert_eq!(status, 200, "{answer}");

    // A's job: visible to A only.
    let job = json!({"seeds": [format!("{}/", site.base_url())]});
    let (status, created) = call(Method::POST, url("/v1/crawls"), Some(&a), Some(job)).await;
    assert_eq!(status, 202, "{created}");
    let id = created["id"].as_str().unwrap().to_string();
    for path in [format!("/v1/crawls/{id}"), format!("/v1/crawls/{id}/items")] {
        let (status, answer) = call(Method::GET, url(&path), Some(&b), None).await;
        assert_eq!(status, 404, "{path}: {answer}");
    }
    let (status, _) = call(
        Method::DELETE,
        url(&format!("/v1/crawls/{id}")),
        Some(&b),
        None,
    )
    .await;
    assert_eq!(status, 404, "B cannot cancel A's job");
    let (_, list_b) = call(Method::GET, url("/v1/crawls"), Some(&b), None).await;
    assert_eq!(list_b["crawls"], json!([]));
    let (_, list_a) = call(Method::GET, url("/v1/crawls"), Some(&a), None).await;
    assert_eq!(list_a["crawls"][0]["id"], id.as_str());
    let (status, state) = call(
        Method::GET,
        url(&format!("/v1/crawls/{id}")),
        Some(&a),
        None,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(state["state"], "running", "B's DELETE did not stop it");
    let (status, _) = call(
        Method::DELETE,
        url(&format!("/v1/crawls/{id}")),
        Some(&a),
        None,
    )
    .await;
    assert_eq!(status, 200);
    site.shutdown().await;
}

/// A server with `cfg` on a free loopback port.
async fn serve(cfg: ApiConfig) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let api = listener.local_addr().unwrap();
    tokio::spawn(trawl_api::serve(listener, cfg, std::future::pending()));
    api
}

/// A server whose keys are those stored in `dir`.
async fn serve_with_keys(dir: &std::path::Path) -> SocketAddr {
    serve(ApiConfig {
        allow_private: true,
        keys: Keys::load(dir).unwrap(),
        ..ApiConfig::default()
    })
    .await
}

async fn limited(limits: trawl_api::limits::Limits) -> SocketAddr {
    serve(ApiConfig {
        allow_private: true,
        limits,
        ..ApiConfig::default()
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn limits_answer_429_with_retry_after() {
    use reqwest::Method;
    let api = limited(trawl_api::limits::Limits {
        rate: Some(2.0),
        max_jobs: None,

        ..Default::default()
    })
    .await;
    let list = format!("http://{api}/v1/crawls");
    for _ in 0..2 {
        let (status, _) = call(Method::GET, list.clone(), None, None).await;
        assert_eq!(status, 200);
    }
    let res = reqwest::get(&list).await.unwrap();
    assert_eq!(res.status().as_u16(), 429);
    assert_eq!(res.headers()["retry-after"], "1");
    let answer: Value = res.json().await.unwrap();
    assert_eq!(answer["error"]["code"], "rate_limited");
    tokio::time::sleep(Duration::from_millis(600)).await;
    let (status, _) = call(Method::GET, list, None, None).await;
    assert_eq!(status, 200, "a token came back after half a second");

    let site = TestSite::start(SiteConfig {
        pages: 400,
        latency: Some(Duration::from_millis(100)),
        ..Default::default()
    })
    .await
    .unwrap();
    let api = limited(trawl_api::limits::Limits {
        rate: None,
        max_jobs: Some(1),

        ..Default::default()
    })
    .await;
    let job = json!({"seeds": [format!("{}/", site.base_url())]});
    let url = format!("http://{api}/v1/crawls");
    let (status, first) = call(Method::POST, url.clone(), None, Some(job.clone())).await;
    assert_eq!(status, 202, "{first}");
    let res = reqwest::Client::new()
        .post(&url)
        .json(&job)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 429);
    assert!(res.headers().contains_key("retry-after"));
    let answer: Value = res.json().await.unwrap();
    assert_eq!(answer["error"]["code"], "too_many_jobs");
    let id = first["id"].as_str().unwrap();
    let (status, _) = call(Method::DELETE, format!("{url}/{id}"), None, None).await;
    assert_eq!(status, 200);
    site.shutdown().await;
}

/// Sum of the samples of `metric` (with `labels` in their label set) in
/// Prometheus text.
fn metric_sum(text: &str, metric: &str, labels: &str) -> f64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.rsplit_once(' '))
        .filter(|(name, _)| {
            let bare = name.split('{').next().unwrap_or("");
            bare == metric && name.contains(labels)
        })
        .map(|(_, v)| v.parse::<f64>().unwrap())
        .sum()
}

/// `/metrics` and the dashboard's data show every key's jobs: with keys,
/// only admin keys may read them (the page itself holds no data); a
/// finished job's pages stay in the totals.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_wide_figures_need_an_admin_key_and_keep_finished_jobs() {
    let site = TestSite::start(SiteConfig {
        pages: 40,
        ..Default::default()
    })
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut keys = Keys::load(dir.path()).unwrap();
    let user = keys.add("user").unwrap();
    let admin = keys.add_admin("ops").unwrap();
    let api = serve_with_keys(dir.path()).await;
    let url = |p: &str| format!("http://{api}{p}");
    use reqwest::Method;

    let (status, page) = call(Method::GET, url("/dashboard"), None, None).await;
    assert_eq!(status, 200);
    assert!(
        page.as_str()
            .unwrap()
            .contains("<title>trawl dashboard</title>")
    );
    for path in ["/metrics", "/dashboard/sample", "/dashboard/events"] {
        let (status, body) = call(Method::GET, url(path), None, None).await;
        assert_eq!(status, 401, "{path}: {body}");
        let (status, body) = call(Method::GET, url(path), Some(&user), None).await;
        assert_eq!(status, 403, "{path}: {body}");
        assert_eq!(body["error"]["code"], "forbidden");
    }

    let job = json!({"seeds": [format!("{}/", site.base_url())]});
    let (status, made) = call(Method::POST, url("/v1/crawls"), Some(&user), Some(job)).await;
    assert_eq!(status, 202, "{made}");
    let id = made["id"].as_str().unwrap().to_string();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let done = loop {
        let (_, view) = call(
            Method::GET,
            url(&format!("/v1/crawls/{id}")),
            Some(&user),
            None,
        )
        .await;
        if view["state"] == "done" {
            break view;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "job never ended: {view}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let pages = done["stats"]["pages"].as_f64().unwrap();
    assert!(pages >= 30.0, "{done}");

    let res = reqwest::Client::new()
        .get(url("/metrics"))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert!(
        res.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/openmetrics-text")
    );
    let text = res.text().await.unwrap();
    assert!(text.ends_with("# EOF\n"), "{text}");
    assert_eq!(
        metric_sum(&text, "trawl_api_jobs", "state=\"done\""),
        1.0,
        "{text}"
    );
    assert_eq!(
        metric_sum(&text, "trawl_api_jobs", "state=\"running\""),
        0.0
    );
    assert_eq!(
        metric_sum(&text, "trawl_crawls_running", ""),
        1.0,
        "the scrapes' downloader only"
    );
    assert_eq!(
        metric_sum(&text, "trawl_pages_total", ""),
        pages,
        "the finished job's pages stay counted"
    );
    assert_eq!(
        metric_sum(&text, "trawl_process_info", "crawl=\"serve\""),
        1.0
    );

    let (status, sample) = call(Method::GET, url("/dashboard/sample"), Some(&admin), None).await;
    assert_eq!(status, 200);
    let row = sample["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|j| j["id"] == id.as_str());
    assert_eq!(
        row.map(|r| r["state"].clone()),
        Some(json!("done")),
        "{sample}"
    );
    assert_eq!(sample["stats"]["pages"].as_f64(), Some(pages));
    site.shutdown().await;
}

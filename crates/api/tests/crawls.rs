//! Crawl jobs through the API over real sockets: the engine crawls the
//! test site, items stream as NDJSON while the job runs.

#![allow(clippy::unwrap_used)]

use std::net::SocketAddr;
use std::time::Duration;

use serde_json::{Value, json};
use trawl_api::ApiConfig;
use trawl_core::Url;
use trawl_testsite::{SiteConfig, TestSite};

async fn server(allow_private: bool) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let cfg = ApiConfig {
        allow_private,
        ..ApiConfig::default()
    };
    tokio::spawn(trawl_api::serve(listener, cfg, std::future::pending()));
    addr
}

async fn start(api: SocketAddr, body: Value) -> (u16, Value) {
    let res = reqwest::Client::new()
        .post(format!("http://{api}/v1/crawls"))
        .json(&body)
        .send()
        .await
        .unwrap();
    (res.status().as_u16(), res.json().await.unwrap())
}

async fn get(api: SocketAddr, path: &str) -> (u16, Value) {
    let res = reqwest::get(format!("http://{api}{path}")).await.unwrap();
    (res.status().as_u16(), res.json().await.unwrap())
}

/// Every line of an NDJSON stream, read to its end.
async fn stream(api: SocketAddr, path: &str) -> Vec<Value> {
    let res = reqwest::get(format!("http://{api}{path}")).await.unwrap();
    assert_eq!(
        res.headers()["content-type"].to_str().unwrap(),
        "application/x-ndjson"
    );
    let text = tokio::time::timeout(Duration::from_secs(60), res.text())
        .await
        .expect("the stream ends with the job")
        .unwrap();
    text.lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_streams_its_items_while_it_runs_and_resumes_after_n() {
    let site = TestSite::start(SiteConfig {
        pages: 80,
        fanout: 4,
        latency: Some(Duration::from_millis(20)),
        ..Default::default()
    })
    .await
    .unwrap();
    let truth = site.site().ground_truth();
    let api = server(true).await;
    let (status, job) = start(
        api,
        json!({"seeds": [format!("{}/", site.base_url())], "settings": {"per_host": 1, "concurrent_requests": 4}}),
    )
    .await;
    assert_eq!(status, 202, "{job}");
    assert_eq!(job["state"], "running");
    let id = job["id"].as_str().unwrap().to_string();

    // The first item arrives while the job still runs.
    let mut res = reqwest::get(format!("http://{api}/v1/crawls/{id}/items"))
        .await
        .unwrap();
    let first = res.chunk().await.unwrap().expect("a first chunk");
    assert!(!first.is_empty());
    let (_, now) = get(api, &format!("/v1/crawls/{id}")).await;
    assert_eq!(now["state"], "running", "{now}");
    drop(res);

    let all = stream(api, &format!("/v1/crawls/{id}/items")).await;
    let mut urls: Vec<String> = all
        .iter()
        .map(|i| {
            Url::parse(i["final_url"].as_str().unwrap())
                .unwrap()
                .path()
                .to_string()
        })
        .filter(|p| truth.contains(p))
        .collect();
    urls.sort();
    urls.dedup();
    assert_eq!(urls.len(), truth.len(), "every page once");
    let (_, done) = get(api, &format!("/v1/crawls/{id}")).await;
    assert_eq!(done["state"], "done", "{done}");
    assert_eq!(done["items"].as_u64(), Some(all.len() as u64));
    assert_eq!(done["stats"]["pages"].as_u64(), Some(all.len() as u64));
    // Resume after N: the rest, in the same order.
    let rest = stream(api, &format!("/v1/crawls/{id}/items?after=10")).await;
    assert_eq!(rest, all[10..]);
    let (_, list) = get(api, "/v1/crawls").await;
    assert!(
        list["crawls"]
            .as_array()
            .unwrap()
            .iter()
            .any(|j| j["id"] == id.as_str())
    );
    site.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_job_keeps_what_it_wrote() {
    let site = TestSite::start(SiteConfig {
        pages: 400,
        fanout: 10,
        latency: Some(Duration::from_millis(100)),
        ..Default::default()
    })
    .await
    .unwrap();
    let api = server(true).await;
    let (_, job) = start(
        api,
        json!({"seeds": [format!("{}/", site.base_url())], "settings": {"per_host": 2}}),
    )
    .await;
    let id = job["id"].as_str().unwrap().to_string();
    let mut res = reqwest::get(format!("http://{api}/v1/crawls/{id}/items"))
        .await
        .unwrap();
    res.chunk().await.unwrap().expect("a first item");
    let res = reqwest::Client::new()
        .delete(format!("http://{api}/v1/crawls/{id}"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 200);
    let items = stream(api, &format!("/v1/crawls/{id}/items")).await;
    let (_, end) = get(api, &format!("/v1/crawls/{id}")).await;
    assert_eq!(end["state"], "cancelled", "{end}");
    assert!(!items.is_empty() && items.len() < site.site().ground_truth().len());
    assert_eq!(end["items"].as_u64(), Some(items.len() as u64));
    site.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_jobs_answer_a_code_and_the_pointer() {
    let api = server(false).await;
    for (body, status, code, pointer) in [
        (json!({"seeds": []}), 400, "invalid_request", "/seeds"),
        (json!({"settings": {}}), 400, "invalid_request", "/seeds"),
        (
            json!({"seeds": ["ftp://x.test/"]}),
            400,
            "invalid_url",
            "/seeds/0",
        ),
        (
            json!({"seeds": ["http://a.test/"], "settings": {"delay": "soon"}}),
            400,
            "invalid_request",
            "/settings/delay",
        ),
        (
            json!({"seeds": ["http://a.test/"], "settings": {"per_hots": 2}}),
            400,
            "invalid_request",
            "/settings/per_hots",
        ),
        (
            json!({"seeds": ["http://a.test/"], "settings": {"state": "dir"}}),
            400,
            "invalid_request",
            "/settings/state",
        ),
        (
            json!({"seeds": ["http://a.test/"], "settings": {"proxies": ["http://user:pw@127.0.0.1:3128"]}}),
            400,
            "invalid_request",
            "/settings/proxies",
        ),
        (
            json!({"seeds": ["http://a.test/"], "settings": {"headers": {"Cookie": "sid=1"}}}),
            400,
            "invalid_request",
            "/settings/headers/Cookie",
        ),
        (
            json!({"seeds": ["http://127.0.0.1:9/"]}),
            422,
            "target_refused",
            "/seeds/0",
        ),
    ] {
        let (got, answer) = start(api, body.clone()).await;
        assert_eq!(got, status, "{body}: {answer}");
        assert_eq!(answer["error"]["code"], code, "{body}: {answer}");
        assert_eq!(answer["error"]["pointer"], pointer, "{body}: {answer}");
    }
    let (status, answer) = get(api, "/v1/crawls/nope").await;
    assert_eq!(status, 404);
    assert_eq!(answer["error"]["code"], "not_found");
}

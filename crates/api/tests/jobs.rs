//! Crawl jobs that outlive the server, spider files in jobs, webhooks and
//! page quotas, over real sockets against the real test site.

#![allow(clippy::unwrap_used)]

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use serde_json::{Value, json};
use trawl_api::ApiConfig;
use trawl_core::Url;
use trawl_testsite::{SiteConfig, TestSite};

struct Server {
    addr: SocketAddr,
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

async fn server(cfg: ApiConfig) -> Server {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(trawl_api::serve(listener, cfg, async move {
        let _ = stopped.await;
    }));
    Server { addr, stop, task }
}

fn config(data: &Path) -> ApiConfig {
    ApiConfig {
        allow_private: true,
        data: Some(data.to_path_buf()),
        ..ApiConfig::default()
    }
}

async fn post(
    api: SocketAddr,
    path: &str,
    body: Value,
) -> (u16, Value, reqwest::header::HeaderMap) {
    let res = reqwest::Client::new()
        .post(format!("http://{api}{path}"))
        .json(&body)
        .send()
        .await
        .unwrap();
    let headers = res.headers().clone();
    (res.status().as_u16(), res.json().await.unwrap(), headers)
}

async fn get(api: SocketAddr, path: &str) -> Value {
    reqwest::get(format!("http://{api}{path}"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

async fn stream(api: SocketAddr, path: &str) -> Vec<Value> {
    let res = reqwest::get(format!("http://{api}{path}")).await.unwrap();
    let text = tokio::time::timeout(Duration::from_secs(90), res.text())
        .await
        .expect("the stream ends with the job")
        .unwrap();
    text.lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// Each page of `truth` is among `items` exactly once.
fn every_page_once(items: &[Value], truth: &std::collections::BTreeSet<String>) {
    let mut paths: Vec<String> = items.iter().map(path_of).collect();
    let n = paths.len();
    paths.sort();
    paths.dedup();
    assert_eq!(paths.len(), n, "no item twice");
    assert_eq!(
        paths.iter().filter(|p| truth.contains(*p)).count(),
        truth.len(),
        "every page"
    );
}

fn path_of(item: &Value) -> String {
    Url::parse(item["final_url"].as_str().unwrap())
        .unwrap()
        .path()
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_server_resumes_its_jobs_without_losing_or_repeating_items() {
    let site = TestSite::start(SiteConfig {
        pages: 150,
        fanout: 4,
        latency: Some(Duration::from_millis(30)),
        ..Default::default()
    })
    .await
    .unwrap();
    let truth = site.site().ground_truth();
    let data = tempfile::tempdir().unwrap();
    let first = server(config(data.path())).await;
    let (status, job, _) = post(
        first.addr,
        "/v1/crawls",
        json!({"seeds": [format!("{}/", site.base_url())], "settings": {"per_host": 2}}),
    )
    .await;
    assert_eq!(status, 202, "{job}");
    let id = job["id"].as_str().unwrap().to_string();

    // Read items while it runs, then stop the server under it.
    let mut res = reqwest::get(format!("http://{}/v1/crawls/{id}/items", first.addr))
        .await
        .unwrap();
    let mut bytes = Vec::new();
    while bytes.iter().filter(|b| **b == b'\n').count() < 20 {
        let chunk = tokio::time::timeout(Duration::from_secs(30), res.chunk())
            .await
            .expect("items arrive")
            .unwrap()
            .expect("the job runs");
        bytes.extend_from_slice(&chunk);
    }
    // Whole lines only (a chunk may end inside one).
    let whole = bytes.iter().rposition(|b| *b == b'\n').unwrap() + 1;
    let before: Vec<Value> = String::from_utf8(bytes[..whole].to_vec())
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    first.stop.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(60), first.task)
        .await
        .expect("the server stops")
        .unwrap()
        .unwrap();
    drop(res);
    let record: Value = serde_json::from_slice(
        &std::fs::read(data.path().join("jobs").join(&id).join("job.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(record["state"], "running", "kept to resume: {record}");

    // The next server on the same data resumes it.
    let second = server(config(data.path())).await;
    let all = stream(second.addr, &format!("/v1/crawls/{id}/items")).await;
    assert!(all.len() > before.len());
    assert_eq!(
        all[..before.len()],
        before[..],
        "what was read before stays"
    );
    every_page_once(&all, &truth);
    let end = get(second.addr, &format!("/v1/crawls/{id}")).await;
    assert_eq!(end["state"], "done", "{end}");
    assert_eq!(end["items"].as_u64(), Some(all.len() as u64));
    assert!(
        !data.path().join("jobs").join(&id).join("state").exists(),
        "the crawl state goes when the job ends"
    );
    // A resumed read of a finished job, and after yet another restart.
    second.stop.send(()).unwrap();
    second.task.await.unwrap().unwrap();
    let third = server(config(data.path())).await;
    let rest = stream(third.addr, &format!("/v1/crawls/{id}/items?after=5")).await;
    assert_eq!(rest, all[5..]);
    site.shutdown().await;
}

const SPIDER: &str = r#"
name = "catalogue"
start_urls = ["BASE/"]

[settings]
per_host = 2
max_pages = 40

[[follow]]
pattern = "/p/\\d+$"
callback = "page"

[items.page.fields]
title = { selector = "title" }
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_runs_a_spider_file_given_as_toml_or_as_json() {
    let site = TestSite::start(SiteConfig {
        pages: 30,
        fanout: 3,
        ..Default::default()
    })
    .await
    .unwrap();
    let data = tempfile::tempdir().unwrap();
    let api = server(config(data.path())).await;
    let text = SPIDER.replace("BASE", &site.base_url());
    let as_json: toml::Table = toml::from_str(&text).unwrap();
    for spider in [json!(text), serde_json::to_value(&as_json).unwrap()] {
        let (status, job, _) = post(api.addr, "/v1/crawls", json!({"spider": spider})).await;
        assert_eq!(status, 202, "{job}");
        assert_eq!(job["spider"], true);
        let id = job["id"].as_str().unwrap();
        let items = stream(api.addr, &format!("/v1/crawls/{id}/items")).await;
        assert!(!items.is_empty());
        for item in &items {
            assert!(item["title"].is_string(), "the spider's field: {item}");
        }
    }
    // A spider's own settings and outputs are checked like a job's.
    for (spider, status, pointer) in [
        ("name = 1", 400, "/spider"),
        (
            "name = \"x\"\nstart_urls = [\"http://127.0.0.1:9/\"]\n[settings]\nstate = \"/tmp/x\"\n",
            400,
            "/spider/settings/state",
        ),
        (
            "name = \"x\"\nstart_urls = [\"http://127.0.0.1:9/\"]\n[[sinks]]\nsink = \"out.jsonl\"\n",
            400,
            "/spider",
        ),
    ] {
        let (got, answer, _) = post(api.addr, "/v1/crawls", json!({"spider": spider})).await;
        assert_eq!(got, status, "{spider}: {answer}");
        assert_eq!(answer["error"]["pointer"], pointer, "{spider}: {answer}");
    }
    site.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_end_of_a_job_is_posted_to_its_webhook_signed_with_the_servers_secret() {
    use axum::routing::post as route_post;
    let site = TestSite::start(SiteConfig {
        pages: 10,
        fanout: 3,
        ..Default::default()
    })
    .await
    .unwrap();
    // A real receiver on loopback.
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(axum::http::HeaderMap, String)>();
    let receiver = axum::Router::new().route(
        "/hook",
        route_post(move |headers: axum::http::HeaderMap, body: String| {
            let tx = tx.clone();
            async move {
                tx.send((headers, body)).unwrap();
                "thanks"
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let hook = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, receiver).await });

    let data = tempfile::tempdir().unwrap();
    let api = server(config(data.path())).await;
    let (status, job, _) = post(
        api.addr,
        "/v1/crawls",
        json!({
            "seeds": [format!("{}/", site.base_url())],
            "webhook": {"url": format!("http://{hook}/hook"), "metadata": {"team": "blue"}},
        }),
    )
    .await;
    assert_eq!(status, 202, "{job}");
    let (headers, body) = tokio::time::timeout(Duration::from_secs(60), rx.recv())
        .await
        .expect("the webhook is called")
        .unwrap();
    let sent: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(sent["event"], "crawl.done");
    assert_eq!(sent["job"]["id"], job["id"]);
    assert_eq!(sent["metadata"]["team"], "blue");
    assert_eq!(headers["x-trawl-event"], "crawl.done");
    let secret = std::fs::read_to_string(data.path().join("webhook-secret")).unwrap();
    let timestamp: u64 = headers["x-trawl-timestamp"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(
        headers["x-trawl-signature"].to_str().unwrap(),
        trawl_api::webhook::signature(secret.trim().as_bytes(), timestamp, body.as_bytes())
    );
    assert_ne!(
        headers["x-trawl-signature"].to_str().unwrap(),
        trawl_api::webhook::signature(b"another secret", timestamp, body.as_bytes())
    );
    // The outcome is on the job.
    let id = job["id"].as_str().unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let now = get(api.addr, &format!("/v1/crawls/{id}")).await;
        if now["webhook"] == "delivered: 200" {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "{now}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    site.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_page_quota_cuts_jobs_to_what_is_left_and_answers_429_when_used_up() {
    let site = TestSite::start(SiteConfig {
        pages: 50,
        fanout: 5,
        ..Default::default()
    })
    .await
    .unwrap();
    let data = tempfile::tempdir().unwrap();
    let mut cfg = config(data.path());
    cfg.limits.quota = Some("12/day".parse().unwrap());
    let api = server(cfg).await;
    let seed = format!("{}/", site.base_url());
    let (status, answer, _) = post(
        api.addr,
        "/v1/scrape",
        json!({"url": seed.clone(), "formats": ["links"]}),
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    let (status, job, _) = post(api.addr, "/v1/crawls", json!({"seeds": [seed.clone()]})).await;
    assert_eq!(status, 202, "{job}");
    let id = job["id"].as_str().unwrap();
    let items = stream(api.addr, &format!("/v1/crawls/{id}/items")).await;
    assert_eq!(items.len(), 11, "the quota's 12 pages less the scrape");
    for path in ["/v1/scrape", "/v1/crawls"] {
        let body = if path == "/v1/scrape" {
            json!({"url": seed.clone()})
        } else {
            json!({"seeds": [seed.clone()]})
        };
        let (status, answer, headers) = post(api.addr, path, body).await;
        assert_eq!(status, 429, "{path}: {answer}");
        assert_eq!(answer["error"]["code"], "quota_exceeded");
        let wait: u64 = headers["retry-after"].to_str().unwrap().parse().unwrap();
        assert!((1..=86_400).contains(&wait), "{wait}");
    }
    site.shutdown().await;
}

/// `psql` against the test database.
fn psql(sql: &str) -> String {
    let out = std::process::Command::new("psql")
        .args([
            "-h",
            "127.0.0.1",
            "-U",
            "postgres",
            "-d",
            "test",
            "-tAc",
            sql,
        ])
        .output()
        .expect("psql is installed");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_postgres_store_keeps_jobs_and_items_across_a_restart() {
    // A schema of this test's own in the shared database.
    let schema = format!("trawl_api_{}", std::process::id());
    psql(&format!(
        "DROP SCHEMA IF EXISTS {schema} CASCADE; CREATE SCHEMA {schema}"
    ));
    let store =
        format!("postgres://postgres@127.0.0.1:5432/test?options=-c%20search_path%3D{schema}");
    let site = TestSite::start(SiteConfig {
        pages: 120,
        fanout: 4,
        latency: Some(Duration::from_millis(30)),
        ..Default::default()
    })
    .await
    .unwrap();
    let truth = site.site().ground_truth();
    let data = tempfile::tempdir().unwrap();
    let cfg = || ApiConfig {
        store: Some(store.clone()),
        ..config(data.path())
    };
    let first = server(cfg()).await;
    let (status, job, _) = post(
        first.addr,
        "/v1/crawls",
        json!({"seeds": [format!("{}/", site.base_url())], "settings": {"per_host": 2}}),
    )
    .await;
    assert_eq!(status, 202, "{job}");
    let id = job["id"].as_str().unwrap().to_string();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while get(first.addr, &format!("/v1/crawls/{id}")).await["items"].as_u64() < Some(10) {
        assert!(tokio::time::Instant::now() < deadline, "items arrive");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let before = stream_prefix(first.addr, &id).await;
    first.stop.send(()).unwrap();
    first.task.await.unwrap().unwrap();
    assert_eq!(
        psql(&format!(
            "SELECT record->>'state' FROM {schema}.trawl_api_jobs WHERE id = '{id}'"
        )),
        "running"
    );
    let second = server(cfg()).await;
    let all = stream(second.addr, &format!("/v1/crawls/{id}/items")).await;
    assert_eq!(
        all[..before.len()],
        before[..],
        "what was read before stays"
    );
    every_page_once(&all, &truth);
    assert_eq!(
        psql(&format!(
            "SELECT count(*) FROM {schema}.trawl_api_items WHERE job = '{id}'"
        )),
        all.len().to_string()
    );
    let job_dir = data.path().join("jobs").join(&id);
    assert!(!job_dir.join("job.json").exists() && !job_dir.join("items.jsonl").exists());
    second.stop.send(()).unwrap();
    second.task.await.unwrap().unwrap();
    psql(&format!("DROP SCHEMA {schema} CASCADE"));
    site.shutdown().await;
}

/// The items a job shows now (its stream read while it runs, up to what
/// is visible).
async fn stream_prefix(api: SocketAddr, id: &str) -> Vec<Value> {
    let shown = get(api, &format!("/v1/crawls/{id}")).await["items"]
        .as_u64()
        .unwrap() as usize;
    let mut res = reqwest::get(format!("http://{api}/v1/crawls/{id}/items"))
        .await
        .unwrap();
    let mut bytes = Vec::new();
    while bytes.iter().filter(|b| **b == b'\n').count() < shown {
        let chunk = res.chunk().await.unwrap().expect("the job runs");
        bytes.extend_from_slice(&chunk);
    }
    let whole = bytes.iter().rposition(|b| *b == b'\n').unwrap() + 1;
    String::from_utf8(bytes[..whole].to_vec())
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_that_cannot_start_is_failed_with_its_reason_not_left_running() {
    // No Redis listens on port 1.
    let data = tempfile::tempdir().unwrap();
    let api = server(ApiConfig {
        redis: Some("redis://127.0.0.1:1".into()),
        ..config(data.path())
    })
    .await;
    let (status, answer, _) = post(
        api.addr,
        "/v1/crawls",
        json!({"seeds": ["http://127.0.0.1:9/"]}),
    )
    .await;
    assert_eq!(status, 503, "{answer}");
    assert_eq!(answer["error"]["code"], "redis_unavailable");
    let list = get(api.addr, "/v1/crawls").await;
    let jobs = list["crawls"].as_array().unwrap();
    assert_eq!(jobs.len(), 1, "{list}");
    assert_eq!(jobs[0]["state"], "failed");
    assert!(jobs[0]["error"].as_str().is_some_and(|e| !e.is_empty()));
}

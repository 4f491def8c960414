//! `trawl serve` as users start it: a real process on a free port.

#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::{spawn_serve, trawl, wait_until};
use trawl_testsite::{SiteConfig, TestSite};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_answers_scrapes_and_stops_on_sigterm() {
    let site = TestSite::start(SiteConfig {
        pages: 5,
        ..Default::default()
    })
    .await
    .unwrap();
    let data = tempfile::tempdir().unwrap();
    let (mut child, addr) = spawn_serve(
        &["--allow-private", "--data", data.path().to_str().unwrap()],
        true,
    );
    let answer: serde_json::Value = reqwest::Client::new()
        .post(format!("http://{addr}/v1/scrape"))
        .json(&serde_json::json!({"url": format!("{}/", site.base_url()), "formats": ["json", "links"]}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(answer["status"], 200, "{answer}");
    assert!(
        answer["title"].as_str().is_some_and(|t| !t.is_empty()),
        "{answer}"
    );
    let ok = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(ok.success());
    let mut status = None;
    wait_until("serve to exit", Duration::from_secs(10), || {
        status = child.try_wait().unwrap();
        status.is_some()
    });
    assert_eq!(status.unwrap().code(), Some(0));
    site.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_are_made_listed_required_and_revoked() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_str().unwrap().to_string();
    let out = trawl()
        .args(["serve", "keys", "add", "team", "--data", &data])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let key = String::from_utf8(out.stdout).unwrap().trim().to_string();
    assert!(key.starts_with("trawl_") && key.len() > 40, "{key}");
    let out = trawl()
        .args(["serve", "keys", "list", "--data", &data])
        .output()
        .unwrap();
    let listed = String::from_utf8(out.stdout).unwrap();
    assert!(
        listed.starts_with("team\t") && !listed.contains(&key),
        "{listed}"
    );

    let (mut child, addr) = spawn_serve(&["--data", &data], false);
    let list = |key: Option<String>| {
        let url = format!("http://{addr}/v1/crawls");
        async move {
            let mut req = reqwest::Client::new().get(url);
            if let Some(k) = key {
                req = req.bearer_auth(k);
            }
            req.send().await.unwrap().status().as_u16()
        }
    };
    assert_eq!(list(None).await, 401);
    assert_eq!(list(Some(key.clone())).await, 200);
    child.kill().unwrap();
    let _ = child.wait();

    let out = trawl()
        .args(["serve", "keys", "revoke", "team", "--data", &data])
        .output()
        .unwrap();
    assert!(out.status.success());
    let out = trawl()
        .args(["serve", "keys", "list", "--data", &data])
        .output()
        .unwrap();
    assert!(out.stdout.is_empty());
}

/// A server with one key, reaching only loopback targets (`--target-host
/// 127.0.0.1`: generated requests never resolve a name nor leave the
/// machine); returns the process, its address and the key.
fn keyed_server(data: &std::path::Path) -> (std::process::Child, String, String) {
    let dir = data.to_str().unwrap();
    let out = trawl()
        .args(["serve", "keys", "add", "client", "--data", dir])
        .output()
        .unwrap();
    assert!(out.status.success());
    let key = String::from_utf8(out.stdout).unwrap().trim().to_string();
    let (child, addr) = spawn_serve(
        &[
            "--data",
            dir,
            "--allow-private",
            "--target-host",
            "127.0.0.1",
            "--timeout",
            "5s",
        ],
        false,
    );
    (child, addr, key)
}

/// The Python client in examples/, written from /openapi.json, against a
/// real server and the test site: every operation of the document has a
/// method, and each behaves as documented.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_python_client_covers_the_openapi_document_and_works() {
    let site = TestSite::start(SiteConfig {
        pages: 40,
        fanout: 4,
        ..Default::default()
    })
    .await
    .unwrap();
    let data = tempfile::tempdir().unwrap();
    let (mut child, addr, key) = keyed_server(data.path());
    let examples = concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/python");
    let out = tokio::process::Command::new("python3")
        .arg("check_client.py")
        .args([&format!("http://{addr}"), &key, &site.base_url()])
        .current_dir(examples)
        .output()
        .await
        .unwrap();
    child.kill().unwrap();
    let _ = child.wait();
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    site.shutdown().await;
}

/// schemathesis (PyPI) generates requests from /openapi.json, valid and
/// not, and checks every answer against the document: no server error,
/// documented status codes, content types and schemas, 401 without the
/// key, invalid requests refused. Not run: `positive_data_acceptance`
/// (a request the schema allows must succeed): the API checks more than
/// a schema says (a URL must be http(s) with a host, settings values and
/// selectors must parse), so schema-valid nonsense is rightly refused.
#[test]
fn schemathesis_finds_no_failure_in_the_api() {
    let data = tempfile::tempdir().unwrap();
    let (mut child, addr, key) = keyed_server(data.path());
    let out = std::process::Command::new("schemathesis")
        .args([
            "run",
            &format!("http://{addr}/openapi.json"),
            "--header",
            &format!("Authorization: Bearer {key}"),
            "--exclude-checks",
            "positive_data_acceptance",
            "--max-examples",
            "25",
            "--seed",
            "16",
            "--request-timeout",
            "20",
        ])
        .env("NO_COLOR", "1")
        // Its cache (crashes it replays on the next run) in a directory of
        // this run: each run starts afresh and the tree stays clean.
        .current_dir(data.path())
        .output()
        .expect("schemathesis is installed (scripts/test.sh)");
    child.kill().unwrap();
    let _ = child.wait();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("Tested: 9"), "{stdout}");
}

/// `kill -9` of the server mid-job: the next server on the same data
/// resumes the job from its last checkpoint; what a reader had read stays
/// as it was, and every page is in the stream exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_survives_kill_9_of_the_server_without_losing_or_repeating_items() {
    let site = TestSite::start(SiteConfig {
        pages: 200,
        fanout: 4,
        latency: Some(Duration::from_millis(20)),
        ..Default::default()
    })
    .await
    .unwrap();
    let truth = site.site().ground_truth();
    let data = tempfile::tempdir().unwrap();
    let dir = data.path().to_str().unwrap();
    let (mut first, addr) = spawn_serve(&["--data", dir, "--allow-private"], true);
    let job: serde_json::Value = reqwest::Client::new()
        .post(format!("http://{addr}/v1/crawls"))
        .json(&serde_json::json!({"seeds": [format!("{}/", site.base_url())], "settings": {"per_host": 2}}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = job["id"].as_str().unwrap().to_string();
    let mut res = reqwest::get(format!("http://{addr}/v1/crawls/{id}/items"))
        .await
        .unwrap();
    let mut bytes = Vec::new();
    while bytes.iter().filter(|b| **b == b'\n').count() < 30 {
        let chunk = tokio::time::timeout(Duration::from_secs(30), res.chunk())
            .await
            .expect("items arrive")
            .unwrap()
            .expect("the job runs");
        bytes.extend_from_slice(&chunk);
    }
    first.kill().unwrap();
    let _ = first.wait();
    let whole = bytes.iter().rposition(|b| *b == b'\n').unwrap() + 1;
    let before: Vec<serde_json::Value> = String::from_utf8(bytes[..whole].to_vec())
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();

    let (mut second, addr) = spawn_serve(&["--data", dir, "--allow-private"], true);
    let all = common::read_job_items(&addr, &id, 0).await;
    assert_eq!(all[..before.len()], before[..], "what was read stays");
    common::assert_every_page_once(&all, &truth);
    second.kill().unwrap();
    let _ = second.wait();
    site.shutdown().await;
}

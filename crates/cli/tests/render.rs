//! Rendering through real Chromium (Debian's `chromium`) against a real
//! nginx: which URLs the browser fetched is read from nginx's access log
//! (scripts and JSON only a browser asks for), not from trawl's stats.

#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use serde_json::Value;
use trawl_testsite::js_site::{write_js_site, write_mixed_site};
use trawl_testsite::nginx::{Nginx, NginxOptions};

const TEXT: &str = "The Python Tutorial is an informal introduction to the basic concepts and \
features of the Python language and system. It helps to have a Python interpreter handy for \
hands-on experience, but all examples are self-contained, so the tutorial can be read off-line \
as well. For a description of standard objects and modules, see the library reference.";

fn served(write: impl FnOnce(&std::path::Path)) -> (tempfile::TempDir, Nginx) {
    let root = tempfile::tempdir().unwrap();
    write(root.path());
    let nginx = Nginx::start(NginxOptions::new(root.path())).unwrap();
    (root, nginx)
}

fn crawl(seed: &str, args: &[&str]) -> (i32, String, Value, Vec<Value>) {
    let mut all = vec!["--ignore-robots".to_string()];
    all.extend(args.iter().map(|s| s.to_string()));
    common::crawl_with_stats(seed, &all)
}

/// `--render auto` on a site where every 5th page is built by script:
/// only those go through the browser (the JSON of a page is fetched once
/// for each of them and never for the others), each page's document is
/// fetched once (the browser gets trawl's response), and the links the
/// scripts build are followed.
#[test]
fn auto_renders_only_the_pages_that_need_it() {
    const PAGES: usize = 40;
    let (_root, nginx) = served(|r| write_mixed_site(r, PAGES, 5, 2, TEXT).unwrap());
    let seed = format!("{}mixed/0.html", nginx.url());
    // Every page of this site is one paragraph, rotated, linking to the
    // next pages: what a trap looks like to the detector (which would stop
    // after 33 pages), so it is off here.
    let (code, stderr, stats, items) = crawl(
        &seed,
        &["--render", "auto", "--render-tabs", "2", "--no-traps"],
    );
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(items.len(), PAGES, "every page reached: {stderr}");
    let log = nginx.access_log();
    let json: BTreeSet<String> = log
        .iter()
        .filter(|l| l.uri.starts_with("/api/"))
        .map(|l| l.uri.clone())
        .collect();
    let expected: BTreeSet<String> = (0..PAGES)
        .filter(|n| n % 5 == 4)
        .map(|n| format!("/api/mixed-{n}.json"))
        .collect();
    assert_eq!(
        json, expected,
        "the browser ran exactly the script-built pages"
    );
    for n in 0..PAGES {
        let doc = format!("/mixed/{n}.html");
        let times = log.iter().filter(|l| l.uri == doc).count();
        assert_eq!(times, 1, "{doc} fetched {times} times");
    }
    let rendered: Vec<&Value> = items
        .iter()
        .filter(|i| i.get("_render").is_some())
        .collect();
    assert_eq!(rendered.len(), PAGES / 5, "{items:?}");
    for item in &rendered {
        assert!(item["links_count"].as_u64().unwrap() >= 2, "{item}");
    }
    assert_eq!(stats["rendered"], PAGES as u64 / 5, "{stats}");
    assert_eq!(
        stats["render"]["auto"]["plain"],
        (PAGES - PAGES / 5) as u64,
        "{stats}"
    );
    assert_eq!(
        stats["render"]["auto"]["rendered"],
        PAGES as u64 / 5,
        "{stats}"
    );
}

fn js_site() -> (tempfile::TempDir, Nginx) {
    served(|r| write_js_site(r, 5).unwrap())
}

/// Runs `trawl run FILE -q -o ITEMS ARGS…`; returns (code, stderr, items).
fn run_spider(toml: &str, args: &[&str]) -> (i32, String, Vec<Value>) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("spider.toml");
    std::fs::write(&file, toml).unwrap();
    let items = dir.path().join("items.jsonl");
    let out = common::trawl_with_warnings()
        .arg("run")
        .arg(&file)
        .args(["-q", "--ignore-robots", "-o"])
        .arg(&items)
        .arg("--errors")
        .arg(dir.path().join("errors.jsonl"))
        .args(args)
        .output()
        .unwrap();
    let items = std::fs::read_to_string(&items)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
        items,
    )
}

/// A spider file renders per rule: the list page always (waiting for its
/// script-built list), the products found on it `auto` (their rule's
/// required field is missing from the plain page, so they are rendered),
/// and every field rule reads the rendered DOM.
#[test]
fn spider_rules_render_client_built_lists_and_products() {
    let (_root, nginx) = js_site();
    let toml = format!(
        r#"
name = "jsshop"
start_urls = ["{base}js/list.html"]
render = {{ mode = "always", wait = [{{ selector = "ul.products li" }}] }}

[[follow]]
selector = "ul.products a"
callback = "product"
render = "auto"

[items.product]
[items.product.fields]
name = {{ selector = "h1.name", required = true }}
price = {{ selector = "span.price", type = "number" }}
"#,
        base = nginx.url()
    );
    let (code, stderr, items) = run_spider(&toml, &["--render-tabs", "2"]);
    assert_eq!(code, 0, "{stderr}");
    let mut names: Vec<String> = items
        .iter()
        .map(|i| i["name"].as_str().unwrap_or("").to_string())
        .collect();
    names.sort();
    assert_eq!(
        names,
        (1..=5).map(|i| format!("Product {i}")).collect::<Vec<_>>(),
        "{items:?}"
    );
    for item in &items {
        assert!(item["price"].as_f64().unwrap() > 10.0, "{item}");
        let reason = item["_render"]["reason"].as_str().unwrap();
        assert!(
            reason.contains("h1.name") || reason.contains("pattern"),
            "{item}"
        );
    }
    let uris: Vec<String> = nginx.access_log().into_iter().map(|l| l.uri).collect();
    for i in 1..=5 {
        assert!(uris.contains(&format!("/api/product-{i}.json")), "{uris:?}");
    }
}

/// Actions in the spider file: five scrolls to the bottom load the whole
/// endless list.
#[test]
fn scroll_actions_load_an_endless_list() {
    let (_root, nginx) = js_site();
    let toml = format!(
        r#"
name = "endless"
start_urls = ["{base}js/scroll.html"]
render = {{ mode = "always", wait = [{{ selector = "li.row" }}], actions = [{{ scroll = 5 }}], html = true }}

[items.rows]
match = "scroll"
[items.rows.fields]
rows = {{ selector = "li.row", type = "list" }}
"#,
        base = nginx.url()
    );
    let (code, stderr, items) = run_spider(&toml, &[]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(items.len(), 1, "{items:?}");
    assert_eq!(
        items[0]["rows"].as_array().unwrap().len(),
        60,
        "{}",
        items[0]
    );
    // `html = true`: the rendered HTML is in the item.
    let html = items[0]["_rendered_html"].as_str().unwrap();
    assert_eq!(html.matches("class=\"row\"").count(), 60);
    let uris: Vec<String> = nginx.access_log().into_iter().map(|l| l.uri).collect();
    assert!(uris.contains(&"/api/scroll-5.json".to_string()), "{uris:?}");
}

/// A page that never reaches network idle is an error item once its wait
/// times out; the crawl goes on with the other page and ends normally.
#[test]
fn a_render_timeout_is_an_item_error_and_the_crawl_goes_on() {
    let (_root, nginx) = js_site();
    let busy = format!("{}js/busy.html", nginx.url());
    let later = format!("{}js/later.html", nginx.url());
    let (code, stderr, stats, items) = crawl(
        &busy,
        &[
            &later,
            "--render",
            "always",
            "--network-idle",
            "500ms",
            "--render-timeout",
            "3s",
            "--retries",
            "0",
        ],
    );
    assert_eq!(code, 0, "{stderr}");
    let by_url = |u: &str| items.iter().find(|i| i["url"] == u).unwrap().clone();
    let b = by_url(&busy);
    assert!(b["error"].as_str().unwrap().contains("network idle"), "{b}");
    let l = by_url(&later);
    assert_eq!(l["error"], Value::Null, "{l}");
    assert_eq!(l["title"], "Arrived");
    assert_eq!(stats["rendered"], 1, "{stats}");
}

/// Through a proxy that requires authentication: trawl's fetch of the
/// document and the browser's requests of the page's scripts and JSON
/// both go through it (nginx sees the proxy's own address), with the
/// credentials of the proxy URL.
#[test]
fn rendered_pages_go_through_an_authenticating_proxy() {
    use trawl_testsite::proxies::{ProxyOptions, TinyProxy};
    let (_root, nginx) = js_site();
    let exit = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 7));
    let proxy = TinyProxy::start(ProxyOptions::new(exit).with_auth("render", "s3cret")).unwrap();
    let seed = format!("{}js/product-3.html", nginx.url());
    let (code, stderr, _stats, items) = crawl(
        &seed,
        &[
            "--proxy",
            &proxy.url(),
            "--render",
            "always",
            "--wait-for",
            "h1.name",
            "--max-depth",
            "0",
        ],
    );
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(items.len(), 1, "{items:?}");
    assert!(items[0]["_render"].is_object(), "{}", items[0]);
    let log = nginx.access_log();
    let from = |uri: &str| -> Vec<IpAddr> {
        log.iter()
            .filter(|l| l.uri == uri)
            .map(|l| l.client)
            .collect()
    };
    assert_eq!(from("/js/product-3.html"), vec![exit], "{log:?}");
    assert_eq!(from("/js/product.js"), vec![exit], "{log:?}");
    assert_eq!(from("/api/product-3.json"), vec![exit], "{log:?}");
}

const WARC_KINDS: &str = r#"
import sys, json
from warcio.archiveiterator import ArchiveIterator
out = {'response_ids': [], 'conversions': []}
for path in sys.argv[1:]:
    with open(path, 'rb') as f:
        for r in ArchiveIterator(f, check_digests='raise'):
            body = r.content_stream().read()
            if r.rec_type == 'response':
                out['response_ids'].append(r.rec_headers.get_header('WARC-Record-ID'))
                out['response_body'] = body.decode()
            elif r.rec_type == 'conversion':
                out['conversions'].append({
                    'refers_to': r.rec_headers.get_header('WARC-Refers-To'),
                    'uri': r.rec_headers.get_header('WARC-Target-URI'),
                    'body': body.decode(),
                })
print(json.dumps(out))
"#;

/// The WARC archive keeps the raw response as it came and the rendered
/// DOM as a `conversion` record that refers to it (warcio checks the
/// digests).
#[test]
fn warc_keeps_the_raw_response_and_the_rendered_page() {
    let (_root, nginx) = js_site();
    let dir = tempfile::tempdir().unwrap();
    let seed = format!("{}js/product-2.html", nginx.url());
    let out = rendering_crawl(&seed, &["--wait-for", "h1.name"])
        .args(["--max-depth", "0", "-o", "/dev/null", "--sink"])
        .arg(format!("warc:{}", dir.path().join("warc").display()))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v = common::warcio(&dir.path().join("warc"), WARC_KINDS);
    let raw = v["response_body"].as_str().unwrap();
    assert!(raw.contains("<div id=\"root\"></div>"), "{raw}");
    assert!(!raw.contains("h1 class"), "{raw}");
    let conv = &v["conversions"][0];
    assert_eq!(conv["uri"], seed);
    assert_eq!(conv["refers_to"], v["response_ids"][0], "{v}");
    assert!(
        conv["body"]
            .as_str()
            .unwrap()
            .contains("<h1 class=\"name\">Product 2</h1>"),
        "{v}"
    );
}

/// The chromium processes trawl started: its children named chromium.
fn browser_of(trawl: u32) -> Option<i32> {
    std::fs::read_dir("/proc")
        .ok()?
        .filter_map(|e| e.ok())
        .find_map(|e| {
            let pid: i32 = e.file_name().to_str()?.parse().ok()?;
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
            let comm = &stat[stat.find('(')? + 1..stat.rfind(')')?];
            let ppid: u32 = stat[stat.rfind(')')? + 1..]
                .split_whitespace()
                .nth(1)?
                .parse()
                .ok()?;
            (ppid == trawl && comm.contains("chrom")).then_some(pid)
        })
}

/// Runs `cmd`, which must succeed, and parses its standard output as JSON.
fn json_of(cmd: &mut std::process::Command) -> Value {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// `trawl crawl SEED -q --ignore-robots --render always ARGS…`.
fn rendering_crawl(seed: &str, args: &[&str]) -> std::process::Command {
    let mut cmd = common::trawl();
    cmd.args(["crawl", seed, "-q", "--ignore-robots", "--render", "always"])
        .args(args);
    cmd
}

/// Starts a crawl that keeps a tab busy (a page that never goes idle,
/// with a long deadline) and returns it with its browser's process group
/// once the browser is rendering.
fn busy_crawl(nginx: &Nginx) -> (std::process::Child, i32) {
    let seed = format!("{}js/busy.html", nginx.url());
    let child = rendering_crawl(&seed, &["--network-idle", "1s", "--render-timeout", "120s"])
        .args(["-o", "/dev/null"])
        .stdin(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut group = None;
    common::wait_until(
        "the browser rendering the busy page",
        Duration::from_secs(30),
        || {
            group = browser_of(child.id());
            group.is_some()
                && nginx
                    .access_log()
                    .iter()
                    .any(|l| l.uri.starts_with("/api/ping.json"))
        },
    );
    (child, group.unwrap())
}

fn wait_group_gone(group: i32) {
    common::wait_until(
        "every chromium process of the crawl to exit",
        Duration::from_secs(15),
        || trawl_render::process::group_members(group).is_empty(),
    );
}

/// `kill -9` of trawl leaves no chromium process behind (the browser dies
/// with its parent, its helpers with it).
#[test]
fn no_chromium_survives_kill_9() {
    let (_root, nginx) = js_site();
    let (mut child, group) = busy_crawl(&nginx);
    assert!(!trawl_render::process::group_members(group).is_empty());
    child.kill().unwrap();
    child.wait().unwrap();
    wait_group_gone(group);
}

/// Ctrl-C: the crawl stops and takes its browser with it.
#[test]
fn no_chromium_survives_ctrl_c() {
    let (_root, nginx) = js_site();
    let (mut child, group) = busy_crawl(&nginx);
    let sent = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(sent.success());
    common::wait_until(
        "trawl to stop after Ctrl-C",
        Duration::from_secs(20),
        || child.try_wait().unwrap().is_some(),
    );
    wait_group_gone(group);
}

/// `trawl scrape URL --render --wait-for SEL --screenshot FILE`: the
/// fields come from the rendered DOM and the PNG is written.
#[test]
fn scrape_renders_waits_and_screenshots() {
    let (_root, nginx) = js_site();
    let dir = tempfile::tempdir().unwrap();
    let png = dir.path().join("shot.png");
    let url = format!("{}js/loadmore.html", nginx.url());
    let v = json_of(
        common::trawl()
            .args([
                "scrape",
                &url,
                "--ignore-robots",
                "--render",
                "--wait-for",
                "li.row",
                "-s",
                "rows:list=li.row",
                "--screenshot",
            ])
            .arg(&png),
    );
    assert_eq!(v["fields"]["rows"].as_array().map(Vec::len), Some(5), "{v}");
    let bytes = std::fs::read(&png).unwrap();
    assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n");
    // Without --render the list is empty: it is built by script.
    let v = json_of(common::trawl().args([
        "scrape",
        &url,
        "--ignore-robots",
        "-s",
        "rows:list=li.row",
    ]));
    assert!(
        v["fields"]["rows"].as_array().is_none_or(Vec::is_empty),
        "{v}"
    );
}

/// With sessions, a cookie a page sets from script goes back into the
/// session's jar: the next plain HTTP request of the session sends it
/// (nginx logs the `session` cookie each request came with).
#[test]
fn cookies_set_in_the_browser_go_back_to_the_session() {
    let (_root, nginx) = js_site();
    let seed = format!("{}js/cookie.html", nginx.url());
    let (code, stderr, _stats, items) = crawl(&seed, &["--render", "auto", "--sessions", "1"]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(items.len(), 2, "{items:?}");
    let log = nginx.access_log();
    let later: Vec<_> = log.iter().filter(|l| l.uri == "/js/later.html").collect();
    assert_eq!(later.len(), 1, "{log:?}");
    assert_eq!(later[0].session.as_deref(), Some("from-js"), "{log:?}");
    let first: Vec<_> = log.iter().filter(|l| l.uri == "/js/cookie.html").collect();
    assert_eq!(first[0].session, None, "{log:?}");
}

/// Ban detection reads the rendered page: a page that turns itself into a
/// block page by script bans the session that fetched it.
#[test]
fn a_block_page_built_by_script_is_a_ban() {
    let (_root, nginx) = js_site();
    let seed = format!("{}js/blocked.html", nginx.url());
    let (code, stderr, stats, items) = crawl(
        &seed,
        &[
            "--render",
            "always",
            "--sessions",
            "2",
            "--proxy-attempts",
            "1",
            "--retries",
            "0",
        ],
    );
    assert_ne!(code, 0, "nothing fetched: {stderr}");
    assert!(stats["bans"].as_u64().unwrap() >= 1, "{stats}");
    assert!(
        items[0]["error"].as_str().unwrap().contains("banned"),
        "{items:?}"
    );
}

/// `--screenshots --pdfs`: a PNG and a PDF per rendered page in
/// `--render-dir`, named in the item.
#[test]
fn screenshots_and_pdfs_are_written_and_named_in_items() {
    let (_root, nginx) = js_site();
    let dir = tempfile::tempdir().unwrap();
    let renders = dir.path().join("renders");
    let seed = format!("{}js/product-1.html", nginx.url());
    let render_dir = renders.display().to_string();
    let (code, stderr, _stats, items) = crawl(
        &seed,
        &[
            "--render",
            "always",
            "--wait-for",
            "h1.name",
            "--max-depth",
            "0",
            "--screenshots",
            "--pdfs",
            "--render-dir",
            &render_dir,
        ],
    );
    assert_eq!(code, 0, "{stderr}");
    let png = std::fs::read(items[0]["_screenshot"].as_str().unwrap()).unwrap();
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
    let pdf = std::fs::read(items[0]["_pdf"].as_str().unwrap()).unwrap();
    assert_eq!(&pdf[..5], b"%PDF-");
    assert!(
        items[0]["_screenshot"]
            .as_str()
            .unwrap()
            .starts_with(&render_dir)
    );
}

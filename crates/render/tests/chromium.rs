//! The renderer against real Chromium and a real nginx. One browser is
//! shared by the tests of this file (one runtime, one `Renderer`), as a
//! crawl shares one.

#![allow(clippy::unwrap_used)]

use std::sync::OnceLock;
use std::time::Duration;

use trawl_core::render::{Action, RenderMode, RenderSpec, Step, Until, Wait};
use trawl_render::{RenderConfig, RenderError, RenderJob, Rendered, Renderer};
use trawl_testsite::nginx::{Nginx, NginxOptions};

fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap()
    })
}

fn renderer() -> &'static Renderer {
    static R: OnceLock<Renderer> = OnceLock::new();
    R.get_or_init(|| {
        Renderer::new(RenderConfig {
            tabs: 3,
            page_timeout: Duration::from_secs(20),
            ..RenderConfig::default()
        })
    })
}

/// The JS site under nginx (one per test: each asserts its own log).
fn site() -> (tempfile::TempDir, Nginx) {
    let root = tempfile::tempdir().unwrap();
    trawl_testsite::js_site::write_js_site(root.path(), 5).unwrap();
    let nginx = Nginx::start(NginxOptions::new(root.path())).unwrap();
    (root, nginx)
}

async fn render(
    nginx: &Nginx,
    root: &std::path::Path,
    path: &str,
    spec: &RenderSpec,
) -> Result<Rendered, RenderError> {
    render_in(renderer(), nginx, root, path, spec).await
}

/// Renders the site's file `path` (as trawl would hand it over) in `with`.
async fn render_in(
    with: &Renderer,
    nginx: &Nginx,
    root: &std::path::Path,
    path: &str,
    spec: &RenderSpec,
) -> Result<Rendered, RenderError> {
    let url = url::Url::parse(&format!("{}{}", nginx.url(), path.trim_start_matches('/'))).unwrap();
    let body = std::fs::read(root.join(path.trim_start_matches('/'))).unwrap();
    let headers = vec![(
        "content-type".to_string(),
        "text/html; charset=utf-8".to_string(),
    )];
    let job = RenderJob {
        url: &url,
        status: 200,
        headers: &headers,
        body: &body,
        spec,
        proxy: None,
        session: None,
        user_agent: Some("trawl-test/1"),
        request_headers: &[],
        cookies: &[],
        guard: None,
    };
    with.render(&job).await
}

fn count(html: &str, sel: &str) -> usize {
    let doc = scraper::Html::parse_document(html);
    doc.select(&scraper::Selector::parse(sel).unwrap()).count()
}

#[test]
fn a_client_built_list_is_in_the_rendered_dom_and_the_document_is_not_fetched_again() {
    let (root, nginx) = site();
    let spec = RenderSpec {
        wait: vec![Wait {
            until: Until::Selector("ul.products li".into()),
            timeout: Duration::from_secs(10),
        }],
        ..RenderSpec::mode(RenderMode::Always)
    };
    let r = runtime()
        .block_on(render(&nginx, root.path(), "/js/list.html", &spec))
        .unwrap();
    assert_eq!(count(&r.html, "ul.products li.product"), 5, "{}", r.html);
    let uris: Vec<String> = nginx.access_log().into_iter().map(|l| l.uri).collect();
    assert!(uris.contains(&"/api/products.json".to_string()), "{uris:?}");
    assert!(uris.contains(&"/js/list.js".to_string()), "{uris:?}");
    assert!(
        !uris.contains(&"/js/list.html".to_string()),
        "the document came from trawl: {uris:?}"
    );
}

fn wait(until: Until, secs: u64) -> Wait {
    Wait {
        until,
        timeout: Duration::from_secs(secs),
    }
}

fn action(step: Step) -> Action {
    Action {
        step,
        timeout: Duration::from_secs(10),
        optional: false,
    }
}

#[test]
fn infinite_scroll_loads_every_page_only_after_the_scrolls() {
    let (root, nginx) = site();
    let spec = |n| RenderSpec {
        wait: vec![wait(Until::Selector("li.row".into()), 10)],
        actions: vec![action(Step::Scroll(n))],
        ..RenderSpec::mode(RenderMode::Always)
    };
    let none = runtime()
        .block_on(render(&nginx, root.path(), "/js/scroll.html", &spec(0)))
        .unwrap();
    assert_eq!(count(&none.html, "li.row"), 10);
    let five = runtime()
        .block_on(render(&nginx, root.path(), "/js/scroll.html", &spec(5)))
        .unwrap();
    assert_eq!(count(&five.html, "li.row"), 60, "after 5 scrolls");
}

#[test]
fn load_more_clicks_a_delayed_link_and_optional_clicks() {
    let (root, nginx) = site();
    let spec = RenderSpec {
        wait: vec![wait(Until::Selector("li.row".into()), 10)],
        actions: vec![Action {
            step: Step::Click {
                selector: "button.more".into(),
                times: 3,
            },
            timeout: Duration::from_secs(10),
            optional: false,
        }],
        ..RenderSpec::mode(RenderMode::Always)
    };
    let r = runtime()
        .block_on(render(&nginx, root.path(), "/js/loadmore.html", &spec))
        .unwrap();
    assert_eq!(count(&r.html, "li.row"), 20, "5 + 3 clicks × 5");
    assert_eq!(count(&r.html, "button.more"), 0);

    // The link comes after 500 ms: load alone misses it, a selector wait sees it.
    let load = RenderSpec {
        wait: vec![wait(Until::Load, 10)],
        ..RenderSpec::mode(RenderMode::Always)
    };
    let r = runtime()
        .block_on(render(&nginx, root.path(), "/js/delayed.html", &load))
        .unwrap();
    assert_eq!(count(&r.html, "a#later"), 0);
    let sel = RenderSpec {
        wait: vec![wait(Until::Selector("a#later".into()), 5)],
        ..load.clone()
    };
    let r = runtime()
        .block_on(render(&nginx, root.path(), "/js/delayed.html", &sel))
        .unwrap();
    assert_eq!(count(&r.html, "a#later[href='/js/later.html']"), 1);
    let js = RenderSpec {
        wait: vec![wait(Until::Js("document.links.length > 0".into()), 5)],
        ..load.clone()
    };
    let r = runtime()
        .block_on(render(&nginx, root.path(), "/js/delayed.html", &js))
        .unwrap();
    assert_eq!(count(&r.html, "a#later"), 1);

    // An optional click on nothing is skipped; a required one is an error.
    let optional = RenderSpec {
        actions: vec![Action {
            step: Step::Click {
                selector: "#cookie-ok".into(),
                times: 1,
            },
            timeout: Duration::from_millis(300),
            optional: true,
        }],
        ..load.clone()
    };
    runtime()
        .block_on(render(&nginx, root.path(), "/js/later.html", &optional))
        .unwrap();
    let required = RenderSpec {
        actions: vec![Action {
            step: Step::Click {
                selector: "#cookie-ok".into(),
                times: 1,
            },
            timeout: Duration::from_millis(300),
            optional: false,
        }],
        ..load
    };
    let e = runtime()
        .block_on(render(&nginx, root.path(), "/js/later.html", &required))
        .unwrap_err();
    assert!(
        matches!(e, RenderError::Timeout(ref w) if w.contains("#cookie-ok")),
        "{e}"
    );
}

#[test]
fn typing_into_a_field_runs_the_page_s_handlers() {
    let (root, nginx) = site();
    let spec = RenderSpec {
        actions: vec![
            action(Step::Type {
                selector: "#q".into(),
                text: "rust crawler".into(),
            }),
            action(Step::WaitFor("li.hit".into())),
        ],
        ..RenderSpec::mode(RenderMode::Always)
    };
    let r = runtime()
        .block_on(render(&nginx, root.path(), "/js/search.html", &spec))
        .unwrap();
    assert!(r.html.contains("Result for rust crawler"), "{}", r.html);
}

#[test]
fn a_page_that_never_goes_idle_times_out_and_the_next_page_renders() {
    let (root, nginx) = site();
    let idle = RenderSpec {
        wait: vec![wait(Until::NetworkIdle(Duration::from_millis(500)), 2)],
        ..RenderSpec::mode(RenderMode::Always)
    };
    let started = std::time::Instant::now();
    let e = runtime()
        .block_on(render(&nginx, root.path(), "/js/busy.html", &idle))
        .unwrap_err();
    assert!(
        matches!(e, RenderError::Timeout(ref w) if w.contains("network idle")),
        "{e}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "{:?}",
        started.elapsed()
    );
    let ok = runtime()
        .block_on(render(
            &nginx,
            root.path(),
            "/js/product-2.html",
            &RenderSpec {
                wait: vec![wait(Until::Selector("h1.name".into()), 10)],
                ..RenderSpec::mode(RenderMode::Always)
            },
        ))
        .unwrap();
    assert_eq!(count(&ok.html, "h1.name"), 1);
    // Network idle is reached on a quiet page.
    runtime()
        .block_on(render(&nginx, root.path(), "/js/list.html", &idle))
        .unwrap();
}

#[test]
fn a_tab_that_crashes_fails_alone() {
    let (root, nginx) = site();
    let spec = RenderSpec {
        wait: vec![wait(Until::Delay(Duration::from_secs(60)), 70)],
        timeout: Some(Duration::from_secs(60)),
        ..RenderSpec::mode(RenderMode::Always)
    };
    // A browser of its own with a small script heap, so the page dies
    // fast and does not starve the other tests' tabs.
    let own = Renderer::new(RenderConfig {
        tabs: 1,
        launch: trawl_render::LaunchConfig {
            js_heap_mb: Some(64),
            ..Default::default()
        },
        ..RenderConfig::default()
    });
    let go = |path: &str, spec: &RenderSpec| {
        runtime().block_on(render_in(&own, &nginx, root.path(), path, spec))
    };
    let started = std::time::Instant::now();
    let e = go("/js/crash.html", &spec).unwrap_err();
    assert!(
        matches!(e, RenderError::Crashed),
        "{e} after {:?}",
        started.elapsed()
    );
    let ok = go(
        "/js/product-1.html",
        &RenderSpec {
            wait: vec![wait(Until::Selector("h1.name".into()), 10)],
            ..RenderSpec::mode(RenderMode::Always)
        },
    )
    .unwrap();
    assert_eq!(count(&ok.html, "h1.name"), 1);
    assert_eq!(own.stats().snapshot().crashes, 1);
    assert_eq!(own.stats().snapshot().restarts, 0, "only the tab died");
    runtime().block_on(own.shutdown());
}

/// A browser that dies (killed here) is replaced at the next page, and
/// none of its processes is left.
#[test]
fn a_dead_browser_is_restarted_and_leaves_nothing_behind() {
    let (root, nginx) = site();
    // A browser of its own: killing the shared one would fail the other
    // tests' pages.
    let own = Renderer::new(RenderConfig {
        tabs: 1,
        ..RenderConfig::default()
    });
    let go = |path: &str, spec: &RenderSpec| {
        runtime().block_on(render_in(&own, &nginx, root.path(), path, spec))
    };
    let spec = RenderSpec {
        wait: vec![wait(Until::Selector("h1.name".into()), 10)],
        ..RenderSpec::mode(RenderMode::Always)
    };
    go("/js/product-1.html", &spec).unwrap();
    let pid = runtime().block_on(own.browser_pid()).unwrap() as i32;
    let restarts = own.stats().snapshot().restarts;
    assert!(
        std::process::Command::new("kill")
            .args(["-KILL", &pid.to_string()])
            .status()
            .unwrap()
            .success()
    );
    let end = std::time::Instant::now() + Duration::from_secs(15);
    while !trawl_render::process::group_members(pid).is_empty() {
        assert!(
            std::time::Instant::now() < end,
            "chromium helpers outlived their browser: {:?}",
            trawl_render::process::group_members(pid)
                .iter()
                .map(|p| std::fs::read_to_string(format!("/proc/{p}/stat")).unwrap_or_default())
                .collect::<Vec<_>>()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    // The page after the death renders in a new browser (a page caught
    // in between may fail; the crawl retries those).
    let mut rendered = None;
    for _ in 0..3 {
        if let Ok(r) = go("/js/product-2.html", &spec) {
            rendered = Some(r);
            break;
        }
    }
    assert_eq!(count(&rendered.unwrap().html, "h1.name"), 1);
    assert!(own.stats().snapshot().restarts > restarts);
    let new_pid = runtime().block_on(own.browser_pid()).unwrap() as i32;
    assert_ne!(new_pid, pid);
    runtime().block_on(own.shutdown());
}

/// Past the memory ceiling the browser is replaced between pages.
#[test]
fn a_browser_past_the_memory_ceiling_is_replaced() {
    let (root, nginx) = site();
    let small = Renderer::new(RenderConfig {
        tabs: 1,
        memory_ceiling: Some(1 << 20),
        ..RenderConfig::default()
    });
    let spec = RenderSpec {
        wait: vec![wait(Until::Selector("h1.name".into()), 10)],
        ..RenderSpec::mode(RenderMode::Always)
    };
    let go = |path: &str| runtime().block_on(render_in(&small, &nginx, root.path(), path, &spec));
    go("/js/product-1.html").unwrap();
    let first = runtime().block_on(small.browser_pid()).unwrap() as i32;
    let end = std::time::Instant::now() + Duration::from_secs(10);
    while small.stats().snapshot().browser_rss_mb == 0 {
        assert!(std::time::Instant::now() < end, "no memory reading");
        std::thread::sleep(Duration::from_millis(20));
    }
    go("/js/product-2.html").unwrap();
    assert_eq!(small.stats().snapshot().restarts, 1);
    let second = runtime().block_on(small.browser_pid()).unwrap() as i32;
    assert_ne!(first, second);
    let end = std::time::Instant::now() + Duration::from_secs(15);
    while !trawl_render::process::group_members(first).is_empty() {
        assert!(
            std::time::Instant::now() < end,
            "the replaced browser lives on"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    runtime().block_on(small.shutdown());
    let end = std::time::Instant::now() + Duration::from_secs(15);
    while !trawl_render::process::group_members(second).is_empty() {
        assert!(
            std::time::Instant::now() < end,
            "shutdown left chromium running"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Images and media are blocked by default (the server never sees them);
/// stylesheets and scripts load; `block` per rule changes that.
#[test]
fn images_and_media_are_blocked_by_default() {
    use trawl_core::render::Blocked;
    let (root, nginx) = site();
    let spec = RenderSpec {
        // The list, then quiet: every request the page makes has been
        // made (or refused).
        wait: vec![
            wait(Until::Selector("ul.products li".into()), 10),
            wait(Until::NetworkIdle(Duration::from_millis(300)), 10),
        ],
        ..RenderSpec::mode(RenderMode::Always)
    };
    let r = runtime()
        .block_on(render(&nginx, root.path(), "/js/media.html", &spec))
        .unwrap();
    assert!(r.blocked >= 2, "{r:?}");
    let seen = |uri: &str| nginx.access_log().iter().any(|l| l.uri == uri);
    assert!(!seen("/img/photo.png") && !seen("/img/clip.mp4"));
    assert!(seen("/js/style.css") && seen("/js/list.js"));

    let (root, nginx) = site();
    let strict = RenderSpec {
        block: vec![Blocked::Stylesheet],
        ..spec.clone()
    };
    runtime()
        .block_on(render(&nginx, root.path(), "/js/media.html", &strict))
        .unwrap();
    let seen = |uri: &str| nginx.access_log().iter().any(|l| l.uri == uri);
    assert!(!seen("/js/style.css"), "stylesheets blocked");
    assert!(seen("/img/photo.png"), "images allowed when not listed");

    // Third parties: the page's request to another host never leaves.
    let (root, nginx) = site();
    let own_host = RenderSpec {
        block: vec![Blocked::ThirdParty],
        ..spec.clone()
    };
    let r = runtime()
        .block_on(render(&nginx, root.path(), "/js/media.html", &own_host))
        .unwrap();
    let seen = |uri: &str| nginx.access_log().iter().any(|l| l.uri == uri);
    assert!(
        seen("/js/list.js") && seen("/img/photo.png"),
        "the page's own host is no third party"
    );
    // Only the request to `localhost` (another host name) was refused.
    assert_eq!(r.blocked, 1, "{r:?}");
}

/// A guard that refuses one host name (the service's address guard in
/// trawl-fetch refuses loopback and private ranges the same way).
#[derive(Debug)]
struct RefuseHost(&'static str);

impl trawl_render::RequestGuard for RefuseHost {
    fn refuses<'a>(
        &'a self,
        url: &'a url::Url,
    ) -> futures_util::future::BoxFuture<'a, Option<String>> {
        Box::pin(async move { (url.host_str() == Some(self.0)).then(|| "refused".to_string()) })
    }
}

#[test]
fn the_guard_refuses_what_a_page_loads_from_a_refused_host() {
    let (root, nginx) = site();
    // The page's own host is refused: the document (trawl's response) is
    // still rendered, nothing it asks that host for is fetched.
    let spec = RenderSpec {
        wait: vec![wait(Until::NetworkIdle(Duration::from_millis(300)), 10)],
        ..RenderSpec::mode(RenderMode::Always)
    };
    let url = url::Url::parse(&format!("{}js/media.html", nginx.url())).unwrap();
    let body = std::fs::read(root.path().join("js/media.html")).unwrap();
    let guard: std::sync::Arc<dyn trawl_render::RequestGuard> =
        std::sync::Arc::new(RefuseHost("127.0.0.1"));
    let headers = [("content-type".to_string(), "text/html".to_string())];
    let job = |guard| RenderJob {
        url: &url,
        status: 200,
        headers: &headers,
        body: &body,
        spec: &spec,
        proxy: None,
        session: None,
        user_agent: None,
        request_headers: &[],
        cookies: &[],
        guard,
    };
    let r = runtime()
        .block_on(renderer().render(&job(Some(&guard))))
        .unwrap();
    let log = nginx.access_log();
    assert!(log.is_empty(), "the refused host got no request: {log:?}");
    assert!(r.blocked >= 2, "{r:?}");
    assert_eq!(
        count(&r.html, "ul.products li"),
        0,
        "its script was refused"
    );
    // Without the guard the same page loads them.
    runtime().block_on(renderer().render(&job(None))).unwrap();
    let log = nginx.access_log();
    assert!(log.iter().any(|l| l.uri == "/js/list.js"), "{log:?}");
}

/// A browser that stops answering (SIGSTOP here) fails the page at its
/// deadline and is replaced; the hung one is killed, group and all.
#[test]
fn a_hung_browser_is_replaced() {
    let (root, nginx) = site();
    let own = Renderer::new(RenderConfig {
        tabs: 1,
        page_timeout: Duration::from_secs(3),
        ..RenderConfig::default()
    });
    let spec = RenderSpec {
        wait: vec![wait(Until::Selector("h1.name".into()), 10)],
        ..RenderSpec::mode(RenderMode::Always)
    };
    let go = |path: &str| runtime().block_on(render_in(&own, &nginx, root.path(), path, &spec));
    go("/js/product-1.html").unwrap();
    let hung = runtime().block_on(own.browser_pid()).unwrap() as i32;
    let stop = |sig: &str| {
        std::process::Command::new("kill")
            .args([sig, &hung.to_string()])
            .status()
            .unwrap()
    };
    assert!(stop("-STOP").success());
    let e = go("/js/product-2.html").unwrap_err();
    assert!(matches!(e, RenderError::Timeout(_)), "{e}");
    let r = go("/js/product-3.html").unwrap();
    assert_eq!(count(&r.html, "h1.name"), 1);
    assert_eq!(own.stats().snapshot().restarts, 1);
    let end = std::time::Instant::now() + Duration::from_secs(15);
    while !trawl_render::process::group_members(hung).is_empty() {
        assert!(std::time::Instant::now() < end, "the hung browser lives on");
        std::thread::sleep(Duration::from_millis(20));
    }
    runtime().block_on(own.shutdown());
}

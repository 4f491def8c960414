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
    };
    renderer().render(&job).await
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

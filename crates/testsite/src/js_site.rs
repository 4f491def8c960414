//! Static pages whose content is built by JavaScript in the browser, for
//! rendering tests and benchmarks: served by a real nginx
//! ([`crate::nginx`]), so its access log tells which URLs a browser
//! fetched (scripts under `/js/`, JSON under `/api/`: only a browser asks
//! for them).
//!
//! | page | what the browser does |
//! |---|---|
//! | `/js/list.html` | builds `ul.products` (links to the products) from `/api/products.json` |
//! | `/js/product-N.html` | builds `h1.name` and `span.price` from `/api/product-N.json` |
//! | `/js/scroll.html` | 10 `li.row`; each scroll to the bottom loads 10 more, 5 times (60) |
//! | `/js/loadmore.html` | 5 `li.row`; `button.more` loads 5 more, 3 times, then goes away |
//! | `/js/delayed.html` | `a#later` → `/js/later.html` appears after 500 ms |
//! | `/js/search.html` | typing into `input#q` shows `li.hit` "Result for …" |
//! | `/js/cookie.html` | sets the cookie `session=from-js` from script; links to `/js/later.html` |
//! | `/js/blocked.html` | turns itself into an "Access denied" block page |
//! | `/js/media.html` | a stylesheet, an image, a video, a script, and a request to another host (`localhost`) |
//! | `/js/busy.html` | a request every 50 ms forever: never network-idle |
//! | `/js/crash.html` | allocates until its tab dies |
//! | `/js/shop-N.html` | one page of the mixed site: built by script (see [`write_mixed_site`]) |
//! | `/plain/N.html` | server-rendered documentation-like pages |

use std::fmt::Write as _;
use std::fs;
use std::path::Path;

const PRODUCT_JS: &str = r#"(async () => {
  const n = location.pathname.match(/product-(\d+)/)[1];
  const p = await (await fetch('/api/product-' + n + '.json')).json();
  document.getElementById('root').innerHTML =
    '<h1 class="name">' + p.name + '</h1><span class="price">' + p.price + '</span>' +
    '<a class="next" href="/js/product-' + p.next + '.html">next</a>';
})();
"#;

const LIST_JS: &str = r#"(async () => {
  const items = await (await fetch('/api/products.json')).json();
  document.getElementById('root').innerHTML = '<ul class="products">' + items.map(p =>
    '<li class="product"><a href="/js/product-' + p.id + '.html">' + p.name + '</a></li>').join('') + '</ul>';
})();
"#;

const ROWS_JS: &str = r#"function addRows(list, rows) {
  for (const r of rows) {
    const li = document.createElement('li');
    li.className = 'row';
    li.style.height = '120px';
    li.textContent = r;
    list.appendChild(li);
  }
}
"#;

const SCROLL_JS: &str = r#"(() => {
  const list = document.getElementById('rows');
  let page = 0, loading = false;
  fetch('/api/scroll-0.json').then(r => r.json()).then(rows => addRows(list, rows));
  window.addEventListener('scroll', async () => {
    if (loading || page >= 5) return;
    if (window.innerHeight + window.scrollY < document.documentElement.scrollHeight - 50) return;
    loading = true;
    page += 1;
    const rows = await (await fetch('/api/scroll-' + page + '.json')).json();
    addRows(list, rows);
    loading = false;
  });
})();
"#;

const LOADMORE_JS: &str = r#"(() => {
  const list = document.getElementById('rows');
  let page = 0;
  fetch('/api/more-0.json').then(r => r.json()).then(rows => addRows(list, rows));
  document.querySelector('button.more').addEventListener('click', async (e) => {
    page += 1;
    const rows = await (await fetch('/api/more-' + page + '.json')).json();
    addRows(list, rows);
    if (page >= 3) e.target.remove();
  });
})();
"#;

fn page(title: &str, body: &str) -> String {
    format!(
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>{title}</title></head>\n<body>{body}</body></html>\n"
    )
}

fn rows(prefix: &str, from: usize, n: usize) -> String {
    let v: Vec<String> = (from..from + n).map(|i| format!("{prefix} {i}")).collect();
    serde_json::to_string(&v).unwrap_or_default()
}

/// Writes the pages of the [module table](self) under `root` (`products`
/// product pages).
pub fn write_js_site(root: &Path, products: usize) -> std::io::Result<()> {
    let js = root.join("js");
    let api = root.join("api");
    fs::create_dir_all(&js)?;
    fs::create_dir_all(&api)?;
    fs::write(js.join("product.js"), PRODUCT_JS)?;
    fs::write(js.join("list.js"), LIST_JS)?;
    fs::write(js.join("rows.js"), ROWS_JS)?;
    fs::write(js.join("scroll.js"), SCROLL_JS)?;
    fs::write(js.join("loadmore.js"), LOADMORE_JS)?;
    let products = products.max(1);
    let mut list = Vec::new();
    for i in 1..=products {
        list.push(serde_json::json!({"id": i, "name": format!("Product {i}")}));
        fs::write(
            api.join(format!("product-{i}.json")),
            serde_json::json!({
                "name": format!("Product {i}"),
                "price": format!("{}.99", 10 + i),
                "next": i % products + 1,
            })
            .to_string(),
        )?;
        fs::write(
            js.join(format!("product-{i}.html")),
            page(
                &format!("Product {i}"),
                "<div id=\"root\"></div><script src=\"/js/product.js\"></script>",
            ),
        )?;
    }
    fs::write(
        api.join("products.json"),
        serde_json::Value::Array(list).to_string(),
    )?;
    fs::write(
        js.join("list.html"),
        page(
            "Products",
            "<div id=\"root\"></div><noscript>This shop needs JavaScript.</noscript><script src=\"/js/list.js\"></script>",
        ),
    )?;
    for p in 0..=5 {
        fs::write(
            api.join(format!("scroll-{p}.json")),
            rows("Row", p * 10, 10),
        )?;
    }
    fs::write(
        js.join("scroll.html"),
        page(
            "Endless",
            "<ul id=\"rows\"></ul><script src=\"/js/rows.js\"></script><script src=\"/js/scroll.js\"></script>",
        ),
    )?;
    for p in 0..=3 {
        fs::write(api.join(format!("more-{p}.json")), rows("Item", p * 5, 5))?;
    }
    fs::write(
        js.join("loadmore.html"),
        page(
            "Load more",
            "<ul id=\"rows\"></ul><button class=\"more\">Load more</button><script src=\"/js/rows.js\"></script><script src=\"/js/loadmore.js\"></script>",
        ),
    )?;
    fs::write(
        js.join("delayed.html"),
        page(
            "Later",
            "<p>The link comes later.</p><script>setTimeout(() => { const a = document.createElement('a'); \
             a.id = 'later'; a.href = '/js/later.html'; a.textContent = 'later'; document.body.appendChild(a); }, 500);</script>",
        ),
    )?;
    fs::write(js.join("later.html"), page("Arrived", "<h1>Arrived</h1>"))?;
    fs::write(
        js.join("search.html"),
        page(
            "Search",
            "<input id=\"q\"><ul id=\"results\"></ul><script>document.getElementById('q').addEventListener('input', e => { \
             document.getElementById('results').innerHTML = '<li class=\"hit\">Result for ' + e.target.value + '</li>'; });</script>",
        ),
    )?;
    fs::write(
        js.join("cookie.html"),
        page(
            "Cookie",
            "<p>Sets a cookie from script.</p><script>document.cookie = 'session=from-js; path=/';</script>\
             <a href=\"/js/later.html\">later</a>",
        ),
    )?;
    // The words are split so that the page as served is no block page;
    // only its rendering is.
    fs::write(
        js.join("blocked.html"),
        page(
            "Shop",
            "<p>Loading…</p><script>document.title = 'Access ' + 'denied'; \
             document.body.innerHTML = '<h1>Access ' + 'denied</h1><p>Are you a ' + 'robot?</p>';</script>",
        ),
    )?;
    fs::write(js.join("style.css"), "h1 { color: #333; }")?;
    fs::write(
        js.join("media.html"),
        page(
            "Media",
            "<link rel=\"stylesheet\" href=\"/js/style.css\"><h1>Media</h1>\
             <img src=\"/img/photo.png\"><video src=\"/img/clip.mp4\" autoplay muted></video>\
             <script src=\"/js/list.js\"></script><div id=\"root\"></div>\
             <script>fetch('http://localhost:' + location.port + '/api/ping.json?third-party', {mode: 'no-cors'});</script>",
        ),
    )?;
    fs::write(api.join("ping.json"), "{}")?;
    fs::write(
        js.join("busy.html"),
        page(
            "Busy",
            "<h1>Busy</h1><script>setInterval(() => fetch('/api/ping.json?' + Math.random()), 50);</script>",
        ),
    )?;
    fs::write(
        js.join("crash.html"),
        page(
            "Crash",
            "<h1>Crash</h1><script>const hog = []; setTimeout(function grow() { \
             for (let i = 0; i < 50; i++) hog.push(new Array(1 << 20).fill(i)); setTimeout(grow, 0); }, 0);</script>",
        ),
    )?;
    Ok(())
}

/// A mixed site: `pages` pages under `/mixed/`, every `js_every`-th built
/// by script (its content from `/api/mixed-N.json`), the rest
/// server-rendered; each page links to the next `links` pages. Content
/// comes from `text` (real prose, e.g. Python's documentation) cut into
/// pages, so plain pages are real-sized.
pub fn write_mixed_site(
    root: &Path,
    pages: usize,
    js_every: usize,
    links: usize,
    text: &str,
) -> std::io::Result<()> {
    let dir = root.join("mixed");
    let api = root.join("api");
    fs::create_dir_all(&dir)?;
    fs::create_dir_all(&api)?;
    fs::write(
        dir.join("page.js"),
        r#"(async () => {
  const n = location.pathname.match(/(\d+)\.html/)[1];
  const d = await (await fetch('/api/mixed-' + n + '.json')).json();
  document.getElementById('app').innerHTML = '<h1>' + d.title + '</h1><p>' + d.text + '</p>' +
    d.links.map(l => '<a href="/mixed/' + l + '.html">page ' + l + '</a>').join(' ');
})();
"#,
    )?;
    let words: Vec<&str> = text.split_whitespace().collect();
    let per_page = 700;
    for n in 0..pages {
        let start = if words.is_empty() {
            0
        } else {
            (n * per_page) % words.len()
        };
        let body_text: String = words
            .iter()
            .cycle()
            .skip(start)
            .take(per_page.min(words.len()))
            .copied()
            .collect::<Vec<_>>()
            .join(" ");
        let body_text = html_escape(&body_text);
        let targets: Vec<usize> = (1..=links).map(|k| (n + k) % pages).collect();
        if js_every > 0 && n % js_every == js_every - 1 {
            fs::write(
                api.join(format!("mixed-{n}.json")),
                serde_json::json!({"title": format!("Page {n}"), "text": body_text, "links": targets})
                    .to_string(),
            )?;
            fs::write(
                dir.join(format!("{n}.html")),
                page(
                    &format!("Page {n}"),
                    "<div id=\"app\"></div><script src=\"/mixed/page.js\"></script>",
                ),
            )?;
        } else {
            let mut body = format!("<h1>Page {n}</h1><p>{body_text}</p><nav>");
            for t in targets {
                let _ = write!(body, "<a href=\"/mixed/{t}.html\">page {t}</a> ");
            }
            body.push_str("</nav>");
            fs::write(
                dir.join(format!("{n}.html")),
                page(&format!("Page {n}"), &body),
            )?;
        }
    }
    Ok(())
}

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

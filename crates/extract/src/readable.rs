//! Main-content extraction for LLM and search pipelines: find the page's
//! main element, drop the chrome around and inside it, and render it as
//! plain text or Markdown (htmd). Also absolute link and image lists.
//!
//! # Choosing the main element
//! 1. the `<article>` with the most paragraph text, if any has some;
//! 2. else the first `<main>`, else the first `[role=main]`;
//! 3. else the element whose direct `<p>`/`<pre>` children hold the most
//!    text (a Readability-style score), else `<body>`.
//!
//! Inside it, `nav`, `aside`, `footer`, `script`, `style`, `noscript`,
//! `template`, `form` and form controls, `iframe`, `svg`, `canvas`,
//! `dialog`, elements with `hidden`/`aria-hidden=true` or a navigation,
//! banner, contentinfo, complementary or search role are removed. A
//! `<header>` is removed too unless it holds a heading (an article's own
//! title block is kept).

use std::collections::HashMap;
use std::sync::LazyLock;

use ego_tree::{NodeId, NodeRef};
use scraper::{ElementRef, Html, Node, Selector};
use trawl_core::Url;

use crate::select::collapse_ws;

fn selector(css: &str) -> Selector {
    Selector::parse(css).expect("constant selector")
}

static ARTICLE: LazyLock<Selector> = LazyLock::new(|| selector("article"));
static MAIN: LazyLock<Selector> = LazyLock::new(|| selector("main"));
static ROLE_MAIN: LazyLock<Selector> = LazyLock::new(|| selector("[role=main]"));
static PARAS: LazyLock<Selector> = LazyLock::new(|| selector("p, pre"));
static BODY: LazyLock<Selector> = LazyLock::new(|| selector("body"));
static HEADINGS: LazyLock<Selector> = LazyLock::new(|| selector("h1, h2, h3, h4, h5, h6"));
static BASE: LazyLock<Selector> = LazyLock::new(|| selector("base[href]"));
static LINKS: LazyLock<Selector> = LazyLock::new(|| selector("a[href], area[href]"));
static IMAGES: LazyLock<Selector> = LazyLock::new(|| selector("img, picture source"));

const DROP_TAGS: &[&str] = &[
    "nav", "aside", "footer", "script", "style", "noscript", "template", "form", "button", "input",
    "select", "textarea", "iframe", "svg", "canvas", "dialog", "object", "embed",
];
const DROP_ROLES: &[&str] = &[
    "navigation",
    "banner",
    "contentinfo",
    "complementary",
    "search",
];

/// Text length of an element's `<p>`/`<pre>` descendants.
fn para_len(el: ElementRef<'_>) -> usize {
    el.select(&PARAS)
        .map(|p| collapse_ws(&p.text().collect::<String>()).len())
        .sum()
}

fn choose_main(doc: &Html) -> NodeId {
    let best_article = doc
        .select(&ARTICLE)
        .map(|a| (para_len(a), a))
        .filter(|(len, _)| *len > 0)
        .max_by_key(|(len, _)| *len);
    if let Some((_, a)) = best_article {
        return a.id();
    }
    if let Some(m) = doc
        .select(&MAIN)
        .next()
        .or_else(|| doc.select(&ROLE_MAIN).next())
    {
        return m.id();
    }
    // Score each parent by its direct paragraphs' text, in document order
    // of first appearance so that ties go to the earlier element.
    let mut order: Vec<NodeId> = Vec::new();
    let mut scores: HashMap<NodeId, usize> = HashMap::new();
    for p in doc.select(&PARAS) {
        // Paragraphs in page chrome (footer, nav, …) are not content.
        if p.ancestors().filter_map(ElementRef::wrap).any(should_drop) {
            continue;
        }
        let len = collapse_ws(&p.text().collect::<String>()).len();
        if let Some(parent) = p.parent() {
            let score = scores.entry(parent.id()).or_insert_with(|| {
                order.push(parent.id());
                0
            });
            *score += len;
        }
    }
    let mut best: Option<(NodeId, usize)> = None;
    for id in order {
        let score = scores.get(&id).copied().unwrap_or_default();
        if score > 0 && best.is_none_or(|(_, b)| score > b) {
            best = Some((id, score));
        }
    }
    match best {
        Some((id, _)) => id,
        None => doc
            .select(&BODY)
            .next()
            .map_or_else(|| doc.root_element().id(), |b| b.id()),
    }
}

fn should_drop(el: ElementRef<'_>) -> bool {
    let e = el.value();
    let name = e.name();
    if DROP_TAGS.contains(&name) {
        return true;
    }
    if name == "header" && el.select(&HEADINGS).next().is_none() {
        return true;
    }
    if e.attr("hidden").is_some()
        || e.attr("aria-hidden")
            .is_some_and(|v| v.trim().eq_ignore_ascii_case("true"))
    {
        return true;
    }
    e.attr("role")
        .is_some_and(|r| DROP_ROLES.contains(&r.trim().to_ascii_lowercase().as_str()))
}

/// Parse `html`, pick the main element and strip the chrome inside it.
fn clean_main(html: &str) -> (Html, NodeId) {
    let mut doc = Html::parse_document(html);
    let main = choose_main(&doc);
    let drop: Vec<NodeId> = doc
        .tree
        .get(main)
        .and_then(ElementRef::wrap)
        .map(|m| {
            m.descendent_elements()
                .skip(1)
                .filter(|e| should_drop(*e))
                .map(|e| e.id())
                .collect()
        })
        .unwrap_or_default();
    for id in drop {
        if let Some(mut node) = doc.tree.get_mut(id) {
            node.detach();
        }
    }
    (doc, main)
}

/// The cleaned main element's outer HTML (empty if the page has none).
pub fn main_html(html: &str) -> String {
    let (doc, main) = clean_main(html);
    doc.tree
        .get(main)
        .and_then(ElementRef::wrap)
        .map(|m| m.html())
        .unwrap_or_default()
}

fn is_block(name: &str) -> bool {
    matches!(
        name,
        "p" | "div"
            | "section"
            | "article"
            | "main"
            | "header"
            | "h1"
            | "h2"
            | "h3"
            | "h4"
            | "h5"
            | "h6"
            | "ul"
            | "ol"
            | "li"
            | "pre"
            | "blockquote"
            | "table"
            | "thead"
            | "tbody"
            | "tr"
            | "dl"
            | "dt"
            | "dd"
            | "figure"
            | "figcaption"
            | "hr"
            | "address"
            | "details"
            | "summary"
            | "body"
            | "html"
    )
}

#[derive(Default)]
struct TextBlocks {
    blocks: Vec<String>,
    current: String,
}

impl TextBlocks {
    fn flush(&mut self) {
        let text = self
            .current
            .lines()
            .map(collapse_ws)
            .filter(|l| !l.is_empty())
            .collect::<Vec<_>>()
            .join("\n");
        if !text.is_empty() {
            self.blocks.push(text);
        }
        self.current.clear();
    }

    fn walk(&mut self, node: NodeRef<'_, Node>) {
        match node.value() {
            Node::Text(t) => {
                // Newlines in source text are just whitespace; `<br>` makes lines.
                let s: &str = t;
                self.current.push_str(&s.replace(['\n', '\r'], " "));
            }
            Node::Element(e) => {
                let name = e.name();
                if name == "br" {
                    self.current.push('\n');
                } else if name == "pre" {
                    self.flush();
                    let text: String = ElementRef::wrap(node)
                        .map(|el| el.text().collect())
                        .unwrap_or_default();
                    let text = text.trim_matches('\n').trim_end();
                    if !text.is_empty() {
                        self.blocks.push(text.to_string());
                    }
                } else if is_block(name) {
                    self.flush();
                    node.children().for_each(|c| self.walk(c));
                    self.flush();
                } else {
                    if matches!(name, "td" | "th") {
                        self.current.push(' ');
                    }
                    node.children().for_each(|c| self.walk(c));
                }
            }
            _ => {}
        }
    }
}

/// The main content as plain text: one block per paragraph, heading, list
/// item, etc., whitespace-collapsed, separated by blank lines (`<br>` gives
/// a single newline; `<pre>` keeps its own line breaks).
pub fn main_text(html: &str) -> String {
    let (doc, main) = clean_main(html);
    let mut blocks = TextBlocks::default();
    if let Some(node) = doc.tree.get(main) {
        blocks.walk(node);
    }
    blocks.flush();
    blocks.blocks.join("\n\n")
}

/// The main content as Markdown (htmd: ATX `#` headings, fenced code
/// blocks, `-` bullets, inline links). Should htmd fail, the plain text of
/// [`main_text`] is returned instead.
pub fn main_markdown(html: &str) -> String {
    let main = main_html(html);
    let converter = htmd::HtmlToMarkdown::builder()
        .options(htmd::options::Options {
            bullet_list_marker: htmd::options::BulletListMarker::Dash,
            ul_bullet_spacing: 1,
            ol_number_spacing: 1,
            ..Default::default()
        })
        .skip_tags(vec!["script", "style", "noscript", "template"])
        .build();
    match converter.convert(&main) {
        Ok(md) => md.trim().to_string(),
        Err(_) => main_text(html),
    }
}

/// The URL relative references resolve against: `<base href>` (itself
/// resolved against `base`) or `base`.
fn doc_base(doc: &Html, base: &Url) -> Url {
    doc.select(&BASE)
        .next()
        .and_then(|b| b.attr("href"))
        .and_then(|h| base.join(h.trim()).ok())
        .unwrap_or_else(|| base.clone())
}

fn resolve(base: &Url, raw: &str, out: &mut Vec<String>) {
    let raw = raw.trim();
    if raw.is_empty() || raw.starts_with('#') {
        return;
    }
    let Ok(mut url) = base.join(raw) else { return };
    if !matches!(url.scheme(), "http" | "https") {
        return;
    }
    url.set_fragment(None);
    let s = url.to_string();
    if !out.contains(&s) {
        out.push(s);
    }
}

/// Every `<a href>`/`<area href>` on the page as an absolute http(s) URL,
/// resolved against `<base href>` or `base`, fragment removed, first
/// occurrence order, no duplicates. `mailto:`, `javascript:` etc. are
/// dropped.
pub fn links(doc: &Html, base: &Url) -> Vec<String> {
    let base = doc_base(doc, base);
    let mut out = Vec::new();
    for a in doc.select(&LINKS) {
        if let Some(href) = a.attr("href") {
            resolve(&base, href, &mut out);
        }
    }
    out
}

/// Every image URL on the page as an absolute http(s) URL: `<img>` `src`
/// (or lazy-loading `data-src`) and every `srcset`/`data-srcset` candidate
/// of `<img>` and `<picture><source>`, deduplicated, `data:` URLs dropped.
pub fn images(doc: &Html, base: &Url) -> Vec<String> {
    let base = doc_base(doc, base);
    let mut out = Vec::new();
    for img in doc.select(&IMAGES) {
        let e = img.value();
        for attr in ["src", "data-src"] {
            if let Some(src) = e.attr(attr) {
                resolve(&base, src, &mut out);
            }
        }
        for attr in ["srcset", "data-srcset"] {
            if let Some(set) = e.attr(attr) {
                for candidate in set.split(',') {
                    if let Some(url) = candidate.split_whitespace().next() {
                        resolve(&base, url, &mut out);
                    }
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const BLOG: &str = r#"<!doctype html><html><head><title>T</title>
      <style>body { color: red }</style></head><body>
      <header class="site"><a href="/">Home</a> <a href="/about">About</a></header>
      <nav><ul><li><a href="/a">Nav A</a></li><li><a href="/b">Nav B</a></li></ul></nav>
      <article>
        <header><h1>The Title</h1></header>
        <p>First   paragraph of the
           article.</p>
        <aside>Related: something else</aside>
        <h2>Section</h2>
        <p>Second paragraph with <a href="/x">a link</a>.</p>
        <ul><li>Item one</li><li>Item two</li></ul>
        <pre><code>fn main() {
    println!("hi");
}</code></pre>
        <script>var tracking = "Not content";</script>
        <form><input name="q"><button>Subscribe now</button></form>
        <footer>Share this article</footer>
      </article>
      <footer>Copyright 2024</footer>
    </body></html>"#;

    #[test]
    fn main_text_strips_chrome_and_keeps_order() {
        let text = main_text(BLOG);
        for gone in [
            "Home",
            "Nav A",
            "Related",
            "tracking",
            "Subscribe",
            "Share this",
            "Copyright",
            "color",
        ] {
            assert!(
                !text.contains(gone),
                "{gone:?} should be gone from {text:?}"
            );
        }
        let first = text.find("First paragraph of the article.");
        let second = text.find("Second paragraph with a link.");
        assert!(first.is_some() && second.is_some(), "{text:?}");
        assert!(first < second);
        assert!(text.starts_with("The Title\n\nFirst paragraph"), "{text:?}");
        assert!(text.contains("\n\nItem one\n\nItem two\n\n"), "{text:?}");
        assert!(text.contains("    println!(\"hi\");"), "{text:?}");
    }

    #[test]
    fn main_markdown_has_heading_list_and_code() {
        let md = main_markdown(BLOG);
        assert!(md.lines().any(|l| l.starts_with("# The Title")), "{md}");
        assert!(md.lines().any(|l| l.starts_with("## Section")), "{md}");
        assert!(md.lines().any(|l| l.starts_with("- Item one")), "{md}");
        assert!(md.contains("```\nfn main() {"), "{md}");
        assert!(md.contains("[a link](/x)"), "{md}");
        assert!(!md.contains("Nav A") && !md.contains("Copyright"), "{md}");
    }

    #[test]
    fn main_element_fallbacks() {
        let with_main = r#"<body><div>menu</div><main><p>Main text.</p></main></body>"#;
        assert_eq!(main_text(with_main), "Main text.");
        let with_role = r#"<body><div>menu</div><div role="main"><p>Role text.</p></div></body>"#;
        assert_eq!(main_text(with_role), "Role text.");
        let scored = r#"<body>
          <div class="side"><p>Short.</p></div>
          <div class="content"><p>A much longer paragraph of real content.</p><p>And another one.</p></div>
          <footer><p>Footer text that is quite long indeed, much longer than the content is.</p></footer>
        </body>"#;
        assert_eq!(
            main_text(scored),
            "A much longer paragraph of real content.\n\nAnd another one."
        );
        assert_eq!(
            main_text("<body>Just text<br>two lines</body>"),
            "Just text\ntwo lines"
        );
        assert_eq!(main_text(""), "");
    }

    #[test]
    fn links_and_images_are_absolute() {
        let doc = Html::parse_document(
            r##"<html><head><base href="/docs/"></head><body>
            <a href="page.html#top">p</a>
            <a href="page.html">again</a>
            <a href="https://other.example/x">x</a>
            <a href="mailto:a@b.c">mail</a>
            <a href="javascript:void(0)">js</a>
            <a href="#frag">frag</a>
            <img src="a.png" srcset="a-2x.png 2x, /b.png 640w">
            <img data-src="lazy.jpg" src="data:image/gif;base64,R0lGOD">
            <picture><source srcset="c.webp"><img src="c.jpg"></picture>
            </body></html>"##,
        );
        let base = Url::parse("https://example.com/start/index.html").expect("url");
        assert_eq!(
            links(&doc, &base),
            vec![
                "https://example.com/docs/page.html",
                "https://other.example/x"
            ]
        );
        assert_eq!(
            images(&doc, &base),
            vec![
                "https://example.com/docs/a.png",
                "https://example.com/docs/a-2x.png",
                "https://example.com/b.png",
                "https://example.com/docs/lazy.jpg",
                "https://example.com/docs/c.webp",
                "https://example.com/docs/c.jpg",
            ]
        );
    }
}

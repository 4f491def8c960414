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
/// [`main_text`] is returned instead. Links and images stay as written;
/// [`main_markdown_at`] makes them absolute.
pub fn main_markdown(html: &str) -> String {
    markdown_of(html, None)
}

/// [`main_markdown`] of a page fetched from `url`: links and images are
/// absolute (against `<base href>` or `url`).
pub fn main_markdown_at(html: &str, url: &Url) -> String {
    let base = doc_base(&Html::parse_document(html), url);
    markdown_of(html, Some(&base))
}

fn markdown_of(html: &str, base: Option<&Url>) -> String {
    let main = code_in_every_pre(&main_html(html));
    let main = tidy_for_markdown(&main, base).unwrap_or(main);
    let converter = htmd::HtmlToMarkdown::builder()
        .options(htmd::options::Options {
            bullet_list_marker: htmd::options::BulletListMarker::Dash,
            ul_bullet_spacing: 1,
            ol_number_spacing: 1,
            ..Default::default()
        })
        .skip_tags(vec!["script", "style", "noscript", "template", "button"])
        .build();
    match converter.convert(&main) {
        Ok(md) => {
            // Links with nothing to click on say nothing.
            static EMPTY_LINK: LazyLock<regex::Regex> = LazyLock::new(|| {
                regex::Regex::new(r"\[\]\([^)\s]*(?:\s+\x22[^\x22]*\x22)?\)")
                    .expect("a valid regex")
            });
            // Self-anchor marks left at the end of a heading.
            static HEADING_MARK: LazyLock<regex::Regex> = LazyLock::new(|| {
                regex::Regex::new(r"(?m)^(#{1,6} .*?)\s*[¶§#🔗]$").expect("a valid regex")
            });
            let md = EMPTY_LINK.replace_all(&md, "");
            HEADING_MARK.replace_all(&md, "$1").trim().to_string()
        }
        Err(_) => main_text(html),
    }
}

/// Prepare the main HTML for Markdown, the way a reader wants it: links
/// and images absolute (with `base`), headings without their self-anchor
/// links (`¶`), no links inside code blocks, `<sup>`/`<sub>` as `^…^` /
/// `~…~`, code blocks labelled with the language found in the classes of
/// the block or of a `highlight-LANG` wrapper (Sphinx), and no
/// interface-only text (buttons, rustdoc's "Expand description"
/// toggles). `None` if the rewriter fails.
fn tidy_for_markdown(main: &str, base: Option<&Url>) -> Option<String> {
    use lol_html::{HtmlRewriter, Settings, element};
    use std::cell::RefCell;
    use std::rc::Rc;

    let languages: Rc<RefCell<Vec<String>>> = Rc::default();
    let absolute = |raw: &str| -> Option<String> {
        let raw = raw.trim();
        if raw.is_empty() {
            return None;
        }
        base.and_then(|b| b.join(raw).ok()).map(|u| u.to_string())
    };
    let mut out = Vec::with_capacity(main.len());
    let wrappers = languages.clone();
    let blocks = languages.clone();
    let handlers = vec![
        element!(
            "a.headerlink, a.anchor, a.doc-anchor, a.hash-link, a.header-anchor",
            |el| {
                el.remove();
                Ok(())
            }
        ),
        // A heading linking to itself is a heading, not a link.
        element!(
            "h1 a[href^='#'], h2 a[href^='#'], h3 a[href^='#'], h4 a[href^='#'], h5 a[href^='#'], h6 a[href^='#']",
            |el| {
                el.remove_and_keep_content();
                Ok(())
            }
        ),
        element!(
            "summary.hideme, details.toggle > summary, .toggle-wrapper > summary",
            |el| {
                el.remove();
                Ok(())
            }
        ),
        element!("pre a, pre button", |el| {
            el.remove_and_keep_content();
            Ok(())
        }),
        element!("a[href]", |el| {
            if let Some(href) = el.get_attribute("href").and_then(|h| absolute(&h)) {
                el.set_attribute("href", &href)?;
            }
            Ok(())
        }),
        element!("img[src]", |el| {
            if let Some(src) = el.get_attribute("src").and_then(|h| absolute(&h)) {
                el.set_attribute("src", &src)?;
            }
            Ok(())
        }),
        element!("sup", |el| {
            el.before("^", lol_html::html_content::ContentType::Text);
            el.after("^", lol_html::html_content::ContentType::Text);
            el.remove_and_keep_content();
            Ok(())
        }),
        element!("sub", |el| {
            el.before("~", lol_html::html_content::ContentType::Text);
            el.after("~", lol_html::html_content::ContentType::Text);
            el.remove_and_keep_content();
            Ok(())
        }),
        element!(
            "div[class*='highlight-'], div[class*='language-']",
            move |el| {
                let lang = el.get_attribute("class").and_then(|c| language_of(&c));
                if let Some(lang) = lang {
                    wrappers.borrow_mut().push(lang);
                    let stack = wrappers.clone();
                    if let Some(handlers) = el.end_tag_handlers() {
                        let pop: lol_html::EndTagHandler<'static> = Box::new(move |_end| {
                            stack.borrow_mut().pop();
                            Ok(())
                        });
                        handlers.push(pop);
                    }
                }
                Ok(())
            }
        ),
        element!("pre, pre > code", move |el| {
            let class = el.get_attribute("class").unwrap_or_default();
            if class.split_whitespace().any(|c| c.starts_with("language-")) {
                return Ok(());
            }
            let lang = language_of(&class).or_else(|| blocks.borrow().last().cloned());
            if let Some(lang) = lang {
                el.set_attribute("class", &format!("language-{lang} {class}"))?;
            }
            Ok(())
        }),
    ];
    let settings = handlers
        .into_iter()
        .fold(Settings::new(), |settings, handler| {
            settings.append_element_content_handler(handler)
        });
    let mut rewriter = HtmlRewriter::new(settings, |chunk: &[u8]| out.extend_from_slice(chunk));
    rewriter.write(main.as_bytes()).ok()?;
    rewriter.end().ok()?;
    String::from_utf8(out).ok()
}

/// Wrap the content of every `<pre>` that has no `<code>` of its own in
/// one (Sphinx writes bare `<pre>`): htmd fences only `pre > code`.
fn code_in_every_pre(html: &str) -> String {
    let mut out = String::with_capacity(html.len() + 64);
    let mut rest = html;
    while let Some(open) = rest.find("<pre") {
        let after_name = &rest[open + 4..];
        let is_pre = after_name.starts_with(['>', ' ', '\t', '\n', '\r']);
        let Some(tag_end) = after_name.find('>').filter(|_| is_pre) else {
            out.push_str(&rest[..open + 4]);
            rest = after_name;
            continue;
        };
        let body_start = open + 4 + tag_end + 1;
        out.push_str(&rest[..body_start]);
        rest = &rest[body_start..];
        let Some(close) = rest.find("</pre>") else {
            break;
        };
        let body = &rest[..close];
        if body.trim_start().starts_with("<code") {
            out.push_str(body);
        } else {
            out.push_str("<code>");
            out.push_str(body);
            out.push_str("</code>");
        }
        rest = &rest[close..];
    }
    out.push_str(rest);
    out
}

/// The language a code block's classes name: `language-x`, `lang-x`,
/// `highlight-x`, `sourceCode x`, or a bare well-known language name
/// (rustdoc writes `<pre class="rust">`).
fn language_of(class: &str) -> Option<String> {
    const KNOWN: &[&str] = &[
        "rust",
        "python",
        "python3",
        "javascript",
        "js",
        "typescript",
        "ts",
        "c",
        "cpp",
        "go",
        "java",
        "ruby",
        "php",
        "bash",
        "sh",
        "shell",
        "console",
        "sql",
        "json",
        "toml",
        "yaml",
        "html",
        "css",
        "xml",
    ];
    let classes: Vec<&str> = class.split_whitespace().collect();
    for c in &classes {
        for prefix in ["language-", "lang-", "highlight-"] {
            if let Some(lang) = c.strip_prefix(prefix)
                && !lang.is_empty()
                && lang != "default"
            {
                return Some(lang.to_string());
            }
        }
    }
    if classes.contains(&"sourceCode") {
        return classes
            .iter()
            .find(|c| **c != "sourceCode")
            .map(|c| c.to_string());
    }
    classes
        .iter()
        .find(|c| KNOWN.contains(c))
        .map(|c| c.to_string())
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
    fn markdown_reads_like_a_page_not_like_its_markup() {
        let html = r##"<html><head><base href="https://docs.example/lib/"></head><body><main>
<h1>Vec<a class="anchor" href="#vec">§</a></h1>
<h2 id="growth">Growth<a class="headerlink" href="#growth" title="Link">¶</a></h2>
<p>Capacity doubles: 2<sup>n-1</sup> slots, H<sub>2</sub>O. See <a href="guide.html">the guide</a>
and <a href="/api/">the API</a>.<a href="x.html"></a></p>
<details class="toggle top-doc"><summary class="hideme"><span>Expand description</span></summary>
<p>The description itself.</p></details>
<div class="highlight-python3 notranslate"><div class="highlight"><pre>print(<a href="len.html">len</a>(xs))
</pre></div></div>
<pre class="rust item-decl"><code>pub struct Vec&lt;T&gt; { .. }</code></pre>
<p><img src="img/growth.png" alt="growth"></p>
<button>Copy</button>
</main></body></html>"##;
        let base: Url = "https://docs.example/lib/page.html".parse().unwrap();
        let md = main_markdown_at(html, &base);
        assert!(md.lines().any(|l| l == "# Vec"), "heading anchors go: {md}");
        assert!(md.lines().any(|l| l == "## Growth"), "{md}");
        assert!(
            md.contains("2^n-1^") && md.contains("H~2~O"),
            "sup and sub: {md}"
        );
        assert!(
            md.contains("[the guide](https://docs.example/lib/guide.html)"),
            "{md}"
        );
        assert!(md.contains("[the API](https://docs.example/api/)"), "{md}");
        assert!(!md.contains("[]("), "empty links go: {md}");
        assert!(!md.contains("Expand description"), "{md}");
        assert!(md.contains("The description itself."), "{md}");
        assert!(
            md.contains("```python3\nprint(len(xs))"),
            "links in code go, language kept: {md}"
        );
        assert!(md.contains("```rust\npub struct Vec<T> { .. }"), "{md}");
        assert!(
            md.contains("![growth](https://docs.example/lib/img/growth.png)"),
            "{md}"
        );
        assert!(!md.contains("Copy"), "{md}");
        // Without a page URL, links stay as written.
        assert!(main_markdown(html).contains("[the guide](guide.html)"));
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

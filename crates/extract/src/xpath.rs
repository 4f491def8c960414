//! XPath selectors for field rules, for users coming from Scrapy/parsel
//! (`//h1/text()`, `//a[@class='next']/@href`, `string(//title)`).
//!
//! Evaluated by skyscraper (pure Rust, its own HTML parser and XPath
//! engine). It leaves a few XPath features unimplemented (it panics on
//! them), so parsing and evaluation run under `catch_unwind`: such an
//! expression is an error naming it, never a crashed crawl. A page with
//! XPath rules is parsed a second time, by skyscraper.

use std::panic::{AssertUnwindSafe, catch_unwind};

use skyscraper::xpath::XpathItemTree;
use skyscraper::xpath::grammar::XpathItemTreeNode;
use skyscraper::xpath::grammar::data_model::XpathItem;

use crate::css::SelectorError;
use crate::select::{Source, collapse_ws};

/// Whether a selector is XPath rather than CSS: it starts with `/`, `./`
/// or `(`, or is a `string(…)`/`normalize-space(…)`/`count(…)` call.
pub fn looks_like_xpath(selector: &str) -> bool {
    let s = selector.trim_start();
    s.starts_with('/')
        || s.starts_with("./")
        || s.starts_with('(')
        || ["string(", "normalize-space(", "count(", "concat("]
            .iter()
            .any(|f| s.starts_with(f))
}

/// A checked XPath expression (kept as text: each page evaluates it anew).
#[derive(Debug, Clone)]
pub struct XPath {
    expr: String,
    /// Set when evaluating it panicked once (an unimplemented feature):
    /// it is not tried again, so one message is printed, not one a page.
    broken: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl XPath {
    /// Check `expr`; an error names it and says why.
    pub fn parse(expr: &str) -> Result<XPath, SelectorError> {
        let fail = |message: String| SelectorError {
            selector: expr.to_string(),
            column: 1,
            message,
        };
        match catch_unwind(|| skyscraper::xpath::parse(expr.trim())) {
            Ok(Ok(_)) => Ok(XPath {
                expr: expr.trim().to_string(),
                broken: Default::default(),
            }),
            Ok(Err(e)) => {
                let message = e.to_string();
                let mut error = fail(format!("not a valid XPath expression: {message}"));
                error.column =
                    error_column(expr.trim(), &message) + (expr.len() - expr.trim_start().len());
                Err(error)
            }
            Err(_) => Err(fail("this XPath expression is not supported".to_string())),
        }
    }

    /// The strings the expression selects in `html`, taken as `source`
    /// says for element nodes (attribute and text nodes and atomic values
    /// are taken as they are). Empty when the expression fails on the
    /// page.
    pub fn values(&self, html: &str, source: &Source) -> Vec<String> {
        use std::sync::atomic::Ordering;
        if self.broken.load(Ordering::Relaxed) {
            return Vec::new();
        }
        let run = || -> Option<Vec<String>> {
            let tree = skyscraper::html::parse(html).ok()?;
            let xpath = skyscraper::xpath::parse(&self.expr).ok()?;
            let items = xpath.apply(&tree).ok()?;
            Some(
                items
                    .into_iter()
                    .filter_map(|item| item_value(&tree, &item, source))
                    .collect(),
            )
        };
        match catch_unwind(AssertUnwindSafe(run)) {
            Ok(Some(values)) => values,
            Ok(None) => Vec::new(),
            Err(_) => {
                self.broken.store(true, Ordering::Relaxed);
                tracing::error!(xpath = %self.expr, "This XPath expression uses a feature the XPath engine (skyscraper) does not implement; its field stays empty.");
                Vec::new()
            }
        }
    }
}

/// Where the parser stopped, from its message's trailing input (1-based).
fn error_column(expr: &str, message: &str) -> usize {
    let trailing = message
        .split("input: \"")
        .nth(1)
        .and_then(|rest| rest.rsplit_once('"').map(|(t, _)| t));
    match trailing {
        Some(t) if expr.ends_with(t) => expr[..expr.len() - t.len()].chars().count() + 1,
        _ => 1,
    }
}

fn item_value(tree: &XpathItemTree, item: &XpathItem<'_>, source: &Source) -> Option<String> {
    let value = match item {
        XpathItem::Node(node) => match node {
            XpathItemTreeNode::AttributeNode(attr) => attr.value.to_string(),
            XpathItemTreeNode::ElementNode(element) => match source {
                Source::Attr(name) => element.get_attribute(tree, name)?.to_string(),
                Source::Text | Source::Html => collapse_ws(&node.text_content(tree)),
            },
            other => collapse_ws(&other.text_content(tree)),
        },
        XpathItem::AnyAtomicType(atomic) => atomic.to_string(),
        XpathItem::Function(_) => return None,
    };
    let value = value.trim().to_string();
    (!value.is_empty()).then_some(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    const PAGE: &str = r#"<html><head><title>The Title</title></head><body>
        <h1>Hello <b>world</b></h1>
        <a class="next" href="/p/2">next</a><a href="/p/3">three</a>
        </body></html>"#;

    fn values(expr: &str, source: Source) -> Vec<String> {
        XPath::parse(expr).unwrap().values(PAGE, &source)
    }

    #[test]
    fn parsel_style_expressions() {
        assert!(looks_like_xpath("//h1") && looks_like_xpath("string(//title)"));
        assert!(!looks_like_xpath("h1.title") && !looks_like_xpath("a::attr(href)"));
        assert_eq!(values("//h1", Source::Text), ["Hello world"]);
        assert_eq!(values("//a[@class='next']/@href", Source::Text), ["/p/2"]);
        assert_eq!(values("//a", Source::Attr("href".into())), ["/p/2", "/p/3"]);
        assert_eq!(values("//title/text()", Source::Text), ["The Title"]);
    }

    #[test]
    fn a_bad_expression_is_an_error_naming_it() {
        let e = XPath::parse("//a[@href").unwrap_err();
        assert!(e.to_string().contains("//a[@href"), "{e}");
        let e = XPath::parse("//a[@class='x']/").unwrap_err();
        assert_eq!(e.column, 16, "{e}");
    }
}

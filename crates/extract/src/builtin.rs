//! The built-in extractors an item rule (or a scrape) names: structured
//! data (`json_ld`, `opengraph`, `twitter`, `meta`, `microdata`) and
//! readable content (`main_text`, `markdown`, `links`, `images`).

use scraper::Html;
use serde_json::Value;
use trawl_core::Url;

use crate::{readable, structured};

/// Every extractor's name.
pub const NAMES: &[&str] = &[
    "json_ld",
    "opengraph",
    "twitter",
    "meta",
    "microdata",
    "main_text",
    "markdown",
    "links",
    "images",
];

/// What extractor `name` finds in the page (`doc` parsed from `text`,
/// fetched from `url`); `None` for an unknown name.
pub fn run(name: &str, doc: &Html, text: &str, url: &Url) -> Option<Value> {
    Some(match name {
        "json_ld" => Value::Array(structured::json_ld(doc)),
        "opengraph" => Value::Object(structured::opengraph(doc)),
        "twitter" => Value::Object(structured::twitter(doc)),
        "meta" => Value::Object(structured::meta(doc)),
        "microdata" => Value::Array(structured::microdata(doc)),
        "main_text" => readable::main_text(text).into(),
        "markdown" => readable::main_markdown_at(text, url).into(),
        "links" => readable::links(doc, url).into(),
        "images" => readable::images(doc, url).into(),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn every_name_runs_and_unknown_names_do_not() {
        let text = r#"<html><head><meta property="og:title" content="T"></head><body><p>Hello</p><a href="/a">a</a></body></html>"#;
        let doc = Html::parse_document(text);
        let url = Url::parse("https://x.test/").unwrap();
        for name in NAMES {
            assert!(run(name, &doc, text, &url).is_some(), "{name}");
        }
        assert_eq!(run("opengraph", &doc, text, &url).unwrap()["og:title"], "T");
        assert!(run("nope", &doc, text, &url).is_none());
    }
}

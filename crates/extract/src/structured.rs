//! Built-in structured-data extractors over a scraper DOM: JSON-LD,
//! OpenGraph, Twitter cards, plain `<meta>` pairs, and microdata.
//!
//! Map-returning extractors keep the first value of a key as a string and
//! turn it into an array of strings when the key repeats (several
//! `og:image`s, for example). Microdata items come out JSON-LD-shaped
//! (`@type`, `@id`, then the properties), so [`find_type`] works on both.

use std::sync::LazyLock;

use scraper::{ElementRef, Html, Selector};
use serde_json::{Map, Value};

use crate::select::collapse_ws;

fn selector(css: &str) -> Selector {
    Selector::parse(css).expect("constant selector")
}

static SCRIPTS: LazyLock<Selector> = LazyLock::new(|| selector("script"));
static META: LazyLock<Selector> = LazyLock::new(|| selector("meta"));
static ITEMSCOPE: LazyLock<Selector> = LazyLock::new(|| selector("[itemscope]"));

/// Every JSON-LD object on the page: the contents of each
/// `<script type="application/ld+json">`, with top-level arrays and `@graph`
/// containers flattened into their members. Blocks that are not valid JSON
/// (after stripping HTML comment and CDATA wrappers) are skipped.
pub fn json_ld(doc: &Html) -> Vec<Value> {
    let mut out = Vec::new();
    for script in doc.select(&SCRIPTS) {
        let is_ld = script.attr("type").is_some_and(|t| {
            t.split(';')
                .next()
                .is_some_and(|t| t.trim().eq_ignore_ascii_case("application/ld+json"))
        });
        if !is_ld {
            continue;
        }
        let text: String = script.text().collect();
        let body = strip_wrappers(&text);
        if let Ok(value) = serde_json::from_str::<Value>(body) {
            flatten_ld(value, &mut out);
        }
    }
    out
}

fn strip_wrappers(s: &str) -> &str {
    let mut s = s.trim();
    for (open, close) in [
        ("<!--", "-->"),
        ("//<![CDATA[", "//]]>"),
        ("<![CDATA[", "]]>"),
    ] {
        if let Some(inner) = s.strip_prefix(open) {
            s = inner.strip_suffix(close).unwrap_or(inner).trim();
        }
    }
    s.trim_end_matches(';').trim()
}

fn flatten_ld(value: Value, out: &mut Vec<Value>) {
    match value {
        Value::Array(items) => items.into_iter().for_each(|v| flatten_ld(v, out)),
        Value::Object(mut obj) => match obj.remove("@graph") {
            Some(graph) => {
                // Keep the container itself if it says more than its context.
                if obj.keys().any(|k| k != "@context") {
                    out.push(Value::Object(obj));
                }
                flatten_ld(graph, out);
            }
            None => out.push(Value::Object(obj)),
        },
        _ => {}
    }
}

/// Whether a `@type` name matches `ty`, ignoring a schema.org prefix
/// (`https://schema.org/Product`, `http://schema.org/Product`,
/// `schema:Product`) and ASCII case.
fn type_matches(name: &str, ty: &str) -> bool {
    let strip = |s: &str| -> String {
        let s = s.trim();
        let s = s
            .strip_prefix("https://")
            .or_else(|| s.strip_prefix("http://"))
            .unwrap_or(s);
        let s = s
            .strip_prefix("www.")
            .unwrap_or(s)
            .strip_prefix("schema.org/")
            .or_else(|| s.strip_prefix("schema:"))
            .unwrap_or(s);
        s.to_ascii_lowercase()
    };
    strip(name) == strip(ty)
}

/// Whether a JSON-LD (or microdata) object has `ty` among its `@type`s
/// (a string or an array of strings).
pub fn has_type(value: &Value, ty: &str) -> bool {
    match value.get("@type") {
        Some(Value::String(s)) => type_matches(s, ty),
        Some(Value::Array(types)) => types
            .iter()
            .any(|t| t.as_str().is_some_and(|s| type_matches(s, ty))),
        _ => false,
    }
}

/// The first object of type `ty`: top-level values first, then nested ones
/// breadth-first (a `Product` under a `WebPage`'s `mainEntity` is found).
pub fn find_type<'a>(values: &'a [Value], ty: &str) -> Option<&'a Value> {
    find_all_types(values, ty).into_iter().next()
}

/// Every object of type `ty`, top-level and nested, breadth-first.
pub fn find_all_types<'a>(values: &'a [Value], ty: &str) -> Vec<&'a Value> {
    let mut found = Vec::new();
    let mut queue: std::collections::VecDeque<&Value> = values.iter().collect();
    while let Some(v) = queue.pop_front() {
        match v {
            Value::Object(obj) => {
                if has_type(v, ty) {
                    found.push(v);
                }
                queue.extend(obj.values());
            }
            Value::Array(items) => queue.extend(items.iter()),
            _ => {}
        }
    }
    found
}

/// Insert a string, turning the entry into an array when the key repeats.
fn push_multi(map: &mut Map<String, Value>, key: String, value: String) {
    match map.get_mut(&key) {
        None => {
            map.insert(key, Value::String(value));
        }
        Some(Value::Array(items)) => items.push(Value::String(value)),
        Some(existing) => {
            let first = existing.take();
            *existing = Value::Array(vec![first, Value::String(value)]);
        }
    }
}

/// `<meta>` pairs whose key (from `property`, else `name`, lowercased)
/// passes `keep`.
fn meta_pairs(
    doc: &Html,
    keep: impl Fn(&str) -> bool,
    prefer_property: bool,
) -> Map<String, Value> {
    let mut map = Map::new();
    for el in doc.select(&META) {
        let e = el.value();
        let key = if prefer_property {
            e.attr("property").or_else(|| e.attr("name"))
        } else {
            e.attr("name").or_else(|| e.attr("property"))
        };
        let (Some(key), Some(content)) = (key, e.attr("content").or_else(|| e.attr("value")))
        else {
            continue;
        };
        let key = key.trim().to_ascii_lowercase();
        if key.is_empty() || !keep(&key) {
            continue;
        }
        push_multi(&mut map, key, content.trim().to_string());
    }
    map
}

/// OpenGraph properties: `og:*`, `article:*`, `product:*` (from `property`,
/// or `name` as some sites write it), keyed by the full property name.
pub fn opengraph(doc: &Html) -> Map<String, Value> {
    meta_pairs(
        doc,
        |k| k.starts_with("og:") || k.starts_with("article:") || k.starts_with("product:"),
        true,
    )
}

/// Twitter card properties: `twitter:*`, keyed by the full name.
pub fn twitter(doc: &Html) -> Map<String, Value> {
    meta_pairs(doc, |k| k.starts_with("twitter:"), false)
}

/// Every `<meta name=… content=…>` pair, names lowercased (this includes
/// `twitter:*` names; `property=` metas such as OpenGraph are not included,
/// nor are `http-equiv` and `charset`).
pub fn meta(doc: &Html) -> Map<String, Value> {
    let mut map = Map::new();
    for el in doc.select(&META) {
        let e = el.value();
        let (Some(name), Some(content)) = (e.attr("name"), e.attr("content")) else {
            continue;
        };
        let name = name.trim().to_ascii_lowercase();
        if !name.is_empty() {
            push_multi(&mut map, name, content.trim().to_string());
        }
    }
    map
}

/// Top-level microdata items (`itemscope` elements without `itemprop`), as
/// JSON-LD-shaped objects: `@type` (a string, or an array when `itemtype`
/// lists several), `@id` from `itemid`, then one key per property name;
/// a repeated property becomes an array. Nested `itemscope` properties are
/// nested objects.
///
/// Property values: `content` attribute if present; else `href` on
/// `a/area/link`, `src` on `img/audio/video/source/track/embed/iframe`,
/// `data` on `object`, `value` on `data/meter`, `datetime` on `time`; else
/// the whitespace-collapsed text. URLs are kept as written (not resolved).
/// Not supported: `itemref`.
pub fn microdata(doc: &Html) -> Vec<Value> {
    doc.select(&ITEMSCOPE)
        .filter(|el| el.value().attr("itemprop").is_none())
        .map(|el| item(el, 0))
        .collect()
}

/// Nesting deeper than this is cut off (hostile or broken pages).
const MAX_ITEM_DEPTH: usize = 32;

fn item(el: ElementRef<'_>, depth: usize) -> Value {
    let mut obj = Map::new();
    if let Some(types) = el.value().attr("itemtype") {
        let types: Vec<&str> = types.split_whitespace().collect();
        match types.as_slice() {
            [] => {}
            [one] => {
                obj.insert("@type".into(), Value::String((*one).to_string()));
            }
            many => {
                obj.insert(
                    "@type".into(),
                    Value::Array(
                        many.iter()
                            .map(|t| Value::String((*t).to_string()))
                            .collect(),
                    ),
                );
            }
        }
    }
    if let Some(id) = el.value().attr("itemid") {
        obj.insert("@id".into(), Value::String(id.trim().to_string()));
    }
    if depth < MAX_ITEM_DEPTH {
        collect_props(el, depth, &mut obj);
    }
    Value::Object(obj)
}

fn collect_props(parent: ElementRef<'_>, depth: usize, obj: &mut Map<String, Value>) {
    for child in parent.children().filter_map(ElementRef::wrap) {
        let e = child.value();
        let nested_scope = e.attr("itemscope").is_some();
        if let Some(props) = e.attr("itemprop") {
            let value = if nested_scope {
                item(child, depth + 1)
            } else {
                Value::String(prop_value(child))
            };
            for name in props.split_whitespace() {
                match obj.get_mut(name) {
                    None => {
                        obj.insert(name.to_string(), value.clone());
                    }
                    Some(Value::Array(items)) => items.push(value.clone()),
                    Some(existing) => {
                        let first = existing.take();
                        *existing = Value::Array(vec![first, value.clone()]);
                    }
                }
            }
        }
        // Properties inside a nested item belong to that item.
        if !nested_scope {
            collect_props(child, depth, obj);
        }
    }
}

fn prop_value(el: ElementRef<'_>) -> String {
    let e = el.value();
    if let Some(content) = e.attr("content") {
        return content.trim().to_string();
    }
    let attr = match e.name() {
        "a" | "area" | "link" => Some("href"),
        "img" | "audio" | "video" | "source" | "track" | "embed" | "iframe" => Some("src"),
        "object" => Some("data"),
        "data" | "meter" => Some("value"),
        "time" => Some("datetime"),
        _ => None,
    };
    if let Some(v) = attr.and_then(|a| e.attr(a)) {
        return v.trim().to_string();
    }
    collapse_ws(&el.text().collect::<String>())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn json_ld_flattens_graph_and_arrays_and_skips_invalid() {
        let doc = Html::parse_document(
            r#"<html><head>
            <script type="application/ld+json">
              {"@context": "https://schema.org", "@graph": [
                {"@type": "WebSite", "name": "Shop"},
                {"@type": "WebPage", "mainEntity": {"@type": "Offer", "price": "9"}}
              ]}
            </script>
            <script type="application/ld+json">[{"@type": ["Thing", "schema:Product"], "name": "A"}, {"@type": "Organization"}]</script>
            <script type="application/ld+json">{"@type": "Product", "name": broken}</script>
            <script type="Application/LD+JSON"><!-- {"@type": "BreadcrumbList"} --></script>
            <script type="text/javascript">{"@type": "Product"}</script>
            </head><body></body></html>"#,
        );
        let values = json_ld(&doc);
        let types: Vec<_> = values.iter().map(|v| v["@type"].clone()).collect();
        assert_eq!(
            types,
            vec![
                json!("WebSite"),
                json!("WebPage"),
                json!(["Thing", "schema:Product"]),
                json!("Organization"),
                json!("BreadcrumbList"),
            ]
        );
        assert_eq!(
            find_type(&values, "Product").map(|v| &v["name"]),
            Some(&json!("A"))
        );
        assert_eq!(
            find_type(&values, "https://schema.org/Offer").map(|v| &v["price"]),
            Some(&json!("9"))
        );
        assert!(find_type(&values, "Recipe").is_none());
        assert_eq!(find_all_types(&values, "thing").len(), 1);
    }

    #[test]
    fn opengraph_twitter_and_meta() {
        let doc = Html::parse_document(
            r#"<html><head>
            <meta property="og:title" content=" Hello ">
            <meta property="og:image" content="https://e.com/1.png">
            <meta property="og:image" content="https://e.com/2.png">
            <meta property="og:image" content="https://e.com/3.png">
            <meta property="article:published_time" content="2024-03-05">
            <meta property="product:price:amount" content="9.99">
            <meta name="og:type" content="article">
            <meta property="fb:app_id" content="123">
            <meta name="twitter:card" content="summary_large_image">
            <meta name="Twitter:Site" content="@trawl">
            <meta name="description" content="A page">
            <meta name="robots" content="noindex">
            <meta charset="utf-8">
            </head></html>"#,
        );
        let og = opengraph(&doc);
        assert_eq!(og["og:title"], json!("Hello"));
        assert_eq!(
            og["og:image"],
            json!([
                "https://e.com/1.png",
                "https://e.com/2.png",
                "https://e.com/3.png"
            ])
        );
        assert_eq!(og["article:published_time"], json!("2024-03-05"));
        assert_eq!(og["product:price:amount"], json!("9.99"));
        assert_eq!(og["og:type"], json!("article"));
        assert!(!og.contains_key("fb:app_id"));

        let tw = twitter(&doc);
        assert_eq!(tw.len(), 2);
        assert_eq!(tw["twitter:card"], json!("summary_large_image"));
        assert_eq!(tw["twitter:site"], json!("@trawl"));

        let m = meta(&doc);
        assert_eq!(m["description"], json!("A page"));
        assert_eq!(m["robots"], json!("noindex"));
        assert_eq!(m["twitter:card"], json!("summary_large_image"));
        assert!(!m.contains_key("og:title"));
    }

    #[test]
    fn microdata_nested_items_and_value_rules() {
        let doc = Html::parse_document(
            r#"<html><body>
            <div itemscope itemtype="https://schema.org/Product" itemid="urn:sku:1">
              <h1 itemprop="name">  Super   Widget </h1>
              <img itemprop="image" src="/w.png">
              <a itemprop="url" href="/widget">link</a>
              <div>
                <span itemprop="color">red</span>
                <span itemprop="color">blue</span>
              </div>
              <div itemprop="offers" itemscope itemtype="https://schema.org/Offer">
                <span itemprop="price" content="12.00">$12</span>
                <meta itemprop="priceCurrency" content="USD">
                <link itemprop="availability" href="https://schema.org/InStock">
                <div itemprop="seller" itemscope itemtype="https://schema.org/Organization">
                  <span itemprop="name">ACME</span>
                </div>
              </div>
              <time itemprop="releaseDate" datetime="2024-01-02">Jan 2</time>
            </div>
            <div itemscope itemtype="https://schema.org/Person https://schema.org/Thing">
              <span itemprop="name">Ann</span>
            </div>
            </body></html>"#,
        );
        let items = microdata(&doc);
        assert_eq!(items.len(), 2);
        let p = &items[0];
        assert_eq!(p["@type"], json!("https://schema.org/Product"));
        assert_eq!(p["@id"], json!("urn:sku:1"));
        assert_eq!(p["name"], json!("Super Widget"));
        assert_eq!(p["image"], json!("/w.png"));
        assert_eq!(p["url"], json!("/widget"));
        assert_eq!(p["color"], json!(["red", "blue"]));
        assert_eq!(p["releaseDate"], json!("2024-01-02"));
        let offer = &p["offers"];
        assert_eq!(offer["@type"], json!("https://schema.org/Offer"));
        assert_eq!(offer["price"], json!("12.00"));
        assert_eq!(offer["priceCurrency"], json!("USD"));
        assert_eq!(offer["availability"], json!("https://schema.org/InStock"));
        assert_eq!(offer["seller"]["name"], json!("ACME"));
        // The nested item's properties do not leak into the parent.
        assert!(p.get("price").is_none());
        assert!(p["name"].is_string());
        assert_eq!(
            items[1]["@type"],
            json!(["https://schema.org/Person", "https://schema.org/Thing"])
        );
        assert!(find_type(&items, "Organization").is_some());
        assert!(has_type(&items[1], "Thing"));
    }
}

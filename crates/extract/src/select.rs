//! User-defined field rules: CSS selectors (scraper) plus optional regexes
//! and type conversions, turning a parsed page into a JSON object of fields.
//!
//! Rules are compiled once with [`CompiledRules::compile`] (selectors and
//! regexes parsed up front, errors naming the field) and then applied to any
//! number of pages with [`CompiledRules::extract`], on the parse pool.
//!
//! # How one field is extracted
//! 1. The selector picks the matching elements in document order.
//! 2. The [`Source`] turns an element into a raw string: its text
//!    (whitespace-collapsed and trimmed, except inside `pre`, `code` and
//!    `textarea`, whose lines and indentation are kept), its inner HTML
//!    (trimmed), or an
//!    attribute's value (trimmed). An element without the attribute, or with
//!    an empty result, yields nothing.
//! 3. The regex, if any, is applied to that string: the first capture group
//!    if the regex has one and it took part in the match, else the whole
//!    match. No match yields nothing.
//! 4. The [`FieldType`] converts the string. A value that does not convert
//!    (`"1.0.0"` or `"v2"` for a number) never becomes another value: the
//!    next element is tried, and when none converts the field is `null`
//!    with a [`FieldWarning`] saying why (a `required` field is then
//!    missing, with the same reason).
//!
//! For scalar kinds the first element that yields a value wins. For
//! [`FieldType::List`] every element that yields a value contributes one
//! string, and an empty list counts as "not found".
//!
//! # Missing fields
//! A field that is not found takes its `default` when one is given, and is
//! otherwise **absent** from [`Extracted::fields`] (`null` only when it was
//! found but did not convert). A `required` field that is not found is
//! listed in [`Extracted::missing_required`] whether or not it has a
//! default.

use std::sync::LazyLock;

use regex::Regex;
use scraper::{ElementRef, Html, Selector};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Where a field's raw string comes from on a matched element.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    /// The element's text content, whitespace-collapsed and trimmed.
    Text,
    /// The element's inner HTML, trimmed.
    Html,
    /// The named attribute's value, trimmed.
    Attr(String),
}

/// What a field's raw string is converted to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FieldType {
    /// The string as is.
    String,
    /// The first number in the string, as a float: `"$1,234.50"` → `1234.5`,
    /// `"1.234,50 €"` → `1234.5`. Currency symbols and thousands separators
    /// are ignored.
    Number,
    /// The first whole number in the string: `"(128 reviews)"` → `128`,
    /// `"1,234 sold"` → `1234`. A number with a fractional part fails.
    Integer,
    /// `true/yes/y/1/on/in stock/available/…` or `false/no/n/0/off/out of
    /// stock/sold out/…` (case-insensitive; schema.org URLs such as
    /// `https://schema.org/InStock` are understood).
    Bool,
    /// A date normalised to `YYYY-MM-DD`; see [`parse_date`].
    Date,
    /// Every matching element's value, as an array of strings.
    List,
}

impl std::str::FromStr for FieldType {
    type Err = String;

    /// `string`, `number`, `integer`, `bool`, `date` or `list`.
    fn from_str(s: &str) -> Result<Self, String> {
        Ok(match s {
            "string" => FieldType::String,
            "number" => FieldType::Number,
            "integer" => FieldType::Integer,
            "bool" => FieldType::Bool,
            "date" => FieldType::Date,
            "list" => FieldType::List,
            other => {
                return Err(format!(
                    "unknown type {other:?}: expected string, number, integer, bool, date or list"
                ));
            }
        })
    }
}

/// One field to extract from a page.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FieldRule {
    pub name: String,
    pub selector: String,
    pub source: Source,
    /// Applied to the raw string: first capture group, or the whole match.
    pub regex: Option<String>,
    pub kind: FieldType,
    pub required: bool,
    /// Used when the field is not found.
    pub default: Option<Value>,
}

/// A rule set that cannot be compiled; each variant names the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RuleError {
    #[error("field `{field}`: bad selector `{selector}`: {message}")]
    BadSelector {
        field: String,
        selector: String,
        message: String,
    },
    #[error("field `{field}`: bad regex `{regex}`: {message}")]
    BadRegex {
        field: String,
        regex: String,
        message: String,
    },
}

/// The result of applying a rule set to one page.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Extracted {
    /// Found fields (and defaults of missing ones), in rule order.
    pub fields: Map<String, Value>,
    /// Names of required fields that were not found, in rule order.
    pub missing_required: Vec<String>,
    /// Fields found whose value did not convert to their type.
    pub warnings: Vec<FieldWarning>,
}

/// A field whose value was found but could not be converted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldWarning {
    pub field: String,
    /// The string found (after the regex, if any).
    pub value: String,
    /// Why it did not convert, e.g. `"1.0.0" is not a number`.
    pub reason: String,
}

impl Extracted {
    /// Whether every required field was found.
    pub fn is_complete(&self) -> bool {
        self.missing_required.is_empty()
    }
}

#[derive(Debug)]
struct CompiledRule {
    name: String,
    query: Query,
    source: Source,
    regex: Option<Regex>,
    kind: FieldType,
    required: bool,
    default: Option<Value>,
}

/// What picks a rule's values: a CSS selector, or an XPath expression.
#[derive(Debug)]
enum Query {
    Css(Selector),
    XPath(crate::xpath::XPath),
}

/// A rule set with its selectors and regexes compiled once; `Send + Sync`,
/// so one instance can serve every parse thread.
#[derive(Debug)]
pub struct CompiledRules {
    rules: Vec<CompiledRule>,
}

impl CompiledRules {
    /// Compile every rule's selector and regex, failing on the first bad one.
    pub fn compile(rules: &[FieldRule]) -> Result<CompiledRules, RuleError> {
        let mut compiled = Vec::with_capacity(rules.len());
        for rule in rules {
            // parsel's `::text` / `::attr(name)` choose the source.
            let bad = |e: crate::css::SelectorError| RuleError::BadSelector {
                field: rule.name.clone(),
                selector: rule.selector.clone(),
                message: format!("{} (column {})", e.message, e.column),
            };
            let (query, pseudo) = if crate::xpath::looks_like_xpath(&rule.selector) {
                let xpath = crate::xpath::XPath::parse(&rule.selector).map_err(bad)?;
                (Query::XPath(xpath), None)
            } else {
                let (css, pseudo) = crate::css::split_pseudo(&rule.selector);
                (Query::Css(crate::css::parse(css).map_err(bad)?), pseudo)
            };
            let regex = match &rule.regex {
                Some(re) => Some(Regex::new(re).map_err(|e| RuleError::BadRegex {
                    field: rule.name.clone(),
                    regex: re.clone(),
                    message: e.to_string(),
                })?),
                None => None,
            };
            compiled.push(CompiledRule {
                name: rule.name.clone(),
                query,
                source: pseudo.unwrap_or_else(|| rule.source.clone()),
                regex,
                kind: rule.kind,
                required: rule.required,
                default: rule.default.clone(),
            });
        }
        Ok(CompiledRules { rules: compiled })
    }

    /// Number of rules.
    pub fn len(&self) -> usize {
        self.rules.len()
    }

    /// Whether the rule set is empty.
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// Apply every rule to a parsed document (XPath rules see the
    /// document serialized again; [`CompiledRules::extract_page`] spares
    /// that).
    pub fn extract(&self, doc: &Html) -> Extracted {
        self.extract_page(doc, None)
    }

    /// Apply every rule to a page parsed into `doc` from `html`.
    pub fn extract_page(&self, doc: &Html, html: Option<&str>) -> Extracted {
        let mut out = Extracted::default();
        let mut serialized = None;
        for rule in &self.rules {
            let applied = match &rule.query {
                Query::Css(selector) => {
                    rule.apply(doc.select(selector).filter_map(|el| rule.raw(el)))
                }
                Query::XPath(xpath) => {
                    let text = match html {
                        Some(t) => t,
                        None => serialized.get_or_insert_with(|| doc.html()).as_str(),
                    };
                    let values = xpath.values(text, &rule.source);
                    rule.apply(values.into_iter().filter_map(|v| rule.refine(v)))
                }
            };
            match applied {
                Applied::Value(v) => {
                    out.fields.insert(rule.name.clone(), v);
                }
                Applied::Unconvertible { value, reason } => {
                    if rule.required {
                        out.missing_required.push(rule.name.clone());
                    }
                    let fallback = rule.default.clone().unwrap_or(Value::Null);
                    out.fields.insert(rule.name.clone(), fallback);
                    out.warnings.push(FieldWarning {
                        field: rule.name.clone(),
                        value,
                        reason,
                    });
                }
                Applied::Missing => {
                    if rule.required {
                        out.missing_required.push(rule.name.clone());
                    }
                    if let Some(d) = &rule.default {
                        out.fields.insert(rule.name.clone(), d.clone());
                    }
                }
            }
        }
        out
    }

    /// Parse `html` as a document and apply every rule to it.
    pub fn extract_html(&self, html: &str) -> Extracted {
        self.extract_page(&Html::parse_document(html), Some(html))
    }
}

/// What one rule made of a page.
enum Applied {
    Value(Value),
    /// Found, but no value converted; the first one and why.
    Unconvertible {
        value: String,
        reason: String,
    },
    Missing,
}

impl CompiledRule {
    fn apply(&self, values: impl Iterator<Item = String>) -> Applied {
        match self.kind {
            FieldType::List => {
                let list: Vec<Value> = values.map(Value::String).collect();
                if list.is_empty() {
                    Applied::Missing
                } else {
                    Applied::Value(Value::Array(list))
                }
            }
            kind => {
                let mut first_failure = None;
                for s in values {
                    match convert(&s, kind) {
                        Ok(v) => return Applied::Value(v),
                        Err(reason) => {
                            first_failure.get_or_insert((s, reason));
                        }
                    }
                }
                match first_failure {
                    Some((value, reason)) => Applied::Unconvertible { value, reason },
                    None => Applied::Missing,
                }
            }
        }
    }

    /// The element's raw string after the source and the regex.
    fn raw(&self, el: ElementRef<'_>) -> Option<String> {
        let raw = match &self.source {
            Source::Text => element_text(el),
            Source::Html => el.inner_html().trim().to_string(),
            Source::Attr(name) => el.attr(name)?.trim().to_string(),
        };
        self.refine(raw)
    }

    /// A raw string after the regex; nothing when empty or unmatched.
    fn refine(&self, raw: String) -> Option<String> {
        let value = match &self.regex {
            Some(re) => {
                let caps = re.captures(&raw)?;
                let m = caps.get(1).or_else(|| caps.get(0))?;
                m.as_str().trim().to_string()
            }
            None => raw,
        };
        (!value.is_empty()).then_some(value)
    }
}

/// Collapse runs of whitespace to one space and trim.
/// The document's `<title>`, whitespace collapsed.
pub fn document_title(doc: &Html) -> Option<String> {
    let title = Selector::parse("title").ok()?;
    doc.select(&title)
        .next()
        .map(|t| collapse_ws(&t.text().collect::<String>()))
}

pub fn collapse_ws(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for word in s.split_whitespace() {
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(word);
    }
    out
}

/// Elements whose text keeps its whitespace (lines, indentation).
const VERBATIM: &[&str] = &["pre", "code", "textarea", "xmp", "listing", "plaintext"];

/// An element's text: whitespace collapsed, except in `pre`, `code` and
/// `textarea` (the element itself, an ancestor, or a descendant), whose
/// text is kept as written; the whole is trimmed.
pub fn element_text(el: ElementRef<'_>) -> String {
    let verbatim_here = std::iter::once(*el)
        .chain(el.ancestors())
        .filter_map(|n| n.value().as_element())
        .any(|e| VERBATIM.contains(&e.name()));
    if verbatim_here {
        return el
            .text()
            .collect::<String>()
            .trim_matches(['\n', '\r'])
            .trim_end()
            .to_string();
    }
    let has_verbatim = el
        .descendants()
        .filter_map(|n| n.value().as_element())
        .any(|e| VERBATIM.contains(&e.name()));
    if !has_verbatim {
        return collapse_ws(&el.text().collect::<String>());
    }
    // Mixed: collapse outside the verbatim parts, keep them as written.
    let mut out = String::new();
    let mut pending_space = false;
    for node in el.descendants() {
        let Some(text) = node.value().as_text() else {
            continue;
        };
        let inside = node
            .ancestors()
            .take_while(|a| a.id() != el.id())
            .filter_map(|a| a.value().as_element())
            .any(|e| VERBATIM.contains(&e.name()));
        if inside {
            if pending_space && !out.is_empty() && !out.ends_with(char::is_whitespace) {
                out.push(' ');
            }
            pending_space = false;
            out.push_str(text);
        } else {
            for (i, word) in text.split_whitespace().enumerate() {
                if (i > 0 || pending_space || text.starts_with(char::is_whitespace))
                    && !out.is_empty()
                    && !out.ends_with(char::is_whitespace)
                {
                    out.push(' ');
                }
                out.push_str(word);
                pending_space = false;
            }
            if text.ends_with(char::is_whitespace) {
                pending_space = true;
            }
        }
    }
    out.trim().to_string()
}

fn convert(s: &str, kind: FieldType) -> Result<Value, String> {
    let fail = |what: &str| format!("{s:?} is not {what}");
    match kind {
        FieldType::String | FieldType::List => Ok(Value::String(s.to_string())),
        FieldType::Number => parse_number(s)
            .and_then(|n| serde_json::Number::from_f64(n).map(Value::Number))
            .ok_or_else(|| fail("a number")),
        FieldType::Integer => parse_integer(s)
            .map(|n| Value::Number(n.into()))
            .ok_or_else(|| fail("a whole number")),
        FieldType::Bool => parse_bool(s)
            .map(Value::Bool)
            .ok_or_else(|| fail("a yes/no value")),
        FieldType::Date => parse_date(s)
            .map(Value::String)
            .ok_or_else(|| fail("a date")),
    }
}

pub use trawl_core::number::{parse_integer, parse_number};

/// Parse a yes/no-like string; `None` when it is neither.
pub fn parse_bool(s: &str) -> Option<bool> {
    let lower = s.trim().to_lowercase();
    // `https://schema.org/InStock` → `instock`.
    let word = lower.rsplit('/').next().unwrap_or(&lower).trim();
    let squashed: String = word.chars().filter(|c| c.is_alphanumeric()).collect();
    match squashed.as_str() {
        "true"
        | "yes"
        | "y"
        | "1"
        | "on"
        | "instock"
        | "available"
        | "checked"
        | "selected"
        | "enabled"
        | "limitedavailability"
        | "onlineonly"
        | "instoreonly"
        | "preorder"
        | "presale" => Some(true),
        "false" | "no" | "n" | "0" | "off" | "outofstock" | "soldout" | "unavailable"
        | "notavailable" | "disabled" | "discontinued" => Some(false),
        _ => match word {
            "✓" | "✔" => Some(true),
            "✗" | "✘" | "×" => Some(false),
            _ => None,
        },
    }
}

static ISO_DATE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?:^|\D)(\d{4})[-/.](\d{1,2})[-/.](\d{1,2})(?:\D|$)").expect("constant regex")
});
static NUMERIC_DATE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?:^|\D)(\d{1,2})([-/.])(\d{1,2})([-/.])(\d{4})(?:\D|$)").expect("constant regex")
});
static COMPACT_DATE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^(\d{4})(\d{2})(\d{2})(?:T|$)").expect("constant regex"));

fn month_of(word: &str) -> Option<u32> {
    let lower = word.to_lowercase();
    if lower.len() < 3 || !lower.chars().all(|c| c.is_ascii_alphabetic()) {
        return None;
    }
    let full = [
        "january",
        "february",
        "march",
        "april",
        "may",
        "june",
        "july",
        "august",
        "september",
        "october",
        "november",
        "december",
    ];
    full.iter()
        .position(|f| f.starts_with(lower.as_str()))
        .and_then(|i| u32::try_from(i + 1).ok())
}

fn ymd(y: u32, m: u32, d: u32) -> Option<String> {
    let leap = (y.is_multiple_of(4) && !y.is_multiple_of(100)) || y.is_multiple_of(400);
    let days = match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return None,
    };
    (d >= 1 && d <= days && (1000..=9999).contains(&y)).then(|| format!("{y:04}-{m:02}-{d:02}"))
}

/// Normalise a date to `YYYY-MM-DD`. Understood forms:
/// - ISO 8601 and friends: `2024-03-05`, `2024-03-05T10:00:00Z`, `2024/3/5`,
///   `20240305`;
/// - numeric day/month/year: `05.03.2024` (dots: day first), `03/05/2024`
///   (slashes or dashes: month first, as in the US, unless the first number
///   is over 12, as in `25/03/2024`);
/// - English month names: `March 5, 2024`, `5 Mar 2024`, `5th of March
///   2024`, `Tue, 05 Mar 2024 10:00:00 GMT`.
pub fn parse_date(s: &str) -> Option<String> {
    let s = s.trim();
    let num = |m: Option<regex::Match<'_>>| m.and_then(|m| m.as_str().parse::<u32>().ok());
    if let Some(c) = ISO_DATE.captures(s) {
        return ymd(num(c.get(1))?, num(c.get(2))?, num(c.get(3))?);
    }
    if let Some(c) = COMPACT_DATE.captures(s) {
        return ymd(num(c.get(1))?, num(c.get(2))?, num(c.get(3))?);
    }
    if let Some(c) = NUMERIC_DATE.captures(s)
        && c.get(2).map(|m| m.as_str()) == c.get(4).map(|m| m.as_str())
    {
        let (a, b, y) = (num(c.get(1))?, num(c.get(3))?, num(c.get(5))?);
        let dot = c.get(2).is_some_and(|m| m.as_str() == ".");
        return if dot || a > 12 {
            ymd(y, b, a)
        } else {
            ymd(y, a, b)
        };
    }
    // Month names: the month word, a four-digit year, and the first one- or
    // two-digit number (ordinal suffixes allowed) as the day.
    let mut month = None;
    let mut year = None;
    let mut day = None;
    for token in s
        .split(|c: char| !c.is_alphanumeric())
        .filter(|t| !t.is_empty())
    {
        if month.is_none()
            && let Some(m) = month_of(token)
        {
            month = Some(m);
            continue;
        }
        let digits = token.trim_end_matches(|c: char| c.is_ascii_alphabetic());
        let suffix = &token[digits.len()..];
        if digits.is_empty() || !digits.chars().all(|c| c.is_ascii_digit()) {
            continue;
        }
        if !matches!(
            suffix.to_lowercase().as_str(),
            "" | "st" | "nd" | "rd" | "th"
        ) {
            continue;
        }
        match digits.len() {
            4 if year.is_none() && suffix.is_empty() => year = digits.parse().ok(),
            1 | 2 if day.is_none() => day = digits.parse().ok(),
            _ => {}
        }
    }
    ymd(year?, month?, day?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn rule(name: &str, selector: &str, source: Source, kind: FieldType) -> FieldRule {
        FieldRule {
            name: name.into(),
            selector: selector.into(),
            source,
            regex: None,
            kind,
            required: false,
            default: None,
        }
    }

    const PAGE: &str = r#"<html><body>
      <div class="product">
        <h1 class="title">  Super
           Widget  </h1>
        <span class="price">$1,234.50</span>
        <span class="eu-price">1.234,50 €</span>
        <a class="reviews" href="/reviews">(128 reviews)</a>
        <span class="stock">In stock</span>
        <link itemprop="availability" href="https://schema.org/OutOfStock">
        <time datetime="2024-03-05T10:00:00Z">March 5, 2024</time>
        <span class="published">Published on 5th of March 2024</span>
        <ul class="tags"><li>red</li><li> blue </li><li></li><li>green</li></ul>
        <div class="desc"><p>Hello <b>world</b></p></div>
        <span class="sku">SKU: AB-123</span>
      </div>
    </body></html>"#;

    fn extract(rules: Vec<FieldRule>) -> Extracted {
        let compiled = CompiledRules::compile(&rules).expect("compiles");
        compiled.extract(&Html::parse_document(PAGE))
    }

    #[test]
    fn string_text_is_collapsed() {
        let out = extract(vec![rule(
            "title",
            "h1.title",
            Source::Text,
            FieldType::String,
        )]);
        assert_eq!(out.fields["title"], json!("Super Widget"));
        assert!(out.is_complete());
    }

    #[test]
    fn html_and_attr_sources() {
        let out = extract(vec![
            rule("desc", ".desc", Source::Html, FieldType::String),
            rule(
                "href",
                "a.reviews",
                Source::Attr("href".into()),
                FieldType::String,
            ),
            rule(
                "nope",
                "a.reviews",
                Source::Attr("title".into()),
                FieldType::String,
            ),
        ]);
        assert_eq!(out.fields["desc"], json!("<p>Hello <b>world</b></p>"));
        assert_eq!(out.fields["href"], json!("/reviews"));
        assert!(!out.fields.contains_key("nope"));
    }

    #[test]
    fn number_conversion() {
        let out = extract(vec![
            rule("price", ".price", Source::Text, FieldType::Number),
            rule("eu", ".eu-price", Source::Text, FieldType::Number),
        ]);
        assert_eq!(out.fields["price"], json!(1234.5));
        assert_eq!(out.fields["eu"], json!(1234.5));
        assert_eq!(parse_number("£12"), Some(12.0));
        assert_eq!(parse_number("12,5 kg"), Some(12.5));
        assert_eq!(parse_number("1,234,567"), Some(1_234_567.0));
        assert_eq!(parse_number("CHF 1'234.10"), Some(1234.1));
        assert_eq!(parse_number("-$5.25"), Some(-5.25));
        assert_eq!(parse_number("Price: 99."), Some(99.0));
        assert_eq!(parse_number("free"), None);
        // Never another number than the one written.
        for not_a_number in ["1.0.0", "3.5.1", "v2", "x86", "12.34.56", "1,23,4"] {
            assert_eq!(parse_number(not_a_number), None, "{not_a_number}");
        }
        assert_eq!(parse_number("1e3"), Some(1000.0));
        assert_eq!(parse_number("2.5E-2 g"), Some(0.025));
        assert_eq!(parse_number("1e3x"), None);
        // Locales, explicitly: the last separator is the decimal one when
        // two kinds are used; one kind used twice groups thousands; a lone
        // comma before three digits groups thousands, otherwise decimal.
        assert_eq!(parse_number("1.234,56"), Some(1234.56));
        assert_eq!(parse_number("1,234.56"), Some(1234.56));
        assert_eq!(parse_number("1 234,56 €"), Some(1234.56));
        assert_eq!(parse_number("3 items for 20"), Some(3.0));
        assert_eq!(parse_number("1\u{a0}234,56 €"), Some(1234.56));
        assert_eq!(parse_number("12,50 €"), Some(12.5));
        assert_eq!(parse_number("€1.234.567"), Some(1_234_567.0));
        assert_eq!(parse_number("¥ 5,000"), Some(5000.0));
        assert_eq!(parse_number("1,234"), Some(1234.0));
        assert_eq!(parse_number("1.234"), Some(1.234));
        assert_eq!(parse_integer("1e3"), None);
        assert_eq!(parse_integer("v2"), None);
    }

    #[test]
    fn a_value_that_does_not_convert_is_null_with_a_warning() {
        let html = r#"<span class="since">1.0.0</span><span class="v">v2</span>
            <i class="n">n/a</i><i class="n">42</i>"#;
        let mut required = rule("v", ".v", Source::Text, FieldType::Integer);
        required.required = true;
        let rules = CompiledRules::compile(&[
            rule("since", ".since", Source::Text, FieldType::Number),
            required,
            rule("n", ".n", Source::Text, FieldType::Integer),
        ])
        .unwrap();
        let out = rules.extract_html(html);
        assert_eq!(out.fields["since"], Value::Null);
        assert_eq!(out.fields["v"], Value::Null);
        // The next element that converts wins, without a warning.
        assert_eq!(out.fields["n"], json!(42));
        assert_eq!(out.missing_required, ["v"]);
        let reasons: Vec<&str> = out.warnings.iter().map(|w| w.reason.as_str()).collect();
        assert_eq!(
            reasons,
            ["\"1.0.0\" is not a number", "\"v2\" is not a whole number"]
        );
    }

    #[test]
    fn pre_and_code_keep_their_whitespace() {
        let html = "<div class=\"decl\"><pre class=\"rust\">pub struct Vec&lt;T&gt; {\n    buf: RawVec&lt;T&gt;,\n    len: usize,\n}</pre></div>\n<p class=\"mixed\">Call\n   <code>f(\n  x)</code>   now</p><p class=\"plain\">  a \n  b  </p>";
        let rules = CompiledRules::compile(&[
            rule("decl", ".decl", Source::Text, FieldType::String),
            rule("pre", "pre", Source::Text, FieldType::String),
            rule("mixed", ".mixed", Source::Text, FieldType::String),
            rule("plain", ".plain", Source::Text, FieldType::String),
        ])
        .unwrap();
        let out = rules.extract_html(html);
        let decl = "pub struct Vec<T> {\n    buf: RawVec<T>,\n    len: usize,\n}";
        assert_eq!(out.fields["decl"], json!(decl));
        assert_eq!(out.fields["pre"], json!(decl));
        assert_eq!(out.fields["mixed"], json!("Call f(\n  x) now"));
        assert_eq!(out.fields["plain"], json!("a b"));
    }

    #[test]
    fn integer_conversion() {
        let out = extract(vec![rule(
            "reviews",
            "a.reviews",
            Source::Text,
            FieldType::Integer,
        )]);
        assert_eq!(out.fields["reviews"], json!(128));
        assert_eq!(parse_integer("1,234 sold"), Some(1234));
        assert_eq!(parse_integer("1.234 verkauft"), Some(1234));
        assert_eq!(parse_integer("4.5 stars"), None);
        assert_eq!(parse_integer("3.0"), Some(3));
        assert_eq!(parse_integer("none"), None);
        assert_eq!(parse_integer("SKU AB-123"), Some(123));
        assert_eq!(parse_integer("delta: -7"), Some(-7));
    }

    #[test]
    fn bool_conversion() {
        let out = extract(vec![
            rule("stock", ".stock", Source::Text, FieldType::Bool),
            rule(
                "avail",
                "link[itemprop=availability]",
                Source::Attr("href".into()),
                FieldType::Bool,
            ),
        ]);
        assert_eq!(out.fields["stock"], json!(true));
        assert_eq!(out.fields["avail"], json!(false));
        assert_eq!(parse_bool("YES"), Some(true));
        assert_eq!(parse_bool("Sold out"), Some(false));
        assert_eq!(parse_bool("maybe"), None);
    }

    #[test]
    fn date_conversion() {
        let out = extract(vec![
            rule(
                "dt",
                "time",
                Source::Attr("datetime".into()),
                FieldType::Date,
            ),
            rule("text", "time", Source::Text, FieldType::Date),
            rule("published", ".published", Source::Text, FieldType::Date),
        ]);
        assert_eq!(out.fields["dt"], json!("2024-03-05"));
        assert_eq!(out.fields["text"], json!("2024-03-05"));
        assert_eq!(out.fields["published"], json!("2024-03-05"));
        assert_eq!(
            parse_date("Tue, 05 Mar 2024 10:00:00 GMT").as_deref(),
            Some("2024-03-05")
        );
        assert_eq!(parse_date("05.03.2024").as_deref(), Some("2024-03-05"));
        assert_eq!(parse_date("03/05/2024").as_deref(), Some("2024-03-05"));
        assert_eq!(parse_date("25/03/2024").as_deref(), Some("2024-03-25"));
        assert_eq!(parse_date("2024/3/5").as_deref(), Some("2024-03-05"));
        assert_eq!(parse_date("20240305").as_deref(), Some("2024-03-05"));
        assert_eq!(parse_date("Sept 30 2023").as_deref(), Some("2023-09-30"));
        assert_eq!(parse_date("2023-02-29"), None);
        assert_eq!(parse_date("2024-02-29").as_deref(), Some("2024-02-29"));
        assert_eq!(parse_date("soon"), None);
    }

    #[test]
    fn list_collects_all_non_empty() {
        let out = extract(vec![rule(
            "tags",
            ".tags li",
            Source::Text,
            FieldType::List,
        )]);
        assert_eq!(out.fields["tags"], json!(["red", "blue", "green"]));
    }

    #[test]
    fn regex_capture_group_or_whole_match() {
        let mut sku = rule("sku", ".sku", Source::Text, FieldType::String);
        sku.regex = Some(r"SKU:\s*([A-Z]+-\d+)".into());
        let mut whole = rule("digits", ".sku", Source::Text, FieldType::Integer);
        whole.regex = Some(r"\d+".into());
        let mut miss = rule("miss", ".sku", Source::Text, FieldType::String);
        miss.regex = Some(r"EAN:(\d+)".into());
        let out = extract(vec![sku, whole, miss]);
        assert_eq!(out.fields["sku"], json!("AB-123"));
        assert_eq!(out.fields["digits"], json!(123));
        assert!(!out.fields.contains_key("miss"));
    }

    #[test]
    fn missing_fields_defaults_and_required() {
        let mut with_default = rule("color", ".color", Source::Text, FieldType::String);
        with_default.default = Some(json!("unknown"));
        let mut required = rule("brand", ".brand", Source::Text, FieldType::String);
        required.required = true;
        let mut bad_conversion = rule("price_bool", ".price", Source::Text, FieldType::Bool);
        bad_conversion.required = true;
        bad_conversion.default = Some(json!(null));
        let out = extract(vec![with_default, required, bad_conversion]);
        assert_eq!(out.fields["color"], json!("unknown"));
        assert!(!out.fields.contains_key("brand"));
        assert_eq!(out.fields["price_bool"], json!(null));
        assert_eq!(out.missing_required, vec!["brand", "price_bool"]);
        assert!(!out.is_complete());
    }

    #[test]
    fn bad_selector_names_the_field() {
        let rules = vec![
            rule("ok", "h1", Source::Text, FieldType::String),
            rule("broken", "div[", Source::Text, FieldType::String),
        ];
        match CompiledRules::compile(&rules) {
            Err(RuleError::BadSelector {
                field,
                selector,
                message,
            }) => {
                assert_eq!(field, "broken");
                assert_eq!(selector, "div[");
                assert!(!message.is_empty());
            }
            other => panic!("expected BadSelector, got {other:?}"),
        }
    }

    #[test]
    fn bad_regex_names_the_field() {
        let mut r = rule("price", ".price", Source::Text, FieldType::Number);
        r.regex = Some("(unclosed".into());
        let err = CompiledRules::compile(&[r]).expect_err("bad regex");
        assert!(matches!(&err, RuleError::BadRegex { field, regex, .. }
            if field == "price" && regex == "(unclosed"));
        assert!(err.to_string().contains("`price`"));
    }

    #[test]
    fn rules_round_trip_through_json_and_are_shareable() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<CompiledRules>();
        let r = rule("x", "a", Source::Attr("href".into()), FieldType::List);
        let text = serde_json::to_string(&r).expect("serialize");
        let back: FieldRule = serde_json::from_str(&text).expect("deserialize");
        assert_eq!(back, r);
    }
}

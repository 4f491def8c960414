//! CSS selectors as users write them: scraper's CSS, plus parsel's (Scrapy's)
//! `::text` and `::attr(name)` pseudo-elements at the end, and errors that
//! name the selector and the column where it goes wrong.
//!
//! `h1::text` takes the element's text and `a::attr(href)` its attribute
//! (where parsel's `::text` selects only an element's own text nodes,
//! trawl takes its whole text, whitespace collapsed outside `pre`/`code`).
//! XPath (`//h1`) is for field rules ([`crate::xpath`]); where only CSS
//! works (follow rules) it gets an error saying so, not a parser's
//! internal message.

use scraper::Selector;

use crate::select::Source;

/// A selector that does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{selector}`: {message} (column {column})")]
pub struct SelectorError {
    pub selector: String,
    /// 1-based, in characters.
    pub column: usize,
    pub message: String,
}

/// Split a trailing `::text` or `::attr(name)` off `selector`: the CSS
/// part, and the source the pseudo-element asks for.
pub fn split_pseudo(selector: &str) -> (&str, Option<Source>) {
    let s = selector.trim_end();
    if let Some(css) = s.strip_suffix("::text") {
        return (css.trim_end(), Some(Source::Text));
    }
    if let Some(open) = s.rfind("::attr(")
        && let Some(name) = s[open + "::attr(".len()..].strip_suffix(')')
    {
        let name = name.trim().trim_matches(['"', '\'']);
        if !name.is_empty() {
            return (s[..open].trim_end(), Some(Source::Attr(name.to_string())));
        }
    }
    (s, None)
}

/// Parse a CSS selector (without a parsel pseudo-element; see
/// [`split_pseudo`]); an error says what and where.
pub fn parse(selector: &str) -> Result<Selector, SelectorError> {
    let fail = |column: usize, message: String| SelectorError {
        selector: selector.to_string(),
        column,
        message,
    };
    let trimmed = selector.trim_start();
    if trimmed.starts_with('/') || trimmed.starts_with("./") || trimmed.starts_with("(/") {
        return Err(fail(
            selector.len() - trimmed.len() + 1,
            "this looks like XPath, which only field rules take; here a CSS selector is needed (`a.next`, `h1::text`, `a::attr(href)`)"
                .to_string(),
        ));
    }
    if trimmed.is_empty() {
        return Err(fail(1, "the selector is empty".to_string()));
    }
    match Selector::parse(selector) {
        Ok(s) => Ok(s),
        Err(error) => {
            let column = error_column(selector);
            let near: String = selector.chars().skip(column - 1).take(12).collect();
            let what = match error {
                scraper::error::SelectorErrorKind::UnexpectedSelectorParseError(_) => {
                    "not valid CSS here".to_string()
                }
                other => other.to_string().to_lowercase(),
            };
            let message = if near.is_empty() {
                format!("{what}: the selector ends too early")
            } else {
                format!("{what} at `{near}`")
            };
            Err(fail(column, message))
        }
    }
}

/// The 1-based column where `selector` stops being a valid selector: the
/// first character after the longest prefix that parses or only lacks an
/// ending.
fn error_column(selector: &str) -> usize {
    let ends: Vec<usize> = selector
        .char_indices()
        .map(|(i, _)| i)
        .skip(1)
        .chain([selector.len()])
        .collect();
    // A prefix is good when something could still complete it.
    const ENDINGS: [&str; 9] = ["", "a", " a", "]", ")", "a)", "a]", "\"]", "']"];
    let completes = |prefix: &str| {
        ENDINGS.iter().any(|ending| {
            matches!(
                Selector::parse(&format!("{prefix}{ending}")),
                Ok(_) | Err(scraper::error::SelectorErrorKind::EndOfLine)
            )
        })
    };
    let mut good = 0;
    for (k, &end) in ends.iter().enumerate() {
        if !completes(&selector[..end]) {
            break;
        }
        good = k + 1;
    }
    (good + 1).min(selector.chars().count().max(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parsel_pseudo_elements() {
        assert_eq!(split_pseudo("h1::text"), ("h1", Some(Source::Text)));
        assert_eq!(
            split_pseudo("div.title ::text"),
            ("div.title", Some(Source::Text))
        );
        assert_eq!(
            split_pseudo("a.next::attr(href)"),
            ("a.next", Some(Source::Attr("href".into())))
        );
        assert_eq!(
            split_pseudo("img::attr( 'data-src' )"),
            ("img", Some(Source::Attr("data-src".into())))
        );
        assert_eq!(split_pseudo("span.price"), ("span.price", None));
    }

    #[test]
    fn errors_name_the_selector_and_the_column() {
        let e = parse("//h1").unwrap_err();
        assert!(e.message.contains("XPath"), "{e}");
        assert_eq!(e.column, 1);
        let e = parse("div > > p").unwrap_err();
        assert_eq!(e.column, 7, "{e}");
        assert!(e.to_string().starts_with("`div > > p`:"), "{e}");
        // cssparser closes an open bracket at the end, as browsers do.
        assert!(parse("a[href").is_ok());
        let e = parse("ul, , li").unwrap_err();
        assert_eq!(e.column, 5, "{e}");
        let e = parse("p:nosuch").unwrap_err();
        assert!(!e.message.contains("report this"), "{e}");
        assert!(parse("ul li:nth-child(2n+1) > a[href^='/']").is_ok());
    }
}

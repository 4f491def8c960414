//! A single-pass scanner for the few tags a crawler reads from every page:
//! `<a href>`, `<area href>`, `<base href>`, `<html lang>`, `<meta name
//! content>`, `<link rel href>` and the first `<title>`.
//!
//! It follows the HTML tokenizer where it matters for finding those tags:
//! comments, doctypes and bogus comments are skipped; the contents of raw
//! text elements (`script`, `style`, `xmp`, `iframe`, `noembed`,
//! `noframes`, `noscript`) and escapable raw text elements (`title`,
//! `textarea`) are not markup, up to their end tag; `plaintext` ends all
//! markup; attribute values may be double-, single- or un-quoted; a tag cut
//! by the end of the document is no tag. Inside `<svg>` and `<math>` (foreign
//! content) those elements are ordinary and `<![CDATA[…]]>` is text. No tree
//! is built and nothing is allocated for the tags it skips, which is what
//! makes it several times cheaper than a general rewriter for this job; the
//! test suite checks it against lol_html on real documentation pages.

/// What one wanted start tag said.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tag {
    A,
    Area,
    Base,
    Html,
    Meta,
    Link,
    /// A `<title>` start tag (also one in foreign content).
    Title,
}

/// The attributes of one tag, as written (values not entity-decoded).
#[derive(Debug, Default)]
pub struct Attributes<'a> {
    list: Vec<(&'a str, &'a str)>,
}

impl<'a> Attributes<'a> {
    /// The first attribute named `name` (ASCII case-insensitive).
    pub fn get(&self, name: &str) -> Option<&'a str> {
        self.list
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| *v)
    }

    pub fn has(&self, name: &str) -> bool {
        self.get(name).is_some()
    }
}

/// What the scanner reports.
pub trait Visitor<'a> {
    /// A wanted start tag with its attributes.
    fn tag(&mut self, tag: Tag, attributes: &Attributes<'a>);
    /// The raw text of an HTML `<title>` element (not entity-decoded).
    fn title_text(&mut self, text: &'a str);
    /// A run of text between markup (not entity-decoded), outside raw
    /// text elements, the title and boilerplate (`<nav>`, `<aside>`,
    /// `<footer>`), while [`Visitor::wants_text`] says so.
    fn text(&mut self, _text: &'a str) {}
    /// Whether [`Visitor::text`] is still wanted (asked before each run).
    fn wants_text(&self) -> bool {
        false
    }
}

fn eq(a: &[u8], b: &[u8]) -> bool {
    a.eq_ignore_ascii_case(b)
}

fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r' | b'\x0c')
}

/// Bytes that end a tag name (space, `/`, `>`) and, with `=`, an
/// attribute name: a table, as they are tested for every byte of every
/// name.
const ENDS_TAG_NAME: u8 = 1;
const ENDS_ATTRIBUTE_NAME: u8 = 2;
const ENDS_UNQUOTED_VALUE: u8 = 4;
static STOPS: [u8; 256] = {
    let mut t = [0u8; 256];
    let spaces = [b' ', b'\t', b'\n', b'\r', b'\x0c'];
    let mut i = 0;
    while i < spaces.len() {
        t[spaces[i] as usize] = ENDS_TAG_NAME | ENDS_ATTRIBUTE_NAME | ENDS_UNQUOTED_VALUE;
        i += 1;
    }
    t[b'/' as usize] = ENDS_TAG_NAME | ENDS_ATTRIBUTE_NAME;
    t[b'>' as usize] = ENDS_TAG_NAME | ENDS_ATTRIBUTE_NAME | ENDS_UNQUOTED_VALUE;
    t[b'=' as usize] = ENDS_ATTRIBUTE_NAME;
    t
};

/// The first index from `from` whose byte is in `class`, or the end.
fn run_until(bytes: &[u8], from: usize, class: u8) -> usize {
    bytes[from..]
        .iter()
        .position(|&b| STOPS[b as usize] & class != 0)
        .map_or(bytes.len(), |e| from + e)
}

/// What a start tag's name means to the scanner.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// A tag reported to the visitor (`title` is also escapable raw text).
    Wanted(Tag),
    /// `svg`, `math`: foreign content.
    Foreign,
    /// `script`: raw text with the tokenizer's escapes.
    Script,
    /// Raw text (or escapable raw text) up to the element's end tag.
    RawText,
    /// `plaintext`: text to the end of the document.
    Plaintext,
    /// `nav`, `aside`, `footer`: their text is not reported.
    Boilerplate,
    Other,
}

/// One lower-casing and one match per tag (the longest name that matters
/// has nine letters).
fn classify(name: &[u8]) -> Kind {
    match name.len() {
        1 if name[0] | 0x20 == b'a' => return Kind::Wanted(Tag::A),
        // No name that matters has 2 or 7 letters (li, td, em, section, …).
        1 | 2 | 7 | 10.. => return Kind::Other,
        _ => {}
    }
    let mut lower = [0u8; 9];
    for (l, c) in lower.iter_mut().zip(name) {
        *l = c.to_ascii_lowercase();
    }
    match &lower[..name.len()] {
        b"a" => Kind::Wanted(Tag::A),
        b"area" => Kind::Wanted(Tag::Area),
        b"base" => Kind::Wanted(Tag::Base),
        b"html" => Kind::Wanted(Tag::Html),
        b"meta" => Kind::Wanted(Tag::Meta),
        b"link" => Kind::Wanted(Tag::Link),
        b"title" => Kind::Wanted(Tag::Title),
        b"svg" | b"math" => Kind::Foreign,
        b"script" => Kind::Script,
        b"style" | b"textarea" | b"xmp" | b"iframe" | b"noembed" | b"noframes" | b"noscript" => {
            Kind::RawText
        }
        b"plaintext" => Kind::Plaintext,
        b"nav" | b"aside" | b"footer" => Kind::Boilerplate,
        _ => Kind::Other,
    }
}

/// Scan `html`, reporting the wanted tags and the title's text.
pub fn scan<'a>(html: &'a str, visitor: &mut impl Visitor<'a>) {
    let bytes = html.as_bytes();
    let mut at = 0;
    // Open <svg> and <math> elements: inside them, no raw text elements.
    let mut foreign = 0usize;
    // Open boilerplate elements: their text is not reported.
    let mut boilerplate = 0usize;
    let mut attributes = Attributes::default();
    while let Some(found) = memchr::memchr(b'<', &bytes[at..]) {
        let lt = at + found;
        if lt > at && boilerplate == 0 && visitor.wants_text() {
            visitor.text(&html[at..lt]);
        }
        let Some(&next) = bytes.get(lt + 1) else {
            return;
        };
        match next {
            b'!' => at = skip_markup_declaration(bytes, lt, foreign > 0),
            b'?' => at = skip_to_gt(bytes, lt + 2),
            b'/' => {
                match bytes.get(lt + 2) {
                    Some(c) if c.is_ascii_alphabetic() => {
                        let (name, after) = tag_name(bytes, lt + 2);
                        if foreign > 0 && (eq(name, b"svg") || eq(name, b"math")) {
                            foreign -= 1;
                        }
                        if boilerplate > 0 && classify(name) == Kind::Boilerplate {
                            boilerplate -= 1;
                        }
                        match skip_attributes(bytes, after) {
                            Some((end, _)) => at = end,
                            None => return,
                        }
                    }
                    // `</>` is nothing; `</` and anything else is a comment.
                    Some(b'>') => at = lt + 3,
                    Some(_) => at = skip_to_gt(bytes, lt + 2),
                    None => return,
                }
            }
            c if c.is_ascii_alphabetic() => {
                let (name, after) = tag_name(bytes, lt + 1);
                let kind = classify(name);
                let tag = match kind {
                    Kind::Wanted(tag) => Some(tag),
                    _ => None,
                };
                attributes.list.clear();
                let parsed = if tag.is_some() {
                    parse_attributes(html, after, &mut attributes)
                } else {
                    skip_attributes(bytes, after)
                };
                let Some((end, self_closing)) = parsed else {
                    return;
                };
                if let Some(tag) = tag {
                    visitor.tag(tag, &attributes);
                }
                at = end;
                if foreign > 0 {
                    if breaks_out_of_foreign_content(name) {
                        // The tree builder closes the foreign elements.
                        foreign = 0;
                    } else {
                        if kind == Kind::Foreign && !self_closing {
                            foreign += 1;
                        }
                        continue;
                    }
                }
                match kind {
                    Kind::Foreign => foreign += usize::from(!self_closing),
                    Kind::Boilerplate => boilerplate += usize::from(!self_closing),
                    Kind::Plaintext => {
                        if boilerplate == 0 && visitor.wants_text() {
                            visitor.text(&html[at..]);
                        }
                        return;
                    }
                    Kind::Script => at = find_script_end(bytes, at).1,
                    Kind::RawText => at = find_end_tag(bytes, at, name).1,
                    Kind::Wanted(Tag::Title) => {
                        let (text_end, resume) = find_end_tag(bytes, at, name);
                        visitor.title_text(&html[at..text_end]);
                        at = resume;
                    }
                    Kind::Wanted(_) | Kind::Other => {}
                }
            }
            _ => at = lt + 1,
        }
    }
    if at < bytes.len() && boilerplate == 0 && visitor.wants_text() {
        visitor.text(&html[at..]);
    }
}

/// HTML start tags that end foreign content (the tree builder's list).
fn breaks_out_of_foreign_content(name: &[u8]) -> bool {
    const NAMES: [&[u8]; 44] = [
        b"b",
        b"big",
        b"blockquote",
        b"body",
        b"br",
        b"center",
        b"code",
        b"dd",
        b"div",
        b"dl",
        b"dt",
        b"em",
        b"embed",
        b"h1",
        b"h2",
        b"h3",
        b"h4",
        b"h5",
        b"h6",
        b"head",
        b"hr",
        b"i",
        b"img",
        b"li",
        b"listing",
        b"menu",
        b"meta",
        b"nobr",
        b"ol",
        b"p",
        b"pre",
        b"ruby",
        b"s",
        b"small",
        b"span",
        b"strong",
        b"strike",
        b"sub",
        b"sup",
        b"table",
        b"tt",
        b"u",
        b"ul",
        b"var",
    ];
    NAMES.iter().any(|n| eq(name, n))
}

/// `<!…`: a comment, a doctype, CDATA in foreign content, or a bogus
/// comment; returns where markup resumes.
fn skip_markup_declaration(bytes: &[u8], lt: usize, foreign: bool) -> usize {
    let rest = &bytes[lt + 2..];
    if rest.starts_with(b"--") {
        // `<!-->` and `<!--->` are whole (empty) comments.
        let body = lt + 4;
        for short in [&b">"[..], &b"->"[..]] {
            if bytes[body..].starts_with(short) {
                return body + short.len();
            }
        }
        let mut from = body;
        while let Some(found) = memchr::memmem::find(&bytes[from..], b"--") {
            let dashes = from + found;
            match bytes.get(dashes + 2) {
                Some(b'>') => return dashes + 3,
                Some(b'!') if bytes.get(dashes + 3) == Some(&b'>') => return dashes + 4,
                _ => from = dashes + 1,
            }
        }
        return bytes.len();
    }
    if foreign && rest.starts_with(b"[CDATA[") {
        return memchr::memmem::find(&bytes[lt..], b"]]>").map_or(bytes.len(), |e| lt + e + 3);
    }
    skip_to_gt(bytes, lt + 2)
}

fn skip_to_gt(bytes: &[u8], from: usize) -> usize {
    memchr::memchr(b'>', &bytes[from.min(bytes.len())..]).map_or(bytes.len(), |e| from + e + 1)
}

/// The tag name starting at `from` (its first letter) and where it ends.
fn tag_name(bytes: &[u8], from: usize) -> (&[u8], usize) {
    let end = run_until(bytes, from, ENDS_TAG_NAME);
    (&bytes[from..end], end)
}

/// Read a tag's attributes from `from` (just past its name), handing each
/// one's name and value (as byte ranges) to `each`: returns where markup
/// resumes and whether the tag closed with `/>`, or `None` when the
/// document ends inside the tag. This runs for every attribute of every
/// tag of every page: one loop, its byte classes from a table.
fn attributes(
    bytes: &[u8],
    from: usize,
    mut each: impl FnMut((usize, usize), (usize, usize)),
) -> Option<(usize, bool)> {
    let mut at = from;
    loop {
        // Before an attribute name: spaces and stray slashes; `/>`
        // self-closes.
        let b = *bytes.get(at)?;
        if b == b'>' {
            return Some((at + 1, false));
        }
        if b == b'/' {
            if bytes.get(at + 1) == Some(&b'>') {
                return Some((at + 2, true));
            }
            at += 1;
            continue;
        }
        if is_space(b) {
            at += 1;
            continue;
        }
        // The name: a leading `=` belongs to it; then up to space, `/`,
        // `>`, `=`.
        let name_start = at;
        at = run_until(bytes, at + 1, ENDS_ATTRIBUTE_NAME);
        let name = (name_start, at);
        let mut value = at;
        while bytes.get(value).is_some_and(|&b| is_space(b)) {
            value += 1;
        }
        if bytes.get(value) != Some(&b'=') {
            // No value.
            each(name, (at, at));
            continue;
        }
        value += 1;
        while bytes.get(value).is_some_and(|&b| is_space(b)) {
            value += 1;
        }
        match *bytes.get(value)? {
            quote @ (b'"' | b'\'') => {
                let end = value + 1 + memchr::memchr(quote, &bytes[value + 1..])?;
                each(name, (value + 1, end));
                at = end + 1;
            }
            // `<a href=>`: an empty value, and the tag ends.
            b'>' => {
                each(name, (value, value));
                at = value;
            }
            _ => {
                at = run_until(bytes, value, ENDS_UNQUOTED_VALUE);
                if at == bytes.len() {
                    return None;
                }
                each(name, (value, at));
            }
        }
    }
}

/// Skip a tag's attributes (see [`attributes`]).
fn skip_attributes(bytes: &[u8], from: usize) -> Option<(usize, bool)> {
    attributes(bytes, from, |_, _| {})
}

/// Read a wanted tag's attributes into `out` (see [`attributes`]).
fn parse_attributes<'a>(
    html: &'a str,
    from: usize,
    out: &mut Attributes<'a>,
) -> Option<(usize, bool)> {
    attributes(html.as_bytes(), from, |name, value| {
        // Every boundary is an ASCII byte, so these are char boundaries.
        let name = html.get(name.0..name.1).unwrap_or("");
        let value = html.get(value.0..value.1).unwrap_or("");
        out.list.push((name, value));
    })
}

/// The end of a raw text element named `name` whose text starts at `from`:
/// (where the text ends, where markup resumes). An element never closed
/// runs to the end of the document.
fn find_end_tag(bytes: &[u8], from: usize, name: &[u8]) -> (usize, usize) {
    let mut at = from;
    while let Some(found) = memchr::memmem::find(&bytes[at..], b"</") {
        let lt = at + found;
        let name_at = lt + 2;
        let name_end = name_at + name.len();
        if bytes.get(name_at..name_end).is_some_and(|n| eq(n, name))
            && bytes
                .get(name_end)
                .is_some_and(|&b| is_space(b) || b == b'/' || b == b'>')
        {
            let resume = match skip_attributes(bytes, name_end) {
                Some((resume, _)) => resume,
                None => bytes.len(),
            };
            return (lt, resume);
        }
        at = lt + 2;
    }
    (bytes.len(), bytes.len())
}

/// Whether `bytes[at..]` is `prefix` (ASCII case-insensitive) followed by
/// a space, `/` or `>`.
fn tag_at(bytes: &[u8], at: usize, prefix: &[u8]) -> bool {
    let end = at + prefix.len();
    bytes.get(at..end).is_some_and(|p| eq(p, prefix))
        && bytes
            .get(end)
            .is_some_and(|&b| is_space(b) || b == b'/' || b == b'>')
}

/// The end of a `<script>` whose text starts at `from`, with the
/// tokenizer's escapes: after `<!--`, a `<script>` opens a nested one
/// whose `</script>` does not end the outer one, until `-->`.
fn find_script_end(bytes: &[u8], from: usize) -> (usize, usize) {
    #[derive(PartialEq)]
    enum State {
        Data,
        Escaped,
        DoubleEscaped,
    }
    let mut state = State::Data;
    let mut at = from;
    while let Some(found) = memchr::memchr2(b'<', b'-', &bytes[at..]) {
        let p = at + found;
        if bytes[p] == b'-' {
            if state != State::Data && bytes[p..].starts_with(b"-->") {
                state = State::Data;
                at = p + 3;
            } else {
                at = p + 1;
            }
            continue;
        }
        let end_tag = tag_at(bytes, p, b"</script");
        match state {
            State::Data if bytes[p..].starts_with(b"<!--") => {
                // The opening's own dashes count: `<!-->` and `<!--->` close.
                let mut j = p + 4;
                while bytes.get(j) == Some(&b'-') {
                    j += 1;
                }
                if bytes.get(j) == Some(&b'>') {
                    at = j + 1;
                } else {
                    state = State::Escaped;
                    at = j;
                }
            }
            State::Data | State::Escaped if end_tag => {
                let resume = skip_attributes(bytes, p + 8).map_or(bytes.len(), |(r, _)| r);
                return (p, resume);
            }
            State::Escaped if tag_at(bytes, p, b"<script") => {
                state = State::DoubleEscaped;
                at = p + 7;
            }
            State::DoubleEscaped if end_tag => {
                state = State::Escaped;
                at = p + 8;
            }
            _ => at = p + 1,
        }
    }
    (bytes.len(), bytes.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Default)]
    struct Seen {
        tags: Vec<(Tag, Vec<(String, String)>)>,
        titles: Vec<String>,
    }

    impl<'a> Visitor<'a> for Seen {
        fn tag(&mut self, tag: Tag, attributes: &Attributes<'a>) {
            let list = attributes
                .list
                .iter()
                .map(|(n, v)| (n.to_string(), v.to_string()))
                .collect();
            self.tags.push((tag, list));
        }
        fn title_text(&mut self, text: &'a str) {
            self.titles.push(text.to_string());
        }
    }

    fn seen(html: &str) -> Seen {
        let mut s = Seen::default();
        scan(html, &mut s);
        s
    }

    fn hrefs(html: &str) -> Vec<String> {
        seen(html)
            .tags
            .into_iter()
            .filter(|(t, _)| *t == Tag::A)
            .filter_map(|(_, a)| {
                a.into_iter()
                    .find(|(n, _)| n.eq_ignore_ascii_case("href"))
                    .map(|(_, v)| v)
            })
            .collect()
    }

    #[test]
    fn quoting_and_attribute_forms() {
        assert_eq!(
            hrefs(
                r#"<a href="d q">1</a><A HREF='s q'>2<a href=un q><a  href = "sp" ><a/href=x><a href>"#
            ),
            vec!["d q", "s q", "un", "sp", "x", ""]
        );
        assert_eq!(hrefs(r#"<a title=">" href="after">"#), vec!["after"]);
        assert_eq!(hrefs(r#"<a href="first" href="second">"#), vec!["first"]);
    }

    #[test]
    fn not_markup_is_skipped() {
        let html = concat!(
            "<!-- <a href=c1> --><!--><a href=ok1><!---><a href=ok2>",
            "<!-- -- --!><a href=ok3><!doctype html><?php <a href=pi> ?>",
            "<script>x = '<a href=s1>'; '</scripty>'; </script ><a href=ok4>",
            "<style>a{}</style><textarea><a href=t1></textarea><a href=ok5>",
            "<noscript><a href=n1></noscript><title><a href=ti></title><a href=ok6>",
            "</not a tag><a href=ok7>< a href=no><a href=ok8"
        );
        assert_eq!(
            hrefs(html),
            vec!["ok1", "ok2", "ok3", "ok4", "ok5", "ok6", "ok7"]
        );
    }

    #[test]
    fn titles_and_foreign_content() {
        let s = seen(
            "<title>A &amp; B</title><svg><title>icon</title><style><a href=svg-a></style></svg>",
        );
        assert_eq!(s.titles, vec!["A &amp; B"]);
        assert_eq!(s.tags.iter().filter(|(t, _)| *t == Tag::Title).count(), 2);
        assert_eq!(
            hrefs("<svg><![CDATA[<a href=cdata>]]><a href=in-svg></svg><a href=after>"),
            vec!["in-svg", "after"]
        );
        assert_eq!(
            hrefs("<svg/><script><a href=s></script><a href=ok>"),
            vec!["ok"]
        );
        assert_eq!(hrefs("<plaintext><a href=never>"), Vec::<String>::new());
        assert_eq!(
            seen("<title>never closed <a href=x>").titles,
            vec!["never closed <a href=x>"]
        );
        // An HTML start tag such as <p> ends foreign content: <xmp> is raw
        // text again.
        assert_eq!(
            hrefs("<math><svg><xmp><a href=in-svg></xmp><p><xmp><a href=raw>"),
            vec!["in-svg"]
        );
        assert_eq!(
            hrefs("<svg><p><script><a href=s></script><a href=ok>"),
            vec!["ok"]
        );
        assert_eq!(
            hrefs("<svg><svg/><style><a href=still-svg></style></svg><style><a href=s></style>"),
            vec!["still-svg"]
        );
        // Script escapes: in `<!--`, a nested <script>'s end tag does not
        // end the outer script.
        assert_eq!(
            hrefs("<script><!--<script></script><a href=in></script>--></script><a href=out>"),
            vec!["out"]
        );
        assert_eq!(hrefs("<script><!--></script><a href=ok>"), vec!["ok"]);
    }
}

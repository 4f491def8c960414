//! Charset detection and decoding.
//!
//! Follows the order browsers use: a byte-order mark, then the charset in the
//! Content-Type header, then a `<meta charset>` / `http-equiv` declaration in
//! the first 1024 bytes, then statistical detection (chardetng), which also
//! settles bodies that declare nothing.

use encoding_rs::Encoding;

/// Pick the encoding of an HTML body.
pub fn detect(content_type: Option<&str>, body: &[u8]) -> &'static Encoding {
    if let Some((enc, _)) = Encoding::for_bom(body) {
        return enc;
    }
    if let Some(enc) = content_type
        .and_then(charset_param)
        .and_then(|l| Encoding::for_label(l.as_bytes()))
    {
        return enc;
    }
    if let Some(enc) = meta_charset(&body[..body.len().min(1024)]) {
        return enc;
    }
    let mut det = chardetng::EncodingDetector::new(chardetng::Iso2022JpDetection::Deny);
    det.feed(&body[..body.len().min(64 * 1024)], true);
    det.guess(None, chardetng::Utf8Detection::Allow)
}

/// Decode a body to UTF-8 (malformed sequences become U+FFFD). Valid UTF-8
/// is borrowed, not copied.
pub fn decode<'a>(content_type: Option<&str>, body: &'a [u8]) -> std::borrow::Cow<'a, str> {
    let enc = detect(content_type, body);
    let (text, _, _) = enc.decode(body);
    text
}

fn charset_param(content_type: &str) -> Option<String> {
    content_type.split(';').skip(1).find_map(|p| {
        let (k, v) = p.split_once('=')?;
        if k.trim().eq_ignore_ascii_case("charset") {
            Some(v.trim().trim_matches(['"', '\'']).to_string())
        } else {
            None
        }
    })
}

/// Find `charset=` inside a `<meta ...>` tag of the prescan window.
fn meta_charset(head: &[u8]) -> Option<&'static Encoding> {
    let text = String::from_utf8_lossy(head).to_ascii_lowercase();
    let mut rest = text.as_str();
    while let Some(pos) = rest.find("<meta") {
        let tag_end = rest[pos..].find('>').map_or(rest.len(), |e| pos + e);
        let tag = &rest[pos..tag_end];
        if let Some(cpos) = tag.find("charset") {
            let after = tag[cpos + "charset".len()..].trim_start();
            if let Some(value) = after.strip_prefix('=') {
                let value = value.trim_start().trim_start_matches(['"', '\'']);
                let end = value
                    .find(|c: char| {
                        c == '"' || c == '\'' || c == ';' || c.is_whitespace() || c == '/'
                    })
                    .unwrap_or(value.len());
                if let Some(enc) = Encoding::for_label(&value.as_bytes()[..end]) {
                    // A page declaring UTF-16 in a meta tag is really ASCII-compatible.
                    return Some(
                        if enc == encoding_rs::UTF_16LE || enc == encoding_rs::UTF_16BE {
                            encoding_rs::UTF_8
                        } else {
                            enc
                        },
                    );
                }
            }
        }
        rest = &rest[tag_end..];
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_wins_over_meta() {
        let body = b"<meta charset=utf-8><title>Caf\xe9</title>";
        assert_eq!(
            detect(Some("text/html; charset=ISO-8859-1"), body),
            encoding_rs::WINDOWS_1252
        );
        assert!(decode(Some("text/html; charset=\"iso-8859-1\""), body).contains("Café"));
    }

    #[test]
    fn meta_and_http_equiv() {
        let body = b"<html><head><meta http-equiv=\"Content-Type\" content=\"text/html; charset=Shift_JIS\">";
        assert_eq!(detect(Some("text/html"), body), encoding_rs::SHIFT_JIS);
        let body = b"<meta charset='windows-1251'>";
        assert_eq!(detect(None, body), encoding_rs::WINDOWS_1251);
    }

    #[test]
    fn bom_and_sniffing() {
        assert_eq!(
            detect(Some("text/html; charset=latin1"), b"\xef\xbb\xbfhello"),
            encoding_rs::UTF_8
        );
        assert_eq!(
            detect(None, "plain ascii and ünïcödé".as_bytes()),
            encoding_rs::UTF_8
        );
    }
}

//! Proxy addresses: parsing, masking and proxy list files.
//!
//! A proxy is written as a URL, `scheme://[user:pass@]host:port`, with the
//! schemes `http`, `https` (TLS to the proxy itself), `socks5` (the proxy
//! resolves nothing, we do) and `socks5h` (the proxy resolves host names).
//! Proxy list files also take the bare forms vendors hand out:
//! `host:port` and `host:port:user:pass` (both plain HTTP proxies), and
//! `user:pass@host:port`.
//!
//! Passwords never leave this module in clear except through
//! [`ProxySpec::url`], the string handed to the HTTP client: `Display`,
//! `Debug`, [`ProxySpec::masked`] and every error show `***` instead.

use std::fmt;

use trawl_core::Url;

/// How the downloader talks to the proxy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ProxyScheme {
    /// Plain HTTP proxy (CONNECT for HTTPS targets).
    Http,
    /// HTTP proxy reached over TLS.
    Https,
    /// SOCKS5, target names resolved locally.
    Socks5,
    /// SOCKS5, target names resolved by the proxy.
    Socks5h,
}

impl ProxyScheme {
    /// The URL scheme, e.g. `"socks5h"`.
    pub fn as_str(self) -> &'static str {
        match self {
            ProxyScheme::Http => "http",
            ProxyScheme::Https => "https",
            ProxyScheme::Socks5 => "socks5",
            ProxyScheme::Socks5h => "socks5h",
        }
    }

    fn from_name(name: &str) -> Option<ProxyScheme> {
        match name.to_ascii_lowercase().as_str() {
            "http" => Some(ProxyScheme::Http),
            "https" => Some(ProxyScheme::Https),
            "socks5" => Some(ProxyScheme::Socks5),
            "socks5h" => Some(ProxyScheme::Socks5h),
            _ => None,
        }
    }
}

impl fmt::Display for ProxyScheme {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a proxy address was refused. Every message shows the address with
/// its password masked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProxyError {
    #[error("empty proxy address")]
    Empty,
    #[error("unknown proxy scheme `{0}` (expected http, https, socks5 or socks5h)")]
    UnknownScheme(String),
    #[error("proxy `{0}` has no port (write host:port)")]
    MissingPort(String),
    #[error("bad proxy address `{proxy}`: {reason}")]
    Invalid { proxy: String, reason: String },
}

/// A line of a proxy list that does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("proxy list line {line}: {message}")]
pub struct ProxyListError {
    /// 1-based line number.
    pub line: usize,
    /// What is wrong, password masked.
    pub message: String,
}

/// One proxy. `Debug` and `Display` mask the password.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct ProxySpec {
    scheme: ProxyScheme,
    /// Lower-case host; IPv6 addresses keep their brackets.
    host: String,
    port: u16,
    /// Percent-encoded as in a URL; empty when there is none.
    username: String,
    /// Percent-encoded as in a URL.
    password: Option<String>,
}

impl ProxySpec {
    /// Parse one proxy address: a URL with an explicit port, or one of the
    /// bare forms `host:port`, `host:port:user:pass`, `user:pass@host:port`
    /// (all plain HTTP).
    pub fn parse(text: &str) -> Result<ProxySpec, ProxyError> {
        let text = text.trim();
        if text.is_empty() {
            return Err(ProxyError::Empty);
        }
        match text.find("://") {
            Some(at) => {
                let scheme_name = &text[..at];
                let scheme = ProxyScheme::from_name(scheme_name)
                    .ok_or_else(|| ProxyError::UnknownScheme(scheme_name.to_string()))?;
                parse_url(text, scheme, &text[at + 3..])
            }
            None if text.contains('@') && !is_vendor_form(text) => {
                let url = format!("http://{text}");
                parse_url(&url, ProxyScheme::Http, text)
            }
            None => parse_bare(text),
        }
    }

    pub fn scheme(&self) -> ProxyScheme {
        self.scheme
    }

    /// The host as written (lower case; IPv6 in brackets).
    pub fn host(&self) -> &str {
        &self.host
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The user name, percent-encoded as in the URL, if any.
    pub fn username(&self) -> Option<&str> {
        (!self.username.is_empty()).then_some(self.username.as_str())
    }

    /// The password, for clients that take it apart from the URL (a
    /// browser's proxy authentication).
    pub fn password(&self) -> Option<&str> {
        self.password.as_deref()
    }

    pub fn has_password(&self) -> bool {
        self.password.is_some()
    }

    /// The full URL with credentials, for the HTTP client's proxy setting
    /// (e.g. `reqwest::Proxy::all`). Do not log it: use [`Self::masked`].
    pub fn url(&self) -> String {
        self.render(self.password.as_deref())
    }

    /// The URL with the password replaced by `***`, for messages and stats:
    /// `http://user:***@host:port`.
    pub fn masked(&self) -> String {
        self.render(self.password.as_ref().map(|_| "***"))
    }

    fn render(&self, password: Option<&str>) -> String {
        let mut out = format!("{}://", self.scheme);
        if !self.username.is_empty() || password.is_some() {
            out.push_str(&self.username);
            if let Some(password) = password {
                out.push(':');
                out.push_str(password);
            }
            out.push('@');
        }
        out.push_str(&self.host);
        out.push(':');
        out.push_str(&self.port.to_string());
        out
    }
}

impl fmt::Debug for ProxySpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("ProxySpec").field(&self.masked()).finish()
    }
}

impl fmt::Display for ProxySpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.masked())
    }
}

impl std::str::FromStr for ProxySpec {
    type Err = ProxyError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ProxySpec::parse(s)
    }
}

/// Parse a proxy list: one proxy per line in any form [`ProxySpec::parse`]
/// takes; blank lines and lines starting with `#` are skipped, and a `#`
/// after whitespace starts a comment.
pub fn parse_list(text: &str) -> Result<Vec<ProxySpec>, ProxyListError> {
    let mut out = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let line = strip_comment(line).trim();
        if line.is_empty() {
            continue;
        }
        let spec = ProxySpec::parse(line).map_err(|e| ProxyListError {
            line: index + 1,
            message: e.to_string(),
        })?;
        out.push(spec);
    }
    Ok(out)
}

fn strip_comment(line: &str) -> &str {
    if line.trim_start().starts_with('#') {
        return "";
    }
    let bytes = line.as_bytes();
    for (i, &b) in bytes.iter().enumerate() {
        if b == b'#' && i > 0 && bytes[i - 1].is_ascii_whitespace() {
            return &line[..i];
        }
    }
    line
}

/// `url_text` is a whole URL with scheme; `after_scheme` is the part after
/// `://` as the user wrote it (for the explicit-port check).
fn parse_url(
    url_text: &str,
    scheme: ProxyScheme,
    after_scheme: &str,
) -> Result<ProxySpec, ProxyError> {
    // The url crate drops a scheme's default port (`http://h:80` has no
    // `port()`), so look at what was written.
    if !has_explicit_port(after_scheme) {
        return Err(ProxyError::MissingPort(mask_raw(url_text)));
    }
    // url::ParseError's messages never quote the input.
    let url = Url::parse(url_text).map_err(|e| invalid(url_text, &e.to_string()))?;
    let port = url
        .port_or_known_default()
        .ok_or_else(|| ProxyError::MissingPort(mask_raw(url_text)))?;
    from_url(&url, scheme, port, url_text)
}

/// `host:port` or `host:port:user:pass`.
fn parse_bare(text: &str) -> Result<ProxySpec, ProxyError> {
    let mut parts = text.splitn(4, ':');
    let host = parts.next().unwrap_or_default();
    let (Some(port), user, pass) = (parts.next(), parts.next(), parts.next()) else {
        return Err(ProxyError::MissingPort(mask_raw(text)));
    };
    if host.is_empty() || port.is_empty() || (user.is_some() && pass.is_none()) {
        return Err(invalid(text, "expected host:port or host:port:user:pass"));
    }
    let port: u16 = port.parse().map_err(|_| invalid(text, "bad port"))?;
    let mut url =
        Url::parse(&format!("http://{host}:{port}")).map_err(|e| invalid(text, &e.to_string()))?;
    if let (Some(user), Some(pass)) = (user, pass) {
        // The setters percent-encode whatever the vendor put there.
        if url.set_username(user).is_err() || url.set_password(Some(pass)).is_err() {
            return Err(invalid(text, "credentials not allowed here"));
        }
    }
    from_url(&url, ProxyScheme::Http, port, text)
}

fn from_url(url: &Url, scheme: ProxyScheme, port: u16, raw: &str) -> Result<ProxySpec, ProxyError> {
    if !matches!(url.path(), "" | "/") || url.query().is_some() || url.fragment().is_some() {
        return Err(invalid(
            raw,
            "a proxy address has no path, query or fragment",
        ));
    }
    let host = match url.host_str() {
        Some(host) if !host.is_empty() => host.to_ascii_lowercase(),
        _ => return Err(invalid(raw, "no host")),
    };
    if port == 0 {
        return Err(invalid(raw, "port 0"));
    }
    Ok(ProxySpec {
        scheme,
        host,
        port,
        username: url.username().to_string(),
        password: url.password().map(str::to_string),
    })
}

fn invalid(raw: &str, reason: &str) -> ProxyError {
    ProxyError::Invalid {
        proxy: mask_raw(raw),
        reason: reason.to_string(),
    }
}

/// `host:port:user:pass`, whatever the password holds.
fn is_vendor_form(text: &str) -> bool {
    let parts: Vec<&str> = text.splitn(4, ':').collect();
    parts.len() == 4 && !parts[0].contains('@') && parts[1].parse::<u16>().is_ok()
}

/// Whether the authority in `after_scheme` (everything after `://`) ends in
/// `:port`.
fn has_explicit_port(after_scheme: &str) -> bool {
    // Credentials may hold anything; the host starts after the last `@`.
    let authority_end = after_scheme.rfind('@').map(|at| at + 1).unwrap_or(0);
    let rest = &after_scheme[authority_end..];
    let host_port = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let after_host = match host_port.strip_prefix('[') {
        Some(v6) => match v6.find(']') {
            Some(close) => &v6[close + 1..],
            None => return false,
        },
        None => host_port,
    };
    match after_host.rfind(':') {
        Some(colon) => !after_host[colon + 1..].is_empty(),
        None => false,
    }
}

/// The raw text with anything that may be a password replaced by `***`:
/// userinfo after the first `:` (up to the last `@`), or the fourth field of
/// `host:port:user:pass`. Errs on the side of masking too much.
pub(crate) fn mask_raw(text: &str) -> String {
    let (prefix, rest) = match text.find("://") {
        Some(at) => text.split_at(at + 3),
        None => ("", text),
    };
    if prefix.is_empty() && is_vendor_form(rest) {
        let parts: Vec<&str> = rest.splitn(4, ':').collect();
        return format!("{}:{}:{}:***", parts[0], parts[1], parts[2]);
    }
    if let Some(at) = rest.rfind('@') {
        let userinfo = &rest[..at];
        let user = userinfo.split(':').next().unwrap_or_default();
        let masked = if userinfo.contains(':') {
            format!("{user}:***")
        } else {
            user.to_string()
        };
        return format!("{prefix}{masked}{}", &rest[at..]);
    }
    if prefix.is_empty() {
        // Something like host:port:user:pass with a bad port: mask past the
        // third colon.
        let parts: Vec<&str> = rest.splitn(4, ':').collect();
        if parts.len() == 4 {
            return format!("{}:{}:{}:***", parts[0], parts[1], parts[2]);
        }
    }
    text.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_scheme() {
        let cases = [
            ("http://proxy.example:8080", ProxyScheme::Http, 8080),
            ("https://proxy.example:443", ProxyScheme::Https, 443),
            ("socks5://10.0.0.1:1080", ProxyScheme::Socks5, 1080),
            ("SOCKS5H://Proxy.Example:1081/", ProxyScheme::Socks5h, 1081),
            ("http://proxy.example:80", ProxyScheme::Http, 80),
        ];
        for (text, scheme, port) in cases {
            let spec = ProxySpec::parse(text).unwrap();
            assert_eq!(spec.scheme(), scheme, "{text}");
            assert_eq!(spec.port(), port, "{text}");
            assert!(!spec.has_password());
        }
        let spec = ProxySpec::parse("socks5h://Proxy.Example:1081").unwrap();
        assert_eq!(spec.host(), "proxy.example");
        assert_eq!(spec.url(), "socks5h://proxy.example:1081");
        assert_eq!(
            ProxySpec::parse("http://proxy.example:80").unwrap().url(),
            "http://proxy.example:80"
        );
        let v6 = ProxySpec::parse("http://[::1]:3128").unwrap();
        assert_eq!(v6.host(), "[::1]");
        assert_eq!(v6.url(), "http://[::1]:3128");
    }

    #[test]
    fn credentials_are_kept_for_url_and_masked_elsewhere() {
        let spec = ProxySpec::parse("http://alice:s3cret@proxy.example:8080").unwrap();
        assert_eq!(spec.url(), "http://alice:s3cret@proxy.example:8080");
        assert_eq!(spec.masked(), "http://alice:***@proxy.example:8080");
        assert_eq!(spec.to_string(), spec.masked());
        assert_eq!(spec.username(), Some("alice"));
        let debug = format!("{spec:?}");
        assert!(!debug.contains("s3cret"), "{debug}");
        assert!(debug.contains("alice:***@"), "{debug}");
        let debug_vec = format!("{:?}", vec![spec.clone()]);
        assert!(!debug_vec.contains("s3cret"));

        let user_only = ProxySpec::parse("socks5://bob@h:1080").unwrap();
        assert_eq!(user_only.masked(), "socks5://bob@h:1080");
        assert_eq!(user_only.url(), "socks5://bob@h:1080");
    }

    #[test]
    fn clear_errors_without_the_password() {
        let err = ProxySpec::parse("ftp://u:hunter2@h:21").unwrap_err();
        assert_eq!(err, ProxyError::UnknownScheme("ftp".to_string()));
        assert!(
            err.to_string()
                .contains("expected http, https, socks5 or socks5h")
        );

        for text in [
            "http://u:hunter2@h",
            "http://u:hunter2@h:",
            "socks5://u:hunter2@[::1]",
            "http://u:hunter2@h/path",
        ] {
            let err = ProxySpec::parse(text).unwrap_err();
            assert!(matches!(err, ProxyError::MissingPort(_)), "{text}: {err}");
            let msg = err.to_string();
            assert!(!msg.contains("hunter2"), "{msg}");
            assert!(msg.contains("u:***@"), "{msg}");
        }

        for text in [
            "http://u:hunter2@h:99999",
            "http://u:hunter2@h:8080/some/path",
            "http://u:hunter2@:8080",
            "http://u:hunter2@h:0",
            "http://u:hunter2@h:port",
            "u:hunter2@h:notaport",
            "u:hunter2@h",
            "h:8080:u",
            "h:notaport:u:hunter2",
        ] {
            let err = ProxySpec::parse(text).unwrap_err();
            let msg = err.to_string();
            assert!(!msg.contains("hunter2"), "{text}: {msg}");
            assert!(!format!("{err:?}").contains("hunter2"), "{text}");
        }
        assert_eq!(ProxySpec::parse("  ").unwrap_err(), ProxyError::Empty);
        assert!(matches!(
            ProxySpec::parse("justahost").unwrap_err(),
            ProxyError::MissingPort(_)
        ));
    }

    #[test]
    fn bare_vendor_forms() {
        let plain = ProxySpec::parse("1.2.3.4:3128").unwrap();
        assert_eq!(plain.scheme(), ProxyScheme::Http);
        assert_eq!(plain.url(), "http://1.2.3.4:3128");

        let vendor = ProxySpec::parse("gate.vendor.io:7777:customer-1:p@ss:word").unwrap();
        assert_eq!(vendor.host(), "gate.vendor.io");
        assert_eq!(vendor.port(), 7777);
        assert_eq!(vendor.username(), Some("customer-1"));
        assert_eq!(vendor.masked(), "http://customer-1:***@gate.vendor.io:7777");
        // Special characters are percent-encoded so the URL parses back.
        let url = vendor.url();
        assert!(url.starts_with("http://customer-1:p%40ss"), "{url}");
        assert_eq!(ProxySpec::parse(&url).unwrap(), vendor);

        let odd = ProxySpec::parse("h:8080:u:pw:with@and:").unwrap();
        assert_eq!(odd.masked(), "http://u:***@h:8080");

        let port80 = ProxySpec::parse("h:80:u:p").unwrap();
        assert_eq!(port80.url(), "http://u:p@h:80");

        let at_form = ProxySpec::parse("u:p@h:8000").unwrap();
        assert_eq!(at_form.url(), "http://u:p@h:8000");
    }

    #[test]
    fn mask_raw_hides_passwords() {
        assert_eq!(mask_raw("http://u:pw@h:1"), "http://u:***@h:1");
        assert_eq!(mask_raw("http://u:p@w@h:1"), "http://u:***@h:1");
        assert_eq!(mask_raw("h:1:u:pw"), "h:1:u:***");
        assert_eq!(mask_raw("h:1:u:pw:more"), "h:1:u:***");
        assert_eq!(mask_raw("h:1:u:p@ss:w"), "h:1:u:***");
        assert_eq!(mask_raw("http://h:1"), "http://h:1");
    }

    #[test]
    fn list_with_comments_and_line_numbers() {
        let text = "# my proxies\n\
                    \n\
                    http://a.example:8080\n\
                    \x20 socks5h://u:pw@b.example:1080   # the fast one\n\
                    c.example:3128\n\
                    d.example:3128:user:pass\n";
        let list = parse_list(text).unwrap();
        let masked: Vec<String> = list.iter().map(ProxySpec::masked).collect();
        assert_eq!(
            masked,
            [
                "http://a.example:8080",
                "socks5h://u:***@b.example:1080",
                "http://c.example:3128",
                "http://user:***@d.example:3128",
            ]
        );

        let bad = "http://a.example:8080\n# fine\n\ngopher://u:topsecret@x:70\n";
        let err = parse_list(bad).unwrap_err();
        assert_eq!(err.line, 4);
        assert!(
            err.message.contains("unknown proxy scheme"),
            "{}",
            err.message
        );
        assert!(!err.to_string().contains("topsecret"));
        assert!(err.to_string().starts_with("proxy list line 4:"));

        let missing = parse_list("a:1\nhttp://u:topsecret@nohost\n").unwrap_err();
        assert_eq!(missing.line, 2);
        assert!(
            !missing.message.contains("topsecret"),
            "{}",
            missing.message
        );

        assert!(parse_list("\n# nothing\n").unwrap().is_empty());
    }
}

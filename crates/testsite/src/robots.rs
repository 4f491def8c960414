//! robots.txt for the test site: the text it serves and a small RFC 9309
//! matcher used to compute the ground truth (which paths a correct crawler,
//! product token [`PRODUCT_TOKEN`], may fetch).

use crate::config::RobotsMode;

/// The crawler's robots.txt product token.
pub const PRODUCT_TOKEN: &str = "trawl";

/// The robots.txt served in [`RobotsMode::Default`]; `base` is the base URL
/// (`http://host:port`) the client used.
///
/// For the `trawl` token only the `trawl` group applies, so `/private/`
/// (including `/private/public-ok`, which only the `*` group allows),
/// `/nottrawl/` and `*.pdf` are off limits.
pub fn default_robots_txt(base: &str) -> String {
    format!(
        "# robots.txt of the trawl test site\n\
         User-agent: *\n\
         Disallow: /private/\n\
         Disallow: /*.pdf$\n\
         Allow: /private/public-ok\n\
         Sitemap: {base}/sitemap_index.xml\n\
         \n\
         User-agent: trawl\n\
         Disallow: /private/\n\
         Disallow: /nottrawl/\n\
         Disallow: /*.pdf$\n\
         Crawl-delay: 0\n\
         Sitemap: {base}/sitemap_index.xml\n\
         \n\
         # Groups for other crawlers must not confuse trawl.\n\
         User-agent: BadBot\n\
         User-agent: trawl-imposter\n\
         Disallow: /\n"
    )
}

/// Effective robots rules for one product token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Rules {
    AllowAll,
    DisallowAll,
    List(Vec<Rule>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Rule {
    allow: bool,
    pattern: String,
}

#[derive(Default)]
struct Group {
    agents: Vec<String>,
    rules: Vec<Rule>,
}

impl Rules {
    /// The rules a correct crawler derives from what the site serves in `mode`.
    pub(crate) fn for_mode(mode: &RobotsMode) -> Rules {
        match mode {
            RobotsMode::Default => Rules::parse(&default_robots_txt("http://host"), PRODUCT_TOKEN),
            RobotsMode::None => Rules::AllowAll,
            RobotsMode::ServerError => Rules::DisallowAll,
            RobotsMode::Custom(text) => Rules::parse(text, PRODUCT_TOKEN),
        }
    }

    /// Parses robots.txt text and keeps the rules that apply to `token`
    /// (the groups naming it, else the `*` groups, else nothing).
    pub(crate) fn parse(text: &str, token: &str) -> Rules {
        let mut groups: Vec<Group> = Vec::new();
        let mut in_rules = false;
        for raw in text.lines() {
            let line = raw.split('#').next().unwrap_or("").trim();
            let Some((key, value)) = line.split_once(':') else {
                continue;
            };
            let key = key.trim().to_ascii_lowercase();
            let value = value.trim();
            match key.as_str() {
                "user-agent" => {
                    if in_rules || groups.is_empty() {
                        groups.push(Group::default());
                        in_rules = false;
                    }
                    if let Some(g) = groups.last_mut() {
                        g.agents.push(agent_token(value));
                    }
                }
                "allow" | "disallow" => {
                    in_rules = true;
                    if value.is_empty() {
                        continue;
                    }
                    if let Some(g) = groups.last_mut() {
                        g.rules.push(Rule {
                            allow: key == "allow",
                            pattern: value.to_owned(),
                        });
                    }
                }
                "crawl-delay" => in_rules = true,
                _ => {}
            }
        }
        let token = token.to_ascii_lowercase();
        let pick = |name: &str| -> Option<Vec<Rule>> {
            let mut found = false;
            let mut rules = Vec::new();
            for g in &groups {
                if g.agents.iter().any(|a| a == name) {
                    found = true;
                    rules.extend(g.rules.iter().cloned());
                }
            }
            found.then_some(rules)
        };
        match pick(&token).or_else(|| pick("*")) {
            Some(rules) if !rules.is_empty() => Rules::List(rules),
            _ => Rules::AllowAll,
        }
    }

    /// Whether `path_and_query` may be fetched. `/robots.txt` always may.
    pub(crate) fn is_allowed(&self, path_and_query: &str) -> bool {
        if path_and_query == "/robots.txt" {
            return true;
        }
        match self {
            Rules::AllowAll => true,
            Rules::DisallowAll => false,
            Rules::List(rules) => {
                // Longest matching pattern wins; on a tie, allow wins.
                let mut best: Option<(usize, bool)> = None;
                for r in rules {
                    if pattern_matches(r.pattern.as_bytes(), path_and_query.as_bytes()) {
                        let len = r.pattern.len();
                        best = match best {
                            Some((l, a)) if l > len || (l == len && a) => Some((l, a)),
                            _ => Some((len, r.allow)),
                        };
                    }
                }
                best.is_none_or(|(_, allow)| allow)
            }
        }
    }
}

/// The product token of a `User-agent` value, lower-cased: `*`, or its
/// leading run of `[A-Za-z_-]` (so `trawl/1.0` names `trawl`).
fn agent_token(value: &str) -> String {
    if value == "*" || value.starts_with("* ") || value.starts_with("*\t") {
        return "*".to_owned();
    }
    value
        .chars()
        .take_while(|c| c.is_ascii_alphabetic() || *c == '_' || *c == '-')
        .collect::<String>()
        .to_ascii_lowercase()
}

/// RFC 9309 pattern matching: `*` matches any sequence, a trailing `$`
/// anchors at the end, otherwise the pattern is a prefix match.
fn pattern_matches(pattern: &[u8], path: &[u8]) -> bool {
    let (pat, anchored) = match pattern.split_last() {
        Some((b'$', rest)) => (rest, true),
        _ => (pattern, false),
    };
    let mut p: Vec<u8> = pat.to_vec();
    if !anchored {
        p.push(b'*');
    }
    let (mut pi, mut si) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while si < path.len() {
        if pi < p.len() && p[pi] == b'*' {
            star = Some((pi, si));
            pi += 1;
        } else if pi < p.len() && p[pi] == path[si] {
            pi += 1;
            si += 1;
        } else if let Some((sp, ss)) = star {
            pi = sp + 1;
            si = ss + 1;
            star = Some((sp, ss + 1));
        } else {
            return false;
        }
    }
    while pi < p.len() && p[pi] == b'*' {
        pi += 1;
    }
    pi == p.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns() {
        assert!(pattern_matches(b"/private/", b"/private/secret"));
        assert!(!pattern_matches(b"/private/", b"/privat"));
        assert!(pattern_matches(b"/*.pdf$", b"/files/a.pdf"));
        assert!(!pattern_matches(b"/*.pdf$", b"/files/a.pdf?x=1"));
        assert!(pattern_matches(b"/*.pdf", b"/files/a.pdf?x=1"));
        assert!(pattern_matches(b"/", b"/anything"));
        assert!(pattern_matches(b"/a*b*c$", b"/axxbyyc"));
        assert!(!pattern_matches(b"/a*b*c$", b"/axxbyycd"));
        assert!(pattern_matches(b"/p/$", b"/p/"));
        assert!(!pattern_matches(b"/p/$", b"/p/1"));
    }

    #[test]
    fn default_rules_for_trawl() {
        let r = Rules::for_mode(&RobotsMode::Default);
        assert!(r.is_allowed("/"));
        assert!(r.is_allowed("/p/1"));
        assert!(!r.is_allowed("/private/secret"));
        assert!(!r.is_allowed("/private/public-ok"));
        assert!(!r.is_allowed("/nottrawl/page"));
        assert!(!r.is_allowed("/x/y.pdf"));
        assert!(r.is_allowed("/robots.txt"));
    }

    #[test]
    fn star_group_and_tie_breaking() {
        let r = Rules::parse(
            "User-agent: *\nDisallow: /private/\nAllow: /private/public-ok\n",
            PRODUCT_TOKEN,
        );
        assert!(r.is_allowed("/private/public-ok"));
        assert!(!r.is_allowed("/private/secret"));
        let r = Rules::parse("User-agent: *\nDisallow: /a\nAllow: /a\n", PRODUCT_TOKEN);
        assert!(r.is_allowed("/a"));
        let r = Rules::parse("User-agent: other\nDisallow: /\n", PRODUCT_TOKEN);
        assert_eq!(r, Rules::AllowAll);
        let r = Rules::parse(
            "User-agent: TRAWL\nUser-agent: x\nDisallow: /\n",
            PRODUCT_TOKEN,
        );
        assert!(!r.is_allowed("/p/1"));
        let r = Rules::parse("User-agent: trawl/1.0\nDisallow: /a\n", PRODUCT_TOKEN);
        assert!(!r.is_allowed("/a"));
        let r = Rules::parse(
            "User-agent: trawl-imposter\nDisallow: /\nUser-agent: *\nDisallow: /b\n",
            PRODUCT_TOKEN,
        );
        assert!(r.is_allowed("/a") && !r.is_allowed("/b"));
    }
}

//! Unit tests for robots.txt parsing: one test per RFC 9309 rule, plus the
//! examples from RFC 9309 §5 and Google's documentation, status mapping, the
//! size cap and robustness against hostile input.

use super::*;

const TOKEN: &str = "trawl";

fn robots(body: &str) -> Robots {
    Robots::parse(body.as_bytes(), TOKEN)
}

// ---- RFC 9309 §5.1: simple example ---------------------------------------

const RFC_SIMPLE: &str = "User-Agent: *\n\
Disallow: *.gif$\n\
Disallow: /example/\n\
Allow: /publications/\n\
\n\
User-Agent: foobot\n\
Disallow:/\n\
Allow:/example/page.html\n\
Allow:/example/allowed.gif\n\
\n\
User-Agent: barbot\n\
User-Agent: bazbot\n\
Disallow: /example/page.html\n\
\n\
User-Agent: quxbot\n";

#[test]
fn rfc_simple_example_foobot() {
    let r = Robots::parse(RFC_SIMPLE.as_bytes(), "foobot");
    assert!(!r.is_allowed("/"));
    assert!(!r.is_allowed("/other"));
    assert!(r.is_allowed("/example/page.html"));
    assert!(r.is_allowed("/example/allowed.gif"));
    assert!(!r.is_allowed("/example/other.gif"));
}

#[test]
fn rfc_simple_example_barbot_and_bazbot_share_a_group() {
    for bot in ["barbot", "bazbot"] {
        let r = Robots::parse(RFC_SIMPLE.as_bytes(), bot);
        assert!(!r.is_allowed("/example/page.html"), "{bot}");
        assert!(r.is_allowed("/example/other.html"), "{bot}");
        // The `*` group does not apply: a specific group matched.
        assert!(r.is_allowed("/example/"), "{bot}");
        assert!(r.is_allowed("/image.gif"), "{bot}");
    }
}

#[test]
fn rfc_simple_example_empty_group_allows_everything() {
    let r = Robots::parse(RFC_SIMPLE.as_bytes(), "quxbot");
    assert!(r.is_allowed("/example/"));
    assert!(r.is_allowed("/image.gif"));
}

#[test]
fn rfc_simple_example_other_bots_use_star() {
    let r = Robots::parse(RFC_SIMPLE.as_bytes(), "trawl");
    assert!(!r.is_allowed("/image.gif"));
    assert!(!r.is_allowed("/example/"));
    assert!(!r.is_allowed("/example/page.html"));
    assert!(r.is_allowed("/publications/"));
    assert!(r.is_allowed("/image.gif?x=1"));
    assert!(r.is_allowed("/other"));
}

// ---- RFC 9309 §5.2: longest match ---------------------------------------

#[test]
fn rfc_longest_match_example() {
    let r = robots(
        "User-Agent: trawl\nAllow: /example/page/\nDisallow: /example/page/disallowed.gif\n",
    );
    assert!(r.is_allowed("/example/page/"));
    assert!(r.is_allowed("/example/page/other.gif"));
    assert!(!r.is_allowed("/example/page/disallowed.gif"));
}

#[test]
fn longest_match_is_independent_of_order() {
    let a = robots("User-agent: *\nDisallow: /a\nAllow: /a/b\n");
    let b = robots("User-agent: *\nAllow: /a/b\nDisallow: /a\n");
    for r in [a, b] {
        assert!(!r.is_allowed("/a"));
        assert!(!r.is_allowed("/a/c"));
        assert!(r.is_allowed("/a/b"));
        assert!(r.is_allowed("/a/b/c"));
    }
}

#[test]
fn longest_match_counts_wildcard_octets() {
    // "/*.html" (7 octets) beats "/page" (5 octets) for /page.html.
    let r = robots("User-agent: *\nAllow: /page\nDisallow: /*.html\n");
    assert!(!r.is_allowed("/page.html"));
    assert!(r.is_allowed("/page.htm"));
}

// ---- Allow vs Disallow ties (Google's documented examples) ---------------

#[test]
fn equal_length_tie_allow_wins() {
    let r = robots("User-agent: *\nAllow: /p\nDisallow: /\n");
    assert!(r.is_allowed("/page"));
    assert!(!r.is_allowed("/other"));

    let r = robots("User-agent: *\nDisallow: /folder\nAllow: /folder\n");
    assert!(r.is_allowed("/folder/page"));

    let r = robots("User-agent: *\nDisallow: /page\nAllow: /page\n");
    assert!(r.is_allowed("/page"));
}

#[test]
fn google_examples_with_wildcards() {
    // https://developers.google.com/search/docs/crawling-indexing/robots/robots_txt
    let r = robots("User-agent: *\nAllow: /$\nDisallow: /\n");
    assert!(r.is_allowed("/"));
    assert!(!r.is_allowed("/page.htm"));

    let r = robots("User-agent: *\nAllow: /page\nDisallow: /*.html\n");
    assert!(!r.is_allowed("/page.html"));
    assert!(r.is_allowed("/page.php"));

    let r = robots("User-agent: *\nAllow: /folder\nDisallow: /folder\n");
    assert!(r.is_allowed("/folder/page"));

    let r = robots("User-agent: *\nAllow: /*.php$\nDisallow: /\n");
    assert!(r.is_allowed("/index.php"));
    assert!(!r.is_allowed("/index.php?x=1"));
    assert!(!r.is_allowed("/index.html"));
}

#[test]
fn google_fish_examples_through_robots() {
    let r = robots("User-agent: *\nDisallow: /fish*\n");
    assert!(!r.is_allowed("/fish"));
    assert!(!r.is_allowed("/fishheads/yummy.html"));
    assert!(!r.is_allowed("/fish.php?id=anything"));
    assert!(r.is_allowed("/Fish.asp"));
    assert!(r.is_allowed("/catfish"));

    let r = robots("User-agent: *\nDisallow: /fish/\n");
    assert!(!r.is_allowed("/fish/salmon.htm"));
    assert!(r.is_allowed("/fish"));
    assert!(r.is_allowed("/fish.html"));

    let r = robots("User-agent: *\nDisallow: /*.php$\n");
    assert!(!r.is_allowed("/filename.php"));
    assert!(!r.is_allowed("/folder/filename.php"));
    assert!(r.is_allowed("/filename.php?parameters"));
    assert!(r.is_allowed("/filename.php/"));
    assert!(r.is_allowed("/filename.php5"));
    assert!(r.is_allowed("/windows.PHP"));
}

#[test]
fn dollar_anchor_on_plain_path() {
    let r = robots("User-agent: *\nDisallow: /private$\n");
    assert!(!r.is_allowed("/private"));
    assert!(r.is_allowed("/private/"));
    assert!(r.is_allowed("/private?x"));
    assert!(r.is_allowed("/privateer"));
}

#[test]
fn query_is_part_of_the_match() {
    let r = robots("User-agent: *\nDisallow: /*?sessionid=\nDisallow: /search?\n");
    assert!(!r.is_allowed("/a?sessionid=1"));
    assert!(!r.is_allowed("/search?q=x"));
    assert!(r.is_allowed("/search"));
    assert!(r.is_allowed("/a?b=1"));
}

// ---- Percent-encoding (RFC 9309 §2.2.2) -----------------------------------

#[test]
fn percent_encoding_is_normalised_both_ways() {
    let r = robots("User-agent: *\nDisallow: /%7Ejoe\n");
    assert!(!r.is_allowed("/~joe/index.html"));
    assert!(!r.is_allowed("/%7ejoe/index.html"));

    let r = robots("User-agent: *\nDisallow: /~joe\n");
    assert!(!r.is_allowed("/%7Ejoe/"));

    // RFC 9309 §2.2.2 table: non-ASCII in the pattern is UTF-8 encoded.
    let r = robots("User-agent: *\nDisallow: /foo/bar/ツ\n");
    assert!(!r.is_allowed("/foo/bar/%E3%83%84"));
    assert!(!r.is_allowed("/foo/bar/ツ"));
    let r = robots("User-agent: *\nDisallow: /foo/bar/%E3%83%84\n");
    assert!(!r.is_allowed("/foo/bar/ツ"));
    let r = robots("User-agent: *\nDisallow: /foo/bar/%62%61%7A\n");
    assert!(!r.is_allowed("/foo/bar/baz"));

    // Encoded reserved characters stay distinct from the raw ones.
    let r = robots("User-agent: *\nDisallow: /a%2Fb\n");
    assert!(r.is_allowed("/a/b"));
    assert!(!r.is_allowed("/a%2fb"));
}

#[test]
fn fragment_is_ignored_and_empty_path_is_root() {
    let r = robots("User-agent: *\nDisallow: /$\n");
    assert!(!r.is_allowed(""));
    assert!(!r.is_allowed("/#frag"));
    assert!(r.is_allowed("/a#"));
}

// ---- User-agent matching and groups (RFC 9309 §2.2.1) --------------------

#[test]
fn user_agent_match_is_case_insensitive() {
    let r = robots("User-agent: TRAWL\nDisallow: /x\n");
    assert!(!r.is_allowed("/x"));
    let r = Robots::parse(b"User-agent: trawl\nDisallow: /x\n", "Trawl");
    assert!(!r.is_allowed("/x"));
}

#[test]
fn user_agent_must_match_whole_token() {
    let body = "User-agent: trawl-bot\nDisallow: /a\n\nUser-agent: trawler\nDisallow: /b\n\nUser-agent: *\nDisallow: /c\n";
    let r = robots(body);
    assert!(r.is_allowed("/a"));
    assert!(r.is_allowed("/b"));
    assert!(!r.is_allowed("/c"));

    // A version suffix is not part of the product token.
    let r = robots("User-agent: trawl/0.1\nDisallow: /v\n\nUser-agent: *\nDisallow: /c\n");
    assert!(!r.is_allowed("/v"));
    assert!(r.is_allowed("/c"));
}

#[test]
fn full_user_agent_string_is_not_what_is_matched() {
    let body = "User-agent: Mozilla\nDisallow: /m\n\nUser-agent: trawl\nDisallow: /t\n";
    let r = robots(body);
    assert!(r.is_allowed("/m"));
    assert!(!r.is_allowed("/t"));
    // A caller passing a token with a version still matches by token.
    let r = Robots::parse(body.as_bytes(), "trawl/0.1");
    assert!(!r.is_allowed("/t"));
    assert!(r.is_allowed("/m"));
}

#[test]
fn groups_for_the_same_agent_are_merged() {
    let body = "User-agent: trawl\nDisallow: /a\n\nUser-agent: other\nDisallow: /b\n\nUser-agent: trawl\nDisallow: /c\n";
    let r = robots(body);
    assert!(!r.is_allowed("/a"));
    assert!(r.is_allowed("/b"));
    assert!(!r.is_allowed("/c"));
}

#[test]
fn star_groups_are_merged_when_no_specific_group() {
    let body = "User-agent: *\nDisallow: /a\n\nUser-agent: other\nDisallow: /b\n\nUser-agent: *\nDisallow: /c\n";
    let r = robots(body);
    assert!(!r.is_allowed("/a"));
    assert!(r.is_allowed("/b"));
    assert!(!r.is_allowed("/c"));
}

#[test]
fn specific_group_replaces_star_groups() {
    let body = "User-agent: *\nDisallow: /\n\nUser-agent: trawl\nDisallow: /private\n";
    let r = robots(body);
    assert!(r.is_allowed("/public"));
    assert!(!r.is_allowed("/private"));
}

#[test]
fn specific_group_without_rules_still_wins_over_star() {
    let body = "User-agent: *\nDisallow: /\n\nUser-agent: trawl\nDisallow:\n";
    let r = robots(body);
    assert!(r.is_allowed("/anything"));
}

#[test]
fn consecutive_user_agent_lines_share_a_group() {
    let body = "User-agent: a\nUser-agent: trawl\n\nUser-agent: b\nDisallow: /x\n\nUser-agent: c\nDisallow: /y\n";
    let r = robots(body);
    // Blank lines do not end a list of user agents.
    assert!(!r.is_allowed("/x"));
    assert!(r.is_allowed("/y"));
}

#[test]
fn group_naming_us_and_star_is_specific() {
    let body = "User-agent: *\nUser-agent: trawl\nDisallow: /a\n\nUser-agent: *\nDisallow: /b\n";
    let r = robots(body);
    assert!(!r.is_allowed("/a"));
    assert!(r.is_allowed("/b"));
}

#[test]
fn no_matching_group_allows_all() {
    let r = robots("User-agent: other\nDisallow: /\n");
    assert!(r.is_allowed("/"));
    assert!(r.is_allowed("/anything"));
}

#[test]
fn rules_before_first_user_agent_are_ignored() {
    let r = robots(
        "Disallow: /\nCrawl-delay: 9\nSitemap: https://e.com/s.xml\nUser-agent: *\nDisallow: /x\n",
    );
    assert!(r.is_allowed("/"));
    assert!(!r.is_allowed("/x"));
    assert_eq!(r.crawl_delay(), None);
    assert_eq!(r.sitemaps(), ["https://e.com/s.xml"]);
}

#[test]
fn empty_disallow_disallows_nothing() {
    let r = robots("User-agent: *\nDisallow:\n");
    assert!(r.is_allowed("/"));
    assert!(r.is_allowed("/x"));
    let r = robots("User-agent: *\nDisallow:   # nothing\n");
    assert!(r.is_allowed("/x"));
}

#[test]
fn robots_txt_is_always_allowed() {
    let r = robots("User-agent: *\nDisallow: /\n");
    assert!(r.is_allowed("/robots.txt"));
    assert!(r.is_allowed("/robots.txt?x=1"));
    assert!(!r.is_allowed("/robots.txt.bak"));
    assert!(Robots::disallow_all().is_allowed("/robots.txt"));
    assert!(!Robots::disallow_all().is_allowed("/"));
}

// ---- Line syntax ----------------------------------------------------------

#[test]
fn comments_whitespace_case_and_line_endings() {
    for body in [
        "user-AGENT: trawl # us\r\ndisALLOW:   /a   # comment\r\n",
        "User-agent: trawl\rDisallow: /a\r",
        "\u{feff}User-agent: trawl\nDisallow: /a",
        "   User-agent:trawl\n\t Disallow:/a \n",
        "# header\n\nUser-agent: trawl\n\n# between\nDisallow: /a\n",
    ] {
        let r = robots(body);
        assert!(!r.is_allowed("/a"), "{body:?}");
        assert!(r.is_allowed("/b"), "{body:?}");
    }
}

#[test]
fn unknown_directives_are_ignored_and_typos_tolerated() {
    let body = "User-agent: trawl\nNoindex: /x\nHost: example.com\nDissallow: /a\nDisallow /b\nuseragent trawl\n";
    let r = robots(body);
    assert!(r.is_allowed("/x"));
    assert!(!r.is_allowed("/a"));
    assert!(!r.is_allowed("/b"));
}

#[test]
fn lines_without_separator_are_ignored() {
    let r = robots("User-agent: *\nDisallow\nfoo\n:\n:/x\n");
    assert!(r.is_allowed("/x"));
    assert!(r.is_allowed("/"));
}

#[test]
fn relative_pattern_is_rooted() {
    let r = robots("User-agent: *\nDisallow: private/\n");
    assert!(!r.is_allowed("/private/x"));
}

// ---- Crawl-delay -----------------------------------------------------------

#[test]
fn crawl_delay_from_selected_group() {
    let body =
        "User-agent: *\nCrawl-delay: 10\n\nUser-agent: trawl\nCrawl-delay: 2.5\nDisallow: /x\n";
    let r = robots(body);
    assert_eq!(r.crawl_delay(), Some(Duration::from_millis(2500)));
    let other = Robots::parse(body.as_bytes(), "other");
    assert_eq!(other.crawl_delay(), Some(Duration::from_secs(10)));
}

#[test]
fn crawl_delay_invalid_values_are_ignored() {
    for value in ["-1", "abc", "NaN", "inf", "1e400", "", "5s", "1e300"] {
        let r = robots(&format!("User-agent: *\nCrawl-delay: {value}\n"));
        assert_eq!(r.crawl_delay(), None, "{value}");
    }
    let r = robots("User-agent: *\nCrawl-delay: 0\n");
    assert_eq!(r.crawl_delay(), Some(Duration::ZERO));
    let r = robots("User-agent: *\nCrawl-delay: 0.25\n");
    assert_eq!(r.crawl_delay(), Some(Duration::from_millis(250)));
}

#[test]
fn crawl_delay_merged_groups_take_largest() {
    let body = "User-agent: trawl\nCrawl-delay: 1\n\nUser-agent: trawl\nCrawl-delay: 3\n\nUser-agent: trawl\nCrawl-delay: bogus\n";
    assert_eq!(robots(body).crawl_delay(), Some(Duration::from_secs(3)));
}

#[test]
fn crawl_delay_between_user_agents_ends_the_agent_list() {
    let body = "User-agent: other\nCrawl-delay: 5\nUser-agent: trawl\nDisallow: /x\n";
    let r = robots(body);
    assert_eq!(r.crawl_delay(), None);
    assert!(!r.is_allowed("/x"));
}

// ---- Sitemaps -------------------------------------------------------------

#[test]
fn sitemaps_are_collected_regardless_of_group() {
    let body = "Sitemap: https://e.com/a.xml\nUser-agent: other\nSitemap: https://e.com/b.xml\nDisallow: /\nsitemap:https://e.com/c.xml # c\nSITEMAP: https://e.com/a.xml\n";
    let r = robots(body);
    assert_eq!(
        r.sitemaps(),
        [
            "https://e.com/a.xml",
            "https://e.com/b.xml",
            "https://e.com/c.xml"
        ]
    );
    assert!(r.is_allowed("/"));
}

// ---- Status mapping (RFC 9309 §2.3.1) ---------------------------------------

#[test]
fn status_mapping() {
    let body = b"User-agent: *\nDisallow: /x\n";
    let ok = Robots::from_status(200, body, TOKEN);
    assert!(!ok.is_allowed("/x"));
    assert!(ok.is_allowed("/y"));
    assert!(!Robots::from_status(203, body, TOKEN).is_allowed("/x"));

    for status in [400, 401, 403, 404, 410, 451, 301, 399] {
        let r = Robots::from_status(status, body, TOKEN);
        assert!(r.is_allowed("/x"), "{status}");
        assert!(r.is_allowed("/"), "{status}");
    }
    for status in [500, 502, 503, 504, 599, 429, 0, 100, 600, 999] {
        let r = Robots::from_status(status, body, TOKEN);
        assert!(!r.is_allowed("/"), "{status}");
        assert!(!r.is_allowed("/y"), "{status}");
        assert!(r.is_allowed("/robots.txt"), "{status}");
    }
}

#[test]
fn allow_all_and_default() {
    let r = Robots::allow_all();
    assert!(r.is_allowed("/"));
    assert!(r.is_allowed("/anything?x"));
    assert_eq!(r.crawl_delay(), None);
    assert!(r.sitemaps().is_empty());
    assert!(Robots::default().is_allowed("/x"));
}

// ---- Size cap (RFC 9309 §2.5) -----------------------------------------------

#[test]
fn rule_after_500_kib_is_ignored() {
    let mut body = String::from("User-agent: *\nDisallow: /early\n");
    while body.len() < MAX_ROBOTS_BYTES {
        body.push_str("# padding padding padding padding padding padding\n");
    }
    body.push_str("Disallow: /late\n");
    let r = robots(&body);
    assert!(!r.is_allowed("/early"));
    assert!(r.is_allowed("/late"));
}

#[test]
fn line_cut_by_the_cap_is_dropped() {
    let mut body = String::from("User-agent: *\n");
    let filler = MAX_ROBOTS_BYTES - body.len() - "Disallow: /p".len();
    body.push_str(&"#".repeat(filler - 1));
    body.push('\n');
    body.push_str("Disallow: /private\n");
    assert!(body.len() > MAX_ROBOTS_BYTES);
    // The first MAX_ROBOTS_BYTES end in "Disallow: /p": that must not apply.
    let r = robots(&body);
    assert!(r.is_allowed("/public"));
    assert!(r.is_allowed("/private"));
}

#[test]
fn rule_ending_exactly_at_the_cap_is_kept() {
    let mut body = String::from("User-agent: *\n");
    let rule = "Disallow: /edge";
    let filler = MAX_ROBOTS_BYTES - body.len() - rule.len();
    body.push_str(&"#".repeat(filler - 1));
    body.push('\n');
    body.push_str(rule);
    assert_eq!(body.len(), MAX_ROBOTS_BYTES);
    body.push_str("\nDisallow: /late\n");
    let r = robots(&body);
    assert!(!r.is_allowed("/edge"));
    assert!(r.is_allowed("/late"));
}

// ---- Robustness ---------------------------------------------------------------

/// Small deterministic PRNG (xorshift64*) so the fuzz tests need no crates.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        usize::try_from(self.next() % n as u64).unwrap()
    }

    fn byte(&mut self) -> u8 {
        self.next().to_le_bytes()[0]
    }
}

#[test]
fn random_bytes_never_panic() {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    for _ in 0..300 {
        let len = rng.below(2048);
        let body: Vec<u8> = (0..len).map(|_| rng.byte()).collect();
        let r = Robots::parse(&body, TOKEN);
        let path: Vec<u8> = (0..rng.below(64)).map(|_| rng.byte()).collect();
        let path = String::from_utf8_lossy(&path);
        let _ = r.is_allowed(&path);
        let _ = r.crawl_delay();
        let _ = r.sitemaps();
    }
}

#[test]
fn random_robots_like_input_never_panics() {
    const PIECES: &[&str] = &[
        "User-agent:",
        "user-agent: trawl",
        "User-agent: *",
        "Allow:",
        "Disallow:",
        "Disallow: /",
        "Crawl-delay:",
        "Sitemap:",
        "*",
        "$",
        "%",
        "%7",
        "%7E",
        "%zz",
        "/",
        "?",
        "#",
        " ",
        "\t",
        "\n",
        "\r",
        "\r\n",
        ":",
        "ツ",
        "\u{feff}",
        "a",
        ".php",
        "1e9",
        "-",
        "\0",
    ];
    let mut rng = Rng(42);
    for _ in 0..500 {
        let mut body = String::new();
        for _ in 0..rng.below(80) {
            body.push_str(PIECES[rng.below(PIECES.len())]);
        }
        let r = robots(&body);
        for _ in 0..8 {
            let mut path = String::new();
            for _ in 0..rng.below(12) {
                path.push_str(PIECES[rng.below(PIECES.len())]);
            }
            let _ = r.is_allowed(&path);
        }
    }
}

#[test]
fn pathological_inputs_are_handled() {
    // 10k wildcard-heavy rules and a long path.
    let mut body = String::from("User-agent: *\n");
    for i in 0..10_000 {
        body.push_str(&format!("Disallow: /*a*a*a*a*a*a*a*a*{i}$\n"));
    }
    body.push_str("Allow: /\n");
    let r = robots(&body);
    let path = format!("/{}", "a".repeat(2000));
    assert!(r.is_allowed(&path));
    assert!(!r.is_allowed(&format!("{path}9999")));

    // One enormous line (bigger than the cap) and a huge pattern.
    let huge = format!("User-agent: *\nDisallow: /{}\n", "*x".repeat(300_000));
    let r = robots(&huge);
    assert!(r.is_allowed("/"));
    let long = format!("User-agent: *\nDisallow: /{}\n", "*x".repeat(100_000));
    let r = robots(&long);
    assert!(r.is_allowed(&format!("/{}", "x".repeat(50_000))));
    assert!(!r.is_allowed(&format!("/{}", "x".repeat(100_000))));
}

#[test]
fn robots_is_send_sync_clone() {
    fn assert_traits<T: Clone + std::fmt::Debug + Send + Sync + 'static>() {}
    assert_traits::<Robots>();
}

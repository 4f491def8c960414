//! Unit tests for sitemap parsing: urlset, index, text, gzip, namespaces,
//! malformed XML, the URL cap and a gzip bomb stopping at the size cap.

use std::io::Write;

use flate2::Compression;
use flate2::write::GzEncoder;

use super::*;

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut encoder = GzEncoder::new(Vec::new(), Compression::default());
    encoder.write_all(data).unwrap();
    encoder.finish().unwrap()
}

fn urls(sitemap: Sitemap) -> Vec<SitemapUrl> {
    match sitemap {
        Sitemap::UrlSet(urls) => urls,
        Sitemap::Index(index) => panic!("expected a urlset, got index {index:?}"),
    }
}

fn locs(sitemap: Sitemap) -> Vec<String> {
    urls(sitemap).into_iter().map(|u| u.loc).collect()
}

const URLSET: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9"
        xmlns:image="http://www.google.com/schemas/sitemap-image/1.1">
  <url>
    <loc>
      https://example.com/a
    </loc>
    <lastmod>2024-01-02</lastmod>
    <changefreq>daily</changefreq>
    <priority>0.8</priority>
    <image:image><image:loc>https://example.com/img.png</image:loc></image:image>
  </url>
  <url><loc>https://example.com/b?x=1&amp;y=2</loc><priority>7</priority></url>
  <url><loc><![CDATA[https://example.com/c]]></loc><lastmod> </lastmod></url>
  <url><loc>ftp://example.com/nope</loc></url>
  <url><loc>not a url</loc></url>
  <url><lastmod>2024-01-01</lastmod></url>
  <url><loc/></url>
  <unknown><loc>https://example.com/ignored</loc></unknown>
</urlset>"#;

#[test]
fn urlset_with_default_namespace() {
    let parsed = urls(parse(URLSET.as_bytes()).unwrap());
    assert_eq!(
        parsed,
        vec![
            SitemapUrl {
                loc: "https://example.com/a".into(),
                lastmod: Some("2024-01-02".into()),
                priority: Some(0.8),
            },
            SitemapUrl {
                loc: "https://example.com/b?x=1&y=2".into(),
                lastmod: None,
                priority: None,
            },
            SitemapUrl {
                loc: "https://example.com/c".into(),
                lastmod: None,
                priority: None,
            },
        ]
    );
}

#[test]
fn urlset_with_prefixed_namespace() {
    let xml = r#"<sm:urlset xmlns:sm="http://www.sitemaps.org/schemas/sitemap/0.9">
      <sm:url><sm:loc>http://example.com/p</sm:loc></sm:url>
      <url><loc>http://example.com/other-namespace</loc></url>
    </sm:urlset>"#;
    assert_eq!(
        locs(parse(xml.as_bytes()).unwrap()),
        ["http://example.com/p"]
    );
}

#[test]
fn urlset_without_namespace() {
    let xml = "<urlset><url><loc>http://example.com/</loc></url></urlset>";
    assert_eq!(
        locs(parse(xml.as_bytes()).unwrap()),
        ["http://example.com/"]
    );
}

#[test]
fn foreign_loc_directly_under_url_is_ignored() {
    let xml = r#"<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9"
        xmlns:x="urn:x"><url><x:loc>http://example.com/x</x:loc></url>
        <url><loc>http://example.com/y</loc></url></urlset>"#;
    assert_eq!(
        locs(parse(xml.as_bytes()).unwrap()),
        ["http://example.com/y"]
    );
}

#[test]
fn sitemap_index() {
    let xml = r#"<?xml version="1.0" encoding="UTF-8"?>
<sitemapindex xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">
  <sitemap><loc> https://example.com/s1.xml.gz </loc><lastmod>2024-01-01</lastmod></sitemap>
  <sitemap><loc>https://example.com/s2.xml</loc></sitemap>
  <sitemap><loc>javascript:alert(1)</loc></sitemap>
  <url><loc>https://example.com/not-a-sitemap</loc></url>
</sitemapindex>"#;
    assert_eq!(
        parse(xml.as_bytes()).unwrap(),
        Sitemap::Index(vec![
            "https://example.com/s1.xml.gz".into(),
            "https://example.com/s2.xml".into()
        ])
    );
}

#[test]
fn gzip_is_detected_by_magic_bytes() {
    let compressed = gzip(URLSET.as_bytes());
    assert_eq!(
        parse(&compressed).unwrap(),
        parse(URLSET.as_bytes()).unwrap()
    );

    let text = gzip(b"https://example.com/1\nhttps://example.com/2\n");
    assert_eq!(
        locs(parse(&text).unwrap()),
        ["https://example.com/1", "https://example.com/2"]
    );
}

#[test]
fn corrupt_gzip_is_an_error() {
    let mut compressed = gzip(URLSET.as_bytes());
    compressed.truncate(20);
    assert!(matches!(parse(&compressed), Err(SitemapError::Gzip(_))));
    assert!(matches!(
        parse(&[0x1f, 0x8b, 0, 0, 0]),
        Err(SitemapError::Gzip(_))
    ));
}

#[test]
fn text_sitemap() {
    let text = "\u{feff}https://example.com/a\r\n\n  http://example.com/b  \r\nnot a url\nmailto:x@example.com\n/relative\nhttps://example.com/c";
    assert_eq!(
        locs(parse(text.as_bytes()).unwrap()),
        [
            "https://example.com/a",
            "http://example.com/b",
            "https://example.com/c"
        ]
    );
}

#[test]
fn empty_document_is_an_empty_urlset() {
    assert_eq!(parse(b"").unwrap(), Sitemap::UrlSet(Vec::new()));
    assert_eq!(parse(b" \n\t ").unwrap(), Sitemap::UrlSet(Vec::new()));
}

#[test]
fn malformed_xml_names_the_position() {
    let xml = "<urlset><url><loc>http://example.com/</lo></url></urlset>";
    let err = parse(xml.as_bytes()).unwrap_err();
    match &err {
        SitemapError::Xml { position, .. } => {
            assert!(*position > 0 && *position < xml.len() as u64, "{position}")
        }
        other => panic!("unexpected error {other:?}"),
    }
    assert!(err.to_string().contains("at byte"), "{err}");
}

#[test]
fn unclosed_xml_is_an_error() {
    let xml = "<urlset><url><loc>http://example.com/</loc></url>";
    assert!(matches!(
        parse(xml.as_bytes()),
        Err(SitemapError::Xml { .. })
    ));
    assert!(matches!(
        parse(b"<?xml version=\"1.0\"?>"),
        Err(SitemapError::Xml { .. })
    ));
    assert!(matches!(parse(b"<urlset"), Err(SitemapError::Xml { .. })));
}

#[test]
fn unknown_root_is_an_error() {
    let err = parse(b"<html><body>hi</body></html>").unwrap_err();
    assert!(matches!(&err, SitemapError::UnexpectedRoot(name) if name == "html"));
}

#[test]
fn bad_entity_skips_only_that_entry() {
    let xml = "<urlset><url><loc>http://example.com/&nbsp;</loc></url><url><loc>http://example.com/ok</loc></url></urlset>";
    assert_eq!(
        locs(parse(xml.as_bytes()).unwrap()),
        ["http://example.com/ok"]
    );
}

#[test]
fn content_after_root_is_ignored() {
    let xml = "<urlset><url><loc>http://example.com/</loc></url></urlset><urlset><url><loc>http://example.com/2</loc></url></urlset>";
    assert_eq!(
        locs(parse(xml.as_bytes()).unwrap()),
        ["http://example.com/"]
    );
}

#[test]
fn urls_are_truncated_at_the_limit() {
    let mut xml = String::from("<urlset>");
    for i in 0..MAX_SITEMAP_URLS + 10 {
        xml.push_str(&format!("<url><loc>https://example.com/{i}</loc></url>"));
    }
    xml.push_str("</urlset>");
    let parsed = locs(parse(xml.as_bytes()).unwrap());
    assert_eq!(parsed.len(), MAX_SITEMAP_URLS);
    assert_eq!(
        parsed[MAX_SITEMAP_URLS - 1],
        format!("https://example.com/{}", MAX_SITEMAP_URLS - 1)
    );

    let text: String = (0..MAX_SITEMAP_URLS + 10)
        .map(|i| format!("https://example.com/{i}\n"))
        .collect();
    assert_eq!(
        locs(parse(text.as_bytes()).unwrap()).len(),
        MAX_SITEMAP_URLS
    );

    let mut index = String::from("<sitemapindex>");
    for i in 0..MAX_SITEMAP_URLS + 1 {
        index.push_str(&format!(
            "<sitemap><loc>https://example.com/{i}.xml</loc></sitemap>"
        ));
    }
    index.push_str("</sitemapindex>");
    match parse(index.as_bytes()).unwrap() {
        Sitemap::Index(list) => assert_eq!(list.len(), MAX_SITEMAP_URLS),
        other => panic!("expected index, got {other:?}"),
    }
}

#[test]
fn uncompressed_input_over_the_cap_is_rejected() {
    let big = vec![b' '; MAX_SITEMAP_BYTES + 1];
    assert!(matches!(
        parse(&big),
        Err(SitemapError::TooLarge { limit }) if limit == MAX_SITEMAP_BYTES
    ));
}

#[test]
fn gzip_bomb_stops_at_the_cap() {
    // 200 MB of zeros compresses to about 200 KB.
    let mut encoder = GzEncoder::new(Vec::new(), Compression::fast());
    let zeros = vec![0u8; 1024 * 1024];
    for _ in 0..200 {
        encoder.write_all(&zeros).unwrap();
    }
    let bomb = encoder.finish().unwrap();
    assert!(bomb.len() < 2 * 1024 * 1024, "{}", bomb.len());
    // It really is 200 MB once inflated (counted without storing it).
    let inflated = std::io::copy(
        &mut flate2::read::GzDecoder::new(&bomb[..]),
        &mut std::io::sink(),
    )
    .unwrap();
    assert_eq!(inflated, 200 * 1024 * 1024);
    assert!(matches!(
        parse(&bomb),
        Err(SitemapError::TooLarge { limit }) if limit == MAX_SITEMAP_BYTES
    ));
}

#[test]
fn capped_reader_never_allocates_beyond_the_cap() {
    let data = vec![7u8; 200_000];
    let out = read_capped(&data[..], 200_000).unwrap();
    assert_eq!(out.len(), 200_000);
    assert!(out.capacity() <= 200_000, "{}", out.capacity());
    assert!(matches!(
        read_capped(&data[..], 199_999),
        Err(SitemapError::TooLarge { limit: 199_999 })
    ));
}

#[test]
fn random_bytes_never_panic() {
    let mut state: u64 = 0x1234_5678_9ABC_DEF1;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    const PIECES: &[&str] = &[
        "<urlset>",
        "</urlset>",
        "<url>",
        "</url>",
        "<loc>",
        "</loc>",
        "<sitemapindex>",
        "<sitemap>",
        "</sitemap>",
        "http://e.com/",
        "&amp;",
        "&bogus;",
        "<![CDATA[",
        "]]>",
        "<?xml version=\"1.0\"?>",
        "<!--",
        "-->",
        "<priority>",
        "</priority>",
        "0.5",
        "\n",
        "<",
        ">",
        "/",
        "\"",
        "xmlns=\"a\"",
        "<a:loc xmlns:a=\"b\">",
    ];
    for round in 0..400 {
        let mut doc = Vec::new();
        for _ in 0..(next() % 60) {
            if round % 2 == 0 {
                doc.extend_from_slice(PIECES[(next() % PIECES.len() as u64) as usize].as_bytes());
            } else {
                doc.push(next().to_le_bytes()[0]);
            }
        }
        let _ = parse(&doc);
        let _ = parse(&gzip(&doc));
    }
}

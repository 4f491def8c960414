//! `trawl scrape URL`: fetch one page and print what can be extracted.

use std::sync::Arc;

use anyhow::{Context, bail};
use scraper::Html;
use serde_json::{Map, Value, json};
use trawl_core::{CrawlStats, Url};
use trawl_extract::select::{CompiledRules, FieldRule, FieldType, Source};
use trawl_extract::{charset, readable, structured};
use trawl_fetch::{Downloader, FetchConfig};

use crate::args::ScrapeArgs;

/// Parse `name[:type]=css[@attr|::html]`.
pub fn parse_select(spec: &str) -> anyhow::Result<FieldRule> {
    let Some((head, selector)) = spec.split_once('=') else {
        bail!(
            "--select {spec:?}: expected name=css (e.g. title=h1, price:number=span.price, image=img@src)"
        );
    };
    let (name, kind) = match head.split_once(':') {
        Some((n, t)) => (n, t),
        None => (head, "string"),
    };
    let kind: FieldType = kind
        .parse()
        .map_err(|e| anyhow::anyhow!("--select {spec:?}: {e}"))?;
    let (selector, source) = if trawl_extract::xpath::looks_like_xpath(selector) {
        // XPath says `@attr` itself.
        (selector, Source::Text)
    } else if let Some(css) = selector.strip_suffix("::html") {
        (css, Source::Html)
    } else if let Some((css, attr)) = selector.rsplit_once('@') {
        (css, Source::Attr(attr.to_string()))
    } else {
        (selector, Source::Text)
    };
    Ok(FieldRule {
        name: name.trim().to_string(),
        selector: selector.trim().to_string(),
        source,
        regex: None,
        kind,
        required: false,
        default: None,
    })
}

pub async fn run(args: &ScrapeArgs) -> anyhow::Result<u8> {
    let rules = args
        .select
        .iter()
        .map(|s| parse_select(s))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let compiled = CompiledRules::compile(&rules)?;
    let url = Url::parse(&args.url).with_context(|| format!("invalid URL {:?}", args.url))?;
    let mut cfg = FetchConfig {
        obey_robots: !args.ignore_robots,
        timeout: args.timeout,
        ..FetchConfig::default()
    };
    let mut renderer = None;
    if args.render {
        let mut spec = trawl_core::RenderSpec::mode(trawl_core::RenderMode::Always);
        if let Some(sel) = &args.wait_for {
            spec.wait.push(trawl_core::render::Wait {
                until: trawl_core::render::Until::Selector(sel.clone()),
                timeout: args.timeout,
            });
        }
        spec.screenshot = args.screenshot.is_some();
        cfg.render = spec;
        let mut rc = trawl_render::RenderConfig {
            tabs: 1,
            page_timeout: args.timeout,
            ..trawl_render::RenderConfig::default()
        };
        if let Some(path) = &args.chromium {
            rc.launch.executable = path.clone();
        }
        renderer = Some(Arc::new(trawl_render::Renderer::new(rc)));
    }
    let mut downloader =
        Downloader::new(cfg, Arc::new(CrawlStats::default())).map_err(anyhow::Error::msg)?;
    if let Some(r) = &renderer {
        downloader = downloader.with_renderer(r.clone());
    }
    let outcome = downloader.fetch(&url, &|_| true).await;
    if let Some(r) = &renderer {
        r.shutdown().await;
    }
    if let (Some(path), Some(png)) = (
        &args.screenshot,
        outcome
            .rendered
            .as_ref()
            .and_then(|r| r.screenshot.as_ref()),
    ) {
        std::fs::write(path, png).with_context(|| format!("writing {}", path.display()))?;
        eprintln!("trawl: screenshot written to {}", path.display());
    }
    if args.explain
        && let Some(r) = &outcome.rendered
    {
        eprintln!(
            "rendered ({}) in {} ms: {} requests, {} blocked",
            r.reason,
            r.elapsed.as_millis(),
            r.requests,
            r.blocked
        );
    }
    if let Some(error) = &outcome.error {
        if outcome.body.is_empty() {
            bail!("{url}: {error}");
        }
        eprintln!("trawl: {url}: {error}");
    }
    let text = charset::decode(outcome.content_type.as_deref(), &outcome.body);
    if let Some(path) = &args.spider {
        return explain_spider(path, &url, &outcome, &text, args.explain);
    }
    match args.format.as_str() {
        "markdown" => {
            println!("{}", readable::main_markdown_at(&text, &outcome.final_url));
            return Ok(0);
        }
        "text" => {
            println!("{}", readable::main_text(&text));
            return Ok(0);
        }
        _ => {}
    }
    let doc = Html::parse_document(&text);
    if args.explain {
        for rule in &rules {
            if trawl_extract::xpath::looks_like_xpath(&rule.selector) {
                match trawl_extract::xpath::XPath::parse(&rule.selector) {
                    Ok(xpath) => {
                        let values = xpath.values(&text, &rule.source);
                        let first: Vec<&String> = values.iter().take(3).collect();
                        eprintln!(
                            "{}: XPath `{}` selected {} value(s); first: {first:?}",
                            rule.name,
                            rule.selector,
                            values.len()
                        );
                    }
                    Err(e) => eprintln!("{}: not a valid selector: {e}", rule.name),
                }
                continue;
            }
            let (css, pseudo) = trawl_extract::css::split_pseudo(&rule.selector);
            let source = pseudo.unwrap_or_else(|| rule.source.clone());
            match trawl_extract::css::parse(css) {
                Ok(sel) => {
                    let matches: Vec<String> = doc
                        .select(&sel)
                        .take(3)
                        .map(|e| match &source {
                            Source::Attr(a) => e.value().attr(a).unwrap_or("").to_string(),
                            Source::Html => e.inner_html(),
                            Source::Text => trawl_extract::select::element_text(e),
                        })
                        .collect();
                    let total = doc.select(&sel).count();
                    eprintln!(
                        "{}: `{}` matched {total} element(s); first: {matches:?}",
                        rule.name, rule.selector
                    );
                }
                Err(e) => eprintln!("{}: not a valid selector: {e}", rule.name),
            }
        }
    }
    let extracted = compiled.extract_page(&doc, Some(&text));
    if args.explain {
        for w in &extracted.warnings {
            eprintln!("{}: {} → null", w.field, w.reason);
        }
    }
    let title = trawl_extract::select::document_title(&doc);
    let mut out = Map::new();
    out.insert("url".into(), url.as_str().into());
    out.insert("final_url".into(), outcome.final_url.as_str().into());
    out.insert("status".into(), json!(outcome.status));
    out.insert("title".into(), json!(title));
    out.insert("fields".into(), Value::Object(extracted.fields));
    if !extracted.warnings.is_empty() {
        out.insert(
            "warnings".into(),
            serde_json::to_value(&extracted.warnings)?,
        );
    }
    out.insert("json_ld".into(), Value::Array(structured::json_ld(&doc)));
    out.insert(
        "opengraph".into(),
        Value::Object(structured::opengraph(&doc)),
    );
    out.insert("twitter".into(), Value::Object(structured::twitter(&doc)));
    out.insert("meta".into(), Value::Object(structured::meta(&doc)));
    out.insert(
        "microdata".into(),
        Value::Array(structured::microdata(&doc)),
    );
    out.insert(
        "links".into(),
        readable::links(&doc, &outcome.final_url).into(),
    );
    out.insert(
        "images".into(),
        readable::images(&doc, &outcome.final_url).into(),
    );
    println!("{}", serde_json::to_string_pretty(&Value::Object(out))?);
    Ok(0)
}

/// `scrape --spider FILE`: run the spider's rules on one page.
fn explain_spider(
    path: &std::path::Path,
    url: &Url,
    outcome: &trawl_fetch::FetchOutcome,
    text: &str,
    explain: bool,
) -> anyhow::Result<u8> {
    let spider = match trawl_spider::DeclarativeSpider::from_file(path) {
        Ok(s) => s,
        Err(error) => {
            eprintln!("trawl: {error}");
            return Ok(2);
        }
    };
    let mut request = trawl_core::Request::seed(url.clone());
    // Pages reached through a callback are parsed by that rule: let the
    // URL rules and every callback rule have a go.
    let mut out = Map::new();
    let mut results = Vec::new();
    for callback in std::iter::once(None).chain(spider.item_rule_names().into_iter().map(Some)) {
        request.callback = callback.clone();
        let response = trawl_spider::Response {
            request: &request,
            url: &outcome.final_url,
            status: outcome.status.unwrap_or(0),
            content_type: outcome.content_type.as_deref(),
            text,
        };
        let parsed = trawl_spider::Spider::parse(&spider, &response);
        if callback.is_some() && parsed.items.is_empty() && parsed.errors.is_empty() {
            continue;
        }
        // One entry per distinct (URL, callback): several follow rules
        // (and the pagination) often find the same link.
        let mut seen = std::collections::HashSet::new();
        let follows: Vec<Value> = parsed
            .requests
            .iter()
            .filter(|r| seen.insert((r.url.as_str().to_string(), r.callback.clone())))
            .map(|r| json!({"url": r.url.as_str(), "callback": r.callback}))
            .collect();
        if explain {
            let rules: std::collections::BTreeSet<&str> = parsed
                .items
                .iter()
                .filter_map(|i| i.0.get("_rule").and_then(Value::as_str))
                .collect();
            eprintln!(
                "{}: {} item(s){}, {} error record(s), {} link(s) to follow ({} found)",
                match &callback {
                    Some(c) => format!("as callback {c:?}"),
                    None => "by URL".to_string(),
                },
                parsed.items.len(),
                if rules.is_empty() {
                    String::new()
                } else {
                    format!(" from {}", rules.into_iter().collect::<Vec<_>>().join(", "))
                },
                parsed.errors.len(),
                follows.len(),
                parsed.requests.len()
            );
            for e in &parsed.errors {
                eprintln!("  error: {}", Value::Object(e.0.clone()));
            }
        }
        results.push(json!({
            "as_callback": callback,
            "items": parsed.items,
            "errors": parsed.errors,
            "follows_found": parsed.requests.len(),
            "follows": follows,
        }));
    }
    out.insert("url".into(), url.as_str().into());
    out.insert("spider".into(), trawl_spider::Spider::name(&spider).into());
    out.insert("results".into(), Value::Array(results));
    println!("{}", serde_json::to_string_pretty(&Value::Object(out))?);
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn select_specs() {
        let r = parse_select("price:number=span.price").unwrap();
        assert_eq!(
            (r.name.as_str(), r.selector.as_str(), r.kind, r.source),
            ("price", "span.price", FieldType::Number, Source::Text)
        );
        let r = parse_select("img=div.x img@src").unwrap();
        assert_eq!(
            (r.selector.as_str(), r.source),
            ("div.x img", Source::Attr("src".into()))
        );
        let r = parse_select("body=article::html").unwrap();
        assert_eq!(r.source, Source::Html);
        assert!(parse_select("no-equals").is_err());
        assert!(
            parse_select("x:money=a")
                .unwrap_err()
                .to_string()
                .contains("unknown type")
        );
    }
}

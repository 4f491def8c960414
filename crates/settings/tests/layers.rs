//! Settings as users write them: files, JSON, environment; how layers
//! stack; what `build()` makes of them; and the reference documentation.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use trawl_settings::{Effective, Layer, Settings, SettingsError, Source, SpiderParts};

fn file(text: &str) -> Result<Layer, SettingsError> {
    Layer::from_toml("spider.toml", text, Some("settings"))
}

fn stack(layers: Vec<Layer>) -> Effective {
    Effective::stack(&layers).expect("layers stack")
}

fn env(vars: &[(&str, &str)]) -> Result<(Layer, Vec<String>), SettingsError> {
    Layer::from_env(vars.iter().map(|(k, v)| (k.to_string(), v.to_string())))
}

#[test]
fn file_mistakes_name_line_and_column() {
    let text = "name = \"s\"\n\n[settings]\nconcurrency = 8\ndelay = \"soon\"\n";
    let e = file(text).unwrap_err().to_string();
    assert!(e.starts_with("spider.toml:5:9: "), "{e}");
    assert!(e.contains("not a duration"), "{e}");

    let e = file("[settings]\nconcurency = 8\n")
        .unwrap_err()
        .to_string();
    assert!(e.starts_with("spider.toml:2:1: "), "{e}");
    assert!(e.contains("unknown field `concurency`"), "{e}");

    let e = file("[settings]\nconcurrency = 0\n")
        .unwrap_err()
        .to_string();
    assert!(
        e.starts_with("spider.toml:2:15: ") && e.contains("at least 1"),
        "{e}"
    );

    let e = file("[settings]\nscope = \"planet\"\n")
        .unwrap_err()
        .to_string();
    assert!(
        e.starts_with("spider.toml:2:9: ") && e.contains("unknown scope"),
        "{e}"
    );

    let e = file("[settings]\nproxies = [\"ftp://p:21\"]\n")
        .unwrap_err()
        .to_string();
    assert!(e.starts_with("spider.toml:2:"), "{e}");

    let e = file("[settings]\nuser_agents = 7\n")
        .unwrap_err()
        .to_string();
    assert!(
        e.starts_with("spider.toml:2:15: ") && e.contains("builtin"),
        "{e}"
    );

    let e = file("[settings]\ninclude = [\"(unclosed\"]\n")
        .unwrap_err()
        .to_string();
    assert!(
        e.starts_with("spider.toml:2:") && e.contains("invalid regex"),
        "{e}"
    );

    let e = file("[settings]\nmax_body = \"12 parsecs\"\n")
        .unwrap_err()
        .to_string();
    assert!(
        e.starts_with("spider.toml:2:12: ") && e.contains("unit"),
        "{e}"
    );

    // An alias and its key in one file are one setting given twice.
    let e = file("[settings]\ndelay = \"1s\"\ndownload_delay = \"2s\"\n")
        .unwrap_err()
        .to_string();
    assert!(
        e.starts_with("spider.toml:3:1: ") && e.contains("same setting"),
        "{e}"
    );
}

#[test]
fn scrapy_names_are_aliases() {
    let layer = file(
        "[settings]\ndownload_delay = \"1500ms\"\nconcurrent_requests_per_domain = 3\nrobotstxt_obey = false\ndepth_limit = 2\n",
    )
    .unwrap();
    let eff = stack(vec![layer]);
    assert_eq!(eff.settings.delay, Duration::from_millis(1500));
    assert_eq!(eff.settings.per_host, 3);
    assert!(!eff.settings.obey_robots);
    assert_eq!(eff.settings.max_depth, Some(2));
    assert_eq!(
        eff.source("delay"),
        Source::File {
            path: "spider.toml".into(),
            line: 2,
            column: 1
        }
    );
}

#[test]
fn json_mistakes_name_the_pointer() {
    let bad = |v: serde_json::Value| Layer::from_json(&v, "/settings").unwrap_err();
    let e = bad(serde_json::json!({"concurency": 3}));
    assert!(
        matches!(&e, SettingsError::Json { pointer, .. } if pointer == "/settings/concurency"),
        "{e}"
    );
    let e = bad(serde_json::json!({"delay": 5}));
    assert!(
        matches!(&e, SettingsError::Json { pointer, .. } if pointer == "/settings/delay"),
        "{e}"
    );
    let e = bad(
        serde_json::json!({"proxy_pools": {"res": {"proxies": ["http://p:1"], "strategy": "fastest"}}}),
    );
    assert!(
        matches!(&e, SettingsError::Json { pointer, message } if pointer == "/settings/proxy_pools/res/strategy" && message.contains("unknown proxy strategy")),
        "{e}"
    );
    let e = bad(serde_json::json!({"include": ["ok", "(bad"]}));
    assert!(
        matches!(&e, SettingsError::Json { pointer, .. } if pointer == "/settings/include"),
        "{e}"
    );
    let e = bad(serde_json::json!({"delay": "1s", "download_delay": "2s"}));
    assert!(
        matches!(&e, SettingsError::Json { pointer, message } if pointer == "/settings/download_delay" && message.contains("same setting")),
        "{e}"
    );
    let e = bad(serde_json::json!(["not", "an", "object"]));
    assert!(e.to_string().contains("must be an object"), "{e}");

    // A good job: nulls are "not set", aliases are read.
    let layer = Layer::from_json(
        &serde_json::json!({"concurrency": 5, "download_delay": "2s", "max_pages": null, "render": {"mode": "auto", "wait": [{"selector": ".price"}]}}),
        "/settings",
    )
    .unwrap();
    let eff = stack(vec![layer]);
    assert_eq!(eff.settings.concurrency, 5);
    assert_eq!(eff.settings.delay, Duration::from_secs(2));
    assert_eq!(eff.settings.max_pages, None);
    assert_eq!(eff.settings.render.mode(), trawl_core::RenderMode::Auto);
    assert_eq!(
        eff.source("delay"),
        Source::Json("/settings/download_delay".into())
    );
}

#[test]
fn environment_values_are_typed_by_their_key() {
    let (layer, warnings) = env(&[
        ("TRAWL_CONCURRENCY", "12"),
        ("TRAWL_DELAY", "250ms"),
        ("TRAWL_PROXIES", "http://a:3128, http://u:pw@b:3128"),
        ("TRAWL_BAN_STATUSES", "403,429"),
        ("TRAWL_SITEMAPS", "true"),
        ("TRAWL_USER_AGENT", "Mozilla/5.0 (X11) test"),
        ("TRAWL_NOT_A_SETTING", "1"),
        ("HOME", "/root"),
    ])
    .unwrap();
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(warnings[0].contains("TRAWL_NOT_A_SETTING"));
    let eff = stack(vec![layer]);
    let s = &eff.settings;
    assert_eq!(s.concurrency, 12);
    assert_eq!(s.delay, Duration::from_millis(250));
    assert_eq!(s.proxies, ["http://a:3128", "http://u:pw@b:3128"]);
    assert_eq!(s.ban_statuses, [403, 429]);
    assert!(s.sitemaps);
    assert_eq!(s.user_agent.as_deref(), Some("Mozilla/5.0 (X11) test"));
    assert_eq!(eff.source("proxies"), Source::Env("TRAWL_PROXIES".into()));

    let e = env(&[("TRAWL_DELAY", "soon")]).unwrap_err().to_string();
    assert!(
        e.starts_with("TRAWL_DELAY: ") && e.contains("not a duration"),
        "{e}"
    );
    let e = env(&[("TRAWL_CONCURRENCY", "0")]).unwrap_err().to_string();
    assert!(
        e.starts_with("TRAWL_CONCURRENCY: ") && e.contains("at least 1"),
        "{e}"
    );
}

#[test]
fn layers_stack_defaults_file_environment_flags() {
    let file = file("[settings]\nconcurrency = 8\nper_host = 3\ndelay = \"1s\"\nheaders = { X-From = \"file\" }\n").unwrap();
    let (env, _) = env(&[("TRAWL_PER_HOST", "5"), ("TRAWL_DELAY", "2s")]).unwrap();
    let mut flags = Layer::default();
    flags.set(
        "delay",
        toml::Value::String("3s".into()),
        Source::Flag("--delay".into()),
    );
    let flags = flags.checked().unwrap();
    let eff = stack(vec![file, env, flags]);
    let s = &eff.settings;
    assert_eq!(s.concurrency, 8, "file over default");
    assert_eq!(s.per_host, 5, "environment over file");
    assert_eq!(s.delay, Duration::from_secs(3), "flag over environment");
    assert_eq!(s.retries, Settings::default().retries);
    assert_eq!(eff.source("retries"), Source::Default);
    assert_eq!(eff.source("per_host"), Source::Env("TRAWL_PER_HOST".into()));
    assert_eq!(eff.source("delay"), Source::Flag("--delay".into()));
    assert!(matches!(
        eff.source("concurrency"),
        Source::File { line: 2, .. }
    ));

    // A flag's bad value is reported at the flag.
    let mut bad = Layer::default();
    bad.set(
        "per_host",
        toml::Value::Integer(0),
        Source::Flag("--per-host".into()),
    );
    let e = bad.checked().unwrap_err().to_string();
    assert!(
        e.starts_with("--per-host: ") && e.contains("at least 1"),
        "{e}"
    );
}

#[test]
fn printed_settings_read_back_as_the_same_settings() {
    let file = file(
        "[settings]\nconcurrency = 8\ndelay = \"1s 500ms\"\nmax_body = \"64KiB\"\nuser_agents = \"builtin\"\nproxies = [\"http://u:pw@p:3128\"]\nsinks = [\"csv:out.csv,gzip\", { type = \"jsonl\", path = \"x.jsonl\" }]\nrender = { mode = \"auto\", wait = [{ selector = \".price\" }] }\n[settings.headers]\nX-A = \"1\"\n[settings.proxy_pools.res]\nproxies = [\"socks5://q:1080\"]\nhosts = [\"*.shop.test\"]\nstrategy = \"least-latency\"\n",
    )
    .unwrap();
    let eff = stack(vec![file]);
    let printed = eff.to_annotated_toml().unwrap();
    assert!(
        printed.contains("concurrency = 8  # spider.toml:2:1"),
        "{printed}"
    );
    assert!(printed.contains("per_host = 2  # default"), "{printed}");
    assert!(
        printed.contains("http://u:***@p:3128"),
        "passwords masked:\n{printed}"
    );
    assert!(printed.contains("# max_pages is not set"), "{printed}");
    // Unmask to compare: the printed form is itself a settings file.
    let unmasked = printed.replace("u:***@", "u:pw@");
    let back = stack(vec![
        Layer::from_toml("printed.toml", &unmasked, None).unwrap(),
    ]);
    assert_eq!(back.settings, eff.settings, "{printed}");
}

fn build(layers: Vec<Layer>) -> Result<trawl_settings::Plan, SettingsError> {
    stack(layers).build(Vec::new(), &SpiderParts::default())
}

fn settings_file(text: &str) -> Layer {
    Layer::from_toml("trawl.toml", text, None).unwrap()
}

#[test]
fn build_reads_and_checks_the_files_settings_name() {
    let dir = tempfile::tempdir().unwrap();
    let pem = dir.path().join("ca.pem");
    std::fs::write(
        &pem,
        "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
    )
    .unwrap();
    let notes = dir.path().join("notes.txt");
    std::fs::write(&notes, "hello").unwrap();
    let proxies = dir.path().join("proxies.txt");
    std::fs::write(&proxies, "10.0.0.1:3128\nhttp://10.0.0.2:3128\n").unwrap();

    let plan = build(vec![settings_file(&format!(
        "ca_certs = [{:?}]\nproxy_file = {:?}\nproxies = [\"http://10.0.0.3:3128\"]\nper_host = 3\n",
        pem.display().to_string(),
        proxies.display().to_string()
    ))])
    .unwrap();
    assert_eq!(plan.crawl.fetch.extra_root_certs.len(), 1);
    assert_eq!(plan.crawl.fetch.proxies.len(), 3);
    // The frontier's host limit follows per_host × exits, set once here.
    assert_eq!(plan.frontier.host_limit, 9);
    assert_eq!(plan.crawl.fetch.host_concurrency(), 9);

    let e = build(vec![settings_file(&format!(
        "ca_certs = [{:?}]\n",
        notes.display().to_string()
    ))])
    .unwrap_err()
    .to_string();
    assert!(
        e.starts_with("trawl.toml:1:1: ca_certs: ") && e.contains("not a PEM"),
        "{e}"
    );
    let missing = dir.path().join("missing.pem");
    let e = build(vec![settings_file(&format!(
        "ca_certs = [{:?}]\n",
        missing.display().to_string()
    ))])
    .unwrap_err()
    .to_string();
    assert!(
        e.starts_with("trawl.toml:1:1: reading ") && e.contains("missing.pem"),
        "{e}"
    );
    let e = build(vec![settings_file(
        "user_agents = \"/nonexistent/agents.txt\"\n",
    )])
    .unwrap_err()
    .to_string();
    assert!(e.contains("agents.txt"), "{e}");
}

#[test]
fn build_checks_what_no_single_value_shows() {
    let e = build(vec![settings_file(
        "\n[host_pools]\n\"*.shop.test\" = \"residential\"\n",
    )])
    .unwrap_err()
    .to_string();
    assert!(
        e.starts_with("trawl.toml:2:2: host_pools: ") && e.contains("unknown proxy pool"),
        "{e}"
    );
    let e = build(vec![settings_file(
        "state = \"st\"\nredis = \"redis://127.0.0.1/\"\n",
    )])
    .unwrap_err()
    .to_string();
    assert!(e.contains("not both"), "{e}");
    let e = build(vec![settings_file(
        "output = \"a.jsonl\"\nsinks = [\"jsonl:a.jsonl\"]\n",
    )])
    .unwrap_err()
    .to_string();
    assert!(e.contains("two outputs write a.jsonl"), "{e}");
    let e = build(vec![settings_file(
        "render = \"auto\"\nwait_for = \"div[\"\n",
    )])
    .unwrap_err()
    .to_string();
    assert!(
        e.starts_with("trawl.toml:2:1: wait_for: invalid CSS selector"),
        "{e}"
    );
}

#[test]
fn build_makes_outputs_frontier_and_render() {
    // With sinks, `output` left at stdout writes nothing.
    let plan = build(vec![settings_file("sinks = [\"csv:out.csv\"]\n")]).unwrap();
    assert_eq!(plan.outputs.len(), 1);
    let plan = build(vec![]).unwrap();
    assert_eq!(plan.outputs, [trawl_sink::SinkSpec::jsonl("-")]);
    assert_eq!(plan.frontier.kind, trawl_frontier::FrontierKind::Memory);
    assert!(
        plan.crawl.render.is_none(),
        "no browser unless something renders"
    );

    let plan = build(vec![settings_file("state = \"st\"\n")]).unwrap();
    assert!(matches!(
        plan.frontier.kind,
        trawl_frontier::FrontierKind::Disk { .. }
    ));

    // A spider's own render applies unless the settings say otherwise.
    let spider = SpiderParts {
        render: Some(trawl_core::RenderSpec::mode(trawl_core::RenderMode::Always)),
        renders: true,
        ..SpiderParts::default()
    };
    let plan = stack(vec![]).build(Vec::new(), &spider).unwrap();
    assert_eq!(plan.crawl.fetch.render.mode, trawl_core::RenderMode::Always);
    assert!(plan.crawl.render.is_some());
    let plan = stack(vec![settings_file("render = \"never\"\nrender_tabs = 3\n")])
        .build(Vec::new(), &spider)
        .unwrap();
    assert_eq!(plan.crawl.fetch.render.mode, trawl_core::RenderMode::Never);
    assert_eq!(
        plan.crawl.render.map(|r| r.tabs),
        Some(3),
        "a rule still renders"
    );
    let plan = build(vec![settings_file(
        "render = \"auto\"\nwait_for = \".price\"\nscreenshots = true\n",
    )])
    .unwrap();
    assert_eq!(plan.crawl.fetch.render.wait.len(), 1);
    assert!(plan.crawl.fetch.render.screenshot);
}

/// `docs/settings.md` documents every key, and every example in it is a
/// valid settings file.
#[test]
fn the_reference_documents_every_key() {
    let doc = include_str!("../../../docs/settings.md");
    for key in Settings::keys() {
        assert!(
            doc.contains(&format!("| `{key}` |")),
            "docs/settings.md: `{key}` is missing"
        );
    }
    for (alias, key) in trawl_settings::settings::ALIASES {
        assert!(
            doc.contains(&format!("`{alias}`")) && doc.contains(&format!("`{key}`")),
            "alias {alias}"
        );
    }
    let mut examples = 0;
    for block in doc.split("```toml\n").skip(1) {
        let text = &block[..block.find("```").expect("closed block")];
        Layer::from_toml("example", text, None).unwrap_or_else(|e| panic!("{e}\n{text}"));
        examples += 1;
    }
    assert!(examples >= 1);
}

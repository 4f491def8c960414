//! One settings layer as users meet it: `trawl config`, `--print-config`,
//! `trawl check` on a file's settings, the environment and the flags.

#![allow(clippy::unwrap_used)]

mod common;

use common::trawl;

const SPIDER: &str = r#"name = "s"
start_urls = ["http://127.0.0.1:9/"]

[items.page]
match = "/"
fields = { title = { selector = "title" } }

[settings]
per_host = 3
delay = "1s"
download_timeout = "20s"
"#;

fn stdout(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn config_shows_each_value_and_where_it_came_from() {
    let dir = tempfile::tempdir().unwrap();
    let spider = dir.path().join("spider.toml");
    std::fs::write(&spider, SPIDER).unwrap();
    let out = trawl()
        .arg("config")
        .arg(&spider)
        .args(["-c", "9", "--ignore-robots"])
        .env("TRAWL_DELAY", "2s")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    let path = spider.display();
    for line in [
        "concurrency = 9  # --concurrency".to_string(),
        format!("per_host = 3  # {path}:9:1"),
        "delay = \"2s\"  # TRAWL_DELAY".to_string(),
        format!("timeout = \"20s\"  # {path}:11:1"),
        "obey_robots = false  # --ignore-robots".to_string(),
        "retries = 3  # default".to_string(),
        "# max_pages is not set".to_string(),
    ] {
        assert!(
            text.lines().any(|l| l == line),
            "no line {line:?} in\n{text}"
        );
    }
}

#[test]
fn print_config_prints_and_does_not_crawl() {
    let dir = tempfile::tempdir().unwrap();
    let output = dir.path().join("out.jsonl");
    let out = trawl()
        .args([
            "crawl",
            "http://127.0.0.1:9/",
            "--print-config",
            "--delay",
            "1s",
            "-o",
        ])
        .arg(&output)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("delay = \"1s\"  # --delay"),
        "{}",
        stdout(&out)
    );
    assert!(!output.exists(), "--print-config crawled");
}

#[test]
fn check_rejects_bad_settings_where_they_are() {
    let dir = tempfile::tempdir().unwrap();
    let spider = dir.path().join("spider.toml");
    let path = spider.display().to_string();
    let check = |settings: &str| {
        std::fs::write(
            &spider,
            SPIDER.replace("per_host = 3\ndelay = \"1s\"\n", settings),
        )
        .unwrap();
        let out = trawl().arg("check").arg(&spider).output().unwrap();
        (out.status.code(), stderr(&out))
    };
    for (setting, at, says) in [
        ("delay = \"soon\"\n", ":9:9: ", "not a duration"),
        ("scope = \"planet\"\n", ":9:9: ", "unknown scope"),
        ("user_agents = 5\n", ":9:15: ", "builtin"),
        ("concurency = 5\n", ":9:1: ", "unknown field `concurency`"),
        (
            "proxy_file = \"/nonexistent/proxies.txt\"\n",
            ":9:1: reading /nonexistent/proxies.txt",
            "No such file",
        ),
        (
            "host_pools = { \"*.a.test\" = \"nowhere\" }\n",
            ":9:1: host_pools: ",
            "unknown proxy pool",
        ),
    ] {
        let (code, err) = check(setting);
        assert_eq!(code, Some(2), "{setting}: {err}");
        assert!(
            err.starts_with(&format!("trawl: {path}{at}")),
            "{setting}: {err}"
        );
        assert!(err.contains(says), "{setting}: {err}");
    }
    let (code, err) = check("");
    assert_eq!(code, Some(0), "{err}");

    // The environment and the flags are checked too, and named.
    std::fs::write(&spider, SPIDER).unwrap();
    let out = trawl()
        .arg("check")
        .arg(&spider)
        .env("TRAWL_PER_HOST", "0")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("TRAWL_PER_HOST: must be at least 1"),
        "{}",
        stderr(&out)
    );
    let out = trawl()
        .arg("check")
        .arg(&spider)
        .args(["--ca-cert", "/nonexistent/ca.pem"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("--ca-cert: reading /nonexistent/ca.pem"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn a_config_file_sits_below_the_spider_file() {
    let dir = tempfile::tempdir().unwrap();
    let spider = dir.path().join("spider.toml");
    std::fs::write(&spider, SPIDER).unwrap();
    let config = dir.path().join("trawl.toml");
    std::fs::write(&config, "per_host = 7\nretries = 5\n").unwrap();
    let out = trawl()
        .arg("config")
        .arg(&spider)
        .arg("--config")
        .arg(&config)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(
        text.contains(&format!("per_host = 3  # {}:9:1", spider.display())),
        "{text}"
    );
    assert!(
        text.contains(&format!("retries = 5  # {}:2:1", config.display())),
        "{text}"
    );
    std::fs::write(&config, "retries = \"many\"\n").unwrap();
    let out = trawl()
        .arg("config")
        .arg("--config")
        .arg(&config)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains(&format!("{}:1:11: ", config.display())),
        "{}",
        stderr(&out)
    );
}

#[test]
fn help_shows_the_settings_defaults() {
    let out = trawl().args(["crawl", "--help"]).output().unwrap();
    let text = stdout(&out);
    for shown in [
        "[default: 64]",
        "[default: 10MiB]",
        "[default: 30s]",
        "[default: round-robin]",
    ] {
        assert!(text.contains(shown), "no {shown} in\n{text}");
    }
}

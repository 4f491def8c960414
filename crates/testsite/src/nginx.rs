//! A real nginx (Debian's package) serving a directory, for tests and
//! benchmarks that need a real server's defences: `limit_req` rate limits
//! per client IP or per session cookie (answering 429, optionally with
//! `Retry-After`), and a 403 block page for chosen client IPs.
//!
//! [`Nginx::start`] writes `nginx.conf` into a temporary directory and runs
//! `nginx -p DIR -c nginx.conf -g "daemon off; master_process off;"` as
//! one process of the current user (so it reads any directory root can),
//! on a free port of 127.0.0.1, and returns once it answers. Each request
//! is logged to `DIR/access.log` as `CLIENT_IP MSEC STATUS URI SESSION
//! REQUEST_TIME`
//! ([`Nginx::access_log`]): tests assert what the server saw, not what
//! the crawler says. Dropping the value kills nginx and removes the
//! directory.

use std::fmt::Write as _;
use std::fs;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::postgres::{find_program, make_temp_dir, read_tail, wait_until};
use crate::proxies::{free_port, tcp_accepts};

/// How long nginx may take to listen.
const START_TIMEOUT: Duration = Duration::from_secs(10);

/// Where to look for nginx besides `PATH`.
const EXTRA_DIRS: &[&str] = &[
    "/usr/sbin",
    "/usr/bin",
    "/usr/local/sbin",
    "/usr/local/nginx/sbin",
];

/// What a rate limit is keyed on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LimitKey {
    /// `$binary_remote_addr`: each client IP (each proxy exit) has its own
    /// quota.
    ClientIp,
    /// `$cookie_session`: each session has its own quota. nginx hands a
    /// `session` cookie to clients that come without one; requests without
    /// the cookie share one quota.
    SessionCookie,
}

/// nginx's `limit_req`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RateLimit {
    /// Requests per second per key.
    pub rate: u32,
    pub burst: u32,
    /// `nodelay`: answer excess requests at once (429) instead of queueing
    /// them (which shows as a latency climb).
    pub nodelay: bool,
    pub key: LimitKey,
    /// Send `Retry-After: N` with each 429.
    pub retry_after: Option<u32>,
}

impl RateLimit {
    /// `rate` r/s per client IP, `burst` answered at once, then 429.
    pub fn per_ip(rate: u32, burst: u32) -> RateLimit {
        RateLimit {
            rate,
            burst,
            nodelay: true,
            key: LimitKey::ClientIp,
            retry_after: None,
        }
    }
}

/// How to run nginx.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NginxOptions {
    /// The directory served.
    pub root: PathBuf,
    pub limit: Option<RateLimit>,
    /// Client IPs answered `403` with a block page ("Access denied").
    pub blocked: Vec<IpAddr>,
    /// Headers added to every answer (e.g. `RateLimit-Policy`).
    pub headers: Vec<(String, String)>,
}

impl NginxOptions {
    pub fn new(root: impl Into<PathBuf>) -> NginxOptions {
        NginxOptions {
            root: root.into(),
            limit: None,
            blocked: Vec::new(),
            headers: Vec::new(),
        }
    }
}

/// One request as the server logged it.
#[derive(Debug, Clone, PartialEq)]
pub struct LogLine {
    pub client: IpAddr,
    /// Seconds since the epoch, with milliseconds.
    pub time: f64,
    pub status: u16,
    pub uri: String,
    /// The `session` cookie sent, if any.
    pub session: Option<String>,
    /// Seconds from the request's first byte to the answer's last, time
    /// spent queued by `limit_req` (without `nodelay`) included.
    pub request_time: f64,
}

/// A running nginx; see the [module documentation](self).
#[derive(Debug)]
pub struct Nginx {
    dir: PathBuf,
    port: u16,
    child: Option<Child>,
}

impl Nginx {
    /// Start nginx on a free port of 127.0.0.1.
    ///
    /// # Errors
    ///
    /// nginx not installed (install the `nginx` or `nginx-light` package),
    /// or it not listening within 10 s (its error log is quoted).
    pub fn start(opts: NginxOptions) -> Result<Nginx, String> {
        let program = find_program("nginx", EXTRA_DIRS).ok_or_else(|| {
            format!("Nginx::start: `nginx` not found on PATH or in {EXTRA_DIRS:?} (install the `nginx-light` package)")
        })?;
        let dir = make_temp_dir("trawl-nginx")?;
        let port = free_port().map_err(|e| format!("Nginx::start: {e}"))?;
        let mut nginx = Nginx {
            dir,
            port,
            child: None,
        };
        let conf = nginx.dir.join("nginx.conf");
        fs::write(&conf, config(&opts, &nginx.dir, port))
            .map_err(|e| format!("Nginx::start: writing {}: {e}", conf.display()))?;
        let log = fs::File::create(nginx.dir.join("stderr.log"))
            .map_err(|e| format!("Nginx::start: {e}"))?;
        let child = Command::new(&program)
            .arg("-p")
            .arg(&nginx.dir)
            .arg("-c")
            .arg(&conf)
            .args(["-g", "daemon off; master_process off;"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .map_err(|e| format!("Nginx::start: running {}: {e}", program.display()))?;
        nginx.child = Some(child);
        let addr = nginx.addr();
        if !wait_until(Instant::now() + START_TIMEOUT, || tcp_accepts(addr)) {
            return Err(format!(
                "Nginx::start: not listening on {addr} after {START_TIMEOUT:?}:\n{}\n{}",
                read_tail(&nginx.dir.join("error.log"), 20),
                read_tail(&nginx.dir.join("stderr.log"), 20)
            ));
        }
        Ok(nginx)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from((Ipv4Addr::LOCALHOST, self.port))
    }

    /// `http://127.0.0.1:PORT/`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/", self.port)
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Every request logged so far, in order.
    pub fn access_log(&self) -> Vec<LogLine> {
        let text = fs::read_to_string(self.dir.join("access.log")).unwrap_or_default();
        text.lines().filter_map(parse_log_line).collect()
    }

    /// The last lines of nginx's error log.
    pub fn error_log_tail(&self, lines: usize) -> String {
        read_tail(&self.dir.join("error.log"), lines)
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = fs::remove_dir_all(&self.dir);
    }
}

fn parse_log_line(line: &str) -> Option<LogLine> {
    let mut parts = line.split(' ');
    let client = parts.next()?.parse().ok()?;
    let time = parts.next()?.parse().ok()?;
    let status = parts.next()?.parse().ok()?;
    let uri = parts.next()?.to_string();
    let session = parts
        .next()
        .filter(|s| *s != "-" && !s.is_empty())
        .map(str::to_string);
    let request_time = parts.next()?.parse().ok()?;
    Some(LogLine {
        client,
        time,
        status,
        uri,
        session,
        request_time,
    })
}

fn config(opts: &NginxOptions, dir: &Path, port: u16) -> String {
    let d = dir.display();
    let mut http = String::new();
    let mut server = String::new();
    if let Some(limit) = &opts.limit {
        let key = match limit.key {
            LimitKey::ClientIp => "$binary_remote_addr",
            LimitKey::SessionCookie => "$cookie_session",
        };
        let _ = writeln!(
            http,
            "  limit_req_zone {key} zone=trawl:10m rate={}r/s;\n  limit_req_status 429;\n  limit_req_log_level info;",
            limit.rate
        );
        let nodelay = if limit.nodelay { " nodelay" } else { "" };
        let _ = writeln!(
            server,
            "    limit_req zone=trawl burst={}{nodelay};",
            limit.burst
        );
        if limit.key == LimitKey::SessionCookie {
            http.push_str(
                "  map $cookie_session $new_session {\n    \"\" \"session=$request_id; Path=/\";\n    default \"\";\n  }\n",
            );
            server.push_str("    add_header Set-Cookie $new_session;\n");
        }
        server.push_str("    error_page 429 @limited;\n");
        let retry = limit
            .retry_after
            .map(|s| format!("      add_header Retry-After {s} always;\n"))
            .unwrap_or_default();
        let _ = writeln!(
            server,
            "    location @limited {{\n{retry}      default_type text/html;\n      return 429 \"<html><head><title>429 Too Many Requests</title></head><body><h1>Too Many Requests</h1></body></html>\";\n    }}"
        );
    }
    for (name, value) in &opts.headers {
        let _ = writeln!(server, "    add_header {name} \"{value}\" always;");
    }
    if !opts.blocked.is_empty() {
        http.push_str("  geo $blocked {\n    default 0;\n");
        for ip in &opts.blocked {
            let _ = writeln!(http, "    {ip} 1;");
        }
        http.push_str("  }\n");
        server.push_str("    if ($blocked) {\n      return 403 \"<html><head><title>Access denied</title></head><body><h1>Access denied</h1><p>Your IP address has been blocked.</p></body></html>\";\n    }\n");
    }
    format!(
        "worker_processes 1;
pid {d}/nginx.pid;
error_log {d}/error.log info;
events {{ worker_connections 4096; }}
http {{
  include /etc/nginx/mime.types;
  default_type application/octet-stream;
  client_body_temp_path {d}/client_body;
  proxy_temp_path {d}/proxy;
  fastcgi_temp_path {d}/fastcgi;
  uwsgi_temp_path {d}/uwsgi;
  scgi_temp_path {d}/scgi;
  log_format trawl '$remote_addr $msec $status $request_uri $cookie_session $request_time';
  access_log {d}/access.log trawl;
  keepalive_requests 100000;
{http}  server {{
    listen 127.0.0.1:{port};
    root {root};
{server}    location / {{ index index.html; }}
  }}
}}
",
        root = opts.root.display()
    )
}

/// Write a static site of `pages` linked HTML pages under `root` (page `i`
/// links to the next 12 pages and a few earlier ones, so a crawl from
/// `index.html` reaches them all, breadth first): small real-looking
/// documents for rate-limit tests that must not depend on a documentation
/// package.
pub fn write_linked_pages(root: &Path, pages: usize) -> std::io::Result<()> {
    fs::create_dir_all(root.join("p"))?;
    let page = |i: usize| {
        let mut links = String::new();
        for j in (i + 1..=i + 12).chain([i / 2, i / 3]) {
            if j < pages && j != i {
                let _ = write!(links, "<li><a href=\"/p/{j}.html\">Page {j}</a></li>");
            }
        }
        format!(
            "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Page {i}</title></head><body><h1>Page {i}</h1><p>Section {i} of the test documentation: a paragraph of text long enough to look like a page.</p><ul>{links}</ul></body></html>"
        )
    };
    fs::write(root.join("index.html"), page(0).replace("Page 0", "Home"))?;
    for i in 0..pages {
        fs::write(root.join("p").join(format!("{i}.html")), page(i))?;
    }
    Ok(())
}

//! Real proxy servers for tests, each on its own loopback port and with
//! its own outgoing address, so a site sees a distinct client IP per proxy.
//!
//! * [`TinyProxy::start`] runs [tinyproxy](https://tinyproxy.github.io/) —
//!   an HTTP forward proxy: absolute-form `GET http://…` requests and
//!   `CONNECT` tunnels to any port, optionally behind HTTP Basic
//!   authentication (`Proxy-Authorization`). It writes `tinyproxy.conf`
//!   into a temporary directory (`Port`, `Listen 127.0.0.1`, `Bind` the
//!   outgoing address, `Allow 127.0.0.0/8`, `MaxClients 1024`, no `Via`
//!   header, no syslog, `PidFile` in the directory; no `ConnectPort` line,
//!   which tinyproxy.conf(5) documents as "all ports allowed"; no
//!   `User`/`Group`, so it keeps running as the current user, root
//!   included) and runs `tinyproxy -d -c tinyproxy.conf` in the foreground.
//!   tinyproxy 1.11 answers `407` to a request without credentials and
//!   `401` to one with wrong credentials.
//! * [`MicroSocks::start`] runs
//!   [microsocks](https://github.com/rofl0r/microsocks) — a SOCKS5 proxy
//!   (RFC 1928, `CONNECT` only), optionally requiring RFC 1929
//!   username/password authentication: `microsocks -i 127.0.0.1 -p PORT
//!   -b OUTGOING [-u USER -P PASSWORD]`.
//!
//! Both listen on `127.0.0.1` (a free port unless
//! [`ProxyOptions::port`] says otherwise) and bind their connections to
//! servers to [`ProxyOptions::outgoing_ip`] (default `127.0.0.2`; any
//! `127.x.y.z` works on Linux without setup, the whole /8 being loopback).
//! Starting returns once the proxy answers on its port (a probe: a bare
//! `GET / HTTP/1.0` that tinyproxy answers with an error page naming
//! itself, a SOCKS5 greeting microsocks answers; a mere TCP connect could
//! reach another program holding the port); on failure the error quotes
//! the proxy's output. The proxy's stdout and stderr go to
//! `<dir>/log` ([`ProxyServer::log_tail`]). [`ProxyServer::stop`] kills it
//! (SIGKILL), [`ProxyServer::start_again`] starts it again on the same
//! port, and dropping the value kills it and removes the directory.
//!
//! All methods block (they spawn processes and wait for ports); from async
//! code call them outside the runtime or via `tokio::task::spawn_blocking`
//! (they are quick: tens of milliseconds).

use std::fmt::Write as _;
use std::fs::{self, File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write as _};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::ops::{Deref, DerefMut};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::postgres::{find_program, make_temp_dir, read_tail, wait_until};

/// How long a proxy may take to accept connections after being spawned,
/// and to close its port after being killed.
pub const START_TIMEOUT: Duration = Duration::from_secs(10);

/// Lines of the proxy's log quoted in error messages.
const LOG_TAIL_LINES: usize = 30;

/// How often to try starting on a new port when the one picked was taken in
/// the meantime.
const PORT_ATTEMPTS: usize = 3;

/// Where to look for the programs besides `PATH`.
const EXTRA_DIRS: &[&str] = &["/usr/bin", "/usr/sbin", "/usr/local/bin", "/usr/local/sbin"];

/// How to run a proxy ([`TinyProxy::start`], [`MicroSocks::start`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProxyOptions {
    /// Source address of the proxy's connections to servers: the client IP
    /// a site sees. Must be a loopback address. Default `127.0.0.2`.
    pub outgoing_ip: IpAddr,
    /// Credentials clients must present (tinyproxy: HTTP Basic in
    /// `Proxy-Authorization`; microsocks: RFC 1929). `None`: an open proxy.
    pub auth: Option<ProxyAuth>,
    /// Port to listen on (on `127.0.0.1`); `None` picks a free one.
    pub port: Option<u16>,
    /// tinyproxy: log every connection and request (`LogLevel Info`
    /// instead of `Warning`). microsocks always logs one line per client.
    pub verbose: bool,
}

impl Default for ProxyOptions {
    fn default() -> Self {
        ProxyOptions {
            outgoing_ip: IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2)),
            auth: None,
            port: None,
            verbose: false,
        }
    }
}

impl ProxyOptions {
    /// An open proxy whose connections come from `outgoing_ip`.
    pub fn new(outgoing_ip: impl Into<IpAddr>) -> Self {
        ProxyOptions {
            outgoing_ip: outgoing_ip.into(),
            ..ProxyOptions::default()
        }
    }

    /// Requires these credentials. tinyproxy only accepts ASCII letters,
    /// digits, `-`, `.` and `_` in both; microsocks anything but NUL, up to
    /// 255 bytes each.
    #[must_use]
    pub fn with_auth(mut self, user: impl Into<String>, password: impl Into<String>) -> Self {
        self.auth = Some(ProxyAuth {
            user: user.into(),
            password: password.into(),
        });
        self
    }

    /// Listens on this port instead of a free one.
    #[must_use]
    pub fn on_port(mut self, port: u16) -> Self {
        self.port = Some(port);
        self
    }
}

/// Proxy credentials.
#[derive(Clone, PartialEq, Eq)]
pub struct ProxyAuth {
    /// User name.
    pub user: String,
    /// Password.
    pub password: String,
}

impl std::fmt::Debug for ProxyAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProxyAuth")
            .field("user", &self.user)
            .field("password", &"…")
            .finish()
    }
}

/// Which proxy program a [`ProxyServer`] runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProxyKind {
    /// tinyproxy, an HTTP proxy (`http://` URLs).
    Tinyproxy,
    /// microsocks, a SOCKS5 proxy (`socks5://` URLs).
    MicroSocks,
}

impl ProxyKind {
    fn program(self) -> &'static str {
        match self {
            ProxyKind::Tinyproxy => "tinyproxy",
            ProxyKind::MicroSocks => "microsocks",
        }
    }

    fn type_name(self) -> &'static str {
        match self {
            ProxyKind::Tinyproxy => "TinyProxy",
            ProxyKind::MicroSocks => "MicroSocks",
        }
    }

    /// URL scheme of the proxy (`http` or `socks5`).
    pub fn scheme(self) -> &'static str {
        match self {
            ProxyKind::Tinyproxy => "http",
            ProxyKind::MicroSocks => "socks5",
        }
    }
}

/// A running tinyproxy (HTTP proxy). See the [module documentation](self);
/// the methods are those of [`ProxyServer`].
#[derive(Debug)]
pub struct TinyProxy(ProxyServer);

impl TinyProxy {
    /// Writes the configuration, starts tinyproxy and waits until it
    /// accepts connections.
    ///
    /// # Errors
    ///
    /// Bad options (e.g. credentials tinyproxy cannot parse), tinyproxy
    /// not installed, or it exiting or not listening within
    /// [`START_TIMEOUT`] (its output is quoted).
    pub fn start(opts: ProxyOptions) -> Result<TinyProxy, String> {
        ProxyServer::start(ProxyKind::Tinyproxy, opts).map(TinyProxy)
    }
}

/// A running microsocks (SOCKS5 proxy). See the [module
/// documentation](self); the methods are those of [`ProxyServer`].
#[derive(Debug)]
pub struct MicroSocks(ProxyServer);

impl MicroSocks {
    /// Starts microsocks and waits until it accepts connections.
    ///
    /// # Errors
    ///
    /// Bad options, microsocks not installed, or it exiting or not
    /// listening within [`START_TIMEOUT`] (its output is quoted).
    pub fn start(opts: ProxyOptions) -> Result<MicroSocks, String> {
        ProxyServer::start(ProxyKind::MicroSocks, opts).map(MicroSocks)
    }
}

impl Deref for TinyProxy {
    type Target = ProxyServer;

    fn deref(&self) -> &ProxyServer {
        &self.0
    }
}

impl DerefMut for TinyProxy {
    fn deref_mut(&mut self) -> &mut ProxyServer {
        &mut self.0
    }
}

impl Deref for MicroSocks {
    type Target = ProxyServer;

    fn deref(&self) -> &ProxyServer {
        &self.0
    }
}

impl DerefMut for MicroSocks {
    fn deref_mut(&mut self) -> &mut ProxyServer {
        &mut self.0
    }
}

/// A proxy process in a temporary directory ([`TinyProxy`],
/// [`MicroSocks`]).
#[derive(Debug)]
pub struct ProxyServer {
    kind: ProxyKind,
    program: PathBuf,
    opts: ProxyOptions,
    dir: PathBuf,
    port: u16,
    child: Option<Child>,
}

/// Why a spawn failed.
struct SpawnError {
    msg: String,
    /// The proxy said its port was in use.
    port_taken: bool,
}

impl ProxyServer {
    fn start(kind: ProxyKind, opts: ProxyOptions) -> Result<ProxyServer, String> {
        let name = kind.type_name();
        validate(kind, &opts).map_err(|e| format!("{name}::start: {e}"))?;
        let program = find_program(kind.program(), EXTRA_DIRS).ok_or_else(|| {
            format!(
                "{name}::start: `{}` not found on PATH or in {EXTRA_DIRS:?} (install the \
                 `{}` package)",
                kind.program(),
                kind.program()
            )
        })?;
        let dir = make_temp_dir(&format!("trawl-{}", kind.program()))?;
        // From here on, `Drop` cleans up on every error path.
        let mut p = ProxyServer {
            kind,
            program,
            dir,
            port: opts.port.unwrap_or(0),
            opts,
            child: None,
        };
        if p.opts.port.is_some() {
            p.spawn().map_err(|e| e.msg)?;
            return Ok(p);
        }
        let mut last = String::new();
        for _ in 0..PORT_ATTEMPTS {
            p.port = free_port().map_err(|e| format!("{name}::start: {e}"))?;
            match p.spawn() {
                Ok(()) => return Ok(p),
                Err(e) if e.port_taken => last = e.msg,
                Err(e) => return Err(e.msg),
            }
        }
        Err(last)
    }

    /// tinyproxy or microsocks.
    #[must_use]
    pub fn kind(&self) -> ProxyKind {
        self.kind
    }

    /// The port it listens on (on 127.0.0.1); the same across
    /// [`stop`](Self::stop)/[`start_again`](Self::start_again).
    #[must_use]
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `127.0.0.1:PORT`.
    #[must_use]
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from((Ipv4Addr::LOCALHOST, self.port))
    }

    /// The address its connections to servers come from.
    #[must_use]
    pub fn outgoing_ip(&self) -> IpAddr {
        self.opts.outgoing_ip
    }

    /// The credentials it requires, if any.
    #[must_use]
    pub fn auth(&self) -> Option<&ProxyAuth> {
        self.opts.auth.as_ref()
    }

    /// The proxy URL with its credentials: `http://[user:pass@]127.0.0.1:PORT`
    /// for tinyproxy, `socks5://[user:pass@]127.0.0.1:PORT` for microsocks
    /// (user and password percent-encoded).
    #[must_use]
    pub fn url(&self) -> String {
        let mut url = format!("{}://", self.kind.scheme());
        if let Some(a) = &self.opts.auth {
            url.push_str(&userinfo_encode(&a.user));
            url.push(':');
            url.push_str(&userinfo_encode(&a.password));
            url.push('@');
        }
        let _ = write!(url, "127.0.0.1:{}", self.port);
        url
    }

    /// [`url`](Self::url) without the credentials.
    #[must_use]
    pub fn url_without_auth(&self) -> String {
        format!("{}://127.0.0.1:{}", self.kind.scheme(), self.port)
    }

    /// The temporary directory (configuration, log, pid file).
    #[must_use]
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The proxy's output (stdout and stderr, all runs).
    #[must_use]
    pub fn log_path(&self) -> PathBuf {
        self.dir.join("log")
    }

    /// The last `lines` lines of [`log_path`](Self::log_path).
    #[must_use]
    pub fn log_tail(&self, lines: usize) -> String {
        read_tail(&self.log_path(), lines)
    }

    /// The process id while running.
    #[must_use]
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Whether the process is alive (it may have died on its own).
    pub fn is_running(&mut self) -> bool {
        match self.child.as_mut().map(Child::try_wait) {
            Some(Ok(None)) => true,
            Some(_) => {
                self.child = None;
                false
            }
            None => false,
        }
    }

    /// Whether a TCP connection to the port succeeds right now.
    #[must_use]
    pub fn accepts_connections(&self) -> bool {
        tcp_accepts(self.addr())
    }

    /// Whether the proxy answers on its port right now like the program it
    /// is (see the [module documentation](self)).
    #[must_use]
    pub fn answers(&self) -> bool {
        probe(self.kind, self.addr())
    }

    /// Kills the proxy (SIGKILL: open connections are cut) and waits until
    /// the port refuses connections. Stopping a stopped proxy is a no-op.
    ///
    /// # Errors
    ///
    /// If the process cannot be killed or the port stays open for
    /// [`START_TIMEOUT`].
    pub fn stop(&mut self) -> Result<(), String> {
        if let Some(mut child) = self.child.take() {
            if let Err(e) = child.kill()
                && !matches!(child.try_wait(), Ok(Some(_)))
            {
                self.child = Some(child);
                return Err(self.failure(&format!("cannot kill the process: {e}")));
            }
            if let Err(e) = child.wait() {
                return Err(self.failure(&format!("cannot wait for the killed process: {e}")));
            }
        }
        let addr = self.addr();
        if wait_until(Instant::now() + START_TIMEOUT, || !tcp_accepts(addr)) {
            Ok(())
        } else {
            Err(self.failure(&format!(
                "port {} still accepts connections {START_TIMEOUT:?} after the kill",
                self.port
            )))
        }
    }

    /// Starts the stopped proxy again on the same port with the same
    /// options; returns once it accepts connections.
    ///
    /// # Errors
    ///
    /// If it is still running, or as [`TinyProxy::start`] (e.g. the port
    /// was taken meanwhile).
    pub fn start_again(&mut self) -> Result<(), String> {
        if self.is_running() {
            return Err(self.failure("start_again: the proxy is still running"));
        }
        self.spawn().map_err(|e| e.msg)
    }

    /// [`stop`](Self::stop), then [`start_again`](Self::start_again).
    ///
    /// # Errors
    ///
    /// As those two.
    pub fn restart(&mut self) -> Result<(), String> {
        self.stop()?;
        self.start_again()
    }

    /// Spawns the process on `self.port` and waits until it accepts.
    fn spawn(&mut self) -> Result<(), SpawnError> {
        let fail = |p: &ProxyServer, msg: String| SpawnError {
            msg: p.failure(&msg),
            port_taken: false,
        };
        let log_path = self.log_path();
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .map_err(|e| fail(self, format!("cannot open {}: {e}", log_path.display())))?;
        let log_start = log.metadata().map_or(0, |m| m.len());
        let log_err = log
            .try_clone()
            .map_err(|e| fail(self, format!("cannot duplicate the log handle: {e}")))?;
        let mut cmd = Command::new(&self.program);
        cmd.current_dir(&self.dir)
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log_err);
        match self.kind {
            ProxyKind::Tinyproxy => {
                let conf = self.dir.join("tinyproxy.conf");
                fs::write(&conf, self.tinyproxy_conf())
                    .map_err(|e| fail(self, format!("cannot write {}: {e}", conf.display())))?;
                cmd.arg("-d").arg("-c").arg(&conf);
            }
            ProxyKind::MicroSocks => {
                cmd.args(["-i", "127.0.0.1", "-p"])
                    .arg(self.port.to_string())
                    .arg("-b")
                    .arg(self.opts.outgoing_ip.to_string());
                if let Some(a) = &self.opts.auth {
                    cmd.arg("-u").arg(&a.user).arg("-P").arg(&a.password);
                }
            }
        }
        let child = cmd
            .spawn()
            .map_err(|e| fail(self, format!("cannot run {}: {e}", self.program.display())))?;
        self.child = Some(child);
        let addr = self.addr();
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            let exited = match self.child.as_mut().map(Child::try_wait) {
                Some(Ok(None)) => None,
                Some(Ok(Some(status))) => Some(status.to_string()),
                Some(Err(e)) => Some(format!("cannot be waited for: {e}")),
                None => Some("gone".to_owned()),
            };
            if let Some(status) = exited {
                self.child = None;
                let out = read_from(&log_path, log_start);
                let port_taken = out.contains("Address already in use")
                    || out.contains("Could not create listening sockets");
                return Err(SpawnError {
                    msg: self.failure(&format!(
                        "exited while starting on port {} ({status})",
                        self.port
                    )),
                    port_taken,
                });
            }
            if probe(self.kind, addr) {
                return Ok(());
            }
            if Instant::now() >= deadline {
                let msg = format!("did not accept connections on {addr} within {START_TIMEOUT:?}");
                let _ = self.stop();
                return Err(fail(self, msg));
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    fn tinyproxy_conf(&self) -> String {
        let mut c = String::from("# Written by trawl-testsite (proxies.rs).\n");
        let _ = writeln!(c, "Port {}", self.port);
        c.push_str("Listen 127.0.0.1\n");
        let _ = writeln!(c, "Bind {}", self.opts.outgoing_ip);
        c.push_str("Allow 127.0.0.0/8\n");
        c.push_str("MaxClients 1024\n");
        c.push_str("Timeout 600\n");
        c.push_str("Syslog Off\n");
        let level = if self.opts.verbose { "Info" } else { "Warning" };
        let _ = writeln!(c, "LogLevel {level}");
        let _ = writeln!(
            c,
            "PidFile \"{}\"",
            self.dir.join("tinyproxy.pid").display()
        );
        c.push_str("DisableViaHeader Yes\n");
        // No ConnectPort line: CONNECT is allowed to every port.
        if let Some(a) = &self.opts.auth {
            let _ = writeln!(c, "BasicAuth {} {}", a.user, a.password);
        }
        c
    }

    fn failure(&self, what: &str) -> String {
        let mut msg = format!(
            "{} ({}, {}): {what}",
            self.kind.type_name(),
            self.url_without_auth(),
            self.dir.display()
        );
        let tail = self.log_tail(LOG_TAIL_LINES);
        if tail.trim().is_empty() {
            msg.push_str("\n--- proxy output: empty ---");
        } else {
            let _ = write!(
                msg,
                "\n--- proxy output ({}, last {LOG_TAIL_LINES} lines) ---\n{tail}",
                self.log_path().display()
            );
        }
        msg
    }
}

impl Drop for ProxyServer {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = fs::remove_dir_all(&self.dir);
    }
}

/// Checks the options against what the program accepts.
fn validate(kind: ProxyKind, opts: &ProxyOptions) -> Result<(), String> {
    if !opts.outgoing_ip.is_loopback() {
        return Err(format!(
            "outgoing_ip {} is not a loopback address (tests stay on 127.0.0.0/8)",
            opts.outgoing_ip
        ));
    }
    if opts.port == Some(0) {
        return Err("port 0: use `port: None` to pick a free port".to_owned());
    }
    let Some(a) = &opts.auth else {
        return Ok(());
    };
    for (what, v) in [("user", &a.user), ("password", &a.password)] {
        if v.is_empty() || v.len() > 255 {
            return Err(format!("the {what} must have 1 to 255 bytes"));
        }
        let ok = match kind {
            // tinyproxy's config grammar: `BasicAuth ([-a-z0-9._]+) ([-a-z0-9._]+)`.
            ProxyKind::Tinyproxy => v
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_')),
            ProxyKind::MicroSocks => !v.contains('\0'),
        };
        if !ok {
            return Err(format!(
                "{} cannot take the {what} {v:?} (tinyproxy: only ASCII letters, digits, \
                 `-`, `.` and `_`)",
                kind.program()
            ));
        }
    }
    Ok(())
}

/// Percent-encodes everything but RFC 3986 unreserved characters.
fn userinfo_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

/// A port on 127.0.0.1 that was free a moment ago.
pub(crate) fn free_port() -> Result<u16, String> {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| format!("cannot pick a free port on 127.0.0.1: {e}"))
}

pub(crate) fn tcp_accepts(addr: SocketAddr) -> bool {
    TcpStream::connect_timeout(&addr, Duration::from_secs(1)).is_ok()
}

/// Whether `kind`'s program answers on `addr`: tinyproxy sends an HTTP
/// error naming itself for a bare `GET /` (400, or 407 with
/// authentication); microsocks answers a SOCKS5 greeting offering "no
/// authentication" with version 5 (and method 0, or 0xFF with
/// authentication).
fn probe(kind: ProxyKind, addr: SocketAddr) -> bool {
    const TIMEOUT: Duration = Duration::from_secs(1);
    let Ok(mut s) = TcpStream::connect_timeout(&addr, TIMEOUT) else {
        return false;
    };
    if s.set_read_timeout(Some(TIMEOUT)).is_err() || s.set_write_timeout(Some(TIMEOUT)).is_err() {
        return false;
    }
    let mut buf = [0u8; 512];
    match kind {
        ProxyKind::Tinyproxy => {
            if s.write_all(b"GET / HTTP/1.0\r\n\r\n").is_err() {
                return false;
            }
            let mut n = 0;
            while n < buf.len() {
                match s.read(&mut buf[n..]) {
                    Ok(0) | Err(_) => break,
                    Ok(k) => n += k,
                }
                if buf[..n].windows(4).any(|w| w == b"\r\n\r\n") {
                    break;
                }
            }
            let head = String::from_utf8_lossy(&buf[..n]).to_ascii_lowercase();
            head.starts_with("http/1.") && head.contains("tinyproxy")
        }
        ProxyKind::MicroSocks => {
            s.write_all(&[0x05, 0x01, 0x00]).is_ok()
                && s.read_exact(&mut buf[..2]).is_ok()
                && buf[0] == 0x05
                && matches!(buf[1], 0x00 | 0xFF)
        }
    }
}

/// The text of `path` from byte `offset` on (empty on any error).
fn read_from(path: &Path, offset: u64) -> String {
    let mut buf = Vec::new();
    if let Ok(mut f) = File::open(path)
        && f.seek(SeekFrom::Start(offset)).is_ok()
    {
        let _ = f.read_to_end(&mut buf);
    }
    String::from_utf8_lossy(&buf).into_owned()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn options_are_validated() {
        let bad_ip = ProxyOptions::new(Ipv4Addr::new(10, 0, 0, 1));
        let err = TinyProxy::start(bad_ip).unwrap_err();
        assert!(err.contains("not a loopback address"), "{err}");
        let colon = ProxyOptions::default().with_auth("user", "pa:ss");
        let err = TinyProxy::start(colon.clone()).unwrap_err();
        assert!(err.contains("cannot take the password"), "{err}");
        assert!(validate(ProxyKind::MicroSocks, &colon).is_ok());
        let empty = ProxyOptions::default().with_auth("", "x");
        assert!(validate(ProxyKind::MicroSocks, &empty).is_err());
        assert!(validate(ProxyKind::Tinyproxy, &ProxyOptions::default().on_port(0)).is_err());
        assert!(!format!("{:?}", colon.auth).contains("pa:ss"));
    }

    #[test]
    fn urls_and_config() {
        assert_eq!(userinfo_encode("a-b.c_d~"), "a-b.c_d~");
        assert_eq!(userinfo_encode("p@ss:w/rd é"), "p%40ss%3Aw%2Frd%20%C3%A9");
        let p = ProxyServer {
            kind: ProxyKind::Tinyproxy,
            program: PathBuf::from("/bin/false"),
            opts: ProxyOptions::new(Ipv4Addr::new(127, 0, 0, 9)).with_auth("u", "p"),
            dir: PathBuf::from("/nonexistent/trawl-proxy-test"),
            port: 3128,
            child: None,
        };
        assert_eq!(p.url(), "http://u:p@127.0.0.1:3128");
        assert_eq!(p.url_without_auth(), "http://127.0.0.1:3128");
        let conf = p.tinyproxy_conf();
        for line in [
            "Port 3128",
            "Listen 127.0.0.1",
            "Bind 127.0.0.9",
            "BasicAuth u p",
            "PidFile \"/nonexistent/trawl-proxy-test/tinyproxy.pid\"",
        ] {
            assert!(conf.lines().any(|l| l == line), "{line} not in\n{conf}");
        }
        assert!(!conf.contains("ConnectPort") && !conf.contains("User "));
    }
}

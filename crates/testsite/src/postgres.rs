//! A private, throwaway PostgreSQL server for tests that must stop, kill or
//! restart the database (the shared server on 127.0.0.1:5432 is never
//! touched).
//!
//! [`TempPostgres::start`] makes a temporary directory, runs `initdb` into
//! `<dir>/data` (trust authentication, superuser `postgres`, UTF-8, no
//! locale), picks a free loopback port and starts the server with `pg_ctl`,
//! listening on `127.0.0.1:PORT` and with its Unix socket in `<dir>`. The
//! server log is `<dir>/log`. Database `test` is created; [`TempPostgres::url`]
//! points at it. Dropping the value stops the server (immediate shutdown) and
//! removes the directory.
//!
//! Binaries are found with `pg_config --bindir`, else in the newest
//! `/usr/lib/postgresql/*/bin`, else on `PATH`. PostgreSQL refuses to run as
//! root, so when the test process runs as root the server-side commands run
//! as the `postgres` OS user (`runuser -u postgres --`, else
//! `su postgres -c`), and the directory is handed to that user.
//!
//! All methods block (they run external commands and wait for the port);
//! from async code call them outside the runtime or via
//! `tokio::task::spawn_blocking`.

use std::ffi::OsStr;
use std::fs;
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// How long starting (or restarting) the server may take before it is an
/// error, and how long a stop may take to close the port.
pub const START_TIMEOUT: Duration = Duration::from_secs(30);

/// The OS user that runs the server when the test process is root.
const PG_OS_USER: &str = "postgres";

/// Database created by [`TempPostgres::start`].
pub const TEST_DB: &str = "test";

/// Lines of the server log quoted in error messages.
const LOG_TAIL_LINES: usize = 30;

/// How often to try starting on a new port when the one picked was taken in
/// the meantime.
const PORT_ATTEMPTS: usize = 3;

/// A private PostgreSQL server in a temporary directory. See the
/// [module documentation](self).
#[derive(Debug)]
pub struct TempPostgres {
    dir: PathBuf,
    port: u16,
    durable: bool,
    bins: PgBins,
    as_postgres: bool,
}

impl TempPostgres {
    /// Initializes and starts a server with `fsync=off` (fast, not
    /// crash-safe against OS crashes; a killed server still recovers), then
    /// creates database `test`. Returns once it accepts TCP connections.
    ///
    /// # Errors
    ///
    /// Says which step failed, with the command's output and the tail of
    /// the server log.
    pub fn start() -> Result<Self, String> {
        Self::start_with(false)
    }

    /// Like [`start`](Self::start); with `durable` the server keeps the
    /// default `fsync=on`.
    ///
    /// # Errors
    ///
    /// As [`start`](Self::start).
    pub fn start_with(durable: bool) -> Result<Self, String> {
        let bins = PgBins::find()?;
        let as_postgres = euid_is_root()?;
        let dir = make_temp_dir("trawl-pg")?;
        // From here on, `Drop` cleans up on every error path.
        let mut pg = Self {
            dir,
            port: 0,
            durable,
            bins,
            as_postgres,
        };
        pg.prepare_dir()?;
        pg.initdb()?;
        let mut last_err = String::new();
        for _ in 0..PORT_ATTEMPTS {
            pg.port = free_port()?;
            match pg.start_again() {
                Ok(()) => {
                    last_err.clear();
                    break;
                }
                Err(e) => {
                    let taken = pg
                        .log_tail(LOG_TAIL_LINES)
                        .contains("could not bind IPv4 address");
                    last_err = e;
                    if !taken {
                        break;
                    }
                    // The port was grabbed between picking and binding:
                    // make sure nothing is left running, then try another.
                    pg.stop_quietly();
                }
            }
        }
        if !last_err.is_empty() {
            return Err(last_err);
        }
        pg.create_test_db()?;
        Ok(pg)
    }

    /// The TCP port the server listens on (on 127.0.0.1). It stays the same
    /// across [`stop`](Self::stop)/[`start_again`](Self::start_again).
    #[must_use]
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `postgres://postgres@127.0.0.1:PORT/test` (trust authentication, no
    /// password).
    #[must_use]
    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{TEST_DB}", self.port)
    }

    /// Whether the server was started with `fsync=on`.
    #[must_use]
    pub fn durable(&self) -> bool {
        self.durable
    }

    /// The temporary directory (holds `data/`, `log` and the Unix socket).
    #[must_use]
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The server log file.
    #[must_use]
    pub fn log_path(&self) -> PathBuf {
        self.dir.join("log")
    }

    /// The last `lines` lines of the server log (empty if there is none).
    #[must_use]
    pub fn log_tail(&self, lines: usize) -> String {
        read_tail(&self.log_path(), lines)
    }

    /// Whether a TCP connection to the port succeeds right now.
    #[must_use]
    pub fn accepts_connections(&self) -> bool {
        tcp_accepts(self.port)
    }

    /// Stops the server cleanly (`pg_ctl stop -m fast -w`); returns once
    /// the port refuses connections.
    ///
    /// # Errors
    ///
    /// If `pg_ctl` fails or the port stays open.
    pub fn stop(&self) -> Result<(), String> {
        self.pg_ctl_stop("fast")
    }

    /// Kills the server the crash way (`pg_ctl stop -m immediate -w`: no
    /// checkpoint, crash recovery on the next start); returns once the port
    /// refuses connections.
    ///
    /// # Errors
    ///
    /// If `pg_ctl` fails or the port stays open.
    pub fn kill(&self) -> Result<(), String> {
        self.pg_ctl_stop("immediate")
    }

    /// Starts the stopped (or killed) server again with the same data
    /// directory and port; returns once it accepts TCP connections.
    ///
    /// # Errors
    ///
    /// If `pg_ctl start` fails (e.g. the port was taken meanwhile) or the
    /// port does not open within [`START_TIMEOUT`].
    pub fn start_again(&self) -> Result<(), String> {
        let data = self.data_dir();
        let mut opts = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1",
            self.port,
            sh_quote(self.dir.as_os_str())
        );
        if !self.durable {
            opts.push_str(" -c fsync=off");
        }
        let timeout = START_TIMEOUT.as_secs().to_string();
        let out = self.run_server_cmd(
            &self.bins.pg_ctl,
            &[
                OsStr::new("start"),
                OsStr::new("-D"),
                data.as_os_str(),
                OsStr::new("-l"),
                self.log_path().as_os_str(),
                OsStr::new("-w"),
                OsStr::new("-t"),
                OsStr::new(&timeout),
                OsStr::new("-o"),
                OsStr::new(&opts),
            ],
        );
        let out = self.check("pg_ctl start", out)?;
        drop(out);
        let deadline = Instant::now() + START_TIMEOUT;
        if wait_until(deadline, || tcp_accepts(self.port)) {
            Ok(())
        } else {
            Err(self.failure(
                &format!(
                    "server did not accept TCP connections on 127.0.0.1:{} within {:?}",
                    self.port, START_TIMEOUT
                ),
                None,
            ))
        }
    }

    /// [`stop`](Self::stop), then [`start_again`](Self::start_again).
    ///
    /// # Errors
    ///
    /// As those two.
    pub fn restart(&self) -> Result<(), String> {
        self.stop()?;
        self.start_again()
    }

    fn data_dir(&self) -> PathBuf {
        self.dir.join("data")
    }

    fn prepare_dir(&self) -> Result<(), String> {
        // World-traversable so the `postgres` user can reach it whatever
        // owns it; the data directory itself is made 0700 by initdb.
        fs::set_permissions(&self.dir, fs::Permissions::from_mode(0o711))
            .map_err(|e| format!("TempPostgres: chmod {}: {e}", self.dir.display()))?;
        if self.as_postgres {
            let out = Command::new("chown")
                .arg("-R")
                .arg(format!("{PG_OS_USER}:{PG_OS_USER}"))
                .arg(&self.dir)
                .stdin(Stdio::null())
                .output();
            self.check("chown of the temporary directory", out)?;
        }
        Ok(())
    }

    fn initdb(&self) -> Result<(), String> {
        let data = self.data_dir();
        let out = self.run_server_cmd(
            &self.bins.initdb,
            &[
                OsStr::new("-D"),
                data.as_os_str(),
                OsStr::new("-A"),
                OsStr::new("trust"),
                OsStr::new("-U"),
                OsStr::new("postgres"),
                OsStr::new("-E"),
                OsStr::new("UTF8"),
                OsStr::new("--no-locale"),
                OsStr::new("--no-sync"),
            ],
        );
        self.check("initdb", out).map(drop)
    }

    fn create_test_db(&self) -> Result<(), String> {
        let port = self.port.to_string();
        let common = ["-h", "127.0.0.1", "-p", port.as_str(), "-U", "postgres"];
        let out = if let Some(createdb) = &self.bins.createdb {
            self.client_cmd(createdb).args(common).arg(TEST_DB).output()
        } else if let Some(psql) = &self.bins.psql {
            self.client_cmd(psql)
                .args(common)
                .args(["-d", "postgres", "-v", "ON_ERROR_STOP=1", "-c"])
                .arg(format!("CREATE DATABASE {TEST_DB}"))
                .output()
        } else {
            return Err(self.failure(
                "cannot create database: neither createdb nor psql found",
                None,
            ));
        };
        self.check("creating database `test`", out).map(drop)
    }

    fn pg_ctl_stop(&self, mode: &str) -> Result<(), String> {
        let timeout = START_TIMEOUT.as_secs().to_string();
        let data = self.data_dir();
        let out = self.run_server_cmd(
            &self.bins.pg_ctl,
            &[
                OsStr::new("stop"),
                OsStr::new("-D"),
                data.as_os_str(),
                OsStr::new("-m"),
                OsStr::new(mode),
                OsStr::new("-w"),
                OsStr::new("-t"),
                OsStr::new(&timeout),
            ],
        );
        self.check(&format!("pg_ctl stop -m {mode}"), out)?;
        let deadline = Instant::now() + START_TIMEOUT;
        if wait_until(deadline, || !tcp_accepts(self.port)) {
            Ok(())
        } else {
            Err(self.failure(
                &format!(
                    "port {} still accepts connections {:?} after pg_ctl stop",
                    self.port, START_TIMEOUT
                ),
                None,
            ))
        }
    }

    /// Best-effort immediate shutdown, for `Drop` and error paths.
    fn stop_quietly(&self) {
        let pid_file = self.data_dir().join("postmaster.pid");
        if !pid_file.exists() {
            return;
        }
        if self.pg_ctl_stop("immediate").is_ok() {
            return;
        }
        // pg_ctl failed: signal the postmaster directly (SIGQUIT is
        // PostgreSQL's immediate shutdown, SIGKILL the last resort).
        let pid = fs::read_to_string(&pid_file)
            .ok()
            .and_then(|s| s.lines().next().map(|l| l.trim().to_owned()))
            .filter(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()));
        if let Some(pid) = pid {
            for sig in ["-QUIT", "-KILL"] {
                let _ = Command::new("kill")
                    .args([sig, pid.as_str()])
                    .stdin(Stdio::null())
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .status();
                let gone = Path::new("/proc").join(&pid);
                if wait_until(Instant::now() + Duration::from_secs(5), || !gone.exists()) {
                    break;
                }
            }
        }
    }

    /// Runs a server-side program (initdb, pg_ctl), as the `postgres` user
    /// when we are root.
    fn run_server_cmd(&self, program: &Path, args: &[&OsStr]) -> std::io::Result<Output> {
        let mut cmd = if self.as_postgres {
            if let Some(runuser) = find_program("runuser", &["/usr/sbin", "/sbin", "/usr/bin"]) {
                let mut c = Command::new(runuser);
                c.args(["-u", PG_OS_USER, "--"]).arg(program).args(args);
                c
            } else {
                let mut line = sh_quote(program.as_os_str());
                for a in args {
                    line.push(' ');
                    line.push_str(&sh_quote(a));
                }
                let mut c = Command::new("su");
                c.args([PG_OS_USER, "-s", "/bin/sh", "-c"]).arg(line);
                c
            }
        } else {
            let mut c = Command::new(program);
            c.args(args);
            c
        };
        cmd.current_dir(&self.dir)
            .env_remove("PGDATA")
            .env_remove("PGPORT")
            .env_remove("PGHOST")
            .stdin(Stdio::null())
            .output()
    }

    fn client_cmd(&self, program: &Path) -> Command {
        let mut c = Command::new(program);
        c.current_dir(&self.dir)
            .env_remove("PGDATABASE")
            .env_remove("PGSERVICE")
            .env_remove("PGOPTIONS")
            .stdin(Stdio::null());
        c
    }

    /// Turns a command result into `Ok(output)` on exit status 0, else a
    /// descriptive error.
    fn check(&self, what: &str, out: std::io::Result<Output>) -> Result<Output, String> {
        match out {
            Ok(o) if o.status.success() => Ok(o),
            Ok(o) => Err(self.failure(&format!("{what} failed ({})", o.status), Some(&o))),
            Err(e) => Err(self.failure(&format!("{what}: cannot run: {e}"), None)),
        }
    }

    fn failure(&self, what: &str, out: Option<&Output>) -> String {
        let mut msg = format!("TempPostgres ({}): {what}", self.dir.display());
        if let Some(o) = out {
            for (name, bytes) in [("stdout", &o.stdout), ("stderr", &o.stderr)] {
                let text = String::from_utf8_lossy(bytes);
                let text = text.trim();
                if !text.is_empty() {
                    msg.push_str(&format!("\n--- {name} ---\n{text}"));
                }
            }
        }
        let tail = self.log_tail(LOG_TAIL_LINES);
        if tail.trim().is_empty() {
            msg.push_str("\n--- server log: empty or missing ---");
        } else {
            msg.push_str(&format!(
                "\n--- server log ({}, last {LOG_TAIL_LINES} lines) ---\n{tail}",
                self.log_path().display()
            ));
        }
        msg
    }
}

impl Drop for TempPostgres {
    fn drop(&mut self) {
        self.stop_quietly();
        let _ = fs::remove_dir_all(&self.dir);
    }
}

/// Where the PostgreSQL programs are.
#[derive(Debug, Clone)]
struct PgBins {
    initdb: PathBuf,
    pg_ctl: PathBuf,
    createdb: Option<PathBuf>,
    psql: Option<PathBuf>,
}

impl PgBins {
    fn find() -> Result<Self, String> {
        let mut dirs = Vec::new();
        if let Ok(o) = Command::new("pg_config")
            .arg("--bindir")
            .stdin(Stdio::null())
            .output()
            && o.status.success()
        {
            let d = String::from_utf8_lossy(&o.stdout).trim().to_owned();
            if !d.is_empty() {
                dirs.push(PathBuf::from(d));
            }
        }
        if let Some(d) = newest_debian_bindir() {
            dirs.push(d);
        }
        let in_dirs = |name: &str| -> Option<PathBuf> {
            dirs.iter()
                .map(|d| d.join(name))
                .find(|p| is_executable(p))
                .or_else(|| find_program(name, &[]))
        };
        // initdb, pg_ctl and postgres must come from the same installation:
        // take the first directory that has all three.
        let server_dir = dirs
            .iter()
            .find(|d| {
                ["initdb", "pg_ctl", "postgres"]
                    .iter()
                    .all(|n| is_executable(&d.join(n)))
            })
            .cloned();
        let (initdb, pg_ctl) = match server_dir {
            Some(d) => (d.join("initdb"), d.join("pg_ctl")),
            None => {
                let initdb = find_program("initdb", &[]);
                let pg_ctl = find_program("pg_ctl", &[]);
                match (initdb, pg_ctl, find_program("postgres", &[])) {
                    (Some(i), Some(p), Some(_)) => (i, p),
                    _ => {
                        return Err(format!(
                            "TempPostgres: PostgreSQL server binaries (initdb, pg_ctl, postgres) \
                             not found via pg_config --bindir, /usr/lib/postgresql/*/bin or PATH \
                             (searched {dirs:?})"
                        ));
                    }
                }
            }
        };
        Ok(Self {
            initdb,
            pg_ctl,
            createdb: in_dirs("createdb"),
            psql: in_dirs("psql"),
        })
    }
}

/// `/usr/lib/postgresql/<highest version>/bin`, if any.
fn newest_debian_bindir() -> Option<PathBuf> {
    let entries = fs::read_dir("/usr/lib/postgresql").ok()?;
    entries
        .filter_map(Result::ok)
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let key: Vec<u64> = name
                .split('.')
                .map(|p| p.parse().ok())
                .collect::<Option<_>>()?;
            let bin = e.path().join("bin");
            bin.is_dir().then_some((key, bin))
        })
        .max_by(|a, b| a.0.cmp(&b.0))
        .map(|(_, bin)| bin)
}

fn is_executable(p: &Path) -> bool {
    fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// `name` on `PATH`, else in one of `extra` directories.
pub(crate) fn find_program(name: &str, extra: &[&str]) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(extra.iter().map(PathBuf::from))
        .map(|d| d.join(name))
        .find(|p| is_executable(p))
}

/// Whether the effective user is root (`id -u`; the workspace denies
/// `unsafe`, which `libc::geteuid` would need).
pub(crate) fn euid_is_root() -> Result<bool, String> {
    static ROOT: OnceLock<Result<bool, String>> = OnceLock::new();
    ROOT.get_or_init(|| {
        let out = Command::new("id")
            .arg("-u")
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("cannot run `id -u`: {e}"))?;
        if !out.status.success() {
            return Err(format!("`id -u` failed ({})", out.status));
        }
        Ok(String::from_utf8_lossy(&out.stdout).trim() == "0")
    })
    .clone()
}

/// Creates a fresh, uniquely named directory under the system temp dir.
pub(crate) fn make_temp_dir(prefix: &str) -> Result<PathBuf, String> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let base = std::env::temp_dir();
    let mut last_err = None;
    for _ in 0..100 {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let dir = base.join(format!("{prefix}-{}-{n}-{nanos:x}", std::process::id()));
        match fs::create_dir(&dir) {
            Ok(()) => return Ok(dir),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => last_err = Some(e),
            Err(e) => return Err(format!("cannot create {}: {e}", dir.display())),
        }
    }
    Err(format!(
        "cannot create a temporary directory under {}: {last_err:?}",
        base.display()
    ))
}

/// A loopback port that was free a moment ago.
fn free_port() -> Result<u16, String> {
    let l = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .map_err(|e| format!("TempPostgres: cannot bind 127.0.0.1:0 to pick a port: {e}"))?;
    l.local_addr()
        .map(|a| a.port())
        .map_err(|e| format!("TempPostgres: cannot read the picked port: {e}"))
}

fn tcp_accepts(port: u16) -> bool {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    TcpStream::connect_timeout(&addr, Duration::from_secs(1)).is_ok()
}

/// Polls `cond` until it holds (true) or `deadline` passes (false).
pub(crate) fn wait_until(deadline: Instant, mut cond: impl FnMut() -> bool) -> bool {
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

pub(crate) fn read_tail(path: &Path, lines: usize) -> String {
    let Ok(bytes) = fs::read(path) else {
        return String::new();
    };
    let text = String::from_utf8_lossy(&bytes);
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// Quotes `s` for `/bin/sh` (single quotes).
fn sh_quote(s: &OsStr) -> String {
    let s = s.to_string_lossy();
    let mut q = String::from("'");
    q.push_str(&s.replace('\'', r"'\''"));
    q.push('\'');
    q
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn psql_select_1(pg: &TempPostgres) -> Output {
        let psql = pg.bins.psql.clone().unwrap();
        Command::new(psql)
            .args(["-h", "127.0.0.1", "-p", &pg.port().to_string()])
            .args(["-U", "postgres", "-d", TEST_DB, "-tA", "-c", "select 1"])
            .stdin(Stdio::null())
            .output()
            .unwrap()
    }

    #[test]
    fn start_stop_start_again_keeps_database() {
        let t0 = Instant::now();
        let pg = TempPostgres::start().unwrap();
        eprintln!("TempPostgres::start took {:?} ({})", t0.elapsed(), pg.url());
        let port = pg.port();
        assert_ne!(port, 5432);
        assert_eq!(
            pg.url(),
            format!("postgres://postgres@127.0.0.1:{port}/test")
        );
        assert!(TcpStream::connect(("127.0.0.1", port)).is_ok());
        let out = psql_select_1(&pg);
        assert!(out.status.success(), "{out:?}");
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "1");

        pg.stop().unwrap();
        let err = TcpStream::connect(("127.0.0.1", port)).unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::ConnectionRefused);

        let t1 = Instant::now();
        pg.start_again().unwrap();
        eprintln!("TempPostgres::start_again took {:?}", t1.elapsed());
        assert_eq!(pg.port(), port);
        assert!(TcpStream::connect(("127.0.0.1", port)).is_ok());
        let out = psql_select_1(&pg);
        assert!(
            out.status.success(),
            "database `test` gone after restart: {out:?}"
        );

        let dir = pg.dir().to_path_buf();
        drop(pg);
        assert!(!dir.exists());
        let deadline = Instant::now() + START_TIMEOUT;
        assert!(wait_until(deadline, || !tcp_accepts(port)));
    }

    #[test]
    fn kill_then_restart_recovers_durable_server() {
        let pg = TempPostgres::start_with(true).unwrap();
        assert!(pg.durable());
        pg.kill().unwrap();
        assert!(!pg.accepts_connections());
        pg.start_again().unwrap();
        assert!(pg.accepts_connections());
        pg.restart().unwrap();
        let out = psql_select_1(&pg);
        assert!(out.status.success(), "{out:?}");
        assert!(pg.log_tail(200).contains("database system was interrupted"));
    }

    #[test]
    fn errors_name_the_step_and_quote_the_log() {
        let pg = TempPostgres::start().unwrap();
        pg.stop().unwrap();
        // Stopping a stopped server fails in pg_ctl.
        let err = pg.stop().unwrap_err();
        assert!(err.contains("pg_ctl stop -m fast failed"), "{err}");
        assert!(err.contains("server log"), "{err}");
        assert!(err.contains("database system is shut down"), "{err}");
    }

    #[test]
    fn sh_quote_escapes_single_quotes() {
        assert_eq!(sh_quote(OsStr::new("/tmp/a b")), "'/tmp/a b'");
        assert_eq!(sh_quote(OsStr::new("it's")), r"'it'\''s'");
    }
}

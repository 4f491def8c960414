//! One Chromium process, owned by trawl.
//!
//! Chromium is started in a process group of its own, with a parent-death
//! signal: if trawl dies in any way (`kill -9` too), the kernel kills the
//! browser, and its helpers (zygote, renderers, GPU and network services)
//! exit when it does. Dropping a [`ChromiumProcess`] kills the whole group
//! and reaps the browser, so no zombie or orphan is left after a crawl, a
//! Ctrl-C, a restart or a crash.
//!
//! The parent-death signal fires when the *thread* that forked the child
//! ends, so every browser is forked by one launcher thread that lives as
//! long as the process.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::sync::mpsc;
use std::time::Duration;

use crate::RenderError;

/// How to start Chromium.
#[derive(Debug, Clone)]
pub struct LaunchConfig {
    /// The executable (`/usr/bin/chromium` on Debian).
    pub executable: PathBuf,
    /// V8 heap limit of each renderer, MiB: a page that allocates past it
    /// crashes its own tab, not the machine.
    pub js_heap_mb: Option<u32>,
    /// More command-line switches.
    pub extra_args: Vec<String>,
    /// How long the browser may take to open its DevTools socket.
    pub startup_timeout: Duration,
}

impl Default for LaunchConfig {
    fn default() -> Self {
        LaunchConfig {
            executable: default_executable(),
            js_heap_mb: Some(512),
            extra_args: Vec::new(),
            startup_timeout: Duration::from_secs(30),
        }
    }
}

/// The first of `$TRAWL_CHROMIUM`, `chromium`, `chromium-browser`,
/// `google-chrome` found on `PATH` (Debian: `/usr/bin/chromium`).
pub fn default_executable() -> PathBuf {
    if let Some(p) = std::env::var_os("TRAWL_CHROMIUM") {
        return PathBuf::from(p);
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    for name in ["chromium", "chromium-browser", "google-chrome"] {
        for dir in std::env::split_paths(&path) {
            let candidate = dir.join(name);
            if candidate.is_file() {
                return candidate;
            }
        }
    }
    PathBuf::from("/usr/bin/chromium")
}

/// A running browser.
#[derive(Debug)]
pub struct ChromiumProcess {
    child: Child,
    /// The DevTools WebSocket URL.
    pub ws_url: String,
    /// Its profile, removed when the process is dropped.
    _profile: tempfile::TempDir,
}

struct LaunchRequest {
    command: Command,
    reply: mpsc::Sender<std::io::Result<Child>>,
}

/// The launcher thread's inbox.
fn launcher() -> &'static parking_lot::Mutex<mpsc::Sender<LaunchRequest>> {
    static LAUNCHER: OnceLock<parking_lot::Mutex<mpsc::Sender<LaunchRequest>>> = OnceLock::new();
    LAUNCHER.get_or_init(|| {
        let (tx, rx) = mpsc::channel::<LaunchRequest>();
        let spawned = std::thread::Builder::new()
            .name("trawl-chromium-launcher".into())
            .spawn(move || {
                while let Ok(mut req) = rx.recv() {
                    let _ = req.reply.send(req.command.spawn());
                }
            });
        if let Err(error) = spawned {
            tracing::error!(%error, "Could not start the browser launcher thread.");
        }
        parking_lot::Mutex::new(tx)
    })
}

impl ChromiumProcess {
    /// Starts Chromium headless and waits for its DevTools socket. Blocking:
    /// call it from `spawn_blocking`.
    pub fn launch(cfg: &LaunchConfig) -> Result<ChromiumProcess, RenderError> {
        let profile = tempfile::Builder::new()
            .prefix("trawl-chromium-")
            .tempdir()
            .map_err(|e| RenderError::Launch(format!("profile directory: {e}")))?;
        let mut command = Command::new(&cfg.executable);
        command
            .args(BASE_ARGS)
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .arg("--remote-debugging-port=0");
        if let Some(mb) = cfg.js_heap_mb {
            command.arg(format!("--js-flags=--max-old-space-size={mb}"));
        }
        command
            .args(&cfg.extra_args)
            .arg("about:blank")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        {
            use std::os::unix::process::CommandExt;
            command.process_group(0);
            set_parent_death_signal(&mut command);
        }
        let (reply, answer) = mpsc::channel();
        launcher()
            .lock()
            .send(LaunchRequest { command, reply })
            .map_err(|_| RenderError::Launch("the launcher thread is gone".into()))?;
        let mut child = answer
            .recv()
            .map_err(|_| RenderError::Launch("the launcher thread is gone".into()))?
            .map_err(|e| {
                RenderError::Launch(format!(
                    "cannot run {}: {e} (install Debian's `chromium` package, or set TRAWL_CHROMIUM)",
                    cfg.executable.display()
                ))
            })?;
        let Some(stderr) = child.stderr.take() else {
            kill_group(&mut child);
            return Err(RenderError::Launch("no stderr pipe".into()));
        };
        // Read the socket address off stderr, then keep draining it (a full
        // pipe would stall the browser) into the debug log.
        let (url_tx, url_rx) = mpsc::channel::<String>();
        let _ = std::thread::Builder::new()
            .name("trawl-chromium-log".into())
            .spawn(move || {
                let mut url_tx = Some(url_tx);
                for line in BufReader::new(stderr).lines() {
                    let Ok(line) = line else { break };
                    if let Some(tx) = &url_tx
                        && let Some(at) = line.find("ws://")
                    {
                        let _ = tx.send(line[at..].trim().to_string());
                        url_tx = None;
                        continue;
                    }
                    tracing::trace!(target: "trawl::chromium", "{line}");
                }
            });
        match url_rx.recv_timeout(cfg.startup_timeout) {
            Ok(ws_url) => Ok(ChromiumProcess {
                child,
                ws_url,
                _profile: profile,
            }),
            Err(_) => {
                let status = child.try_wait().ok().flatten();
                kill_group(&mut child);
                Err(RenderError::Launch(match status {
                    Some(s) => format!("chromium exited at start ({s})"),
                    None => format!(
                        "chromium opened no DevTools socket within {:?}",
                        cfg.startup_timeout
                    ),
                }))
            }
        }
    }

    /// The browser's process id (also its process group's).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Whether the browser process has exited.
    pub fn exited(&mut self) -> bool {
        !matches!(self.child.try_wait(), Ok(None))
    }

    /// Memory of the browser and all its helpers, bytes (proportional
    /// set size: pages shared between them counted once).
    pub fn group_memory(&self) -> u64 {
        group_memory(self.child.id() as i32)
    }

    /// Asks the browser to quit (SIGTERM: it closes its tabs and reaps its
    /// helpers), waits up to `grace` for it, then kills whatever of the
    /// group is left. Blocking.
    pub fn terminate(&mut self, grace: std::time::Duration) {
        let pid = self.child.id() as i32;
        if matches!(self.child.try_wait(), Ok(None)) {
            signal(pid, libc::SIGTERM);
            let end = std::time::Instant::now() + grace;
            while matches!(self.child.try_wait(), Ok(None)) && std::time::Instant::now() < end {
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
        }
        kill_group(&mut self.child);
    }
}

impl Drop for ChromiumProcess {
    fn drop(&mut self) {
        self.terminate(std::time::Duration::from_secs(2));
    }
}

/// Switches for a crawler's browser: headless, no first-run or background
/// chatter, no throttling of tabs that are not in front (several tabs
/// render at once), shared memory in /tmp (containers have a small
/// /dev/shm). `--no-sandbox`: the sandbox needs user namespaces or a setuid
/// helper that containers and root lack.
const BASE_ARGS: &[&str] = &[
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-background-timer-throttling",
    "--disable-backgrounding-occluded-windows",
    "--disable-renderer-backgrounding",
    "--disable-breakpad",
    "--disable-component-update",
    "--disable-default-apps",
    "--disable-extensions",
    "--disable-sync",
    "--disable-features=Translate,MediaRouter,OptimizationHints,InterestFeedContentSuggestions,CalculateNativeWinOcclusion,HttpsUpgrades",
    "--metrics-recording-only",
    "--no-first-run",
    "--no-default-browser-check",
    "--password-store=basic",
    "--use-mock-keychain",
    "--mute-audio",
    "--hide-scrollbars",
];

/// SIGKILL to the browser's whole process group, then reap the browser.
fn kill_group(child: &mut Child) {
    let pgid = child.id() as i32;
    if pgid > 0 {
        signal_group(pgid);
    }
    let _ = child.kill();
    let _ = child.wait();
}

#[allow(unsafe_code)]
fn signal(pid: i32, sig: libc::c_int) {
    // SAFETY: kill takes plain integers and touches no memory of ours.
    unsafe {
        libc::kill(pid, sig);
    }
}

#[allow(unsafe_code)]
fn signal_group(pgid: i32) {
    // SAFETY: killpg takes plain integers and touches no memory of ours.
    unsafe {
        libc::killpg(pgid, libc::SIGKILL);
    }
}

#[allow(unsafe_code)]
fn set_parent_death_signal(command: &mut Command) {
    use std::os::unix::process::CommandExt;
    // SAFETY: the closure runs in the forked child before exec and calls
    // only prctl, which is async-signal-safe; it allocates nothing.
    unsafe {
        command.pre_exec(|| {
            if libc::prctl(
                libc::PR_SET_PDEATHSIG,
                libc::SIGKILL as libc::c_ulong,
                0,
                0,
                0,
            ) != 0
            {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

/// Memory of the processes of a process group: the sum of their
/// proportional set sizes (`Pss` of `/proc/PID/smaps_rollup`), so the
/// libraries and shared memory Chromium's processes share are counted
/// once, not once per process as a sum of RSS would.
pub fn group_memory(pgid: i32) -> u64 {
    group_members(pgid)
        .into_iter()
        .filter_map(|pid| std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).ok())
        .filter_map(|rollup| {
            rollup
                .lines()
                .find(|l| l.starts_with("Pss:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<u64>().ok())
        })
        .map(|kb| kb * 1024)
        .sum()
}

/// The sum of the group's resident sizes (`/proc/PID/statm`): cheap, and
/// at least [`group_memory`] (shared pages are counted in every process).
pub fn group_rss_bound(pgid: i32) -> u64 {
    group_members(pgid)
        .into_iter()
        .filter_map(|pid| std::fs::read_to_string(format!("/proc/{pid}/statm")).ok())
        .filter_map(|statm| statm.split_whitespace().nth(1)?.parse::<u64>().ok())
        .map(|pages| pages * 4096)
        .sum()
}

/// Pids whose process group is `pgid`.
pub fn group_members(pgid: i32) -> Vec<i32> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().to_str().and_then(|n| n.parse::<i32>().ok()))
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .ok()
                .and_then(|stat| {
                    // pid (comm) state ppid pgrp …; comm may hold spaces.
                    let rest = &stat[stat.rfind(')')? + 1..];
                    rest.split_whitespace().nth(2)?.parse::<i32>().ok()
                })
                == Some(pgid)
        })
        .collect()
}

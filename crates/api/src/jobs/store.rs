//! A job's record on disk: `job.json` in the job's directory, replaced
//! whole (written beside, synced, renamed) at each change of state, and
//! readable by the server's user only (the request may name proxies with
//! their passwords; nothing the API answers shows them).

use std::io::Write;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::request::CrawlRequest;

/// The record file in a job directory.
pub const RECORD_FILE: &str = "job.json";

/// Where a job is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum JobState {
    Running,
    Done,
    Cancelled,
    Failed,
}

impl JobState {
    pub fn as_str(self) -> &'static str {
        match self {
            JobState::Running => "running",
            JobState::Done => "done",
            JobState::Cancelled => "cancelled",
            JobState::Failed => "failed",
        }
    }
}

/// What is kept of a job.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct JobRecord {
    pub id: String,
    /// The name of the key that made it.
    pub owner: String,
    /// Seconds since the Unix epoch.
    pub created: u64,
    pub finished: Option<u64>,
    pub state: JobState,
    /// Why it failed.
    pub error: Option<String>,
    /// The request it was made with (run again on a restart).
    pub request: CrawlRequest,
    /// Items counted when it ended.
    #[serde(default)]
    pub items: u64,
    /// The outcome of its webhook, once sent.
    #[serde(default)]
    pub webhook: Option<String>,
}

/// Seconds since the Unix epoch.
pub fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl JobRecord {
    /// Read the record of `dir`.
    pub fn load(dir: &Path) -> std::io::Result<JobRecord> {
        let text = std::fs::read(dir.join(RECORD_FILE))?;
        serde_json::from_slice(&text)
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))
    }

    /// Replace the record of `dir`.
    pub fn save(&self, dir: &Path) -> std::io::Result<()> {
        let tmp = dir.join(format!("{RECORD_FILE}.tmp"));
        let mut options = std::fs::OpenOptions::new();
        options.create(true).write(true).truncate(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut file = options.open(&tmp)?;
        file.write_all(&serde_json::to_vec_pretty(self).map_err(std::io::Error::other)?)?;
        file.sync_all()?;
        std::fs::rename(&tmp, dir.join(RECORD_FILE))?;
        if let Ok(d) = std::fs::File::open(dir) {
            let _ = d.sync_all();
        }
        Ok(())
    }
}

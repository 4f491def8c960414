//! Webhooks: when a job ends, its description is POSTed to the URL the
//! job named, signed with the server's secret (`DATA/webhook-secret`,
//! made at the first start, readable by the server's user only):
//!
//! ```text
//! X-Trawl-Event: crawl.done | crawl.failed | crawl.cancelled
//! X-Trawl-Timestamp: 1764892800
//! X-Trawl-Signature: sha256=HEX(HMAC-SHA256(secret, "{timestamp}.{body}"))
//! ```
//!
//! The receiver recomputes the HMAC over the timestamp and the raw body
//! and compares in constant time; the timestamp lets it refuse replays.
//! The URL passes the address guard (at the check and at connect time).
//! Three attempts (1 s, then 5 s apart); 2xx counts as delivered.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use hmac::{Hmac, KeyInit, Mac};
use serde_json::{Value, json};
use sha2::Sha256;
use trawl_core::Url;
use trawl_fetch::guard::{AddressGuard, GuardedResolver};

use crate::jobs::store::JobState;

/// The secret's file in the data directory.
pub const SECRET_FILE: &str = "webhook-secret";

const ATTEMPTS: [Duration; 3] = [
    Duration::ZERO,
    Duration::from_secs(1),
    Duration::from_secs(5),
];

/// Signs and sends webhooks.
pub struct Webhooks {
    secret: Vec<u8>,
    client: Option<reqwest::Client>,
    guard: Option<Arc<AddressGuard>>,
}

/// `sha256=HEX` of `timestamp.body` under `secret`.
pub fn signature(secret: &[u8], timestamp: u64, body: &[u8]) -> String {
    let Ok(mut mac) = <Hmac<Sha256> as KeyInit>::new_from_slice(secret) else {
        return String::new();
    };
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    let digest = mac.finalize().into_bytes();
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256={hex}")
}

/// Read `dir/webhook-secret`, or make it.
pub fn load_secret(dir: &Path) -> std::io::Result<Vec<u8>> {
    let path = dir.join(SECRET_FILE);
    match std::fs::read_to_string(&path) {
        Ok(text) if !text.trim().is_empty() => return Ok(text.trim().as_bytes().to_vec()),
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    use rand::RngCore;
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    let secret: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    std::fs::create_dir_all(dir)?;
    let mut options = std::fs::OpenOptions::new();
    options.create_new(true).write(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    use std::io::Write;
    options.open(&path)?.write_all(secret.as_bytes())?;
    Ok(secret.into_bytes())
}

impl Webhooks {
    pub fn open(dir: &Path, guard: Option<Arc<AddressGuard>>) -> std::io::Result<Webhooks> {
        let secret = load_secret(dir)?;
        let mut builder = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy();
        if let Some(g) = &guard {
            builder = builder.dns_resolver(Arc::new(GuardedResolver(g.clone())));
        }
        let client = match builder.build() {
            Ok(c) => Some(c),
            Err(error) => {
                tracing::error!(%error, "No webhook client: webhooks will not be sent.");
                None
            }
        };
        Ok(Webhooks {
            secret,
            client,
            guard,
        })
    }

    /// Send the end of a job to `url`; what became of it, for the record.
    pub async fn deliver(
        &self,
        url: &Url,
        state: JobState,
        job: &crate::jobs::JobView,
        metadata: Value,
    ) -> String {
        if let Some(why) = self.guard.as_ref().and_then(|g| g.refuses_url(url)) {
            return format!("refused: {why}");
        }
        let Some(client) = &self.client else {
            return "not sent: no client".into();
        };
        let event = format!("crawl.{}", state.as_str());
        let body = json!({"event": event, "job": job, "metadata": metadata}).to_string();
        let mut last = String::new();
        for wait in ATTEMPTS {
            tokio::time::sleep(wait).await;
            let timestamp = crate::jobs::store::now();
            let sent = client
                .post(url.as_str())
                .header("content-type", "application/json")
                .header("x-trawl-event", &event)
                .header("x-trawl-timestamp", timestamp.to_string())
                .header(
                    "x-trawl-signature",
                    signature(&self.secret, timestamp, body.as_bytes()),
                )
                .body(body.clone())
                .send()
                .await;
            match sent {
                Ok(r) if r.status().is_success() => {
                    return format!("delivered: {}", r.status().as_u16());
                }
                Ok(r) => last = format!("failed: HTTP {}", r.status().as_u16()),
                Err(e) => last = format!("failed: {e}"),
            }
        }
        last
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_signature_is_hmac_sha256_of_timestamp_dot_body() {
        // The value from Python's hmac module:
        // hmac.new(b"Jefe", b"1.{}", "sha256").hexdigest()
        let sig = signature(b"Jefe", 1, b"{}");
        assert_eq!(
            sig,
            "sha256=dc7943cccf20f64327d263db5e2aca27c2b8175e8e6e7ea04f482091bf456b0f"
        );
        assert_ne!(sig, signature(b"Jefe", 2, b"{}"));
        assert_ne!(sig, signature(b"Jeff", 1, b"{}"));
    }
}

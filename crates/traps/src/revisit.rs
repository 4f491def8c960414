//! What changed on a revisited page, and when to visit it next.
//!
//! A revisit (`--recrawl`) is `unchanged` when the server answered 304 or
//! sent the same body, a `near_duplicate_change` when only the text's
//! SimHash moved, and within the near-duplicate distance (a date, a
//! counter, an advert), else `changed`. Each URL keeps its own revisit
//! interval: it starts at `initial`, doubles after a visit that found the
//! page unchanged (up to `max`), halves after one that found it changed
//! (down to `min`) and stays after a near-duplicate change, so pages that
//! never change are visited less and less often. `trawl crawl --state DIR
//! --recrawl --due` revisits only the URLs whose interval has run out.

use std::time::Duration;

use serde::Serialize;
use trawl_core::PreviousVisit;

/// What a revisit found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Change {
    Unchanged,
    NearDuplicateChange,
    Changed,
}

impl Change {
    pub fn as_str(self) -> &'static str {
        match self {
            Change::Unchanged => "unchanged",
            Change::NearDuplicateChange => "near_duplicate_change",
            Change::Changed => "changed",
        }
    }

    /// Classify a revisit from its status, body hash and SimHash against
    /// the previous visit; `distance` is the near-duplicate distance.
    pub fn classify(
        previous: &PreviousVisit,
        status: Option<u16>,
        content_hash: Option<&str>,
        simhash: Option<u64>,
        distance: u32,
    ) -> Change {
        if status == Some(304) {
            return Change::Unchanged;
        }
        if content_hash.is_some() && content_hash == previous.content_hash.as_deref() {
            return Change::Unchanged;
        }
        match (previous.simhash, simhash) {
            (Some(a), Some(b)) if (a ^ b).count_ones() <= distance => Change::NearDuplicateChange,
            _ => Change::Changed,
        }
    }
}

/// The adaptive revisit interval.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RevisitPolicy {
    /// The interval after a first visit.
    pub initial: Duration,
    pub min: Duration,
    pub max: Duration,
}

impl Default for RevisitPolicy {
    fn default() -> Self {
        RevisitPolicy {
            initial: Duration::from_secs(24 * 3600),
            min: Duration::from_secs(3600),
            max: Duration::from_secs(30 * 24 * 3600),
        }
    }
}

impl RevisitPolicy {
    /// The interval after a visit: `previous` is the last visit (none for
    /// a first one) and `change` what this one found.
    pub fn next_interval(
        &self,
        previous: Option<&PreviousVisit>,
        change: Option<Change>,
    ) -> Duration {
        let (min, max) = (self.min, self.max.max(self.min));
        let Some(previous) = previous.filter(|p| p.interval > 0) else {
            return self.initial.clamp(min, max);
        };
        let last = Duration::from_secs(previous.interval);
        match change {
            Some(Change::Unchanged) => last.saturating_mul(2),
            Some(Change::Changed) => last / 2,
            Some(Change::NearDuplicateChange) | None => last,
        }
        .clamp(min, max)
    }

    /// The record of this visit, to keep for the next one.
    pub fn visit(
        &self,
        previous: Option<&PreviousVisit>,
        change: Option<Change>,
        content_hash: Option<String>,
        simhash: Option<u64>,
        now: u64,
    ) -> PreviousVisit {
        let interval = self.next_interval(previous, change).as_secs().max(1);
        let (visits, changes) = previous.map_or((0, 0), |p| (p.visits, p.changes));
        let changed = matches!(change, Some(Change::Changed));
        // A 304 has no body: the hashes of the last visit still hold.
        let keep = |new: Option<String>, old: Option<&String>| new.or_else(|| old.cloned());
        PreviousVisit {
            content_hash: keep(content_hash, previous.and_then(|p| p.content_hash.as_ref())),
            simhash: simhash.or_else(|| previous.and_then(|p| p.simhash)),
            visited: now,
            interval,
            visits: visits.saturating_add(1),
            changes: changes.saturating_add(u32::from(changed)),
        }
    }
}

/// Whether a URL last visited as `previous` is due at `now` (Unix
/// seconds). A URL without a record is always due.
pub fn is_due(previous: Option<&PreviousVisit>, now: u64) -> bool {
    previous.is_none_or(|p| p.visited.saturating_add(p.interval) <= now)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn prev(hash: &str, sim: u64) -> PreviousVisit {
        PreviousVisit {
            content_hash: Some(hash.into()),
            simhash: Some(sim),
            visited: 1000,
            interval: 3600,
            visits: 1,
            changes: 0,
        }
    }

    #[test]
    fn classifies_revisits() {
        let p = prev("aa", 0b1111);
        assert_eq!(
            Change::classify(&p, Some(304), None, None, 3),
            Change::Unchanged
        );
        assert_eq!(
            Change::classify(&p, Some(200), Some("aa"), Some(0), 3),
            Change::Unchanged
        );
        assert_eq!(
            Change::classify(&p, Some(200), Some("bb"), Some(0b1100), 3),
            Change::NearDuplicateChange
        );
        assert_eq!(
            Change::classify(&p, Some(200), Some("bb"), Some(!0b1111), 3),
            Change::Changed
        );
        assert_eq!(
            Change::classify(&p, Some(200), Some("bb"), None, 3),
            Change::Changed
        );
    }

    #[test]
    fn intervals_adapt_within_bounds() {
        let policy = RevisitPolicy {
            initial: Duration::from_secs(100),
            min: Duration::from_secs(10),
            max: Duration::from_secs(1000),
        };
        let first = policy.visit(None, None, Some("a".into()), Some(1), 0);
        assert_eq!(first.interval, 100);
        let mut steady = first.clone();
        for _ in 0..10 {
            steady = policy.visit(Some(&steady), Some(Change::Unchanged), None, None, 0);
        }
        assert_eq!(steady.interval, 1000);
        assert_eq!(
            steady.content_hash.as_deref(),
            Some("a"),
            "a 304 keeps the hash"
        );
        let mut busy = first;
        for _ in 0..10 {
            busy = policy.visit(
                Some(&busy),
                Some(Change::Changed),
                Some("b".into()),
                Some(2),
                0,
            );
        }
        assert_eq!(busy.interval, 10);
        assert_eq!((busy.visits, busy.changes), (11, 10));
        assert!(is_due(Some(&busy), 10));
        assert!(!is_due(Some(&busy), 9));
        assert!(is_due(None, 0));
    }
}

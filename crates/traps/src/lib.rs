//! trawl-traps: what keeps a crawl from fetching the same thing forever.
//!
//! - [`index`]: the duplicate and near-duplicate index (content hash and
//!   SimHash within a few bits, by permuted tables), behind the
//!   [`ContentIndex`] trait that the memory, `--state` and Redis stores
//!   implement.
//! - [`pattern`]: a URL generalised to its pattern (numbers, dates, ids and
//!   query values replaced, query keys sorted, repeated path segments
//!   folded).
//! - [`detector`]: per-pattern counts of pages, near-duplicates and new
//!   links; a pattern that keeps yielding near-duplicates whose new links
//!   are mostly its own is a trap, and its links are no longer followed.
//! - [`revisit`]: what changed on a revisited page, and when to come back.

pub mod detector;
pub mod index;
pub mod pattern;
pub mod revisit;

pub use detector::{PageOutcome, TrapConfig, TrapDetector};
pub use index::{ContentIndex, Digest, IndexError, MemoryIndex, SimIndex, Verdict};
pub use pattern::{UrlPattern, pattern_of, pattern_of_str};
pub use revisit::{Change, RevisitPolicy, is_due};

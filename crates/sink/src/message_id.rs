//! The message id of an item, shared by the message-queue sinks (NATS
//! JetStream's `Nats-Msg-Id`, AMQP's `message_id` property): the XXH3-128
//! of the item's JSON without the fields that change when the same page is
//! fetched again (`timestamp`, `fetch_ms`). A retried batch, and a page
//! crawled again after a crash and resume, carry the same ids, so the
//! broker (JetStream) or a consumer (AMQP) can store each item once.

use trawl_core::Item;

/// Fields of a page record that differ between two fetches of the same
/// page, left out of the message id.
pub const VOLATILE: [&str; 2] = ["timestamp", "fetch_ms"];

/// The message id of an item: 32 lowercase hex digits, the XXH3-128 of its
/// JSON without the [`VOLATILE`] fields.
pub fn message_id(item: &Item) -> String {
    let mut stable = item.0.clone();
    for field in VOLATILE {
        stable.remove(field);
    }
    let json = serde_json::to_vec(&stable).unwrap_or_default();
    format!("{:032x}", xxhash_rust::xxh3::xxh3_128(&json))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_page_fetched_again_has_the_same_message_id() {
        let item = |ts: &str, ms: u64, title: &str| {
            let mut m = serde_json::Map::new();
            m.insert("url".into(), "http://a/".into());
            m.insert("timestamp".into(), ts.into());
            m.insert("fetch_ms".into(), ms.into());
            m.insert("title".into(), title.into());
            Item(m)
        };
        let first = message_id(&item("2026-12-05T10:00:00Z", 3, "A"));
        assert_eq!(first.len(), 32);
        assert_eq!(first, message_id(&item("2026-12-05T11:00:00Z", 9, "A")));
        assert_ne!(first, message_id(&item("2026-12-05T10:00:00Z", 3, "B")));
    }
}

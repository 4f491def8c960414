//! In-memory sink: keeps items in a shared vector.
//!
//! For tests and for library users who want items back in-process (the
//! Scraper API returns them this way).

use std::sync::Arc;

use parking_lot::Mutex;
use trawl_core::{Item, Sink, SinkError};

/// Collects every item; clone the handle from [`MemorySink::items`] to read them.
#[derive(Default, Clone)]
pub struct MemorySink {
    items: Arc<Mutex<Vec<Item>>>,
}

impl MemorySink {
    pub fn new() -> Self {
        Self::default()
    }

    /// The shared vector the sink appends to.
    pub fn items(&self) -> Arc<Mutex<Vec<Item>>> {
        self.items.clone()
    }
}

#[async_trait::async_trait]
impl Sink for MemorySink {
    fn name(&self) -> String {
        "memory".into()
    }

    async fn write_batch(&mut self, items: &[Item]) -> Result<(), SinkError> {
        self.items.lock().extend_from_slice(items);
        Ok(())
    }

    async fn flush(&mut self) -> Result<(), SinkError> {
        Ok(())
    }
}

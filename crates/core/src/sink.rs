//! The `Sink` trait: where items go (feed exports, in Scrapy's words).

use crate::exchange::Exchange;
use crate::item::Item;

/// Errors a sink reports; `retryable` ones are retried by the engine.
#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    /// The message includes the I/O error (not chained as a source, so
    /// error reports don't print it twice).
    #[error("I/O error writing {target}: {error}")]
    Io {
        target: String,
        error: std::io::Error,
    },
    #[error("encoding item: {0}")]
    Encode(String),
    /// Whoever read the output went away (a broken pipe: `trawl … | head`).
    /// Not retried: the crawl stops, quietly.
    #[error("the reader of {target} went away")]
    ReaderGone { target: String },
    #[error("{0}")]
    Other(String),
}

impl SinkError {
    /// An I/O error writing `target`; a broken pipe is [`SinkError::ReaderGone`].
    pub fn io(target: impl Into<String>, error: std::io::Error) -> SinkError {
        let target = target.into();
        if error.kind() == std::io::ErrorKind::BrokenPipe {
            SinkError::ReaderGone { target }
        } else {
            SinkError::Io { target, error }
        }
    }
}

/// A destination for items. The engine runs each sink on its own task and
/// hands it batches; a sink must have written (not just buffered) a batch's
/// items when `flush` returns.
#[async_trait::async_trait]
pub trait Sink: Send {
    /// A short name for stats and messages ("jsonl:items.jsonl").
    fn name(&self) -> String;
    /// Write a batch of items (may buffer until `flush`).
    async fn write_batch(&mut self, items: &[Item]) -> Result<(), SinkError>;
    /// How far the output has been written (bytes of a file), when the sink
    /// can be cut back to it: persistent crawls store it with each
    /// acknowledgement and [resume](Sink) from it after a crash.
    fn position(&self) -> Option<u64> {
        None
    }

    /// Bytes this sink has written so far (for its stats).
    fn bytes_written(&self) -> u64 {
        0
    }

    /// Whether the engine should hand this sink the raw HTTP exchanges
    /// ([`write_exchanges`](Self::write_exchanges)) of every page.
    fn wants_exchanges(&self) -> bool {
        false
    }

    /// Write the raw exchanges of a batch; called before `write_batch` with
    /// the same batch's items, for sinks that [want them](Self::wants_exchanges).
    async fn write_exchanges(&mut self, exchanges: &[Exchange]) -> Result<(), SinkError> {
        let _ = exchanges;
        Ok(())
    }

    /// Make everything written so far durable in the destination.
    async fn flush(&mut self) -> Result<(), SinkError>;
    /// Flush and release resources.
    async fn close(&mut self) -> Result<(), SinkError> {
        self.flush().await
    }
}

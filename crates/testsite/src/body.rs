//! Response bodies of the test site: a full buffer, an endless lazily
//! generated stream (`/huge`) and a body that stops after a few bytes
//! (`/stall`). Each body carries the request's in-flight guard, so per-host
//! concurrency drops when the body is finished or dropped.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};

use crate::stats::InFlight;

/// A future that resolves when the server shuts down.
pub(crate) type ShutdownFuture = Pin<Box<dyn Future<Output = ()> + Send>>;

enum Kind {
    /// One buffer (`None` once sent).
    Full(Option<Bytes>),
    /// `remaining` bytes made of repeated `chunk`s, without Content-Length.
    Stream { remaining: u64, chunk: Bytes },
    /// Sends `first`, then nothing until shutdown (then an error).
    Stall {
        first: Option<Bytes>,
        shutdown: ShutdownFuture,
    },
}

/// The body type of every response.
pub(crate) struct SiteBody {
    kind: Kind,
    guard: Option<InFlight>,
}

impl std::fmt::Debug for SiteBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match &self.kind {
            Kind::Full(b) => format!("Full({:?} bytes)", b.as_ref().map(Bytes::len)),
            Kind::Stream { remaining, .. } => format!("Stream({remaining} left)"),
            Kind::Stall { .. } => "Stall".to_owned(),
        };
        f.debug_struct("SiteBody").field("kind", &kind).finish()
    }
}

impl SiteBody {
    pub(crate) fn full(bytes: impl Into<Bytes>) -> SiteBody {
        SiteBody {
            kind: Kind::Full(Some(bytes.into())),
            guard: None,
        }
    }

    pub(crate) fn stream(total: u64, chunk: Bytes) -> SiteBody {
        SiteBody {
            kind: Kind::Stream {
                remaining: if chunk.is_empty() { 0 } else { total },
                chunk,
            },
            guard: None,
        }
    }

    pub(crate) fn stall(first: Bytes, shutdown: ShutdownFuture) -> SiteBody {
        SiteBody {
            kind: Kind::Stall {
                first: Some(first),
                shutdown,
            },
            guard: None,
        }
    }

    pub(crate) fn set_guard(&mut self, guard: InFlight) {
        self.guard = Some(guard);
    }
}

impl Body for SiteBody {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        let this = self.get_mut();
        let out = match &mut this.kind {
            Kind::Full(b) => b.take().map(|b| Ok(Frame::data(b))),
            Kind::Stream { remaining, chunk } => {
                if *remaining == 0 {
                    None
                } else {
                    let n = (*remaining).min(chunk.len() as u64);
                    *remaining -= n;
                    Some(Ok(Frame::data(chunk.slice(..n as usize))))
                }
            }
            Kind::Stall { first, shutdown } => match first.take() {
                Some(b) => Some(Ok(Frame::data(b))),
                None => match shutdown.as_mut().poll(cx) {
                    Poll::Pending => return Poll::Pending,
                    Poll::Ready(()) => Some(Err(io::Error::other("test site shutting down"))),
                },
            },
        };
        if out.is_none() {
            this.guard.take();
        }
        Poll::Ready(out)
    }

    fn is_end_stream(&self) -> bool {
        match &self.kind {
            Kind::Full(b) => b.is_none(),
            Kind::Stream { remaining, .. } => *remaining == 0,
            Kind::Stall { .. } => false,
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.kind {
            Kind::Full(Some(b)) => SizeHint::with_exact(b.len() as u64),
            Kind::Full(None) => SizeHint::with_exact(0),
            Kind::Stream { .. } | Kind::Stall { .. } => SizeHint::default(),
        }
    }
}

//! The HTTP side: `/metrics` for Prometheus, `/dashboard` (one page, no
//! external assets), `/dashboard/events` (a sample per second as
//! server-sent events) and `/dashboard/sample` (one sample as JSON).

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::header;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use futures_util::Stream;

use crate::board::{Board, Sample};
use crate::exposition::{self, ExtraGauge};

/// The dashboard page.
const DASHBOARD: &str = include_str!("dashboard.html");

/// Extra series for `/metrics`, computed at each scrape.
pub type ExtraFn = Arc<dyn Fn() -> Vec<ExtraGauge> + Send + Sync>;

#[derive(Clone)]
struct Shared {
    board: Arc<Board>,
    extra: Option<ExtraFn>,
}

/// Routes serving `board`, to merge into another router or serve alone
/// ([`serve`]): [`data_routes`] and the page.
pub fn routes(board: Arc<Board>, extra: Option<ExtraFn>) -> Router {
    data_routes(board, extra).route("/dashboard", get(dashboard))
}

/// The routes that show figures (`/metrics`, the dashboard's events and
/// sample), for a server that puts them behind its own authentication;
/// the page itself holds no data.
pub fn data_routes(board: Arc<Board>, extra: Option<ExtraFn>) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .route("/dashboard/events", get(events))
        .route("/dashboard/sample", get(sample))
        .with_state(Shared { board, extra })
}

async fn metrics(State(shared): State<Shared>) -> Response {
    let extra = shared.extra.as_ref().map(|f| f()).unwrap_or_default();
    let board = shared.board.clone();
    // Snapshots read locks and walk tables: off the I/O threads.
    let text = tokio::task::spawn_blocking(move || exposition::render(&board, extra))
        .await
        .unwrap_or_default();
    ([(header::CONTENT_TYPE, exposition::CONTENT_TYPE)], text).into_response()
}

/// The dashboard page (static: its figures come from the events).
pub async fn dashboard() -> Html<&'static str> {
    Html(DASHBOARD)
}

async fn sample(State(shared): State<Shared>) -> Response {
    axum::Json(shared.board.sample()).into_response()
}

/// The samples of the last two minutes (event `history`), then each new
/// one as it is taken (event `sample`; a viewer too slow to keep up skips
/// samples rather than lag).
async fn events(
    State(shared): State<Shared>,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let (history, live) = shared.board.subscribe();
    fn event(kind: &'static str, sample: &Sample) -> Result<Event, Infallible> {
        let data = serde_json::to_string(sample).unwrap_or_else(|_| "{}".into());
        Ok(Event::default().event(kind).data(data))
    }
    let past = futures_util::stream::iter(history.into_iter().map(|s| event("history", &s)));
    let coming = futures_util::stream::unfold(live, |mut live| async move {
        loop {
            match live.recv().await {
                Ok(sample) => return Some((event("sample", &sample), live)),
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                Err(tokio::sync::broadcast::error::RecvError::Closed) => return None,
            }
        }
    });
    Sse::new(futures_util::StreamExt::chain(past, coming)).keep_alive(KeepAlive::default())
}

/// A running metrics server (`--metrics-addr`).
pub struct MetricsServer {
    pub addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
    sampler: tokio::task::JoinHandle<()>,
}

impl MetricsServer {
    pub fn stop(self) {
        self.task.abort();
        self.sampler.abort();
    }
}

#[derive(Debug, thiserror::Error)]
#[error("cannot listen on {addr} for metrics: {source}")]
pub struct BindError {
    pub addr: String,
    #[source]
    pub source: std::io::Error,
}

/// Serve `board` on `addr` until the returned server is stopped.
pub async fn serve(addr: &str, board: Arc<Board>) -> Result<MetricsServer, BindError> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| BindError {
            addr: addr.to_string(),
            source,
        })?;
    let local = listener.local_addr().map_err(|source| BindError {
        addr: addr.to_string(),
        source,
    })?;
    let sampler = board.spawn_sampler(Duration::from_secs(1));
    let app = routes(board, None);
    let task = tokio::spawn(async move {
        if let Err(error) = axum::serve(listener, app).await {
            tracing::error!(%error, "The metrics server stopped.");
        }
    });
    tracing::info!(addr = %local, "Metrics on http://{local}/metrics, dashboard on http://{local}/dashboard");
    Ok(MetricsServer {
        addr: local,
        task,
        sampler,
    })
}

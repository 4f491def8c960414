//! See a crawl: Prometheus metrics and a live dashboard.
//!
//! - [`board`]: what is shown — one crawl's stats, a server's jobs (live
//!   and finished, so counters never go backwards), a distributed crawl's
//!   workers.
//! - [`exposition`]: the Prometheus (OpenMetrics) text of a board.
//! - [`server`]: `/metrics`, `/dashboard` and its server-sent events, on
//!   their own address (`--metrics-addr`) or merged into the API server.

pub mod board;
pub mod exposition;
pub mod server;

pub use board::{Board, Identity, Sample, WorkerLive, WorkerRow};
pub use exposition::{ExtraGauge, render};
pub use server::{MetricsServer, routes, serve};

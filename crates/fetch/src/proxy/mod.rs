//! Proxy rotation and ban handling: the bookkeeping, no networking.
//!
//! The downloader builds one HTTP client per [`ProxySpec`] and, around each
//! exchange:
//!
//! 1. asks [`ProxyPool::pick`] (or [`SessionPool::acquire`] for sticky
//!    identities) which proxy to use for the host; a [`Pick::Wait`] says when
//!    one will be usable again, [`Pick::NoneLeft`] that all are retired;
//! 2. holds [`ProxyPool::start`]'s guard while the exchange runs;
//! 3. classifies the outcome with [`BanRules::classify`] and hands the
//!    [`Signal`] to [`ProxyPool::report`] (and [`SessionPool::report`]).
//!
//! Bans cool a proxy down for the banning host only, proxy failures for all
//! hosts, both with exponential back-off ([`HealthConfig`]); a proxy that
//! keeps failing is retired. Every method takes `&self` and the current
//! instant, so the pool is shared across tasks and tested without clocks.
//!
//! # Layout
//! - [`spec`]: `ProxySpec` parsing and masking, proxy list files.
//! - [`ban`]: `BanRules`, `Signal`, `TransportFailure`.
//! - [`health`]: `HealthConfig`, cooldowns, per-proxy and per-host counters.
//! - [`pool`]: `ProxyPool`, `Strategy`, `Pick`, snapshots for stats.
//! - [`routes`]: named pools and host rules (`RouteTable`): which pool a
//!   request goes through.
//! - [`session`]: `SessionPool`, sticky proxy + user agent + cookie jar ids.

pub mod ban;
pub mod health;
pub mod pool;
pub mod routes;
pub mod session;
pub mod spec;

pub use ban::{BanRules, BanRulesError, Signal, TransportFailure};
pub use health::HealthConfig;
pub use pool::{
    HostStatus, InFlightGuard, Pick, ProxyId, ProxyPool, ProxyState, ProxyStatus, Strategy,
    UnknownStrategy,
};
pub use routes::{
    DEFAULT, DIRECT, GroupIndex, HostPattern, HostPatternError, HostRule, NamedPool, RouteError,
    RouteTable,
};
pub use session::{RetireReason, Session, SessionId, SessionPick, SessionPool, SessionStats};
pub use spec::{ProxyError, ProxyListError, ProxyScheme, ProxySpec, parse_list};

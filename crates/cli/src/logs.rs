//! Logs on stderr: plain text for people (coloured on a terminal), or one
//! JSON object per line for machines (`--log-format json`), each carrying
//! the crawl and worker ids so lines from many workers can be merged.

use std::sync::RwLock;
use std::time::SystemTime;

use serde_json::{Map, Value};
use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

/// This process's worker id when none is set (`--worker-id`): one for the
/// whole process, so its log lines and metrics name it alike.
pub fn process_worker_id() -> String {
    static ID: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    ID.get_or_init(trawl_frontier::redis::default_worker_id)
        .clone()
}

/// The ids on every JSON line: `(crawl, worker)`.
static IDS: RwLock<Option<(String, String)>> = RwLock::new(None);

/// Name the crawl and the worker on every following JSON line.
pub fn set_ids(crawl: &str, worker: &str) {
    if let Ok(mut ids) = IDS.write() {
        *ids = Some((crawl.to_string(), worker.to_string()));
    }
}

/// Install the subscriber: `filter` unless RUST_LOG says otherwise.
pub fn init(filter: &str, format: LogFormat) {
    let filter =
        tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| filter.into());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        // Colour only for a terminal: logs sent to a file or a pipe stay
        // plain text.
        LogFormat::Text => builder
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .init(),
        LogFormat::Json => builder.with_ansi(false).event_format(JsonLines).init(),
    }
}

/// One JSON object per event: `timestamp`, `level`, `target`, `crawl`,
/// `worker`, `message`, the event's other fields, and `spans` (the names
/// of the spans it happened in) when there are any.
struct JsonLines;

impl<S, N> FormatEvent<S, N> for JsonLines
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> std::fmt::Result {
        let meta = event.metadata();
        let mut line = Map::new();
        line.insert(
            "timestamp".into(),
            humantime::format_rfc3339_millis(SystemTime::now())
                .to_string()
                .into(),
        );
        line.insert("level".into(), meta.level().as_str().into());
        line.insert("target".into(), meta.target().into());
        let (crawl, worker) = IDS
            .read()
            .ok()
            .and_then(|ids| ids.clone())
            .unwrap_or_default();
        line.insert("crawl".into(), crawl.into());
        line.insert("worker".into(), worker.into());
        let mut fields = Fields(Map::new());
        event.record(&mut fields);
        for (key, value) in fields.0 {
            // The fixed keys stay: a field of the same name is prefixed.
            let key = if line.contains_key(&key) {
                format!("field.{key}")
            } else {
                key
            };
            line.insert(key, value);
        }
        if let Some(scope) = ctx.event_scope() {
            let spans: Vec<Value> = scope.from_root().map(|s| s.name().into()).collect();
            line.insert("spans".into(), spans.into());
        }
        let text = serde_json::to_string(&line).map_err(|_| std::fmt::Error)?;
        writeln!(writer, "{text}")
    }
}

struct Fields(Map<String, Value>);

impl Visit for Fields {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0
            .insert(field.name().into(), format!("{value:?}").into());
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().into(), value.into());
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.0.insert(field.name().into(), value.into());
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.0.insert(field.name().into(), value.into());
    }
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.0.insert(field.name().into(), value.into());
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.0.insert(field.name().into(), value.into());
    }
    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.0.insert(field.name().into(), value.to_string().into());
    }
}

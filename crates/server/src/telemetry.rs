//! Logging: one subscriber for the process, JSON or pretty, with the
//! request span's fields (request id, route, user id) on every line.

use std::fmt::Write as _;

use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::{Context, Layer, SubscriberExt as _};
use tracing_subscriber::util::SubscriberInitExt as _;

use crate::config::LogFormat;

/// Installs the global subscriber writing to `sink`. Fails if one is
/// installed already (tests call it once per process).
pub fn init<W>(filter: &str, format: LogFormat, sink: W) -> Result<(), String>
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    let filter = EnvFilter::try_new(filter).map_err(|e| e.to_string())?;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(sink);
    match format {
        LogFormat::Json => builder
            .json()
            .with_current_span(true)
            .with_span_list(false)
            .finish()
            .with(ConnectionErrorsAsWarnings)
            .try_init(),
        LogFormat::Pretty => builder
            .with_target(false)
            .finish()
            .with(ConnectionErrorsAsWarnings)
            .try_init(),
    }
    .map_err(|e| e.to_string())
}

/// What actix-http logs at ERROR about a connection that the client or the
/// network caused, by target and message prefix. Anything else it logs at
/// ERROR (a service that failed to start, a response body that failed, an
/// internal error) stays an error.
const CLIENT_CAUSED: &[(&str, &str)] = &[
    (
        "actix_http::h1::dispatcher",
        "stream error: request parse error",
    ),
    ("actix_http::h1::dispatcher", "stream error: I/O error"),
    (
        "actix_http::h1::dispatcher",
        "stream error: request did not complete within the specified timeout",
    ),
    (
        "actix_http::h1::dispatcher",
        "stream error: connection shutdown timeout",
    ),
    (
        "actix_http::h1::dispatcher",
        "stream error: handler dropped payload before reading EOF",
    ),
    ("actix_http::h1::dispatcher", "write zero"),
    (
        "actix_http::h1::decoder",
        "MAX_BUFFER_SIZE unprocessed data reached",
    ),
];

/// actix-http logs what goes wrong on a connection at ERROR, including a
/// malformed request line or header, a body cut short, a client too slow
/// to send its head (see [`CLIENT_CAUSED`]). Those are the client's
/// mistakes or the network's, not the server's: this layer drops each such
/// event and logs its message again at WARN (target `taskflow::http`), so
/// ERROR stays for what an operator must look at. The message is actix's
/// description of the error, never the bytes the client sent.
///
/// The warning is emitted while the original event is being dispatched,
/// through the global subscriber; under a scoped subscriber
/// (`tracing::subscriber::set_default`) tracing drops such nested events.
/// The server only installs a global one.
#[derive(Debug, Clone, Copy)]
pub struct ConnectionErrorsAsWarnings;

impl<S: Subscriber> Layer<S> for ConnectionErrorsAsWarnings {
    fn event_enabled(&self, event: &Event<'_>, _: Context<'_, S>) -> bool {
        let meta = event.metadata();
        if *meta.level() != Level::ERROR || !meta.target().starts_with("actix_http::") {
            return true;
        }
        let mut message = Message::default();
        event.record(&mut message);
        let client_caused = CLIENT_CAUSED
            .iter()
            .any(|(target, prefix)| meta.target() == *target && message.0.starts_with(prefix));
        if !client_caused {
            return true;
        }
        tracing::warn!(target: "taskflow::http", "HTTP connection error: {}", message.0);
        false
    }
}

/// The `message` field of an event.
#[derive(Debug, Default)]
struct Message(String);

impl Visit for Message {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.0.push_str(value);
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            let _ = write!(self.0, "{value:?}");
        }
    }
}

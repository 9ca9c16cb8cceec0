//! Live delivery of project events, on one instance.
//!
//! Every instance runs one [`Hub`]. It learns that a project's log has
//! grown from [`Signal`]s: its own commits (with the events), announcements
//! from other instances (a project and a seq), and its own poll of the
//! log heads of the projects it follows, which heals announcements that
//! were lost or never made (an instance killed between commit and
//! announcement). It dispatches each project's events to the streams
//! subscribed to it strictly in seq order, reading from the log whatever
//! it did not get whole: correctness lives in the log, announcements only
//! make it fast.
//!
//! A [`Connection`] is one client stream (a WebSocket, an SSE response):
//! it subscribes to projects, replays each from the log after the `since`
//! it was given, and then follows it live, without losing or repeating an
//! event at the seam: it registers for live events first, reads the log
//! head, replays up to there, and delivers what arrived meanwhile after
//! it. The WebSocket and SSE endpoints differ only in framing.

mod connection;
mod hub;

pub use connection::{CloseReason, Connection, Next, SubscribeError, UnsubscribeReason};
pub use hub::{ConnectError, Hub, HubSettings, Inbox, Render, Signal};

//! Fan-out's port: how a committed change is announced to every
//! instance's live subscribers.

use crate::auth::SessionId;
use crate::event::Event;
use crate::user::UserId;

/// Announces what just happened to every instance (this one included), so
/// their live subscribers hear of it at once.
///
/// Announcing is at most once and never fails or delays the change it
/// follows: the event log is what subscribers rely on, and a subscriber
/// that missed an announcement catches up from the log by `seq`. So the
/// methods return nothing; an implementation that cannot reach its peers
/// drops the announcement (and says so in its log).
pub trait EventBus: Clone + Send + Sync + 'static {
    /// Events the store has just committed, in each project's seq order.
    /// Called after every commit that appended events.
    fn committed(&self, events: Vec<Event>);
    /// `user`'s session `session` ended (logout), or all their sessions
    /// (`None`: the account was disabled): their live streams close.
    fn sessions_ended(&self, user: UserId, session: Option<SessionId>);
}

/// A bus that announces nothing: for one-shot tools (the CLI, migrations)
/// and tests that have no subscribers.
#[derive(Debug, Clone, Copy, Default)]
pub struct Silent;

impl EventBus for Silent {
    fn committed(&self, _: Vec<Event>) {}
    fn sessions_ended(&self, _: UserId, _: Option<SessionId>) {}
}

//! The event bus the server gives its use cases: announcements go to this
//! instance's hub at once and, with Redis, to every other instance.

use domain::{Event, EventBus, SessionId, UserId};
use live::{Inbox, Signal};

/// This instance's announcements: to its own hub (`local`) and to the
/// other instances (`remote`, Redis pub/sub). Either may be absent: a
/// one-shot tool announces nothing.
#[derive(Debug, Clone, Default)]
pub struct Bus {
    local: Option<Inbox>,
}

impl Bus {
    /// Announces to this instance's hub only (the in-memory server: there
    /// is no other instance).
    pub fn local(inbox: Inbox) -> Self {
        Self { local: Some(inbox) }
    }
}

impl EventBus for Bus {
    fn committed(&self, events: Vec<Event>) {
        if events.is_empty() {
            return;
        }
        if let Some(local) = &self.local {
            local.send(Signal::Committed(events));
        }
    }

    fn sessions_ended(&self, user: UserId, session: Option<SessionId>) {
        if let Some(local) = &self.local {
            local.send(Signal::SessionsEnded { user, session });
        }
    }
}

//! The event bus the server gives its use cases: announcements go to this
//! instance's hub at once and, with Redis, to every other instance.

use adapters_redis::{Announcement, Announcer};
use domain::{Event, EventBus, ProjectId, SessionId, UserId};
use live::{Inbox, Signal};

/// This instance's announcements: to its own hub (`local`, with the
/// events) and to the other instances (`remote`, Redis pub/sub: each
/// project's new head). Either may be absent: a one-shot tool announces
/// nothing; the in-memory server has no other instance.
#[derive(Debug, Clone, Default)]
pub struct Bus {
    local: Option<Inbox>,
    remote: Option<Announcer>,
}

impl Bus {
    pub fn new(local: Inbox, remote: Option<Announcer>) -> Self {
        Self {
            local: Some(local),
            remote,
        }
    }
}

impl EventBus for Bus {
    fn committed(&self, events: Vec<Event>) {
        if events.is_empty() {
            return;
        }
        if let Some(remote) = &self.remote {
            remote.announce(heads(&events));
        }
        if let Some(local) = &self.local {
            local.send(Signal::Committed(events));
        }
    }

    fn sessions_ended(&self, user: UserId, session: Option<SessionId>) {
        if let Some(remote) = &self.remote {
            remote.announce(vec![Announcement::SessionsEnded { user, session }]);
        }
        if let Some(local) = &self.local {
            local.send(Signal::SessionsEnded { user, session });
        }
    }
}

/// Each project's last seq among `events`: what other instances need to
/// know (they read the events from the log).
fn heads(events: &[Event]) -> Vec<Announcement> {
    let mut heads: Vec<(ProjectId, i64)> = Vec::new();
    for event in events {
        match heads.iter_mut().find(|(p, _)| *p == event.project_id) {
            Some((_, seq)) => *seq = (*seq).max(event.seq),
            None => heads.push((event.project_id, event.seq)),
        }
    }
    heads
        .into_iter()
        .map(|(project, seq)| Announcement::Head { project, seq })
        .collect()
}

/// What another instance announced, for this instance's hub.
pub fn signal(announcement: Announcement) -> Signal {
    match announcement {
        Announcement::Head { project, seq } => Signal::Head { project, seq },
        Announcement::SessionsEnded { user, session } => Signal::SessionsEnded { user, session },
    }
}

//! The event log's use cases: delta sync (a project's events after a
//! seq) for any member of the project.

use crate::app::TaskFlow;
use crate::auth::Principal;
use crate::error::{DomainError, ErrorKind, PortError, ValidationErrors};
use crate::event::{Event, EventQuery};
use crate::ports::{Clock, Events, Ports, Store};
use crate::project::ProjectId;
use crate::project::policy::{Action, Denied};
use crate::project::use_cases::{check_limit, read_authorized};

#[derive(Debug, thiserror::Error)]
pub enum EventsError {
    #[error("No such project.")]
    NotFound,
    #[error("invalid request: {0}")]
    Invalid(ValidationErrors),
    /// Events after `since` were pruned (older than the retention): the
    /// client reloads the project's state and follows from `head`.
    #[error(
        "Events after {since} are no longer kept: reload the project's state, then follow its events from {head}."
    )]
    ResyncRequired { since: i64, head: i64 },
    #[error(transparent)]
    Port(#[from] PortError),
}

impl DomainError for EventsError {
    fn kind(&self) -> ErrorKind<'_> {
        match self {
            Self::NotFound => ErrorKind::NotFound,
            Self::Invalid(errors) => ErrorKind::Invalid(errors),
            Self::ResyncRequired { .. } => ErrorKind::ResyncRequired,
            Self::Port(e) => ErrorKind::Port(e),
        }
    }
}

impl From<Denied> for EventsError {
    fn from(_: Denied) -> Self {
        // Every member may read the log: a refusal is a non-member.
        Self::NotFound
    }
}

/// A page of a project's events, and the log's head when it was read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventPage {
    pub items: Vec<Event>,
    /// The seq to continue after, when there are more.
    pub next: Option<i64>,
    /// The last seq of the log (at least every item's).
    pub head: i64,
}

impl<P: Ports> TaskFlow<P> {
    /// The project's events after `query.after`, in order: what a client
    /// that saw everything up to `query.after` missed.
    pub async fn project_events(
        &self,
        principal: Principal,
        id: ProjectId,
        query: EventQuery,
    ) -> Result<EventPage, EventsError> {
        check_limit(query.limit).map_err(EventsError::Invalid)?;
        if query.after < 0 {
            return Err(EventsError::Invalid(ValidationErrors::single(
                "since",
                "must be 0 or more",
            )));
        }
        // One snapshot where the store has them; else the head first, and
        // no event past it: either way `head` is where a client continues
        // from, and nothing committed after it is skipped (it comes next
        // time). A pruning in between shows as a gap.
        let mut snapshot = self.store.snapshot().await?;
        read_authorized(&mut snapshot, id, principal.user_id, Action::ViewProject).await??;
        let bounds = snapshot
            .log_bounds(id)
            .await?
            .ok_or(EventsError::NotFound)?;
        let mut items = snapshot.events(id, &query).await?;
        drop(snapshot);
        items.retain(|event| event.seq <= bounds.head);
        if query.after > bounds.head {
            return Err(EventsError::Invalid(ValidationErrors::single(
                "since",
                format!("is after the log's head ({})", bounds.head),
            )));
        }
        // Retention prunes by time, and instances' clocks may differ a
        // little, so besides the log's start, any gap among the events read
        // is one retention made: either way, what follows `since` is no
        // longer all there.
        let contiguous = items
            .iter()
            .zip(query.after + 1..)
            .all(|(event, expected)| event.seq == expected);
        if !bounds.covers(query.after) || !contiguous {
            return Err(EventsError::ResyncRequired {
                since: query.after,
                head: bounds.head,
            });
        }
        let limit = query.limit as usize;
        let next = if items.len() > limit {
            items.truncate(limit);
            items.last().map(|e| e.seq)
        } else {
            None
        };
        Ok(EventPage {
            items,
            next,
            head: bounds.head,
        })
    }

    /// The last seq of the project's log, for any member: where a live
    /// subscription starts.
    pub async fn log_head(&self, principal: Principal, id: ProjectId) -> Result<i64, EventsError> {
        let mut conn = self.store.connection().await?;
        read_authorized(&mut conn, id, principal.user_id, Action::ViewProject).await??;
        let bounds = conn.log_bounds(id).await?.ok_or(EventsError::NotFound)?;
        Ok(bounds.head)
    }

    /// Removes the events older than the retention, of every project;
    /// answers how many. Run periodically; safe from several instances.
    pub async fn prune_events(&self) -> Result<u64, PortError> {
        let before = self.clock.now() - self.settings.event_retention;
        self.store.connection().await?.prune_events(before).await
    }
}

//! [`TaskFlow`]: the use cases over one set of adapters. It is generic over
//! [`Ports`]; only the composition root names concrete adapters. The use
//! cases live with their context (`auth`, `project`, `task`, `audit`,
//! `admin`), each with its errors; this module holds what they share.

use time::Duration;

use crate::error::PortError;
use crate::ports::{Ports, SessionStore, Store};
use crate::user::Email;

#[derive(Debug, Clone)]
pub struct Settings {
    /// How long a session lives without being refreshed.
    pub refresh_token_ttl: Duration,
    /// Accounts with these addresses are system admins: registered as one,
    /// or promoted when the server starts (`ADMIN_EMAILS`).
    pub admin_emails: Vec<Email>,
    /// How long a project's events are kept (`EVENT_RETENTION`).
    pub event_retention: Duration,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            refresh_token_ttl: Duration::days(30),
            admin_emails: Vec::new(),
            event_retention: Duration::days(30),
        }
    }
}

/// TaskFlow's use cases over one set of adapters.
pub struct TaskFlow<P: Ports> {
    pub(crate) store: P::Store,
    pub(crate) sessions: P::Sessions,
    pub(crate) idempotency: P::Idempotency,
    pub(crate) hasher: P::Hasher,
    pub(crate) tokens: P::Tokens,
    pub(crate) clock: P::Clock,
    pub(crate) bus: P::Bus,
    pub(crate) settings: Settings,
}

impl<P: Ports> Clone for TaskFlow<P> {
    fn clone(&self) -> Self {
        Self {
            store: self.store.clone(),
            sessions: self.sessions.clone(),
            idempotency: self.idempotency.clone(),
            hasher: self.hasher.clone(),
            tokens: self.tokens.clone(),
            clock: self.clock.clone(),
            bus: self.bus.clone(),
            settings: self.settings.clone(),
        }
    }
}

impl<P: Ports> std::fmt::Debug for TaskFlow<P> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TaskFlow")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

/// The state of each dependency, for readiness probes.
#[derive(Debug)]
pub struct Health {
    pub checks: Vec<(&'static str, Result<(), PortError>)>,
}

impl Health {
    pub fn is_ready(&self) -> bool {
        self.checks.iter().all(|(_, r)| r.is_ok())
    }
}

impl<P: Ports> TaskFlow<P> {
    #[expect(
        clippy::too_many_arguments,
        reason = "one argument per port, in the order `Ports` names them"
    )]
    pub fn new(
        store: P::Store,
        sessions: P::Sessions,
        idempotency: P::Idempotency,
        hasher: P::Hasher,
        tokens: P::Tokens,
        clock: P::Clock,
        bus: P::Bus,
        settings: Settings,
    ) -> Self {
        Self {
            store,
            sessions,
            idempotency,
            hasher,
            tokens,
            clock,
            bus,
            settings,
        }
    }

    pub fn store(&self) -> &P::Store {
        &self.store
    }

    pub fn sessions(&self) -> &P::Sessions {
        &self.sessions
    }

    /// Where the use cases announce what they committed.
    pub fn bus(&self) -> &P::Bus {
        &self.bus
    }

    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// Where idempotency keys live (the HTTP layer's creates use it).
    pub fn idempotency(&self) -> &P::Idempotency {
        &self.idempotency
    }

    /// Asks every store whether it answers.
    pub async fn health(&self) -> Health {
        let store = self.store.ping().await;
        let sessions = self.sessions.ping().await;
        Health {
            checks: vec![("database", store), ("sessionStore", sessions)],
        }
    }
}

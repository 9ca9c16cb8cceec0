use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use domain::{
    Clock, PortError, Role, Session, SessionId, SessionStore, SystemClock, TokenHash, UserId,
};
use time::OffsetDateTime;

#[derive(Debug, Default)]
struct Sessions {
    by_id: HashMap<SessionId, Session>,
    by_refresh: HashMap<TokenHash, SessionId>,
    /// Each user's sessions, for `revoke_all`.
    by_user: HashMap<UserId, HashSet<SessionId>>,
}

impl Sessions {
    fn insert(&mut self, session: Session) {
        self.by_refresh
            .insert(session.refresh_hash.clone(), session.id);
        self.by_user
            .entry(session.user_id)
            .or_default()
            .insert(session.id);
        self.by_id.insert(session.id, session);
    }

    fn remove(&mut self, id: SessionId) -> Option<Session> {
        let session = self.by_id.remove(&id)?;
        self.by_refresh.remove(&session.refresh_hash);
        if let Some(ids) = self.by_user.get_mut(&session.user_id) {
            ids.remove(&id);
            if ids.is_empty() {
                self.by_user.remove(&session.user_id);
            }
        }
        Some(session)
    }

    /// Drops every expired session; called on writes, so memory stays
    /// bounded by the sessions alive.
    fn purge(&mut self, now: OffsetDateTime) {
        let expired: Vec<SessionId> = self
            .by_id
            .values()
            .filter(|s| s.expires_at <= now)
            .map(|s| s.id)
            .collect();
        for id in expired {
            self.remove(id);
        }
    }
}

/// Sessions in memory, expiring by the given clock.
#[derive(Debug, Clone)]
pub struct MemorySessionStore<C = SystemClock> {
    sessions: Arc<Mutex<Sessions>>,
    clock: C,
}

impl Default for MemorySessionStore {
    fn default() -> Self {
        Self::new(SystemClock)
    }
}

impl<C: Clock> MemorySessionStore<C> {
    pub fn new(clock: C) -> Self {
        Self {
            sessions: Arc::default(),
            clock,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Sessions> {
        // Every critical section leaves the maps consistent, so a panic
        // elsewhere does not make them unusable.
        self.sessions.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl<C: Clock + std::fmt::Debug> SessionStore for MemorySessionStore<C> {
    async fn create(&self, session: &Session) -> Result<(), PortError> {
        let now = self.clock.now();
        let mut sessions = self.lock();
        sessions.purge(now);
        // A session that is there already (a repeated id) is replaced whole.
        sessions.remove(session.id);
        sessions.insert(session.clone());
        Ok(())
    }

    async fn active(&self, id: SessionId) -> Result<Option<(UserId, Role)>, PortError> {
        let now = self.clock.now();
        Ok(self
            .lock()
            .by_id
            .get(&id)
            .filter(|s| s.expires_at > now)
            .map(|s| (s.user_id, s.role)))
    }

    async fn rotate(
        &self,
        old: &TokenHash,
        new: &TokenHash,
        expires_at: OffsetDateTime,
    ) -> Result<Option<Session>, PortError> {
        let now = self.clock.now();
        let mut sessions = self.lock();
        let Some(id) = sessions.by_refresh.remove(old) else {
            return Ok(None);
        };
        let Some(session) = sessions.by_id.get_mut(&id) else {
            return Ok(None);
        };
        if session.expires_at <= now {
            sessions.remove(id);
            return Ok(None);
        }
        session.refresh_hash = new.clone();
        session.expires_at = expires_at;
        let session = session.clone();
        sessions.by_refresh.insert(new.clone(), id);
        Ok(Some(session))
    }

    async fn revoke(&self, id: SessionId) -> Result<(), PortError> {
        self.lock().remove(id);
        Ok(())
    }

    async fn revoke_all(&self, user: UserId) -> Result<(), PortError> {
        let mut sessions = self.lock();
        let ids = sessions.by_user.remove(&user).unwrap_or_default();
        for id in ids {
            sessions.remove(id);
        }
        Ok(())
    }

    async fn ping(&self) -> Result<(), PortError> {
        Ok(())
    }
}

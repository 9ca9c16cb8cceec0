use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use domain::{
    Claim, Clock, Fingerprint, IdempotencyKey, IdempotencyStore, LeaseToken, PortError, SystemClock,
};
use time::OffsetDateTime;

#[derive(Debug)]
struct Entry {
    fingerprint: Fingerprint,
    token: LeaseToken,
    /// Set once the request completed.
    response: Option<Vec<u8>>,
    /// The lease's end while in flight, the retention's once completed.
    expires_at: OffsetDateTime,
}

/// Idempotency keys in memory, expiring by the given clock.
#[derive(Debug, Clone)]
pub struct MemoryIdempotencyStore<C = SystemClock> {
    entries: Arc<Mutex<HashMap<IdempotencyKey, Entry>>>,
    clock: C,
}

impl Default for MemoryIdempotencyStore {
    fn default() -> Self {
        Self::new(SystemClock)
    }
}

impl<C: Clock> MemoryIdempotencyStore<C> {
    pub fn new(clock: C) -> Self {
        Self {
            entries: Arc::default(),
            clock,
        }
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<IdempotencyKey, Entry>> {
        // Every critical section leaves the map consistent.
        self.entries.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn after(&self, ttl: Duration) -> OffsetDateTime {
        self.clock.now() + ttl
    }
}

impl<C: Clock + std::fmt::Debug> IdempotencyStore for MemoryIdempotencyStore<C> {
    async fn claim(
        &self,
        key: &IdempotencyKey,
        fingerprint: &Fingerprint,
        lease: Duration,
    ) -> Result<Claim, PortError> {
        let now = self.clock.now();
        let mut entries = self.lock();
        // Dropping the expired entries on every claim keeps memory bounded
        // by the keys alive.
        entries.retain(|_, entry| entry.expires_at > now);
        if let Some(entry) = entries.get(key) {
            return Ok(if entry.fingerprint != *fingerprint {
                Claim::Mismatch
            } else if let Some(response) = &entry.response {
                Claim::Completed(response.clone())
            } else {
                Claim::InFlight
            });
        }
        let token = LeaseToken::generate();
        entries.insert(
            key.clone(),
            Entry {
                fingerprint: fingerprint.clone(),
                token: token.clone(),
                response: None,
                expires_at: self.after(lease),
            },
        );
        Ok(Claim::Acquired(token))
    }

    async fn complete(
        &self,
        key: &IdempotencyKey,
        fingerprint: &Fingerprint,
        token: &LeaseToken,
        response: &[u8],
        retention: Duration,
    ) -> Result<bool, PortError> {
        let now = self.clock.now();
        let mut entries = self.lock();
        if let Some(entry) = entries.get(key)
            && entry.expires_at > now
            && entry.token != *token
        {
            return Ok(false);
        }
        entries.insert(
            key.clone(),
            Entry {
                fingerprint: fingerprint.clone(),
                token: token.clone(),
                response: Some(response.to_vec()),
                expires_at: self.after(retention),
            },
        );
        Ok(true)
    }

    async fn release(&self, key: &IdempotencyKey, token: &LeaseToken) -> Result<(), PortError> {
        let mut entries = self.lock();
        if entries
            .get(key)
            .is_some_and(|entry| entry.token == *token && entry.response.is_none())
        {
            entries.remove(key);
        }
        Ok(())
    }
}

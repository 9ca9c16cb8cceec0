//! Idempotency keys: a client names a create with a key of its own, so a
//! retry of it (a lost response, a timeout) makes no second change but
//! gets the first one's answer.
//!
//! The [`IdempotencyStore`] remembers, per key, the request's fingerprint
//! and, once it succeeded, its response, opaque here: the HTTP layer
//! decides what a fingerprint and a stored response are, and waits for a
//! request in flight (the domain knows no runtime to wait with). The store
//! is shared by every instance, so a retry may reach another one.
//!
//! A key's life: [`IdempotencyStore::claim`] takes it for a while (the
//! lease); the holder then either [`complete`](IdempotencyStore::complete)s
//! it with the response, kept for the retention, or
//! [`release`](IdempotencyStore::release)s it when the request failed, so it
//! can be retried. A holder that dies holds it only until its lease lapses:
//! then the next claim takes it over.

use std::future::Future;
use std::time::Duration;

use crate::error::PortError;
use crate::user::UserId;

/// A key as the store knows it: the client's key, scoped to its user and to
/// the operation it was sent with, so neither another user nor another
/// route ever meets it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct IdempotencyKey {
    pub user: UserId,
    /// The operation, e.g. `POST /api/v1/projects/{its id}/members`.
    pub operation: String,
    /// The client's key, as sent.
    pub key: String,
}

/// What identifies a request's content (e.g. a hash of its body): the same
/// key with another fingerprint is another request, refused.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Fingerprint(pub String);

/// Proof of holding a claim: only its holder completes or releases it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct LeaseToken(pub String);

impl LeaseToken {
    pub fn generate() -> Self {
        Self(uuid::Uuid::now_v7().simple().to_string())
    }
}

/// The answer to a claim.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// The key was free (new, released, or its holder's lease lapsed): the
    /// caller holds it now and must complete or release it.
    Acquired(LeaseToken),
    /// A request with the same fingerprint holds it: ask again later.
    InFlight,
    /// A request with the same fingerprint succeeded: its response.
    Completed(Vec<u8>),
    /// The key is held or completed by a request with another fingerprint.
    Mismatch,
}

/// Where idempotency keys live, shared by every instance. Every method is
/// atomic: concurrent claims of one key acquire it once.
pub trait IdempotencyStore: Clone + Send + Sync + 'static {
    /// Takes `key` for `fingerprint` for `lease`, unless a request holds or
    /// completed it (see [`Claim`]). A lapsed lease counts as free.
    fn claim(
        &self,
        key: &IdempotencyKey,
        fingerprint: &Fingerprint,
        lease: Duration,
    ) -> impl Future<Output = Result<Claim, PortError>> + Send;

    /// Keeps `response` under `key` for `retention`, if `token` still holds
    /// the key or nobody does (the lease lapsed and no one took over: the
    /// change was made, so its response is worth keeping). Returns whether
    /// it was kept: `false` when another request took the key over.
    fn complete(
        &self,
        key: &IdempotencyKey,
        fingerprint: &Fingerprint,
        token: &LeaseToken,
        response: &[u8],
        retention: Duration,
    ) -> impl Future<Output = Result<bool, PortError>> + Send;

    /// Forgets `key` if `token` holds it and it is not completed: the
    /// request failed, and a retry with the key may run again. Anything
    /// else (another holder, a completed key, no key) is left as it is.
    fn release(
        &self,
        key: &IdempotencyKey,
        token: &LeaseToken,
    ) -> impl Future<Output = Result<(), PortError>> + Send;
}

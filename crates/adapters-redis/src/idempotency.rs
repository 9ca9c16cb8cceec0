use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use domain::{Claim, Fingerprint, IdempotencyKey, IdempotencyStore, LeaseToken, PortError};
use redis::Script;

use crate::pool::{Client, Request, Retry};

const WHAT: &str = "idempotency store";

/// Takes the key when nobody holds it (absent, released, or its lease
/// expired with it): a hash of the fingerprint and the new lease's token,
/// expiring with the lease. Otherwise says who has it.
///
/// KEYS: the key. ARGV: fingerprint, lease token, lease (ms).
/// Returns `{'acquired'}`, `{'mismatch'}`, `{'completed', response}` or
/// `{'in_flight'}`.
const CLAIM: &str = r"
local held = redis.call('HMGET', KEYS[1], 'fingerprint', 'response')
if not held[1] then
  redis.call('DEL', KEYS[1])
  redis.call('HSET', KEYS[1], 'fingerprint', ARGV[1], 'token', ARGV[2])
  redis.call('PEXPIRE', KEYS[1], ARGV[3])
  return {'acquired'}
end
if held[1] ~= ARGV[1] then return {'mismatch'} end
if held[2] then return {'completed', held[2]} end
return {'in_flight'}
";

/// Stores the response, kept for the retention, unless another lease holds
/// the key (it was taken over). A key that expired meanwhile is written
/// anew: the change was made.
///
/// KEYS: the key. ARGV: fingerprint, lease token, response, retention (ms).
const COMPLETE: &str = r"
local token = redis.call('HGET', KEYS[1], 'token')
if token and token ~= ARGV[2] then return 0 end
redis.call('HSET', KEYS[1], 'fingerprint', ARGV[1], 'token', ARGV[2], 'response', ARGV[3])
redis.call('PEXPIRE', KEYS[1], ARGV[4])
return 1
";

/// Deletes the key if this lease holds it and it has no response.
///
/// KEYS: the key. ARGV: lease token.
const RELEASE: &str = r"
local held = redis.call('HMGET', KEYS[1], 'token', 'response')
if held[1] == ARGV[1] and not held[2] then redis.call('DEL', KEYS[1]) end
return 1
";

/// Idempotency keys in Redis, shared by every instance of the server.
///
/// One hash per key, `{prefix}idempotency:{user id}:{operation}:{key}`,
/// with `fingerprint`, `token` (the holder's lease) and, once completed,
/// `response`. It expires when the lease lapses (so a dead holder frees it
/// by itself), then, once completed, after the retention. Each step is one
/// Lua script, so one round trip and atomic across instances.
///
/// Cloning is cheap: clones share the connection pool.
#[derive(Clone)]
pub struct RedisIdempotencyStore {
    client: Client,
    shared: Arc<Shared>,
}

struct Shared {
    prefix: String,
    claim: Script,
    complete: Script,
    release: Script,
}

impl fmt::Debug for RedisIdempotencyStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisIdempotencyStore")
            .field("key_prefix", &self.shared.prefix)
            .field("client", &self.client)
            .finish()
    }
}

impl RedisIdempotencyStore {
    /// A store on the Redis at `url`, its keys starting with `key_prefix`
    /// (then `idempotency:`), with at most `pool_size` connections; lazy,
    /// and failing, as [`crate::RedisSessionStore::connect`] does.
    pub fn connect(
        url: &str,
        key_prefix: impl Into<String>,
        pool_size: u32,
    ) -> Result<Self, PortError> {
        Ok(Self {
            client: Client::connect(url, pool_size, WHAT)?,
            shared: Arc::new(Shared {
                prefix: key_prefix.into(),
                claim: Script::new(CLAIM),
                complete: Script::new(COMPLETE),
                release: Script::new(RELEASE),
            }),
        })
    }

    /// Answers when Redis does.
    pub async fn ping(&self) -> Result<(), PortError> {
        self.client.ping().await
    }

    fn key(&self, key: &IdempotencyKey) -> String {
        format!(
            "{}idempotency:{}:{}:{}",
            self.shared.prefix, key.user, key.operation, key.key
        )
    }
}

/// Whole milliseconds, at least 1 (Redis refuses a zero expiry).
fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis())
        .unwrap_or(u64::MAX)
        .max(1)
}

impl IdempotencyStore for RedisIdempotencyStore {
    async fn claim(
        &self,
        key: &IdempotencyKey,
        fingerprint: &Fingerprint,
        lease: Duration,
    ) -> Result<Claim, PortError> {
        let token = LeaseToken::generate();
        let mut invocation = self.shared.claim.key(self.key(key));
        invocation
            .arg(&fingerprint.0)
            .arg(&token.0)
            .arg(millis(lease));
        // Never sent twice: a second claim by the same request would find
        // the key held, by itself.
        let reply: Vec<Vec<u8>> = self
            .client
            .request(Request::Script(&invocation), Retry::Never)
            .await?;
        let mut reply = reply.into_iter();
        match (reply.next().as_deref(), reply.next()) {
            (Some(b"acquired"), None) => Ok(Claim::Acquired(token)),
            (Some(b"in_flight"), None) => Ok(Claim::InFlight),
            (Some(b"mismatch"), None) => Ok(Claim::Mismatch),
            (Some(b"completed"), Some(response)) => Ok(Claim::Completed(response)),
            _ => Err(PortError::unexpected(
                WHAT,
                "the claim script answered oddly",
            )),
        }
    }

    async fn complete(
        &self,
        key: &IdempotencyKey,
        fingerprint: &Fingerprint,
        token: &LeaseToken,
        response: &[u8],
        retention: Duration,
    ) -> Result<bool, PortError> {
        let mut invocation = self.shared.complete.key(self.key(key));
        invocation
            .arg(&fingerprint.0)
            .arg(&token.0)
            .arg(response)
            .arg(millis(retention));
        let stored: i64 = self
            .client
            .request(Request::Script(&invocation), Retry::IfStale)
            .await?;
        Ok(stored == 1)
    }

    async fn release(&self, key: &IdempotencyKey, token: &LeaseToken) -> Result<(), PortError> {
        let mut invocation = self.shared.release.key(self.key(key));
        invocation.arg(&token.0);
        self.client
            .request(Request::Script(&invocation), Retry::IfStale)
            .await
    }
}

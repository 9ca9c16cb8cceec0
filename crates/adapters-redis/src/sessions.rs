use std::fmt;
use std::sync::Arc;

use domain::{PortError, Role, Session, SessionId, SessionStore, TokenHash, UserId};
use redis::Script;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::error::{WHAT, corrupt};
use crate::pool::{Client, Request, Retry};

/// Lua shared by the scripts below, prepended to them.
///
/// `track` keeps a user's sessions in `{prefix}user-sessions:{user id}`, a
/// sorted set of session ids scored by their expiry (unix ms): it drops
/// the entries whose sessions have expired by Redis' clock (as their keys
/// have), sets this session's expiry (or drops it when that is already
/// past), and makes the set expire with its longest session, so it never
/// outlives the sessions it lists.
///
/// `end_session` deletes a session and the refresh key still pointing at
/// it.
const FUNCTIONS: &str = r"
local function track(set, id, expiry)
  local time = redis.call('TIME')
  local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
  redis.call('ZREMRANGEBYSCORE', set, '-inf', now)
  if tonumber(expiry) > now then
    redis.call('ZADD', set, expiry, id)
  else
    redis.call('ZREM', set, id)
  end
  local longest = redis.call('ZRANGE', set, -1, -1, 'WITHSCORES')
  if longest[2] then redis.call('PEXPIREAT', set, longest[2]) end
end

local function end_session(session, refresh_prefix, id, hash)
  if hash then
    local refresh = refresh_prefix .. hash
    if redis.call('GET', refresh) == id then redis.call('DEL', refresh) end
  end
  redis.call('DEL', session)
end
";

/// `{prefix}session:{id}` := hash, `{prefix}refresh:{hash}` := id, both
/// expiring at the session's end, and the session tracked in its user's
/// set. When that end is already past, Redis deletes both keys at once
/// (`PEXPIREAT` and `SET … PXAT` with a past time, since Redis 7), so such
/// a session is never active (nor tracked).
///
/// KEYS: session key, refresh key, the user's set.
/// ARGV: session id, user id, role, refresh hash, expires_at (unix µs),
///       expiry (unix ms).
const CREATE: &str = r"
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 'user_id', ARGV[2], 'role', ARGV[3],
    'refresh_hash', ARGV[4], 'expires_at', ARGV[5])
redis.call('PEXPIREAT', KEYS[1], ARGV[6])
redis.call('SET', KEYS[2], ARGV[1], 'PXAT', ARGV[6])
track(KEYS[3], ARGV[1], ARGV[6])
return 1
";

/// Redeems a refresh token: the old refresh key is deleted whatever happens
/// next, so a token works at most once; the session must still exist and
/// hold that very token. Returns `{id, user_id, role}` or nil. The new
/// expiry goes into the user's set too (which also starts tracking a
/// session created before there were sets).
///
/// KEYS: refresh key of the old hash, refresh key of the new hash.
/// ARGV: session key prefix, old hash, new hash, expires_at (unix µs),
///       expiry (unix ms), user set prefix.
const ROTATE: &str = r"
local id = redis.call('GET', KEYS[1])
if not id then return nil end
redis.call('DEL', KEYS[1])
local session = ARGV[1] .. id
local fields = redis.call('HMGET', session, 'user_id', 'role', 'refresh_hash')
if not fields[1] or fields[3] ~= ARGV[2] then return nil end
redis.call('HSET', session, 'refresh_hash', ARGV[3], 'expires_at', ARGV[4])
redis.call('PEXPIREAT', session, ARGV[5])
redis.call('SET', KEYS[2], id, 'PXAT', ARGV[5])
track(ARGV[6] .. fields[1], id, ARGV[5])
return {id, fields[1], fields[2]}
";

/// Deletes a session, the refresh key still pointing at it, and its entry
/// in its user's set.
///
/// KEYS: session key. ARGV: refresh key prefix, session id, user set
/// prefix.
const REVOKE: &str = r"
local fields = redis.call('HMGET', KEYS[1], 'user_id', 'refresh_hash')
if fields[1] then redis.call('ZREM', ARGV[3] .. fields[1], ARGV[2]) end
end_session(KEYS[1], ARGV[1], ARGV[2], fields[2])
return 1
";

/// Deletes every session in the user's set (each checked to be the
/// user's), their refresh keys, and the set. Sessions created before
/// there were sets (by an older version of this store) are in none until
/// they rotate: this misses them, and they end at their expiry.
///
/// KEYS: the user's set. ARGV: session key prefix, refresh key prefix,
/// user id.
const REVOKE_ALL: &str = r"
local ids = redis.call('ZRANGE', KEYS[1], 0, -1)
for _, id in ipairs(ids) do
  local session = ARGV[1] .. id
  local fields = redis.call('HMGET', session, 'user_id', 'refresh_hash')
  if fields[1] == ARGV[3] then end_session(session, ARGV[2], id, fields[2]) end
end
redis.call('DEL', KEYS[1])
return 1
";

/// A script: the shared functions, then `body`.
fn script(body: &str) -> Script {
    Script::new(&format!("{FUNCTIONS}{body}"))
}

/// Sessions in Redis, shared by every instance of the server.
///
/// Keys, all under the prefix given to [`RedisSessionStore::connect`]:
///
/// - `{prefix}session:{session id}`: a hash with `user_id`, `role`,
///   `refresh_hash` and `expires_at` (unix microseconds);
/// - `{prefix}refresh:{refresh token hash}`: the session id;
/// - `{prefix}user-sessions:{user id}`: a sorted set of the user's session
///   ids, scored by their expiry, for `revoke_all`.
///
/// They expire (`PEXPIREAT`) when the session does (the set with the
/// user's longest session). Every write is a Lua script, so it is atomic
/// and holds across instances; the scripts touch keys they derive
/// from what they read, so the store needs a single Redis node (standalone
/// or Sentinel-managed), not Redis Cluster.
///
/// Cloning is cheap: clones share the connection pool.
#[derive(Clone)]
pub struct RedisSessionStore {
    client: Client,
    shared: Arc<Shared>,
}

struct Shared {
    prefix: String,
    session_prefix: String,
    refresh_prefix: String,
    user_sessions_prefix: String,
    create: Script,
    rotate: Script,
    revoke: Script,
    revoke_all: Script,
}

impl fmt::Debug for RedisSessionStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisSessionStore")
            .field("key_prefix", &self.shared.prefix)
            .field("client", &self.client)
            .finish()
    }
}

impl RedisSessionStore {
    /// A store on the Redis at `url` (`redis://[user:password@]host[:port][/db]`,
    /// `rediss://` needs a TLS feature of the `redis` crate), its keys
    /// starting with `key_prefix` (e.g. `"taskflow:"`), with at most
    /// `pool_size` connections.
    ///
    /// Connects lazily: it succeeds even while Redis is down, and every
    /// call then fails with [`PortError::Unavailable`] after at most about
    /// two seconds, until Redis answers again. Use [`SessionStore::ping`]
    /// to wait for it. Fails on a malformed URL, a zero `pool_size`, or when
    /// not called within a Tokio runtime.
    pub fn connect(
        url: &str,
        key_prefix: impl Into<String>,
        pool_size: u32,
    ) -> Result<Self, PortError> {
        let client = Client::connect(url, pool_size, WHAT)?;
        let prefix = key_prefix.into();
        Ok(Self {
            client,
            shared: Arc::new(Shared {
                session_prefix: format!("{prefix}session:"),
                refresh_prefix: format!("{prefix}refresh:"),
                user_sessions_prefix: format!("{prefix}user-sessions:"),
                prefix,
                create: script(CREATE),
                rotate: script(ROTATE),
                revoke: script(REVOKE),
                revoke_all: script(REVOKE_ALL),
            }),
        })
    }

    /// The prefix of every key this store writes.
    pub fn key_prefix(&self) -> &str {
        &self.shared.prefix
    }

    fn session_key(&self, id: SessionId) -> String {
        format!("{}{id}", self.shared.session_prefix)
    }

    fn refresh_key(&self, hash: &TokenHash) -> String {
        format!("{}{}", self.shared.refresh_prefix, hash.0)
    }

    fn user_sessions_key(&self, user: UserId) -> String {
        format!("{}{user}", self.shared.user_sessions_prefix)
    }
}

/// Unix microseconds (what is stored) and milliseconds (what Redis expires
/// keys at, rounded down so a key never outlives its session; at least 1,
/// since Redis refuses `PXAT` values below it).
fn expiry(at: OffsetDateTime) -> Result<(i64, i64), PortError> {
    let micros = i64::try_from(at.unix_timestamp_nanos().div_euclid(1_000))
        .map_err(|_| PortError::unexpected(WHAT, "session expiry out of range"))?;
    Ok((micros, micros.div_euclid(1_000).max(1)))
}

fn parse_expiry(raw: &str) -> Option<OffsetDateTime> {
    let micros: i64 = raw.parse().ok()?;
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(micros) * 1_000).ok()
}

fn parse_user(raw: &str) -> Option<UserId> {
    Uuid::parse_str(raw).ok().map(UserId)
}

impl SessionStore for RedisSessionStore {
    async fn create(&self, session: &Session) -> Result<(), PortError> {
        let (micros, millis) = expiry(session.expires_at)?;
        let mut invocation = self.shared.create.key(self.session_key(session.id));
        invocation
            .key(self.refresh_key(&session.refresh_hash))
            .key(self.user_sessions_key(session.user_id))
            .arg(session.id.to_string())
            .arg(session.user_id.to_string())
            .arg(session.role.as_str())
            .arg(&session.refresh_hash.0)
            .arg(micros)
            .arg(millis);
        self.client
            .request(Request::Script(&invocation), Retry::IfStale)
            .await
    }

    async fn active(&self, id: SessionId) -> Result<Option<(UserId, Role)>, PortError> {
        let mut cmd = redis::cmd("HMGET");
        cmd.arg(self.session_key(id))
            .arg("user_id")
            .arg("role")
            .arg("expires_at");
        let fields: (Option<String>, Option<String>, Option<String>) = self
            .client
            .request(Request::Command(&cmd), Retry::IfStale)
            .await?;
        let (user_id, role, expires_at) = match fields {
            (None, None, None) => return Ok(None),
            (Some(user_id), Some(role), Some(expires_at)) => (user_id, role, expires_at),
            _ => return Err(corrupt(format!("session {id} lacks fields"))),
        };
        let user_id = parse_user(&user_id)
            .ok_or_else(|| corrupt(format!("session {id} has a malformed user_id")))?;
        let role = Role::parse(&role)
            .ok_or_else(|| corrupt(format!("session {id} has a malformed role")))?;
        let expires_at = parse_expiry(&expires_at)
            .ok_or_else(|| corrupt(format!("session {id} has a malformed expires_at")))?;
        // The key expires then anyway; this also covers Redis' clock lagging
        // behind ours.
        if expires_at <= OffsetDateTime::now_utc() {
            return Ok(None);
        }
        Ok(Some((user_id, role)))
    }

    async fn rotate(
        &self,
        old: &TokenHash,
        new: &TokenHash,
        expires_at: OffsetDateTime,
    ) -> Result<Option<Session>, PortError> {
        let (micros, millis) = expiry(expires_at)?;
        let mut invocation = self.shared.rotate.key(self.refresh_key(old));
        invocation
            .key(self.refresh_key(new))
            .arg(&self.shared.session_prefix)
            .arg(&old.0)
            .arg(&new.0)
            .arg(micros)
            .arg(millis)
            .arg(&self.shared.user_sessions_prefix);
        let found: Option<(String, Option<String>, Option<String>)> = self
            .client
            .request(Request::Script(&invocation), Retry::Never)
            .await?;
        let Some((id, user_id, role)) = found else {
            return Ok(None);
        };
        // Never echo the refresh key's content or hash into errors.
        let id = Uuid::parse_str(&id)
            .map(SessionId)
            .map_err(|_| corrupt("a refresh key holds a malformed session id"))?;
        let user_id = user_id
            .as_deref()
            .and_then(parse_user)
            .ok_or_else(|| corrupt(format!("session {id} has a malformed user_id")))?;
        let role = role
            .as_deref()
            .and_then(Role::parse)
            .ok_or_else(|| corrupt(format!("session {id} has a malformed role")))?;
        Ok(Some(Session {
            id,
            user_id,
            role,
            refresh_hash: new.clone(),
            expires_at,
        }))
    }

    async fn revoke(&self, id: SessionId) -> Result<(), PortError> {
        let mut invocation = self.shared.revoke.key(self.session_key(id));
        invocation
            .arg(&self.shared.refresh_prefix)
            .arg(id.to_string())
            .arg(&self.shared.user_sessions_prefix);
        self.client
            .request(Request::Script(&invocation), Retry::IfStale)
            .await
    }

    async fn revoke_all(&self, user: UserId) -> Result<(), PortError> {
        let mut invocation = self.shared.revoke_all.key(self.user_sessions_key(user));
        invocation
            .arg(&self.shared.session_prefix)
            .arg(&self.shared.refresh_prefix)
            .arg(user.to_string());
        self.client
            .request(Request::Script(&invocation), Retry::IfStale)
            .await
    }

    async fn ping(&self) -> Result<(), PortError> {
        self.client.ping().await
    }
}

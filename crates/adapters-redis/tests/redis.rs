//! What the contract cannot see: the key layout and expiry in Redis, bad
//! data, an unreachable or restarting Redis.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use adapters_redis::RedisSessionStore;
use common::{describe, keys, raw, redis_url, store, unique_prefix};
use domain::contract::join_all;
use domain::{PortError, Role, Session, SessionId, SessionStore, TokenHash, UserId};
use time::OffsetDateTime;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::{JoinHandle, JoinSet};

fn hash(label: &str) -> TokenHash {
    TokenHash(format!("{label}-{}", uuid::Uuid::now_v7().simple()))
}

fn session(expires_in: time::Duration) -> Session {
    Session {
        id: SessionId::generate(),
        user_id: UserId::generate(),
        role: Role::User,
        refresh_hash: hash("refresh"),
        expires_at: OffsetDateTime::now_utc() + expires_in,
    }
}

fn is_unavailable<T: std::fmt::Debug>(result: &Result<T, PortError>) -> bool {
    matches!(result, Err(PortError::Unavailable { .. }))
}

fn is_unexpected<T: std::fmt::Debug>(result: &Result<T, PortError>) -> bool {
    matches!(result, Err(PortError::Unexpected { .. }))
}

#[tokio::test]
async fn keys_live_under_the_prefix() {
    let store = store().await;
    let prefix = store.key_prefix().to_owned();
    let s = session(time::Duration::hours(1));
    store.create(&s).await.expect("create");
    let new = hash("new");
    store
        .rotate(
            &s.refresh_hash,
            &new,
            OffsetDateTime::now_utc() + time::Duration::hours(2),
        )
        .await
        .expect("rotate")
        .expect("rotated");

    let mut conn = raw().await;
    let mut expected = vec![
        format!("{prefix}refresh:{}", new.0),
        format!("{prefix}session:{}", s.id),
        format!("{prefix}user-sessions:{}", s.user_id),
    ];
    expected.sort();
    assert_eq!(keys(&mut conn, &prefix).await, expected);
    // Nothing leaked outside the prefix: no key names this session, its
    // tokens or its user.
    let everywhere: Vec<String> = redis::cmd("KEYS")
        .arg("*")
        .query_async(&mut conn)
        .await
        .expect("KEYS");
    let ours: Vec<&String> = everywhere
        .iter()
        .filter(|k| {
            k.contains(&s.id.to_string())
                || k.contains(&s.refresh_hash.0)
                || k.contains(&new.0)
                || k.contains(&s.user_id.to_string())
        })
        .collect();
    assert!(ours.iter().all(|k| k.starts_with(&prefix)), "{ours:?}");
    assert_eq!(ours.len(), 3, "{ours:?}");

    store.revoke(s.id).await.expect("revoke");
    assert_eq!(
        keys(&mut conn, &prefix).await,
        Vec::<String>::new(),
        "revoking removes the session, its refresh key and its user's entry"
    );
}

#[tokio::test]
async fn keys_expire_with_the_session() {
    let store = store().await;
    let prefix = store.key_prefix().to_owned();
    let s = session(time::Duration::hours(1));
    store.create(&s).await.expect("create");
    let mut conn = raw().await;
    let session_key = format!("{prefix}session:{}", s.id);
    let refresh_key = format!("{prefix}refresh:{}", s.refresh_hash.0);
    let user_key = format!("{prefix}user-sessions:{}", s.user_id);
    for key in [&session_key, &refresh_key, &user_key] {
        let ttl: i64 = redis::cmd("PTTL")
            .arg(key)
            .query_async(&mut conn)
            .await
            .expect("PTTL");
        assert!(ttl > 3_590_000 && ttl <= 3_600_000, "{key}: PTTL {ttl}");
    }

    let new = hash("new");
    store
        .rotate(
            &s.refresh_hash,
            &new,
            OffsetDateTime::now_utc() + time::Duration::days(30),
        )
        .await
        .expect("rotate")
        .expect("rotated");
    let refresh_key = format!("{prefix}refresh:{}", new.0);
    for key in [&session_key, &refresh_key, &user_key] {
        let ttl: i64 = redis::cmd("PTTL")
            .arg(key)
            .query_async(&mut conn)
            .await
            .expect("PTTL");
        assert!(ttl > 29 * 86_400_000, "{key}: PTTL {ttl} after rotation");
    }
}

#[tokio::test]
async fn an_expired_session_leaves_no_keys() {
    let store = store().await;
    let s = session(time::Duration::seconds(-1));
    store.create(&s).await.expect("create");
    let mut conn = raw().await;
    assert_eq!(
        keys(&mut conn, store.key_prefix()).await,
        Vec::<String>::new()
    );
}

#[tokio::test]
async fn a_session_expires_in_time() {
    let store = store().await;
    let s = session(time::Duration::milliseconds(300));
    store.create(&s).await.expect("create");
    assert!(store.active(s.id).await.expect("active").is_some());
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(store.active(s.id).await.expect("active"), None);
    let rotated = store
        .rotate(
            &s.refresh_hash,
            &hash("new"),
            OffsetDateTime::now_utc() + time::Duration::hours(1),
        )
        .await
        .expect("rotate");
    assert_eq!(rotated, None);
}

/// The user's session ids in their set, with their expiry (unix ms).
async fn tracked(
    conn: &mut redis::aio::MultiplexedConnection,
    store: &RedisSessionStore,
    user: UserId,
) -> Vec<(String, i64)> {
    redis::cmd("ZRANGE")
        .arg(format!("{}user-sessions:{user}", store.key_prefix()))
        .arg(0)
        .arg(-1)
        .arg("WITHSCORES")
        .query_async(conn)
        .await
        .expect("ZRANGE")
}

fn unix_ms(at: OffsetDateTime) -> i64 {
    i64::try_from(at.unix_timestamp_nanos() / 1_000_000).expect("in range")
}

#[tokio::test]
async fn a_users_set_lists_their_live_sessions_and_expires_with_the_longest() {
    let store = store().await;
    let mut conn = raw().await;
    let short = session(time::Duration::milliseconds(300));
    let user = short.user_id;
    let long = Session {
        user_id: user,
        ..session(time::Duration::hours(2))
    };
    let middle = Session {
        user_id: user,
        ..session(time::Duration::hours(1))
    };
    for s in [&short, &long, &middle] {
        store.create(s).await.expect("create");
    }
    let mut expected = vec![
        (short.id.to_string(), unix_ms(short.expires_at)),
        (middle.id.to_string(), unix_ms(middle.expires_at)),
        (long.id.to_string(), unix_ms(long.expires_at)),
    ];
    assert_eq!(tracked(&mut conn, &store, user).await, expected);
    let user_key = format!("{}user-sessions:{user}", store.key_prefix());
    let expires: i64 = redis::cmd("PEXPIRETIME")
        .arg(&user_key)
        .query_async(&mut conn)
        .await
        .expect("PEXPIRETIME");
    assert_eq!(expires, unix_ms(long.expires_at), "with the longest");

    // An expired session's entry goes at the next write to the set.
    tokio::time::sleep(Duration::from_millis(400)).await;
    let later = Session {
        user_id: user,
        ..session(time::Duration::minutes(1))
    };
    store.create(&later).await.expect("create");
    expected.remove(0);
    expected.insert(0, (later.id.to_string(), unix_ms(later.expires_at)));
    assert_eq!(tracked(&mut conn, &store, user).await, expected);

    // Rotation moves the entry's expiry, and the set's.
    let new = hash("new");
    let until = OffsetDateTime::now_utc() + time::Duration::days(1);
    store
        .rotate(&later.refresh_hash, &new, until)
        .await
        .expect("rotate")
        .expect("rotated");
    let expires: i64 = redis::cmd("PEXPIRETIME")
        .arg(&user_key)
        .query_async(&mut conn)
        .await
        .expect("PEXPIRETIME");
    assert_eq!(expires, unix_ms(until));

    // Revoking one removes its entry; revoking all removes every key.
    store.revoke(middle.id).await.expect("revoke");
    let ids: Vec<String> = tracked(&mut conn, &store, user)
        .await
        .into_iter()
        .map(|(id, _)| id)
        .collect();
    assert_eq!(ids, [long.id.to_string(), later.id.to_string()]);
    store.revoke_all(user).await.expect("revoke all");
    assert_eq!(
        keys(&mut conn, store.key_prefix()).await,
        Vec::<String>::new()
    );
}

#[tokio::test]
async fn revoke_all_holds_across_instances() {
    let first = store().await;
    let second =
        RedisSessionStore::connect(&redis_url(), first.key_prefix(), 2).expect("a second instance");
    let a = session(time::Duration::hours(1));
    let b = Session {
        user_id: a.user_id,
        ..session(time::Duration::hours(1))
    };
    first.create(&a).await.expect("create");
    second.create(&b).await.expect("create");
    let new = hash("new");
    second
        .rotate(
            &a.refresh_hash,
            &new,
            OffsetDateTime::now_utc() + time::Duration::days(2),
        )
        .await
        .expect("rotate")
        .expect("rotated");
    first.revoke_all(a.user_id).await.expect("revoke all");
    for store in [&first, &second] {
        for s in [&a, &b] {
            assert_eq!(store.active(s.id).await.expect("active"), None);
        }
        let rotated = store
            .rotate(
                &new,
                &hash("later"),
                OffsetDateTime::now_utc() + time::Duration::hours(1),
            )
            .await
            .expect("rotate");
        assert_eq!(rotated, None);
    }
    let mut conn = raw().await;
    assert_eq!(
        keys(&mut conn, first.key_prefix()).await,
        Vec::<String>::new()
    );
}

/// A session written before there were user sets (as an older version of
/// the store wrote it) is in none: `revoke_all` misses it until its first
/// rotation, which starts tracking it.
#[tokio::test]
async fn a_session_from_before_user_sets_is_tracked_once_it_rotates() {
    let store = store().await;
    let prefix = store.key_prefix().to_owned();
    let s = session(time::Duration::hours(1));
    let mut conn = raw().await;
    let session_key = format!("{prefix}session:{}", s.id);
    let micros = s.expires_at.unix_timestamp_nanos() / 1_000;
    let () = redis::cmd("HSET")
        .arg(&session_key)
        .arg("user_id")
        .arg(s.user_id.to_string())
        .arg("role")
        .arg("user")
        .arg("refresh_hash")
        .arg(&s.refresh_hash.0)
        .arg("expires_at")
        .arg(micros.to_string())
        .query_async(&mut conn)
        .await
        .expect("HSET");
    let () = redis::cmd("SET")
        .arg(format!("{prefix}refresh:{}", s.refresh_hash.0))
        .arg(s.id.to_string())
        .query_async(&mut conn)
        .await
        .expect("SET");
    store.revoke_all(s.user_id).await.expect("revoke all");
    assert!(
        store.active(s.id).await.expect("active").is_some(),
        "untracked: left to expire"
    );
    let new = hash("new");
    store
        .rotate(
            &s.refresh_hash,
            &new,
            OffsetDateTime::now_utc() + time::Duration::hours(1),
        )
        .await
        .expect("rotate")
        .expect("rotated");
    store.revoke_all(s.user_id).await.expect("revoke all");
    assert_eq!(store.active(s.id).await.expect("active"), None);
    assert_eq!(keys(&mut conn, &prefix).await, Vec::<String>::new());
}

#[tokio::test]
async fn corrupt_data_is_an_unexpected_error() {
    let store = store().await;
    let prefix = store.key_prefix().to_owned();
    let mut conn = raw().await;
    let valid_user = UserId::generate().to_string();
    let future =
        (OffsetDateTime::now_utc() + time::Duration::hours(1)).unix_timestamp() * 1_000_000;
    let future = future.to_string();
    let cases: [&[(&str, &str)]; 5] = [
        &[
            ("user_id", &valid_user),
            ("role", "emperor"),
            ("expires_at", &future),
        ],
        &[
            ("user_id", "not-a-uuid"),
            ("role", "user"),
            ("expires_at", &future),
        ],
        &[
            ("user_id", &valid_user),
            ("role", "user"),
            ("expires_at", "soon"),
        ],
        &[("user_id", &valid_user), ("role", "user")],
        &[("role", "user")],
    ];
    for fields in cases {
        let id = SessionId::generate();
        let mut hset = redis::cmd("HSET");
        hset.arg(format!("{prefix}session:{id}"));
        for (field, value) in fields {
            hset.arg(*field).arg(*value);
        }
        let () = hset.query_async(&mut conn).await.expect("HSET");
        let result = store.active(id).await;
        assert!(is_unexpected(&result), "{fields:?}: {result:?}");
    }

    // A session key of the wrong type.
    let id = SessionId::generate();
    let () = redis::cmd("SET")
        .arg(format!("{prefix}session:{id}"))
        .arg("garbage")
        .query_async(&mut conn)
        .await
        .expect("SET");
    let result = store.active(id).await;
    assert!(is_unexpected(&result), "{result:?}");
    let result = store.revoke(id).await;
    assert!(is_unexpected(&result), "{result:?}");

    // A refresh key pointing at nonsense is spent, not trusted.
    let token = hash("dangling");
    let () = redis::cmd("SET")
        .arg(format!("{prefix}refresh:{}", token.0))
        .arg("not-a-session")
        .query_async(&mut conn)
        .await
        .expect("SET");
    let rotated = store
        .rotate(
            &token,
            &hash("new"),
            OffsetDateTime::now_utc() + time::Duration::hours(1),
        )
        .await;
    assert_eq!(rotated.expect("rotate"), None);

    // The store still works after all that.
    let s = session(time::Duration::hours(1));
    store.create(&s).await.expect("create");
    assert!(store.active(s.id).await.expect("active").is_some());
    let mut cleanup = redis::cmd("DEL");
    for key in keys(&mut conn, &prefix).await {
        cleanup.arg(key);
    }
    let _: i64 = cleanup.query_async(&mut conn).await.expect("DEL");
}

#[tokio::test]
async fn an_unreachable_redis_is_unavailable_not_a_hang() {
    let store = RedisSessionStore::connect("redis://127.0.0.1:1", unique_prefix(), 4)
        .expect("connecting is lazy");
    let result = tokio::time::timeout(Duration::from_secs(10), store.ping())
        .await
        .expect("ping does not hang");
    assert!(is_unavailable(&result), "{result:?}");
    let message = describe(&result.expect_err("unavailable"));
    assert!(message.contains("session store"), "{message}");
    assert!(message.contains("refused"), "names the cause: {message}");

    let s = session(time::Duration::hours(1));
    let calls = vec![
        Box::pin(async { store.active(s.id).await.map(|_| ()) })
            as std::pin::Pin<Box<dyn Future<Output = Result<(), PortError>> + Send>>,
        Box::pin(async { store.create(&s).await }),
        Box::pin(async {
            store
                .rotate(&s.refresh_hash, &hash("new"), s.expires_at)
                .await
                .map(|_| ())
        }),
        Box::pin(async { store.revoke(s.id).await }),
        Box::pin(async { store.revoke_all(s.user_id).await }),
        Box::pin(async { store.ping().await }),
    ];
    let results = tokio::time::timeout(Duration::from_secs(10), join_all(calls))
        .await
        .expect("calls do not hang");
    for result in &results {
        assert!(is_unavailable(result), "{result:?}");
    }
}

#[test]
fn construction_refuses_bad_settings_without_panicking() {
    let outside = RedisSessionStore::connect(&redis_url(), unique_prefix(), 4);
    assert!(outside.is_err(), "outside a Tokio runtime");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        assert!(RedisSessionStore::connect(&redis_url(), unique_prefix(), 0).is_err());
        assert!(RedisSessionStore::connect("postgres://nope", unique_prefix(), 4).is_err());
        assert!(RedisSessionStore::connect("not a url", unique_prefix(), 4).is_err());
    });
}

/// A TCP proxy to Redis: aborting its task closes every connection through
/// it, which to the store looks like Redis going away.
fn proxy(listener: TcpListener, upstream: SocketAddr) -> JoinHandle<()> {
    tokio::spawn(async move {
        // Dropped with this task, aborting (and closing) every connection.
        let mut connections = JoinSet::new();
        while let Ok((mut inbound, _)) = listener.accept().await {
            connections.spawn(async move {
                if let Ok(mut outbound) = TcpStream::connect(upstream).await {
                    let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                }
            });
        }
    })
}

/// `REDIS_URL` split around its host and port: `(before, host:port, after)`.
fn split_url(url: &str) -> (String, String, String) {
    let (scheme, rest) = url.split_once("://").expect("REDIS_URL has a scheme");
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let (userinfo, host) = match authority.rsplit_once('@') {
        Some((userinfo, host)) => (format!("{userinfo}@"), host),
        None => (String::new(), authority),
    };
    let host = if host.contains(':') {
        host.to_owned()
    } else {
        format!("{host}:6379")
    };
    (format!("{scheme}://{userinfo}"), host, path.to_owned())
}

async fn stop(proxy: JoinHandle<()>) {
    proxy.abort();
    let _ = proxy.await;
    // Let the aborted connection tasks close their sockets.
    tokio::time::sleep(Duration::from_millis(100)).await;
}

#[tokio::test]
async fn requests_succeed_again_when_redis_is_back() {
    let (before, host, after) = split_url(&redis_url());
    let upstream = tokio::net::lookup_host(&host)
        .await
        .expect("resolve REDIS_URL's host")
        .next()
        .expect("an address");
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("address");
    let mut running = proxy(listener, upstream);
    let store = common::store_at(&format!("{before}{addr}{after}")).await;

    let s = session(time::Duration::hours(1));
    store.create(&s).await.expect("create");
    // Two connections in the pool.
    for result in join_all(vec![store.active(s.id), store.active(s.id)]).await {
        assert!(result.expect("active").is_some());
    }

    // Redis restarts between two requests: the pooled connections are
    // dead, yet the next request succeeds.
    stop(running).await;
    running = proxy(TcpListener::bind(addr).await.expect("rebind"), upstream);
    assert!(
        store
            .active(s.id)
            .await
            .expect("active after a restart")
            .is_some(),
        "pooled connections that died while idle are replaced"
    );

    // Redis is down for a while: requests fail as unavailable...
    stop(running).await;
    for _ in 0..2 {
        let result = store.active(s.id).await;
        assert!(is_unavailable(&result), "{result:?}");
    }
    let result = store.ping().await;
    assert!(is_unavailable(&result), "{result:?}");

    // ...and succeed again once it is back, without a new store.
    running = proxy(TcpListener::bind(addr).await.expect("rebind"), upstream);
    store.ping().await.expect("ping once Redis is back");
    assert!(store.active(s.id).await.expect("active").is_some());
    let rotated = store
        .rotate(&s.refresh_hash, &hash("new"), s.expires_at)
        .await
        .expect("rotate");
    assert!(rotated.is_some());
    store.revoke(s.id).await.expect("revoke");
    stop(running).await;
}

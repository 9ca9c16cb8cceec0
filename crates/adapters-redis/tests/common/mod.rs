//! Shared by the integration tests: a store on the Redis at `REDIS_URL`
//! under a key prefix of its own, so tests run in parallel and beside other
//! users of that Redis without seeing each other's keys.

#![allow(dead_code)] // Each test crate uses its own part of this.

use std::error::Error;

use adapters_redis::{RedisIdempotencyStore, RedisSessionStore};
use domain::SessionStore;
use redis::aio::MultiplexedConnection;

pub const DEFAULT_URL: &str = "redis://127.0.0.1:6379";

pub fn redis_url() -> String {
    std::env::var("REDIS_URL").unwrap_or_else(|_| DEFAULT_URL.to_owned())
}

pub fn unique_prefix() -> String {
    format!("taskflow-test:{}:", uuid::Uuid::now_v7())
}

/// The error and its sources, one after the other.
pub fn describe(error: &dyn Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    let mut last = text.clone();
    while let Some(cause) = source {
        // `RedisError` shows its I/O error and also gives it as its source.
        let shown = cause.to_string();
        if shown != last {
            text.push_str(": ");
            text.push_str(&shown);
        }
        last = shown;
        source = cause.source();
    }
    text
}

fn no_redis(url: &str, error: &dyn Error) -> ! {
    panic!(
        "no Redis at {url} ({}); start one or point REDIS_URL at one \
         (default {DEFAULT_URL})",
        describe(error)
    )
}

/// A store on `REDIS_URL` under a fresh prefix, after it answered a PING:
/// fails (in about two seconds, not hanging) when Redis does not answer.
pub async fn store() -> RedisSessionStore {
    store_at(&redis_url()).await
}

pub async fn store_at(url: &str) -> RedisSessionStore {
    let store =
        RedisSessionStore::connect(url, unique_prefix(), 4).unwrap_or_else(|e| no_redis(url, &e));
    if let Err(e) = store.ping().await {
        no_redis(url, &e);
    }
    store
}

/// An idempotency store on `REDIS_URL` under a fresh prefix, after it
/// answered a PING.
pub async fn idempotency_store() -> RedisIdempotencyStore {
    let url = redis_url();
    let store = RedisIdempotencyStore::connect(&url, unique_prefix(), 4)
        .unwrap_or_else(|e| no_redis(&url, &e));
    if let Err(e) = store.ping().await {
        no_redis(&url, &e);
    }
    store
}

/// A plain connection to `REDIS_URL`, to look behind the store's back.
pub async fn raw() -> MultiplexedConnection {
    let url = redis_url();
    let client = redis::Client::open(url.as_str()).unwrap_or_else(|e| no_redis(&url, &e));
    client
        .get_multiplexed_async_connection()
        .await
        .unwrap_or_else(|e| no_redis(&url, &e))
}

/// Every key under `prefix`, sorted.
pub async fn keys(conn: &mut MultiplexedConnection, prefix: &str) -> Vec<String> {
    let mut keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{prefix}*"))
        .query_async(conn)
        .await
        .expect("KEYS");
    keys.sort();
    keys
}

//! The test harness: one real server per test, a reqwest client, and
//! assertions on the response envelopes.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Once;
use std::time::Duration;

use actix_web::dev::ServerHandle;
use adapters_auth::Argon2Hasher;
use adapters_postgres::testing::TestDatabase;
use reqwest::header::HeaderMap;
use reqwest::{Client, Method, RequestBuilder, Response, StatusCode};
use serde_json::{Value, json};
use server::{Application, Config, LogFormat};

/// The JWT secret of every test server (at least 32 bytes).
pub const JWT_SECRET: &str = "api-tests-jwt-secret-0123456789-abcdefghijklmnop";

/// A password that satisfies the registration policy.
pub const PASSWORD: &str = "correct horse battery";

static TELEMETRY: Once = Once::new();

/// Logs are silent unless `TEST_LOG` is set: then every server logs to
/// stderr (`TEST_LOG=1` for `info`, or a filter such as `debug`).
fn init_telemetry() {
    TELEMETRY.call_once(|| {
        let Ok(value) = std::env::var("TEST_LOG") else {
            return;
        };
        let filter = match value.trim() {
            "" | "1" | "true" | "yes" => "info",
            other => other,
        };
        if let Err(e) = server::telemetry::init(filter, LogFormat::Pretty, std::io::stderr) {
            eprintln!("TEST_LOG: cannot set up logging: {e}");
        }
    });
}

/// A running server of its own and a client for it.
#[derive(Debug)]
pub struct TestApp {
    /// `http://127.0.0.1:<port>`.
    pub address: String,
    pub client: Client,
    handle: ServerHandle,
    /// The server's own database, dropped with it (real backend only).
    _database: Option<TestDatabase>,
}

/// Which adapters the API tests run on: PostgreSQL and Redis by default
/// (`DATABASE_URL`, `REDIS_URL`), the in-memory ones with
/// `TASKFLOW_API_BACKEND=memory`. `cargo xtask test` runs the suite on both.
fn memory_backend() -> bool {
    match std::env::var("TASKFLOW_API_BACKEND").as_deref() {
        Ok("memory") => true,
        Ok("services") | Err(_) => false,
        Ok(other) => panic!("TASKFLOW_API_BACKEND={other:?}: expected memory or services"),
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        // Sends the stop command at once; nothing waits for it.
        drop(self.handle.stop(false));
    }
}

/// An authenticated user: the tokens of one session.
#[derive(Debug, Clone)]
pub struct Session {
    pub user_id: String,
    pub email: String,
    pub access: String,
    pub refresh: String,
}

impl TestApp {
    /// A server with the test configuration.
    pub async fn spawn() -> Self {
        Self::spawn_with(&[]).await
    }

    /// A server with the test configuration plus (or overridden by) `vars`.
    pub async fn spawn_with(vars: &[(&str, &str)]) -> Self {
        init_telemetry();
        let mut env: BTreeMap<String, String> = [
            ("PORT", "0"),
            ("BIND_ADDR", "127.0.0.1"),
            ("JWT_SECRET", JWT_SECRET),
            ("LOG_LEVEL", "info"),
            ("SHUTDOWN_TIMEOUT", "1"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        let database = if memory_backend() {
            None
        } else {
            let database = TestDatabase::create().await;
            env.insert("DATABASE_URL".into(), database.url.clone());
            env.insert(
                "REDIS_URL".into(),
                std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into()),
            );
            env.insert(
                "REDIS_KEY_PREFIX".into(),
                format!("taskflow-test:{}:", uuid::Uuid::now_v7().simple()),
            );
            Some(database)
        };
        env.extend(vars.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())));
        let config = Config::from_lookup(|name| env.get(name).cloned())
            .expect("the test configuration is valid");
        let hasher = Argon2Hasher::with_params(8, 1, 1).expect("cheap argon2 parameters are valid");
        let app = Application::build_with_hasher(&config, hasher)
            .await
            .expect("the server starts");
        let port = app.port();
        let handle = app.handle();
        tokio::spawn(app.run_until_stopped());
        let client = Client::builder()
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(30))
            .build()
            .expect("the HTTP client builds");
        Self {
            address: format!("http://127.0.0.1:{port}"),
            client,
            handle,
            _database: database,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    /// A request to `path` (which may carry a query string).
    pub fn request(&self, method: Method, path: &str) -> RequestBuilder {
        self.client.request(method, self.url(path))
    }

    /// A request with `Authorization: Bearer <token>`.
    pub fn authed(&self, method: Method, path: &str, token: &str) -> RequestBuilder {
        self.request(method, path).bearer_auth(token)
    }

    pub async fn get(&self, path: &str, token: &str) -> Response {
        send(self.authed(Method::GET, path, token)).await
    }

    pub async fn post(&self, path: &str, token: &str, body: &Value) -> Response {
        send(self.authed(Method::POST, path, token).json(body)).await
    }

    pub async fn put(&self, path: &str, token: &str, body: &Value) -> Response {
        send(self.authed(Method::PUT, path, token).json(body)).await
    }

    pub async fn patch(&self, path: &str, token: &str, body: &Value) -> Response {
        send(self.authed(Method::PATCH, path, token).json(body)).await
    }

    pub async fn delete(&self, path: &str, token: &str) -> Response {
        send(self.authed(Method::DELETE, path, token)).await
    }

    /// An unauthenticated GET.
    pub async fn get_public(&self, path: &str) -> Response {
        send(self.request(Method::GET, path)).await
    }

    /// An unauthenticated JSON POST.
    pub async fn post_public(&self, path: &str, body: &Value) -> Response {
        send(self.request(Method::POST, path).json(body)).await
    }

    pub async fn register(&self, email: &str, password: &str, name: &str) -> Response {
        self.post_public(
            "/api/v1/auth/register",
            &json!({"email": email, "password": password, "name": name}),
        )
        .await
    }

    pub async fn login(&self, email: &str, password: &str) -> Response {
        self.post_public(
            "/api/v1/auth/login",
            &json!({"email": email, "password": password}),
        )
        .await
    }

    pub async fn refresh(&self, refresh_token: &str) -> Response {
        self.post_public(
            "/api/v1/auth/refresh",
            &json!({"refreshToken": refresh_token}),
        )
        .await
    }

    /// Logs in (which must succeed) and returns the session.
    pub async fn login_ok(&self, email: &str, password: &str) -> Session {
        let reply = assert_ok_envelope(self.login(email, password).await, 200).await;
        session_from(&reply.body["data"])
    }

    /// Registers `email` with [`PASSWORD`] and logs in.
    pub async fn signup(&self, email: &str) -> Session {
        assert_ok_envelope(self.register(email, PASSWORD, "Test User").await, 201).await;
        self.login_ok(email, PASSWORD).await
    }

    /// Creates a task (which must succeed) and returns it.
    pub async fn create_task(&self, token: &str, body: &Value) -> Value {
        let reply = assert_ok_envelope(self.post("/api/v1/tasks", token, body).await, 201).await;
        reply.body["data"].clone()
    }

    /// Every page of `GET /api/v1/tasks?<query>` with `limit`, following
    /// `nextCursor`, as one list.
    pub async fn list_all(&self, token: &str, query: &str, limit: u32) -> Vec<Value> {
        let path = if query.is_empty() {
            "/api/v1/tasks".to_owned()
        } else {
            format!("/api/v1/tasks?{query}")
        };
        self.pages(token, &path, limit).await
    }

    /// Every page of the list at `path` (which may carry a query string)
    /// with `limit`, following `nextCursor`, as one list.
    pub async fn pages(&self, token: &str, path: &str, limit: u32) -> Vec<Value> {
        let separator = if path.contains('?') { '&' } else { '?' };
        let mut items = Vec::new();
        let mut cursor: Option<String> = None;
        for _ in 0..1000 {
            let mut page_path = format!("{path}{separator}limit={limit}");
            if let Some(cursor) = &cursor {
                page_path.push_str("&cursor=");
                page_path.push_str(&encode_query_value(cursor));
            }
            let reply = assert_ok_envelope(self.get(&page_path, token).await, 200).await;
            let page = reply.body["data"].as_array().expect("a list").clone();
            let pagination = &reply.body["meta"]["pagination"];
            assert!(page.len() <= limit as usize, "page too long: {reply:?}");
            assert_eq!(
                pagination["hasMore"].as_bool(),
                Some(pagination["nextCursor"].is_string()),
                "hasMore and nextCursor disagree: {reply:?}"
            );
            items.extend(page);
            match pagination["nextCursor"].as_str() {
                Some(next) => cursor = Some(next.to_owned()),
                None => return items,
            }
        }
        panic!("pagination of {path:?} does not end");
    }

    /// `GET /users/me` (which must succeed).
    pub async fn me(&self, token: &str) -> Value {
        let reply = assert_ok_envelope(self.get("/api/v1/users/me", token).await, 200).await;
        reply.data().clone()
    }

    /// The id of the caller's Inbox.
    pub async fn inbox_id(&self, token: &str) -> String {
        id_of_field(&self.me(token).await, "inboxId")
    }

    /// Creates a project (which must succeed) and returns it.
    pub async fn create_project(&self, token: &str, name: &str) -> Value {
        let reply = assert_ok_envelope(
            self.post("/api/v1/projects", token, &json!({"name": name}))
                .await,
            201,
        )
        .await;
        reply.data().clone()
    }

    /// Adds `user_id` to `project_id` with `role` (which must succeed) and
    /// returns the membership.
    pub async fn add_member(
        &self,
        token: &str,
        project_id: &str,
        user_id: &str,
        role: &str,
    ) -> Value {
        let reply = assert_ok_envelope(
            self.post(
                &format!("/api/v1/projects/{project_id}/members"),
                token,
                &json!({"userId": user_id, "role": role}),
            )
            .await,
            201,
        )
        .await;
        reply.data().clone()
    }

    /// A project's whole activity, newest first (every page).
    pub async fn activity(&self, token: &str, project_id: &str) -> Vec<Value> {
        self.pages(
            token,
            &format!("/api/v1/projects/{project_id}/activity"),
            100,
        )
        .await
    }

    /// A task's whole history, newest first (every page).
    pub async fn history(&self, token: &str, task_id: &str) -> Vec<Value> {
        self.pages(token, &format!("/api/v1/tasks/{task_id}/history"), 100)
            .await
    }

    /// `writers` PATCHes of the task at `path` at once, the i-th setting
    /// the title to `Title {i}` with a request id of its own; each must
    /// succeed. Returns each one's request id and the task it answered.
    pub async fn concurrent_title_patches(
        &self,
        path: &str,
        token: &str,
        writers: usize,
    ) -> Vec<(String, Value)> {
        let mut running = tokio::task::JoinSet::new();
        for i in 0..writers {
            let request_id = fresh_request_id(&format!("writer{i}"));
            let request = self
                .authed(Method::PATCH, path, token)
                .header("X-Request-Id", &request_id)
                .json(&json!({"title": format!("Title {i}")}));
            running.spawn(async move {
                let reply = assert_ok_envelope(send(request).await, 200).await;
                (request_id, reply.data().clone())
            });
        }
        let mut done = Vec::new();
        while let Some(result) = running.join_next().await {
            done.push(result.expect("a writer finished"));
        }
        done
    }

    /// Sends `method path` as `token` with `X-Request-Id: request_id` (and
    /// `body` as JSON, if any) and reads the reply.
    pub async fn send_as(
        &self,
        method: Method,
        path: &str,
        token: &str,
        body: Option<&Value>,
        request_id: &str,
    ) -> Reply {
        let mut request = self
            .authed(method, path, token)
            .header("X-Request-Id", request_id);
        if let Some(body) = body {
            request = request.json(body);
        }
        Reply::read(send(request).await).await
    }
}

/// The keys of a JSON object, sorted.
#[track_caller]
pub fn sorted_keys(value: &Value) -> Vec<String> {
    object_keys(value).into_iter().collect()
}

/// `value["id"]` as a string (which must be there).
#[track_caller]
pub fn id_of(value: &Value) -> String {
    id_of_field(value, "id")
}

#[track_caller]
fn id_of_field(value: &Value, field: &str) -> String {
    value[field]
        .as_str()
        .unwrap_or_else(|| panic!("no {field} in {value}"))
        .to_owned()
}

/// A request id no other request of the suite sends: `tag` and a UUID.
pub fn fresh_request_id(tag: &str) -> String {
    format!("{tag}-{}", uuid::Uuid::now_v7().simple())
}

pub async fn send(request: RequestBuilder) -> Response {
    request
        .send()
        .await
        .expect("the request reaches the test server")
}

fn session_from(data: &Value) -> Session {
    let text = |v: &Value| v.as_str().expect("a string").to_owned();
    Session {
        user_id: text(&data["user"]["id"]),
        email: text(&data["user"]["email"]),
        access: text(&data["accessToken"]),
        refresh: text(&data["refreshToken"]),
    }
}

/// A response read in full.
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub text: String,
    /// The body as JSON, or `null` when empty or not JSON.
    pub body: Value,
}

impl Reply {
    pub async fn read(response: Response) -> Self {
        let status = response.status();
        let headers = response.headers().clone();
        let text = response.text().await.expect("the response body reads");
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        Self {
            status,
            headers,
            text,
            body,
        }
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The `X-Request-Id` header (which must be there).
    #[track_caller]
    pub fn request_id(&self) -> &str {
        self.header("x-request-id")
            .unwrap_or_else(|| panic!("no X-Request-Id header: {self:?}"))
    }

    pub fn data(&self) -> &Value {
        &self.body["data"]
    }

    pub fn error(&self) -> &Value {
        &self.body["error"]
    }

    /// `error.details` as field → messages.
    #[track_caller]
    pub fn details(&self) -> BTreeMap<String, Vec<String>> {
        serde_json::from_value(self.body["error"]["details"].clone()).unwrap_or_else(|e| {
            panic!("error.details is not a map of message lists ({e}): {self:?}")
        })
    }

    /// Asserts `error.details` names `field`.
    #[track_caller]
    pub fn assert_detail(&self, field: &str) {
        let details = self.details();
        assert!(
            details
                .get(field)
                .is_some_and(|messages| !messages.is_empty()),
            "expected error.details.{field}, got {details:?}"
        );
    }

    /// The status, a JSON body, and exactly the envelope's four keys.
    #[track_caller]
    fn assert_envelope(&self, status: u16) {
        assert_eq!(self.status.as_u16(), status, "unexpected status: {self:?}");
        self.assert_json_content_type();
        assert_eq!(
            object_keys(&self.body),
            ["data", "error", "meta", "success"]
                .map(str::to_owned)
                .into(),
            "envelope keys: {self:?}"
        );
    }

    /// Asserts the error envelope with `status` and `code`.
    #[track_caller]
    pub fn assert_error(&self, status: u16, code: &str) {
        self.assert_envelope(status);
        assert_eq!(self.body["success"], json!(false), "{self:?}");
        assert_eq!(self.body["data"], Value::Null, "{self:?}");
        assert_eq!(
            object_keys(self.error()),
            ["code", "details", "message"].map(str::to_owned).into(),
            "error keys: {self:?}"
        );
        assert_eq!(self.error()["code"], json!(code), "error code: {self:?}");
        let message = self.error()["message"].as_str().unwrap_or_default();
        assert!(!message.is_empty(), "error.message is empty: {self:?}");
        self.details();
        assert_eq!(
            object_keys(&self.body["meta"]),
            ["requestId".to_owned()].into(),
            "meta keys: {self:?}"
        );
        self.assert_request_id_matches();
    }

    /// Asserts the success envelope with `status`.
    #[track_caller]
    pub fn assert_ok(&self, status: u16) {
        self.assert_envelope(status);
        assert_eq!(self.body["success"], json!(true), "{self:?}");
        assert_eq!(self.body["error"], Value::Null, "{self:?}");
        self.assert_request_id_matches();
    }

    #[track_caller]
    fn assert_json_content_type(&self) {
        let content_type = self.header("content-type").unwrap_or_default();
        assert!(
            content_type.starts_with("application/json"),
            "content type {content_type:?}: {self:?}"
        );
    }

    #[track_caller]
    fn assert_request_id_matches(&self) {
        let in_body = self.body["meta"]["requestId"].as_str().unwrap_or_default();
        assert!(!in_body.is_empty(), "no meta.requestId: {self:?}");
        assert_eq!(self.request_id(), in_body, "X-Request-Id vs meta.requestId");
    }
}

fn object_keys(value: &Value) -> BTreeSet<String> {
    value
        .as_object()
        .map(|o| o.keys().cloned().collect())
        .unwrap_or_default()
}

/// Reads `response` and asserts it is the error envelope with `status` and
/// `code`, its `meta.requestId` equal to its `X-Request-Id`.
pub async fn assert_envelope_error(response: Response, status: u16, code: &str) -> Reply {
    let reply = Reply::read(response).await;
    reply.assert_error(status, code);
    reply
}

/// Reads `response` and asserts it is the success envelope with `status`.
pub async fn assert_ok_envelope(response: Response, status: u16) -> Reply {
    let reply = Reply::read(response).await;
    reply.assert_ok(status);
    reply
}

/// Reads `response` and asserts `204 No Content` with an empty body.
pub async fn assert_no_content(response: Response) -> Reply {
    let reply = Reply::read(response).await;
    assert_eq!(reply.status, StatusCode::NO_CONTENT, "{reply:?}");
    assert!(reply.text.is_empty(), "204 with a body: {reply:?}");
    reply.request_id();
    reply
}

/// Percent-encodes a query-string value (RFC 3986 unreserved characters
/// stay as they are; `+` in particular does not).
pub fn encode_query_value(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    for byte in raw.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// A fresh random id, as the server would accept in a path.
pub fn random_uuid() -> String {
    domain::TaskId::generate().to_string()
}

/// Whether `id` is what the server accepts as a request id.
pub fn is_valid_request_id(id: &str) -> bool {
    (1..=64).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

const BASE64URL: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// base64url without padding (as JWTs use it).
pub fn base64url_encode(bytes: &[u8]) -> String {
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | (u32::from(*b) << (16 - 8 * i)));
        for i in 0..=chunk.len() {
            out.push(char::from(BASE64URL[((n >> (18 - 6 * i)) & 63) as usize]));
        }
    }
    out
}

/// Decodes base64url without padding; `None` for anything else.
pub fn base64url_decode(text: &str) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    let mut bits = 0u32;
    let mut count = 0;
    for c in text.bytes() {
        let value = BASE64URL.iter().position(|b| *b == c)?;
        bits = (bits << 6) | u32::try_from(value).ok()?;
        count += 6;
        if count >= 8 {
            count -= 8;
            out.push(u8::try_from((bits >> count) & 0xff).ok()?);
        }
    }
    Some(out)
}

/// The claims (payload) of a JWT, without checking anything.
pub fn jwt_claims(token: &str) -> Value {
    let payload = token.split('.').nth(1).expect("a JWT has a payload");
    let bytes = base64url_decode(payload).expect("the JWT payload is base64url");
    serde_json::from_slice(&bytes).expect("the JWT payload is JSON")
}

#[test]
fn base64url_round_trips() {
    for raw in [
        &b""[..],
        b"f",
        b"fo",
        b"foo",
        b"foob",
        b"fooba",
        b"foobar",
        &[0xff, 0xfe],
    ] {
        let encoded = base64url_encode(raw);
        assert!(!encoded.contains('='));
        assert_eq!(base64url_decode(&encoded).as_deref(), Some(raw));
    }
    assert_eq!(base64url_encode(b"foobar"), "Zm9vYmFy");
    assert_eq!(base64url_encode(&[0xfb, 0xff]), "-_8");
}

#[test]
fn query_values_are_encoded() {
    assert_eq!(
        encode_query_value("2030-01-01T00:00:00+02:00"),
        "2030-01-01T00%3A00%3A00%2B02%3A00"
    );
    assert_eq!(encode_query_value("a-b_c.d~e"), "a-b_c.d~e");
}

//! The few REST calls a benchmark needs to set itself up, against a server
//! at `http://host:port`.

use std::time::{Duration, Instant};

use reqwest::{Client, StatusCode};
use serde_json::{Value, json};

pub type Error = String;

/// A client for the benchmark's REST calls (keep-alive, no proxy).
pub fn client() -> Client {
    Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(30))
        .pool_max_idle_per_host(256)
        .build()
        .unwrap_or_else(|_| Client::new())
}

/// Waits until `base` answers `GET /health` with 200, for at most `limit`
/// (or until its process `pid` is gone).
pub async fn wait_healthy(
    client: &Client,
    base: &str,
    pid: Option<u32>,
    limit: Duration,
) -> Result<(), Error> {
    let deadline = Instant::now() + limit;
    loop {
        if pid.is_some_and(|pid| !crate::procfs::alive(pid)) {
            return Err(format!("the server at {base} is not running"));
        }
        let answer = client.get(format!("{base}/health")).send().await;
        match answer {
            Ok(response) if response.status() == StatusCode::OK => return Ok(()),
            _ if Instant::now() < deadline => tokio::time::sleep(Duration::from_millis(200)).await,
            Ok(response) => return Err(format!("{base}/health answered {}", response.status())),
            Err(e) => return Err(format!("{base} did not answer in {limit:?}: {e}")),
        }
    }
}

/// Sends `request`, expects `want`, answers the envelope's `data` and `meta`.
async fn call(
    request: reqwest::RequestBuilder,
    want: StatusCode,
    what: &str,
) -> Result<(Value, Value), Error> {
    let response = request.send().await.map_err(|e| format!("{what}: {e}"))?;
    let status = response.status();
    let body: Value = response
        .json()
        .await
        .map_err(|e| format!("{what}: answered {status} without JSON: {e}"))?;
    if status != want {
        return Err(format!("{what}: answered {status}: {body}"));
    }
    Ok((body["data"].clone(), body["meta"].clone()))
}

/// A user registered and logged in on `base`: their access token.
pub async fn sign_up(client: &Client, base: &str, email: &str) -> Result<String, Error> {
    const PASSWORD: &str = "benchmark password 1";
    call(
        client
            .post(format!("{base}/api/v1/auth/register"))
            .json(&json!({"email": email, "password": PASSWORD, "name": "Bench"})),
        StatusCode::CREATED,
        "register",
    )
    .await?;
    let (data, _) = call(
        client
            .post(format!("{base}/api/v1/auth/login"))
            .json(&json!({"email": email, "password": PASSWORD})),
        StatusCode::OK,
        "login",
    )
    .await?;
    data["accessToken"]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| format!("login answered no accessToken: {data}"))
}

/// A new project of the token's user: its id.
pub async fn create_project(
    client: &Client,
    base: &str,
    token: &str,
    name: &str,
) -> Result<String, Error> {
    let (data, _) = call(
        client
            .post(format!("{base}/api/v1/projects"))
            .bearer_auth(token)
            .json(&json!({"name": name})),
        StatusCode::CREATED,
        "create a project",
    )
    .await?;
    id_of(&data)
}

/// A new task in `project`: its id.
pub async fn create_task(
    client: &Client,
    base: &str,
    token: &str,
    project: &str,
    title: &str,
) -> Result<String, Error> {
    let (data, _) = call(
        client
            .post(format!("{base}/api/v1/tasks"))
            .bearer_auth(token)
            .json(&json!({"title": title, "projectId": project})),
        StatusCode::CREATED,
        "create a task",
    )
    .await?;
    id_of(&data)
}

/// The head of `project`'s event log.
pub async fn head_seq(
    client: &Client,
    base: &str,
    token: &str,
    project: &str,
) -> Result<i64, Error> {
    let (_, meta) = call(
        client
            .get(format!("{base}/api/v1/projects/{project}/events?limit=1"))
            .bearer_auth(token),
        StatusCode::OK,
        "read the event log's head",
    )
    .await?;
    meta["headSeq"]
        .as_i64()
        .ok_or_else(|| format!("the events page has no meta.headSeq: {meta}"))
}

fn id_of(data: &Value) -> Result<String, Error> {
    data["id"]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| format!("no id in {data}"))
}

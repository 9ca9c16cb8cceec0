//! Live delivery over HTTP: the WebSocket at `/api/v1/ws` and the SSE
//! stream of one project. Both drive a [`live::Connection`]; they differ
//! only in framing and in how a client says what it wants.

use std::time::Duration;

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use actix_ws::{AggregatedMessage, CloseCode, CloseReason as WsCloseReason, Session};
use bytestring::ByteString;
use domain::{Event, Ports, Principal, ProjectId};
use live::{CloseReason, Connection, Next, Render, SubscribeError};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::cors::Origins;
use crate::dto::events::EventResponse;
use crate::envelope::ErrorEnvelope;
use crate::error::{ApiError, ErrorCode};
use crate::extract::{Caller, bearer_token};

/// This instance's hub, as the handlers know it.
pub type Hub<P> = live::Hub<P, Frames>;

/// Renders each event once for every stream: as a WebSocket message and as
/// an SSE event.
#[derive(Debug, Clone, Copy, Default)]
pub struct Frames;

/// An event, framed for each transport (cheap to clone).
#[derive(Debug, Clone)]
pub struct Frame {
    ws: ByteString,
    sse: web::Bytes,
}

impl Render for Frames {
    type Frame = Frame;

    fn render(&self, event: &Event) -> Frame {
        let json = json(&EventResponse::from(event));
        Frame {
            ws: format!(r#"{{"type":"event","event":{json}}}"#).into(),
            sse: sse_event(Some(event.seq), event.event.kind.as_str(), &json),
        }
    }
}

fn json<T: Serialize>(value: &T) -> String {
    // The DTOs serialise infallibly (no maps with non-string keys).
    serde_json::to_string(value).unwrap_or_else(|_| "null".to_owned())
}

fn sse_event(id: Option<i64>, kind: &str, data: &str) -> web::Bytes {
    let id = id.map(|id| format!("id: {id}\n")).unwrap_or_default();
    web::Bytes::from(format!("{id}event: {kind}\ndata: {data}\n\n"))
}

// The WebSocket.

/// What a client sends.
#[derive(Debug, Deserialize)]
#[serde(
    tag = "type",
    rename_all = "lowercase",
    rename_all_fields = "camelCase"
)]
enum ClientMessage {
    Auth {
        token: Token,
    },
    Subscribe {
        project_id: Uuid,
        since: Option<i64>,
    },
    Unsubscribe {
        project_id: Uuid,
    },
    Ping,
}

/// An access token as a client sent it: never printed.
#[derive(Deserialize)]
#[serde(transparent)]
struct Token(String);

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Token(..)")
    }
}

/// What the server sends, besides events.
#[derive(Debug, Serialize)]
#[serde(
    tag = "type",
    rename_all = "lowercase",
    rename_all_fields = "camelCase"
)]
enum ServerMessage<'a> {
    Subscribed {
        project_id: Uuid,
        head_seq: i64,
    },
    Unsubscribed {
        project_id: Uuid,
        reason: &'a str,
    },
    Resync {
        project_id: Uuid,
        head_seq: i64,
    },
    Error {
        code: ErrorCode,
        message: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        project_id: Option<Uuid>,
        #[serde(skip_serializing_if = "std::collections::BTreeMap::is_empty")]
        details: std::collections::BTreeMap<String, Vec<String>>,
    },
    Pong,
}

/// Close codes of the protocol.
const CLOSE_UNAUTHENTICATED: u16 = 4401;
const CLOSE_TOO_SLOW: u16 = 4008;

/// How long a send may wait for a client that reads nothing before the
/// connection is given up (a slower one falls a queue behind first, and
/// is closed with 4008 once it reads again).
const SEND_TIMEOUT: Duration = Duration::from_secs(30);

/// `GET /api/v1/ws`: upgrades to a WebSocket. A bearer token on the
/// upgrade request authenticates it (a bad one is a 401, no upgrade);
/// without one, the first message must be `{"type":"auth","token":…}`.
#[utoipa::path(
    get, path = "/api/v1/ws", tag = "live",
    description = "Upgrades to a WebSocket carrying JSON text messages (the protocol is in the document's description, under Live updates). Authenticate with `Authorization: Bearer` here, or, from a browser, with a first message `{\"type\":\"auth\",\"token\":\"…\"}` within 10 seconds.",
    responses(
        (status = 101, description = "Switched to the WebSocket protocol"),
        (status = 400, description = "Not a WebSocket upgrade request (`MALFORMED_REQUEST`)", body = ErrorEnvelope),
        (status = 401, description = "A bearer token was sent and is invalid or expired, or its session ended (`UNAUTHENTICATED`)", body = ErrorEnvelope),
        (status = 403, description = "A browser page of an origin `CORS_ORIGINS` does not list (`FORBIDDEN`)", body = ErrorEnvelope),
        (status = 503, description = "The session store does not answer (`SERVICE_UNAVAILABLE`)", body = ErrorEnvelope),
    )
)]
pub async fn socket<P: Ports>(
    req: HttpRequest,
    body: web::Payload,
    hub: web::Data<Hub<P>>,
) -> Result<HttpResponse, ApiError> {
    let origins = req
        .app_data::<web::Data<Origins>>()
        .map(|o| o.get_ref().clone())
        .unwrap_or_default();
    if !origins.allows_socket(&req) {
        return Err(ApiError::new(
            ErrorCode::Forbidden,
            "This page's origin may not open a socket (CORS_ORIGINS).",
        ));
    }
    let principal = match bearer_token(&req) {
        Some(token) => Some(hub.app().authenticate(&token).await?),
        None => None,
    };
    let (response, session, stream) = actix_ws::handle(&req, body)
        .map_err(|e| ApiError::malformed(format!("Not a WebSocket upgrade: {e}")))?;
    let settings = hub.settings();
    let stream = stream
        .max_frame_size(settings.max_message_bytes)
        .aggregate_continuations()
        .max_continuation_size(settings.max_message_bytes);
    let hub = hub.into_inner();
    actix_web::rt::spawn(async move {
        Socket::run((*hub).clone(), principal, session, stream).await;
    });
    Ok(response)
}

struct Socket<P: Ports> {
    session: Session,
    _ports: std::marker::PhantomData<fn() -> P>,
}

/// How a socket's loop ends.
enum End {
    /// Close with this code and reason.
    Close(u16, &'static str),
    /// The peer is gone (or unresponsive): just drop the connection.
    Gone,
}

impl<P: Ports> Socket<P> {
    async fn run(
        hub: Hub<P>,
        principal: Option<Principal>,
        session: Session,
        mut stream: actix_ws::AggregatedMessageStream,
    ) {
        let mut socket = Self {
            session,
            _ports: std::marker::PhantomData,
        };
        let principal = match principal {
            Some(principal) => principal,
            None => match socket.authenticate(&hub, &mut stream).await {
                Ok(principal) => principal,
                Err(end) => return socket.end(end).await,
            },
        };
        let end = match hub.connect(principal) {
            Ok(mut conn) => socket.serve(&hub, &mut conn, &mut stream).await,
            Err(e) => {
                socket.error(ErrorCode::Conflict, e.to_string(), None).await;
                End::Close(1013, "too many connections")
            }
        };
        socket.end(end).await;
    }

    /// The first message must authenticate, within the auth timeout.
    async fn authenticate(
        &mut self,
        hub: &Hub<P>,
        stream: &mut actix_ws::AggregatedMessageStream,
    ) -> Result<Principal, End> {
        let unauthenticated = End::Close(CLOSE_UNAUTHENTICATED, "unauthenticated");
        let first = actix_web::rt::time::timeout(hub.settings().auth_timeout, stream.recv()).await;
        let Ok(Some(Ok(AggregatedMessage::Text(text)))) = first else {
            return Err(unauthenticated);
        };
        let Ok(ClientMessage::Auth { token }) = serde_json::from_str::<ClientMessage>(&text) else {
            self.error(
                ErrorCode::Unauthenticated,
                "The first message must be {\"type\":\"auth\",\"token\":\"…\"}.".to_owned(),
                None,
            )
            .await;
            return Err(unauthenticated);
        };
        match hub.app().authenticate(&token.0).await {
            Ok(principal) => Ok(principal),
            Err(e) => {
                let e = ApiError::from(e);
                let unavailable = e.code != ErrorCode::Unauthenticated;
                self.error(e.code, e.message, None).await;
                Err(if unavailable {
                    End::Close(1011, "try again")
                } else {
                    unauthenticated
                })
            }
        }
    }

    async fn serve(
        &mut self,
        hub: &Hub<P>,
        conn: &mut Connection<P, Frames>,
        stream: &mut actix_ws::AggregatedMessageStream,
    ) -> End {
        let settings = hub.settings().clone();
        let mut pings = actix_web::rt::time::interval(settings.ping_interval);
        pings.tick().await;
        let mut heard = actix_web::rt::time::Instant::now();
        loop {
            tokio::select! {
                message = stream.recv() => {
                    heard = actix_web::rt::time::Instant::now();
                    let message = match message {
                        None => return End::Gone,
                        Some(Err(actix_ws::ProtocolError::Overflow)) => {
                            return End::Close(1009, "message too big");
                        }
                        Some(Err(_)) => return End::Close(1002, "protocol error"),
                        Some(Ok(message)) => message,
                    };
                    let sent = match message {
                        AggregatedMessage::Text(text) => self.on_text(conn, &text).await,
                        AggregatedMessage::Binary(_) => {
                            self.error(ErrorCode::MalformedRequest, "Messages are JSON text.".to_owned(), None).await
                        }
                        AggregatedMessage::Ping(bytes) => {
                            timed(self.session.pong(&bytes)).await
                        }
                        AggregatedMessage::Pong(_) => true,
                        AggregatedMessage::Close(_) => return End::Close(1000, "bye"),
                    };
                    if !sent {
                        return End::Gone;
                    }
                }
                next = conn.next() => {
                    let sent = match next {
                        Next::Event { frame, .. } => self.send(frame.ws).await,
                        Next::Unsubscribed { project, reason } => {
                            self.message(&ServerMessage::Unsubscribed { project_id: project.0, reason: reason.as_str() }).await
                        }
                        Next::Resync { project, head } => {
                            self.message(&ServerMessage::Resync { project_id: project.0, head_seq: head }).await
                        }
                        Next::Closed(CloseReason::SessionEnded) => {
                            return End::Close(CLOSE_UNAUTHENTICATED, "session ended");
                        }
                        Next::Closed(CloseReason::TooSlow) => {
                            return End::Close(CLOSE_TOO_SLOW, "too slow: reconnect with since");
                        }
                        Next::Closed(CloseReason::Unavailable) => {
                            return End::Close(1011, "unavailable: reconnect with since");
                        }
                        Next::Closed(CloseReason::ShuttingDown) => {
                            return End::Close(1001, "server stopping: reconnect with since");
                        }
                    };
                    if !sent {
                        return End::Gone;
                    }
                }
                _ = pings.tick() => {
                    if heard.elapsed() >= settings.idle_timeout {
                        return End::Close(1001, "no pong");
                    }
                    if !timed(self.session.ping(b"")).await {
                        return End::Gone;
                    }
                }
            }
        }
    }

    /// A client message: answers whether the socket still takes sends.
    async fn on_text(&mut self, conn: &mut Connection<P, Frames>, text: &str) -> bool {
        let message = match serde_json::from_str::<ClientMessage>(text) {
            Ok(message) => message,
            Err(e) => {
                let message =
                    format!("Not a message of the protocol (subscribe, unsubscribe, ping): {e}");
                return self.error(ErrorCode::MalformedRequest, message, None).await;
            }
        };
        match message {
            ClientMessage::Ping => self.message(&ServerMessage::Pong).await,
            ClientMessage::Auth { .. } => {
                self.error(
                    ErrorCode::MalformedRequest,
                    "Already authenticated.".to_owned(),
                    None,
                )
                .await
            }
            ClientMessage::Subscribe { project_id, since } => {
                match conn.subscribe(ProjectId(project_id), since).await {
                    Ok(head) => {
                        self.message(&ServerMessage::Subscribed {
                            project_id,
                            head_seq: head,
                        })
                        .await
                    }
                    Err(e) => self.refused(e, project_id).await,
                }
            }
            ClientMessage::Unsubscribe { project_id } => {
                conn.unsubscribe(ProjectId(project_id));
                self.message(&ServerMessage::Unsubscribed {
                    project_id,
                    reason: live::UnsubscribeReason::Client.as_str(),
                })
                .await
            }
        }
    }

    async fn refused(&mut self, e: SubscribeError, project: Uuid) -> bool {
        self.api_error(ApiError::from(e), Some(project)).await
    }

    async fn error(&mut self, code: ErrorCode, message: String, project: Option<Uuid>) -> bool {
        self.api_error(ApiError::new(code, message), project).await
    }

    async fn api_error(&mut self, e: ApiError, project: Option<Uuid>) -> bool {
        let message = ServerMessage::Error {
            code: e.code,
            message: e.message,
            project_id: project,
            details: e.details,
        };
        self.message(&message).await
    }

    async fn message(&mut self, message: &ServerMessage<'_>) -> bool {
        self.send(json(message).into()).await
    }

    async fn send(&mut self, text: ByteString) -> bool {
        timed(self.session.text(text)).await
    }

    async fn end(self, end: End) {
        if let End::Close(code, reason) = end {
            let reason = WsCloseReason {
                code: CloseCode::from(code),
                description: Some(reason.to_owned()),
            };
            let _ =
                actix_web::rt::time::timeout(SEND_TIMEOUT, self.session.close(Some(reason))).await;
        }
    }
}

/// A send that gives up on a client that reads nothing.
async fn timed<F>(send: F) -> bool
where
    F: Future<Output = Result<(), actix_ws::Closed>>,
{
    matches!(
        actix_web::rt::time::timeout(SEND_TIMEOUT, send).await,
        Ok(Ok(()))
    )
}

// Server-Sent Events.

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct StreamParams {
    /// Replay the events after this seq first (the `Last-Event-ID` header
    /// wins over it); without either, only events from now on.
    #[param(value_type = Option<i64>, minimum = 0)]
    pub since: Option<String>,
}

/// How often an idle SSE stream sends a comment, so proxies keep it open
/// and a gone client is noticed.
const SSE_KEEPALIVE: Duration = Duration::from_secs(15);

/// `GET /api/v1/projects/{id}/events/stream`: the project's events as
/// Server-Sent Events.
#[utoipa::path(
    get, path = "/api/v1/projects/{id}/events/stream", tag = "live",
    security(("bearer" = [])),
    description = "The project's events as Server-Sent Events, one per log event: `id: <seq>`, `event: <type>`, `data: <the event as JSON>`. With `Last-Event-ID` (which wins) or `since`, the events after it come first, from the log; then live ones, in `seq` order, none twice. Comments (`: keep-alive`) come every 15 seconds. An `event: resync` (data `{projectId, headSeq}`) means the events after `since` are no longer kept: reload the state. The stream ends with `event: unsubscribed` (data `{projectId, reason}`) when the caller stops being a member or the project is deleted, and without one when the session ends.",
    params(
        ("id" = Uuid, Path, description = "Project id"),
        ("Last-Event-ID" = Option<i64>, Header, description = "The last `seq` received: resume after it"),
        StreamParams,
    ),
    responses(
        (status = 200, description = "The event stream", content_type = "text/event-stream", body = String),
        (status = 400, description = "Bad id or query parameter (`MALFORMED_REQUEST`)", body = ErrorEnvelope),
        (status = 401, description = "Not authenticated (`UNAUTHENTICATED`)", body = ErrorEnvelope),
        (status = 404, description = "No such project, or the caller is not a member (`NOT_FOUND`)", body = ErrorEnvelope),
        (status = 409, description = "Too many live connections for this user (`CONFLICT`)", body = ErrorEnvelope),
        (status = 422, description = "`since` or `Last-Event-ID` is not a seq of the log (`VALIDATION_FAILED`)", body = ErrorEnvelope),
        (status = 503, description = "A store does not answer (`SERVICE_UNAVAILABLE`)", body = ErrorEnvelope),
    )
)]
pub async fn event_stream<P: Ports>(
    req: HttpRequest,
    caller: Caller<P>,
    id: web::Path<Uuid>,
    params: web::Query<StreamParams>,
    hub: web::Data<Hub<P>>,
) -> Result<HttpResponse, ApiError> {
    let last_event_id = req
        .headers()
        .get("Last-Event-ID")
        .map(|v| v.to_str().unwrap_or("").trim().to_owned());
    let (field, raw) = match last_event_id {
        Some(raw) => ("Last-Event-ID", Some(raw)),
        None => ("since", params.into_inner().since),
    };
    let since = match raw {
        None => None,
        Some(raw) => Some(raw.parse::<i64>().ok().filter(|n| *n >= 0).ok_or_else(|| {
            ApiError::validation(&domain::ValidationErrors::single(
                field,
                "must be an integer, 0 or more",
            ))
        })?),
    };
    let mut conn = hub
        .connect(caller.principal)
        .map_err(|e| ApiError::new(ErrorCode::Conflict, e.to_string()))?;
    conn.subscribe(ProjectId(*id), since).await?;
    let (tx, rx) = tokio::sync::mpsc::channel::<web::Bytes>(16);
    actix_web::rt::spawn(async move {
        let mut keepalive = actix_web::rt::time::interval(SSE_KEEPALIVE);
        keepalive.tick().await;
        // Opens the stream at once, so the client knows it is live.
        if tx
            .send(web::Bytes::from_static(b": live\n\n"))
            .await
            .is_err()
        {
            return;
        }
        loop {
            let chunk = tokio::select! {
                next = conn.next() => match next {
                    Next::Event { frame, .. } => frame.sse,
                    Next::Resync { project, head } => sse_event(None, "resync", &json(&ServerMessage::Resync { project_id: project.0, head_seq: head })),
                    Next::Unsubscribed { project, reason } => {
                        let data = json(&ServerMessage::Unsubscribed { project_id: project.0, reason: reason.as_str() });
                        let _ = tx.send(sse_event(None, "unsubscribed", &data)).await;
                        return;
                    }
                    Next::Closed(_) => return,
                },
                _ = keepalive.tick() => web::Bytes::from_static(b": keep-alive\n\n"),
                () = tx.closed() => return,
            };
            // A client that reads nothing is given up after a while (its
            // queue overflows meanwhile; its stream ends).
            let sent = actix_web::rt::time::timeout(SEND_TIMEOUT, tx.send(chunk)).await;
            if !matches!(sent, Ok(Ok(()))) {
                return;
            }
        }
    });
    Ok(HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, "text/event-stream"))
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .insert_header(("X-Accel-Buffering", "no"))
        .streaming(Chunks(rx)))
}

/// The SSE body: what the stream's task sends.
struct Chunks(tokio::sync::mpsc::Receiver<web::Bytes>);

impl futures_core::Stream for Chunks {
    type Item = Result<web::Bytes, actix_web::Error>;

    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Self::Item>> {
        self.0.poll_recv(cx).map(|chunk| chunk.map(Ok))
    }
}

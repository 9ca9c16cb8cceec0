//! Which browser origins may use the API (`CORS_ORIGINS`): the CORS
//! middleware for REST ([`middleware`]) and the `Origin` check of the
//! WebSocket upgrade ([`Origins::allows_socket`]), both from one list.

use std::fmt;
use std::net::Ipv6Addr;
use std::sync::Arc;

use actix_cors::Cors;
use actix_web::HttpRequest;
use actix_web::http::{Method, header};
use actix_web::middleware::Condition;

/// How long a browser may cache a preflight answer, in seconds.
pub const PREFLIGHT_MAX_AGE: usize = 600;

/// The methods a listed origin may use.
const ALLOWED_METHODS: [Method; 6] = [
    Method::GET,
    Method::HEAD,
    Method::POST,
    Method::PUT,
    Method::PATCH,
    Method::DELETE,
];

/// The request headers a listed origin may send (besides the CORS-safelisted ones).
const ALLOWED_HEADERS: [&str; 9] = [
    "authorization",
    "content-type",
    "if-match",
    "if-none-match",
    "idempotency-key",
    "x-client-mutation-id",
    "x-request-id",
    "last-event-id",
    "x-csrf-token",
];

/// The response headers a listed origin's scripts may read (besides the
/// CORS-safelisted ones).
const EXPOSED_HEADERS: [&str; 7] = [
    "etag",
    "location",
    "x-request-id",
    "retry-after",
    "idempotent-replayed",
    "ratelimit",
    "ratelimit-policy",
];

/// A web origin, `scheme://host[:port]`, in the form a browser sends it in
/// `Origin`: `http` or `https`, the host in lower case, no default port.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Origin {
    https: bool,
    /// Lower case; an IPv6 address keeps its brackets.
    host: String,
    /// Always explicit (80 or 443 when the origin names none).
    port: u16,
}

/// Why a text is not an [`Origin`]; its `Display` is one line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidOrigin {
    raw: String,
    reason: &'static str,
}

impl fmt::Display for InvalidOrigin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?} is not an origin: {}", self.raw, self.reason)
    }
}

impl std::error::Error for InvalidOrigin {}

impl Origin {
    /// Parses `scheme://host[:port]`. Case and a default port are
    /// normalised away (`HTTPS://App.example.com:443` is
    /// `https://app.example.com`); anything else a browser would never
    /// send is refused: `*`, `null`, a path (even `/`), a query, user
    /// information, a scheme other than `http` and `https`, a host that is
    /// not ASCII (use its punycode form).
    pub fn parse(raw: &str) -> Result<Self, InvalidOrigin> {
        let invalid = |reason| InvalidOrigin {
            raw: raw.to_owned(),
            reason,
        };
        let text = raw.trim();
        if text == "*" {
            return Err(invalid(
                "a wildcard is not accepted (credentials are allowed, which browsers refuse with `*`): list each origin",
            ));
        }
        let (scheme, rest) = text
            .split_once("://")
            .ok_or_else(|| invalid("expected scheme://host[:port]"))?;
        let https = match scheme.to_ascii_lowercase().as_str() {
            "http" => false,
            "https" => true,
            _ => return Err(invalid("the scheme must be http or https")),
        };
        if rest.contains(['/', '?', '#']) {
            return Err(invalid(
                "an origin has no path, query or fragment (not even a trailing /)",
            ));
        }
        if rest.contains('@') {
            return Err(invalid("an origin has no user information"));
        }
        let (host, port) = split_host_port(rest).ok_or_else(|| invalid("bad host or port"))?;
        let port = match port {
            None => {
                if https {
                    443
                } else {
                    80
                }
            }
            Some(port) => port,
        };
        Ok(Self {
            https,
            host: host.to_ascii_lowercase(),
            port,
        })
    }

    fn default_port(&self) -> u16 {
        if self.https { 443 } else { 80 }
    }
}

/// `host[:port]` with a DNS name, an IPv4 address or a bracketed IPv6
/// address, and a port from 1 to 65535 when there is one.
fn split_host_port(authority: &str) -> Option<(&str, Option<u16>)> {
    let (host, port) = if let Some(inner) = authority.strip_prefix('[') {
        let end = inner.find(']')?;
        inner[..end].parse::<Ipv6Addr>().ok()?;
        let (host, after) = authority.split_at(end + 2);
        match after {
            "" => (host, None),
            _ => (host, Some(after.strip_prefix(':')?)),
        }
    } else {
        let (host, port) = match authority.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        };
        let label_ok = |label: &str| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        };
        if host.len() > 253 || !host.split('.').all(label_ok) {
            return None;
        }
        (host, port)
    };
    let port = match port {
        None => None,
        Some(digits) if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) => {
            Some(digits.parse::<u16>().ok().filter(|p| *p != 0)?)
        }
        Some(_) => return None,
    };
    Some((host, port))
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let scheme = if self.https { "https" } else { "http" };
        write!(f, "{scheme}://{}", self.host)?;
        if self.port != self.default_port() {
            write!(f, ":{}", self.port)?;
        }
        Ok(())
    }
}

/// The origins of `CORS_ORIGINS`, or none set. Cheap to clone; the server
/// registers it as `web::Data<Origins>`.
///
/// - Listed origins may call the REST API from a browser (CORS, with
///   credentials) and open the WebSocket.
/// - Same-origin pages may always open the WebSocket, as they may always
///   call the REST API (CORS does not apply to them).
/// - Unset: no origin gets CORS headers; only same-origin pages may open
///   the WebSocket.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Origins {
    listed: Option<Arc<[Origin]>>,
}

impl Origins {
    /// The given origins; an empty list is the same as none set.
    pub fn new(origins: impl IntoIterator<Item = Origin>) -> Self {
        let mut listed: Vec<Origin> = Vec::new();
        for origin in origins {
            if !listed.contains(&origin) {
                listed.push(origin);
            }
        }
        Self {
            listed: (!listed.is_empty()).then(|| listed.into()),
        }
    }

    /// A comma-separated list (`CORS_ORIGINS`); empty entries are skipped.
    pub fn parse_list(raw: &str) -> Result<Self, InvalidOrigin> {
        let origins = raw
            .split(',')
            .filter(|entry| !entry.trim().is_empty())
            .map(Origin::parse)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self::new(origins))
    }

    /// The listed origins, `None` when the list is not set.
    pub fn listed(&self) -> Option<&[Origin]> {
        self.listed.as_deref()
    }

    fn lists(&self, origin: &Origin) -> bool {
        self.listed().is_some_and(|listed| listed.contains(origin))
    }

    /// Whether the WebSocket upgrade `req` may proceed, by its `Origin`
    /// (which browsers always send on a WebSocket handshake and scripts
    /// cannot forge): true without `Origin` (not a browser: nothing to
    /// protect against), for a listed origin, and for the request's own
    /// origin (its scheme, host and port those of the request as
    /// [`actix_web::dev::ConnectionInfo`] resolves them, so behind a proxy
    /// that terminates TLS the proxy must send `X-Forwarded-Proto` or
    /// `Forwarded`); false otherwise, including for an `Origin` that is
    /// not an origin (`null`).
    ///
    /// When it is false the WebSocket endpoint answers 403 `FORBIDDEN` in
    /// the error envelope and does not upgrade: this is what stops a page
    /// on another site from opening a socket with the user's cookies.
    pub fn allows_socket(&self, req: &HttpRequest) -> bool {
        let Some(value) = req.headers().get(header::ORIGIN) else {
            return true;
        };
        let Some(origin) = value.to_str().ok().and_then(|v| Origin::parse(v).ok()) else {
            return false;
        };
        self.lists(&origin) || request_origin(req).is_some_and(|own| own == origin)
    }
}

/// The origin the request was addressed to: the connection's scheme (a
/// WebSocket scheme counts as its HTTP twin) and its host.
fn request_origin(req: &HttpRequest) -> Option<Origin> {
    let info = req.connection_info();
    let scheme = match info.scheme().to_ascii_lowercase().as_str() {
        "http" | "ws" => "http",
        "https" | "wss" => "https",
        _ => return None,
    };
    Origin::parse(&format!("{scheme}://{}", info.host())).ok()
}

/// The CORS middleware for REST: a listed origin gets its own origin back in
/// `Access-Control-Allow-Origin` (with `Vary: Origin`, credentials allowed,
/// the exposed headers), and its preflight `OPTIONS` is answered 200 with
/// the allowed methods and headers and [`PREFLIGHT_MAX_AGE`]. Any other
/// origin gets no `Access-Control-Allow-Origin`, so the browser keeps the
/// answer from the page; its preflight is 400 (rendered as the envelope by
/// [`crate::request_context`], which must stay outside this middleware).
/// Requests without `Origin` are served as without CORS. With the list unset
/// the middleware is off: no CORS header at all.
pub fn middleware(origins: &Origins) -> Condition<Cors> {
    let Some(listed) = origins.listed() else {
        return Condition::new(false, Cors::default());
    };
    let mut cors = Cors::default()
        .allowed_methods(ALLOWED_METHODS)
        .allowed_headers(ALLOWED_HEADERS)
        .expose_headers(EXPOSED_HEADERS)
        .supports_credentials()
        .max_age(PREFLIGHT_MAX_AGE);
    for origin in listed {
        cors = cors.allowed_origin(&origin.to_string());
    }
    Condition::new(true, cors)
}

#[cfg(test)]
mod tests {
    use actix_web::test::TestRequest;

    use super::*;

    #[test]
    fn origins_are_parsed_and_normalised() {
        for (raw, expected) in [
            ("https://app.example.com", "https://app.example.com"),
            (" HTTPS://App.Example.COM ", "https://app.example.com"),
            ("https://app.example.com:443", "https://app.example.com"),
            ("http://localhost:80", "http://localhost"),
            ("http://localhost:5173", "http://localhost:5173"),
            ("https://app.example.com:80", "https://app.example.com:80"),
            ("http://127.0.0.1:3000", "http://127.0.0.1:3000"),
            ("http://[::1]:8080", "http://[::1]:8080"),
            ("http://[::1]", "http://[::1]"),
            (
                "http://xn--bcher-kva.example",
                "http://xn--bcher-kva.example",
            ),
        ] {
            let origin = Origin::parse(raw).unwrap_or_else(|e| panic!("{raw}: {e}"));
            assert_eq!(origin.to_string(), expected, "{raw}");
        }
    }

    #[test]
    fn what_a_browser_never_sends_is_refused() {
        for raw in [
            "*",
            "null",
            "",
            "app.example.com",
            "https://",
            "https://app.example.com/",
            "https://app.example.com/app",
            "https://app.example.com?x=1",
            "https://app.example.com#top",
            "https://user@app.example.com",
            "ftp://app.example.com",
            "ws://app.example.com",
            "https://app.example.com:",
            "https://app.example.com:0",
            "https://app.example.com:65536",
            "https://app.example.com:+80",
            "https://app..example.com",
            "https://app_example.com",
            "https://bücher.example",
            "https://[::1",
            "https://[not-ipv6]",
            "https://[::1]x",
            "https://a:b:c",
        ] {
            let e = Origin::parse(raw).expect_err(raw);
            assert!(!e.to_string().contains('\n'), "{e}");
        }
        let e = Origin::parse("*").expect_err("wildcard");
        assert!(e.to_string().contains("wildcard"), "{e}");
    }

    #[test]
    fn a_list_skips_empty_entries_and_duplicates() {
        let origins =
            Origins::parse_list("https://a.example, ,http://localhost:5173,https://A.example:443")
                .expect("valid");
        let listed: Vec<String> = origins
            .listed()
            .expect("set")
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(listed, ["https://a.example", "http://localhost:5173"]);
        assert_eq!(
            Origins::parse_list(" , ").expect("valid"),
            Origins::default()
        );
        assert!(Origins::parse_list("https://a.example,*").is_err());
    }

    /// The list, `Origin`, `Host`, `X-Forwarded-Proto`, and whether a socket
    /// may open.
    type Case<'a> = (&'a Origins, Option<&'a str>, &'a str, Option<&'a str>, bool);

    #[test]
    fn the_socket_origin_policy() {
        let listed =
            Origins::parse_list("https://app.example.com,http://localhost:5173").expect("valid");
        let unset = Origins::default();
        let cases: &[Case<'_>] = &[
            // Not a browser: nothing to check.
            (&unset, None, "api.example.com", None, true),
            (&listed, None, "api.example.com", None, true),
            // Listed.
            (
                &listed,
                Some("https://app.example.com"),
                "api.example.com",
                None,
                true,
            ),
            (
                &listed,
                Some("http://localhost:5173"),
                "127.0.0.1:3000",
                None,
                true,
            ),
            // Listed origins compare as origins: case and default port.
            (
                &listed,
                Some("https://App.Example.com:443"),
                "api.example.com",
                None,
                true,
            ),
            // Not listed, another site.
            (
                &listed,
                Some("https://evil.example"),
                "api.example.com",
                None,
                false,
            ),
            (
                &unset,
                Some("https://evil.example"),
                "api.example.com",
                None,
                false,
            ),
            (
                &listed,
                Some("http://localhost:5174"),
                "127.0.0.1:3000",
                None,
                false,
            ),
            // Same origin, listed or not.
            (
                &unset,
                Some("http://127.0.0.1:3000"),
                "127.0.0.1:3000",
                None,
                true,
            ),
            (
                &listed,
                Some("http://127.0.0.1:3000"),
                "127.0.0.1:3000",
                None,
                true,
            ),
            (
                &unset,
                Some("http://api.example.com"),
                "API.example.com:80",
                None,
                true,
            ),
            // Same host, another port or scheme: another origin.
            (
                &unset,
                Some("http://127.0.0.1:3001"),
                "127.0.0.1:3000",
                None,
                false,
            ),
            (
                &unset,
                Some("https://api.example.com"),
                "api.example.com",
                None,
                false,
            ),
            (
                &unset,
                Some("http://api.example.com:8080"),
                "api.example.com",
                None,
                false,
            ),
            // Behind a proxy that terminates TLS and says so.
            (
                &unset,
                Some("https://api.example.com"),
                "api.example.com",
                Some("https"),
                true,
            ),
            (
                &unset,
                Some("http://api.example.com"),
                "api.example.com",
                Some("https"),
                false,
            ),
            // Not an origin: an opaque one (sandboxed frame, file:) or garbage.
            (&unset, Some("null"), "api.example.com", None, false),
            (&listed, Some("null"), "api.example.com", None, false),
            (
                &unset,
                Some("api.example.com"),
                "api.example.com",
                None,
                false,
            ),
        ];
        for &(origins, origin, host, proto, allowed) in cases {
            let mut req = TestRequest::get()
                .uri("/api/v1/ws")
                .insert_header((header::HOST, host));
            if let Some(origin) = origin {
                req = req.insert_header((header::ORIGIN, origin));
            }
            if let Some(proto) = proto {
                req = req.insert_header(("x-forwarded-proto", proto));
            }
            let req = req.to_http_request();
            assert_eq!(
                origins.allows_socket(&req),
                allowed,
                "list {:?}, Origin {origin:?}, Host {host}, proto {proto:?}",
                origins.listed()
            );
        }
    }
}

//! HTTP/1.1 as the web listeners need it: a request head parsed (httparse) within limits, routed
//! to what it asks for, and the response head written.
//!
//! Limits: a head of at most [`MAX_HEAD`] bytes with at most [`MAX_HEADERS`] fields (else `431`);
//! a request body is never read (a request announcing one is refused with `400` and the
//! connection closed, since its bytes would be taken for the next request). The reactor adds the
//! deadline for a whole head (slowloris) and the number of requests per connection.
//!
//! The WebSocket handshake (RFC 6455 section 4.2) is checked here: `GET`, HTTP/1.1, `Upgrade:
//! websocket`, `Connection: upgrade`, a `Sec-WebSocket-Key` of 16 bytes in base64 (else `400`),
//! `Sec-WebSocket-Version: 13` (else `426` naming it), and an `Origin` allowed by
//! [`OriginPolicy`] (else `403`). This module is pure: no sockets, no clock, no panics on input.

use std::fmt::Write as _;

/// The longest request head accepted, in bytes; a longer one gets `431`.
pub const MAX_HEAD: usize = 8 * 1024;
/// The most header fields in one request; more get `431`.
pub const MAX_HEADERS: usize = 32;

/// What a listener serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// `--http-listen`: the page, its assets and the WebSocket.
    Page,
    /// `--metrics-listen`: `/metrics`, `/healthz`, `/readyz`.
    Metrics,
}

/// Which origins may open a WebSocket (`--http-origin`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum OriginPolicy {
    /// The page's own: the `Origin`'s host and port are the request's `Host`.
    #[default]
    SameHost,
    /// Exactly these origins (`scheme://host[:port]`, compared without regard to case).
    List(Vec<String>),
}

impl OriginPolicy {
    /// Whether a request with `origin` (if it sent one) and `host` may upgrade. A request with
    /// no `Origin` is not from a browser (which always sends one), so no page of another site
    /// can be behind it: it may.
    pub fn allows(&self, origin: Option<&str>, host: Option<&str>) -> bool {
        let Some(origin) = origin else {
            return true;
        };
        let origin = origin.trim().trim_end_matches('/');
        match self {
            OriginPolicy::SameHost => {
                let Some(rest) = origin
                    .strip_prefix("http://")
                    .or_else(|| origin.strip_prefix("https://"))
                else {
                    return false;
                };
                host.is_some_and(|h| h.trim().eq_ignore_ascii_case(rest))
            }
            OriginPolicy::List(allowed) => allowed
                .iter()
                .any(|a| a.trim_end_matches('/').eq_ignore_ascii_case(origin)),
        }
    }
}

/// What a request asks for, once routed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// One of the page's files (by path), `GET` or `HEAD`.
    Asset {
        /// The path asked for.
        path: String,
        /// `HEAD`: the head only.
        head_only: bool,
        /// The request's `If-None-Match`, for a `304`.
        if_none_match: Option<String>,
    },
    /// `/metrics`.
    Metrics {
        /// `HEAD`: the head only.
        head_only: bool,
    },
    /// `/healthz`.
    Health,
    /// `/readyz`.
    Ready,
    /// A valid WebSocket handshake: answer `101` with this `Sec-WebSocket-Accept`.
    Upgrade {
        /// The accept key derived from the client's key.
        accept: String,
    },
    /// A refusal with this status (and, for `426`, the version header).
    Refuse(Status),
}

/// The statuses this server answers with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// 200.
    Ok,
    /// 304.
    NotModified,
    /// 400.
    BadRequest,
    /// 403.
    Forbidden,
    /// 404.
    NotFound,
    /// 405.
    MethodNotAllowed,
    /// 408: the head did not arrive in time.
    RequestTimeout,
    /// 426: WebSocket version not supported.
    UpgradeRequired,
    /// 431.
    HeadersTooLarge,
    /// 503.
    Unavailable,
}

impl Status {
    /// The code and reason phrase.
    pub fn line(self) -> (u16, &'static str) {
        match self {
            Status::Ok => (200, "OK"),
            Status::NotModified => (304, "Not Modified"),
            Status::BadRequest => (400, "Bad Request"),
            Status::Forbidden => (403, "Forbidden"),
            Status::NotFound => (404, "Not Found"),
            Status::MethodNotAllowed => (405, "Method Not Allowed"),
            Status::RequestTimeout => (408, "Request Timeout"),
            Status::UpgradeRequired => (426, "Upgrade Required"),
            Status::HeadersTooLarge => (431, "Request Header Fields Too Large"),
            Status::Unavailable => (503, "Service Unavailable"),
        }
    }
}

/// The outcome of looking at the bytes received so far.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Parsed {
    /// The head is not complete yet (and within [`MAX_HEAD`]).
    Incomplete,
    /// A whole head of `len` bytes: what it asks for, and whether the connection may serve
    /// another request after it.
    Request {
        /// Bytes of the head, blank line included.
        len: usize,
        /// What to answer.
        route: Route,
        /// The client asked for (or its version implies) the connection's close.
        close: bool,
    },
}

/// Parses the head at the start of `buf` and routes it for `role`. A refusal that makes the
/// rest of the connection's bytes meaningless (malformed, too large, a body) is
/// `Route::Refuse` with `close`.
pub fn parse(buf: &[u8], role: Role, origins: &OriginPolicy) -> Parsed {
    let mut fields = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut fields);
    let refuse = |status| Parsed::Request {
        len: buf.len(),
        route: Route::Refuse(status),
        close: true,
    };
    let len = match req.parse(buf) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) if buf.len() > MAX_HEAD => {
            return refuse(Status::HeadersTooLarge)
        }
        Ok(httparse::Status::Partial) => return Parsed::Incomplete,
        Err(httparse::Error::TooManyHeaders) => return refuse(Status::HeadersTooLarge),
        Err(_) => return refuse(Status::BadRequest),
    };
    if len > MAX_HEAD {
        return refuse(Status::HeadersTooLarge);
    }
    let header = |name: &str| {
        req.headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case(name))
            .and_then(|h| std::str::from_utf8(h.value).ok())
    };
    let version = req.version.unwrap_or(0);
    let connection = header("connection").unwrap_or("");
    let close = version == 0 && !has_token(connection, "keep-alive")
        || version == 1 && has_token(connection, "close");
    let has_body = header("content-length").is_some_and(|v| v.trim() != "0")
        || header("transfer-encoding").is_some();
    if has_body {
        return refuse(Status::BadRequest);
    }
    let method = req.method.unwrap_or("");
    let path = req.path.unwrap_or("");
    let path = path.split(['?', '#']).next().unwrap_or(path);
    let head_only = method == "HEAD";
    let read_only = matches!(method, "GET" | "HEAD");
    let route = match (role, path) {
        (Role::Page, "/ws") => {
            if method != "GET" {
                Route::Refuse(Status::MethodNotAllowed)
            } else {
                upgrade(version, &header, origins)
            }
        }
        (_, _) if !read_only => Route::Refuse(Status::MethodNotAllowed),
        (Role::Page, _) => Route::Asset {
            path: path.to_owned(),
            head_only,
            if_none_match: header("if-none-match").map(str::to_owned),
        },
        (Role::Metrics, "/metrics") => Route::Metrics { head_only },
        (Role::Metrics, "/healthz") => Route::Health,
        (Role::Metrics, "/readyz") => Route::Ready,
        (Role::Metrics, _) => Route::Refuse(Status::NotFound),
    };
    Parsed::Request { len, route, close }
}

/// The handshake's checks, in the RFC's order of importance.
fn upgrade<'a>(
    version: u8,
    header: &impl Fn(&str) -> Option<&'a str>,
    origins: &OriginPolicy,
) -> Route {
    let upgrade = header("upgrade").is_some_and(|v| has_token(v, "websocket"));
    let connection = header("connection").is_some_and(|v| has_token(v, "upgrade"));
    if version != 1 || !upgrade || !connection || header("host").is_none() {
        return Route::Refuse(Status::BadRequest);
    }
    if header("sec-websocket-version").map(str::trim) != Some("13") {
        return Route::Refuse(Status::UpgradeRequired);
    }
    let Some(key) = header("sec-websocket-key").map(str::trim) else {
        return Route::Refuse(Status::BadRequest);
    };
    if !valid_key(key) {
        return Route::Refuse(Status::BadRequest);
    }
    if !origins.allows(header("origin"), header("host")) {
        return Route::Refuse(Status::Forbidden);
    }
    Route::Upgrade {
        accept: tungstenite::handshake::derive_accept_key(key.as_bytes()),
    }
}

/// Whether a comma-separated header value holds `token` (without regard to case).
fn has_token(value: &str, token: &str) -> bool {
    value
        .split(',')
        .any(|t| t.trim().eq_ignore_ascii_case(token))
}

/// Whether `key` is 16 bytes in base64: 22 characters of the alphabet and `==`.
fn valid_key(key: &str) -> bool {
    let bytes = key.as_bytes();
    bytes.len() == 24
        && bytes.ends_with(b"==")
        && bytes[..22]
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || *b == b'+' || *b == b'/')
}

/// Headers every page answer carries: nothing but our own files, no inline script or style, no
/// framing, no referrer, no sniffing.
pub const PAGE_HEADERS: &str = "Content-Security-Policy: default-src 'none'; script-src 'self'; \
style-src 'self'; connect-src 'self'; img-src 'self'; base-uri 'none'; form-action 'none'; \
frame-ancestors 'none'\r\n\
X-Content-Type-Options: nosniff\r\n\
Referrer-Policy: no-referrer\r\n\
X-Frame-Options: DENY\r\n";

/// Writes a response head: the status line, `extra` (whole header lines), the length of a body
/// of `body_len` bytes (none for `101` and `304`), and whether the connection stays open.
pub fn head(status: Status, extra: &str, body_len: Option<usize>, close: bool) -> Vec<u8> {
    let (code, reason) = status.line();
    let mut out = String::with_capacity(256 + extra.len());
    let _ = write!(out, "HTTP/1.1 {code} {reason}\r\nServer: chat-server\r\n");
    out.push_str(extra);
    if let Some(len) = body_len {
        let _ = write!(out, "Content-Length: {len}\r\n");
    }
    out.push_str(if close {
        "Connection: close\r\n\r\n"
    } else {
        "Connection: keep-alive\r\n\r\n"
    });
    out.into_bytes()
}

/// A whole short plain-text answer (errors, health): head and body.
pub fn text(status: Status, extra: &str, body: &str, head_only: bool, close: bool) -> Vec<u8> {
    let extra =
        format!("{extra}Content-Type: text/plain; charset=utf-8\r\nCache-Control: no-store\r\n");
    let mut out = head(status, &extra, Some(body.len()), close);
    if !head_only {
        out.extend_from_slice(body.as_bytes());
    }
    out
}

/// The answer to a refusal, with the headers its status needs.
pub fn refusal(status: Status) -> Vec<u8> {
    let extra = match status {
        Status::MethodNotAllowed => "Allow: GET, HEAD\r\n",
        Status::UpgradeRequired => "Sec-WebSocket-Version: 13\r\nUpgrade: websocket\r\n",
        _ => "",
    };
    let (code, reason) = status.line();
    // Every refusal closes: after a bad head the rest of the bytes mean nothing.
    text(status, extra, &format!("{code} {reason}\n"), false, true)
}

/// The `101` that completes a WebSocket handshake.
pub fn switching(accept: &str) -> Vec<u8> {
    format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Accept: {accept}\r\n\r\n"
    )
    .into_bytes()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";

    fn ws_request(extra: &str) -> String {
        format!(
            "GET /ws HTTP/1.1\r\nHost: chat.example:8080\r\nUpgrade: websocket\r\n\
             Connection: keep-alive, Upgrade\r\n{extra}\r\n"
        )
    }

    fn route(req: &str) -> Route {
        match parse(req.as_bytes(), Role::Page, &OriginPolicy::SameHost) {
            Parsed::Request { route, .. } => route,
            Parsed::Incomplete => panic!("incomplete: {req:?}"),
        }
    }

    #[test]
    fn the_rfc_sample_handshake_is_accepted() {
        let req = ws_request(&format!(
            "Sec-WebSocket-Key: {KEY}\r\nSec-WebSocket-Version: 13\r\n\
             Origin: http://chat.example:8080\r\n"
        ));
        assert_eq!(
            route(&req),
            Route::Upgrade {
                accept: "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=".into()
            }
        );
    }

    #[test]
    fn each_bad_handshake_gets_its_status() {
        let good = format!("Sec-WebSocket-Key: {KEY}\r\nSec-WebSocket-Version: 13\r\n");
        let cases = [
            (
                "no key",
                "Sec-WebSocket-Version: 13\r\n".to_owned(),
                Status::BadRequest,
            ),
            (
                "short key",
                "Sec-WebSocket-Key: abc==\r\nSec-WebSocket-Version: 13\r\n".to_owned(),
                Status::BadRequest,
            ),
            (
                "version 8",
                format!("Sec-WebSocket-Key: {KEY}\r\nSec-WebSocket-Version: 8\r\n"),
                Status::UpgradeRequired,
            ),
            (
                "other origin",
                format!("{good}Origin: http://evil.example\r\n"),
                Status::Forbidden,
            ),
            (
                "other port",
                format!("{good}Origin: http://chat.example:9090\r\n"),
                Status::Forbidden,
            ),
            (
                "null origin",
                format!("{good}Origin: null\r\n"),
                Status::Forbidden,
            ),
        ];
        for (name, extra, status) in cases {
            assert_eq!(route(&ws_request(&extra)), Route::Refuse(status), "{name}");
        }
        let post = format!("POST /ws HTTP/1.1\r\nHost: x\r\n{good}\r\n");
        assert_eq!(route(&post), Route::Refuse(Status::MethodNotAllowed));
        let plain = "GET /ws HTTP/1.1\r\nHost: x\r\n\r\n";
        assert_eq!(route(plain), Route::Refuse(Status::BadRequest));
    }

    #[test]
    fn an_origin_list_is_exact() {
        let list = OriginPolicy::List(vec!["https://chat.example".into()]);
        assert!(list.allows(Some("https://CHAT.example/"), Some("other")));
        assert!(!list.allows(Some("http://chat.example"), Some("chat.example")));
        assert!(list.allows(None, None), "no Origin: not a browser");
        assert!(OriginPolicy::SameHost.allows(Some("https://a:1"), Some("A:1")));
    }

    #[test]
    fn heads_are_bounded() {
        let partial = "GET / HTTP/1.1\r\nHost: x\r\n";
        assert_eq!(
            parse(partial.as_bytes(), Role::Page, &OriginPolicy::SameHost),
            Parsed::Incomplete
        );
        let long = format!("GET / HTTP/1.1\r\nX-Long: {}", "a".repeat(MAX_HEAD));
        assert_eq!(route(&long), Route::Refuse(Status::HeadersTooLarge));
        let mut many = "GET / HTTP/1.1\r\n".to_owned();
        for i in 0..=MAX_HEADERS {
            many.push_str(&format!("X-{i}: y\r\n"));
        }
        many.push_str("\r\n");
        assert_eq!(route(&many), Route::Refuse(Status::HeadersTooLarge));
        assert_eq!(
            route("\x16\x03\x01 garbage\r\n\r\n"),
            Route::Refuse(Status::BadRequest)
        );
        let body = "GET / HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello";
        assert_eq!(route(body), Route::Refuse(Status::BadRequest));
    }

    #[test]
    fn routes_by_role_method_and_path() {
        let get = |role, path: &str| {
            let req = format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n");
            match parse(req.as_bytes(), role, &OriginPolicy::SameHost) {
                Parsed::Request { route, close, len } => {
                    assert_eq!(len, req.len());
                    assert!(!close);
                    route
                }
                Parsed::Incomplete => panic!(),
            }
        };
        assert!(matches!(get(Role::Page, "/?x=1"), Route::Asset { path, .. } if path == "/"));
        assert_eq!(
            get(Role::Metrics, "/metrics"),
            Route::Metrics { head_only: false }
        );
        assert_eq!(get(Role::Metrics, "/healthz"), Route::Health);
        assert_eq!(get(Role::Metrics, "/readyz"), Route::Ready);
        assert_eq!(get(Role::Metrics, "/"), Route::Refuse(Status::NotFound));
        let delete = "DELETE / HTTP/1.1\r\nHost: x\r\n\r\n";
        assert_eq!(route(delete), Route::Refuse(Status::MethodNotAllowed));
        let old = "GET / HTTP/1.0\r\n\r\n";
        assert!(matches!(
            parse(old.as_bytes(), Role::Page, &OriginPolicy::SameHost),
            Parsed::Request { close: true, .. }
        ));
    }

    #[test]
    fn arbitrary_bytes_never_panic() {
        for len in 0..300 {
            let bytes: Vec<u8> = (0..len).map(|i| (i * 37 % 256) as u8).collect();
            let _ = parse(&bytes, Role::Page, &OriginPolicy::SameHost);
        }
    }
}

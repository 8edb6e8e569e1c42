//! The chat page's files, compiled into the binary (`server/web/`): no CDN, nothing fetched or
//! built at run time. Each has its content type and an entity tag computed at compile time, so
//! a browser revalidates with `If-None-Match` and gets `304` while the binary is the same.

use super::http::{self, Status, PAGE_HEADERS};

/// One file of the page.
#[derive(Debug, Clone, Copy)]
pub struct Asset {
    /// The path it is served at.
    pub path: &'static str,
    /// Its `Content-Type`.
    pub content_type: &'static str,
    /// Its bytes.
    pub body: &'static [u8],
    /// Its entity tag, quoted (a hash of the bytes).
    pub etag: &'static str,
}

/// FNV-1a over the bytes, for entity tags (computed at compile time).
const fn fnv(bytes: &[u8]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    let mut i = 0;
    while i < bytes.len() {
        hash ^= bytes[i] as u64;
        hash = hash.wrapping_mul(0x0100_0000_01b3);
        i += 1;
    }
    hash
}

/// `"` + 16 hex digits + `"`.
const fn etag_bytes(bytes: &[u8]) -> [u8; 18] {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let hash = fnv(bytes);
    let mut out = [b'"'; 18];
    let mut i = 0;
    while i < 16 {
        out[1 + i] = HEX[((hash >> (60 - 4 * i)) & 0xf) as usize];
        i += 1;
    }
    out
}

macro_rules! asset {
    ($path:literal, $file:literal, $type:literal) => {{
        const BODY: &[u8] = include_bytes!(concat!("../../web/", $file));
        const TAG: [u8; 18] = etag_bytes(BODY);
        Asset {
            path: $path,
            content_type: $type,
            body: BODY,
            etag: match std::str::from_utf8(&TAG) {
                Ok(s) => s,
                Err(_) => "\"0\"",
            },
        }
    }};
}

/// Every file of the page.
pub const ASSETS: [Asset; 5] = [
    asset!("/", "index.html", "text/html; charset=utf-8"),
    asset!("/app.css", "app.css", "text/css; charset=utf-8"),
    asset!("/app.js", "app.js", "text/javascript; charset=utf-8"),
    asset!("/markup.js", "markup.js", "text/javascript; charset=utf-8"),
    asset!("/favicon.svg", "favicon.svg", "image/svg+xml"),
];

/// The file at `path`, if there is one (`/index.html` is `/`).
pub fn find(path: &str) -> Option<&'static Asset> {
    let path = if path == "/index.html" { "/" } else { path };
    ASSETS.iter().find(|a| a.path == path)
}

/// The whole answer to a request for `path`: the file with its headers (the strict
/// Content-Security-Policy on every one), `304` when the browser holds this version, or `404`.
pub fn respond(path: &str, head_only: bool, if_none_match: Option<&str>, close: bool) -> Vec<u8> {
    let Some(asset) = find(path) else {
        return http::text(
            Status::NotFound,
            PAGE_HEADERS,
            "404 Not Found\n",
            head_only,
            close,
        );
    };
    let extra = format!(
        "{PAGE_HEADERS}Content-Type: {}\r\nCache-Control: no-cache\r\nETag: {}\r\n",
        asset.content_type, asset.etag
    );
    let fresh = if_none_match.is_some_and(|tags| {
        tags.split(',')
            .any(|t| t.trim().trim_start_matches("W/") == asset.etag || t.trim() == "*")
    });
    if fresh {
        return http::head(Status::NotModified, &extra, None, close);
    }
    let mut out = http::head(Status::Ok, &extra, Some(asset.body.len()), close);
    if !head_only {
        out.extend_from_slice(asset.body);
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn every_file_is_served_with_the_policy_and_a_tag() {
        for asset in ASSETS {
            let out =
                String::from_utf8_lossy(&respond(asset.path, false, None, false)).into_owned();
            assert!(out.starts_with("HTTP/1.1 200 OK\r\n"), "{out}");
            assert!(out.contains("Content-Security-Policy: default-src 'none'; script-src 'self'"));
            assert!(out.contains(&format!("ETag: {}\r\n", asset.etag)));
            assert!(out.as_bytes().ends_with(asset.body));
            assert_eq!(asset.etag.len(), 18);
        }
    }

    #[test]
    fn a_matching_tag_gets_304_and_a_missing_file_404() {
        let tag = find("/").unwrap().etag;
        let out = String::from_utf8(respond("/", false, Some(tag), false)).unwrap();
        assert!(out.starts_with("HTTP/1.1 304 "), "{out}");
        assert!(!out.contains("Content-Length"));
        let out = String::from_utf8(respond("/nope", false, None, true)).unwrap();
        assert!(out.starts_with("HTTP/1.1 404 "), "{out}");
        assert!(out.contains("Connection: close"));
    }

    #[test]
    fn the_page_has_no_inline_script_or_style() {
        let html = std::str::from_utf8(find("/").unwrap().body).unwrap();
        assert!(
            !html.contains("<script>") && !html.contains("style="),
            "{html}"
        );
        assert!(
            !html.contains("http://") && !html.contains("https://"),
            "no CDN"
        );
        let js = std::str::from_utf8(find("/app.js").unwrap().body).unwrap();
        assert!(!js.contains("innerHTML") && !js.contains("insertAdjacentHTML"));
        assert!(!js.contains("eval("));
    }
}

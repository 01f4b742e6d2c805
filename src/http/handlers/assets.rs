//! The web UI, embedded in the binary from `ui/`. Paths are looked up as-is in the embedded
//! set, so nothing outside it (`/../../etc/passwd`) can ever be served.

use crate::error::{Error, Result};
use crate::http::reply::Reply;

#[derive(rust_embed::RustEmbed)]
#[folder = "ui/"]
struct Assets;

fn content_type(path: &str) -> &'static str {
    match path.rsplit('.').next() {
        Some("html") => "text/html; charset=utf-8",
        Some("js") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        Some("ico") => "image/x-icon",
        Some("json") => "application/json",
        _ => "application/octet-stream",
    }
}

/// `GET /` and `GET /<asset>`.
pub fn serve(path: &str) -> Result<Reply> {
    let name = match path.trim_start_matches('/') {
        "" => "index.html",
        other => other,
    };
    if name.split('/').any(|part| {
        part.is_empty() || part == "." || part == ".." || part.contains('%') || part.contains('\\')
    }) {
        return Err(Error::NotFound { what: "page" });
    }
    let file = Assets::get(name).ok_or(Error::NotFound { what: "page" })?;
    Ok(Reply::bytes(200, content_type(name), file.data.into_owned())
        .with_header("Cache-Control", "no-cache")
        .with_header(
            "Content-Security-Policy",
            "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; connect-src 'self'; frame-ancestors 'none'",
        ))
}

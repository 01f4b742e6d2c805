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

/// The embedded file a path names (`/` is `index.html`), if the path may name one at all: it
/// starts with exactly one `/`.
fn name_of(path: &str) -> Option<&str> {
    let name = match path.strip_prefix('/')? {
        "" => "index.html",
        other => other,
    };
    let unsafe_part = name.split('/').any(|part| {
        part.is_empty() || part == "." || part == ".." || part.contains('%') || part.contains('\\')
    });
    (!unsafe_part).then_some(name)
}

/// The web UI's paths as `docs/openapi.json` writes them (`{module}` for any file name there);
/// a test holds every embedded file to exactly one of them, and each to a file.
#[cfg(test)]
pub const DOCUMENTED_PATHS: &[&str] = &[
    "/",
    "/api.html",
    "/app.css",
    "/js/{module}",
    "/js/screens/{module}",
];

/// Is there a page or asset at this path (served to `GET`)?
pub fn exists(path: &str) -> bool {
    name_of(path).is_some_and(|name| Assets::get(name).is_some())
}

/// `GET /` and `GET /<asset>`.
pub fn serve(path: &str) -> Result<Reply> {
    let name = name_of(path).ok_or(Error::NotFound { what: "page" })?;
    let file = Assets::get(name).ok_or(Error::NotFound { what: "page" })?;
    Ok(Reply::bytes(200, content_type(name), file.data)
        .with_header("Cache-Control", "no-cache")
        .with_header(
            "Content-Security-Policy",
            "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; connect-src 'self'; frame-ancestors 'none'",
        ))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Does `path` fit `template` (`{name}` standing for one part without a `/`)?
    fn fits(template: &str, path: &str) -> bool {
        let (t, p): (Vec<&str>, Vec<&str>) =
            (template.split('/').collect(), path.split('/').collect());
        t.len() == p.len()
            && t.iter()
                .zip(&p)
                .all(|(t, p)| t == p || (t.starts_with('{') && !p.is_empty()))
    }

    #[test]
    fn every_file_of_the_ui_is_under_exactly_one_documented_path() {
        let files: Vec<String> = Assets::iter()
            .map(|name| match name.as_ref() {
                "index.html" => "/".to_string(),
                other => format!("/{other}"),
            })
            .collect();
        for file in &files {
            let under: Vec<_> = DOCUMENTED_PATHS.iter().filter(|t| fits(t, file)).collect();
            assert_eq!(under.len(), 1, "{file} is under {under:?}");
            assert!(exists(file), "{file}");
        }
        for template in DOCUMENTED_PATHS {
            assert!(
                files.iter().any(|f| fits(template, f)),
                "{template} names no file of ui/"
            );
        }
    }
}

//! The stylesheet and the script, embedded in the binary and served under
//! names that carry a hash of their content: a page always links the bytes
//! this binary holds, so they can be cached for a year (`immutable`) and a new
//! release is fetched at once.

use std::sync::LazyLock;

use axum::extract::Path;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;
use sha2::{Digest, Sha256};

struct Asset {
    /// `app.<hash>.css`
    name: String,
    content_type: &'static str,
    bytes: &'static [u8],
}

fn asset(stem: &str, ext: &str, content_type: &'static str, bytes: &'static [u8]) -> Asset {
    let hash = Sha256::digest(bytes);
    let hex: String = hash.iter().take(6).map(|b| format!("{b:02x}")).collect();
    Asset {
        name: format!("{stem}.{hex}.{ext}"),
        content_type,
        bytes,
    }
}

static CSS: LazyLock<Asset> = LazyLock::new(|| {
    asset(
        "app",
        "css",
        "text/css; charset=utf-8",
        include_bytes!("../../web/app.css"),
    )
});
static JS: LazyLock<Asset> = LazyLock::new(|| {
    asset(
        "app",
        "js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../web/app.js"),
    )
});

/// The stylesheet's path, for pages.
pub fn css_path() -> String {
    format!("/assets/{}", CSS.name)
}

/// The script's path, for pages.
pub fn js_path() -> String {
    format!("/assets/{}", JS.name)
}

pub async fn serve(Path(file): Path<String>) -> Response {
    let found = [&*CSS, &*JS].into_iter().find(|a| a.name == file);
    let Some(a) = found else {
        return super::typed(
            StatusCode::NOT_FOUND,
            "text/plain; charset=utf-8",
            "no such asset (an older page? reload it)",
        );
    };
    let mut r = super::typed(StatusCode::OK, a.content_type, a.bytes);
    r.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=31536000, immutable"),
    );
    r
}

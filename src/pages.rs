//! The few HTML pages rocketgate shows itself: small, self-contained, readable on a phone,
//! and never carrying internal details.

use http::{Response, StatusCode, header};

use crate::body::{self, Body};

/// Escapes text for HTML element content and double-quoted attributes.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A link offered on a page, such as "Try again".
pub struct Action<'a> {
    pub href: &'a str,
    pub label: &'a str,
}

const STYLE: &str = "body{margin:0;font:16px/1.5 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;\
background:#f5f6f8;color:#1d2330}main{max-width:32rem;margin:12vh auto 0;padding:2rem 1.5rem;\
background:#fff;border-radius:12px;box-shadow:0 1px 4px rgba(0,0,0,.08);overflow-wrap:anywhere}\
h1{font-size:1.35rem;margin:0 0 .75rem}p{margin:0 0 1rem}.status{color:#5b6472;font-size:.875rem}\
a.button{display:inline-block;padding:.6rem 1.1rem;background:#2457d6;color:#fff;border-radius:8px;\
text-decoration:none;font-weight:600}a.button:focus{outline:3px solid #f0b429;outline-offset:2px}\
footer{margin-top:1.5rem;font-size:.8rem;color:#5b6472}@media(max-width:480px){main{margin:0;\
border-radius:0;min-height:100vh;box-sizing:border-box}}";

/// Renders a page; every argument is escaped here.
pub fn page(
    status: StatusCode,
    title: &str,
    message: &str,
    action: Option<Action<'_>>,
) -> Response<Body> {
    let action = action
        .map(|a| {
            format!(
                "<p><a class=\"button\" href=\"{}\">{}</a></p>",
                escape(a.href),
                escape(a.label)
            )
        })
        .unwrap_or_default();
    let html = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
<title>{title}</title><style>{STYLE}</style></head><body><main>\
<p class=\"status\">{code}</p><h1>{title}</h1><p>{message}</p>{action}\
<footer>rocketgate</footer></main></body></html>",
        title = escape(title),
        code = status.as_u16(),
        message = escape(message),
    );
    let mut response = Response::new(body::full(html));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("text/html; charset=utf-8"),
    );
    headers.insert(
        header::CACHE_CONTROL,
        header::HeaderValue::from_static("no-store"),
    );
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        header::HeaderValue::from_static("default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        header::HeaderValue::from_static("nosniff"),
    );
    response
}

/// A small JSON error for API clients: `{"error": code, "message": text}`.
pub fn json_error(status: StatusCode, code: &str, message: &str) -> Response<Body> {
    let text = serde_json::json!({ "error": code, "message": message }).to_string();
    let mut response = Response::new(body::full(text));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/json"),
    );
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        header::HeaderValue::from_static("no-store"),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    #[tokio::test]
    async fn pages_escape_everything() {
        let r = page(
            StatusCode::FORBIDDEN,
            "<t>",
            "a \"b\" <script>",
            Some(Action {
                href: "/x?a=1&b=\"",
                label: "<go>",
            }),
        );
        assert_eq!(r.status(), 403);
        assert_eq!(r.headers()[header::CACHE_CONTROL], "no-store");
        let html =
            String::from_utf8(r.into_body().collect().await.unwrap().to_bytes().to_vec()).unwrap();
        assert!(!html.contains("<script>") && !html.contains("<t>") && !html.contains("<go>"));
        assert!(html.contains("href=\"/x?a=1&amp;b=&quot;\""));
        assert!(html.contains("lang=\"en\"") && html.contains("viewport"));
    }
}

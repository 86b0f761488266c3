//! The browser page: shows what identity the gate asserted, to make the demo
//! self-explanatory.

use std::fmt::Write as _;

use http::header::{CACHE_CONTROL, CONTENT_TYPE, HeaderValue};
use hyper::body::Incoming;
use hyper::{Request, Response};

use crate::page::{escape, page};
use crate::{Body, full};

const BADGE: &str = "Demo app behind rocketgate";

const IDENTITY_HEADERS: [&str; 3] = [
    "x-forwarded-user",
    "x-forwarded-email",
    "x-forwarded-preferred-username",
];

pub(super) fn signed_in(req: &Request<Incoming>) -> Response<Body> {
    let header = |name: &str| {
        req.headers()
            .get(name)
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
    };
    let who = header("x-forwarded-preferred-username").or_else(|| header("x-forwarded-user"));
    let mut body = String::new();
    // Writing into a String cannot fail, hence the ignored results.
    match &who {
        Some(who) => {
            let _ = writeln!(body, "<h1>Signed in as {}</h1>", escape(who));
        }
        None => body.push_str(
            "<h1>Not signed in</h1>\n<p class=\"muted\">No identity headers arrived: \
             is this page reached without going through rocketgate?</p>\n",
        ),
    }
    body.push_str("<h2>Identity headers</h2>\n<table>\n");
    for name in IDENTITY_HEADERS {
        let value = header(name);
        let _ = writeln!(
            body,
            "<tr><th scope=\"row\"><code>{}</code></th><td>{}</td></tr>",
            escape(name),
            value.map_or_else(
                || "<span class=\"muted\">(not sent)</span>".to_owned(),
                |v| escape(&v)
            ),
        );
    }
    // Only with groups (`rocketgate demo --routes-example`): a row saying "(not sent)"
    // would suggest something is missing from a plain demo.
    if let Some(groups) = header("x-forwarded-groups") {
        let _ = writeln!(
            body,
            "<tr><th scope=\"row\"><code>x-forwarded-groups</code></th><td>{}</td></tr>",
            escape(&groups),
        );
    }
    body.push_str("</table>\n");
    let target = req
        .uri()
        .path_and_query()
        .map_or_else(|| req.uri().to_string(), |pq| pq.as_str().to_owned());
    let _ = writeln!(
        body,
        "<h2>Request</h2>\n<p><code>{} {}</code></p>",
        escape(req.method().as_str()),
        escape(&target)
    );
    body.push_str("<h2>All request headers</h2>\n<table>\n");
    for (name, value) in req.headers() {
        let _ = writeln!(
            body,
            "<tr><th scope=\"row\"><code>{}</code></th><td><code>{}</code></td></tr>",
            escape(name.as_str()),
            escape(&String::from_utf8_lossy(value.as_bytes()))
        );
    }
    body.push_str(
        "</table>\n<div class=\"actions\">\
         <a class=\"button secondary\" href=\"/oauth2/sign_out\">Sign out</a></div>",
    );
    let title = match &who {
        Some(who) => format!("Signed in as {who}"),
        None => "Not signed in".to_owned(),
    };
    let mut resp = Response::new(full(page(&title, BADGE, &body)));
    let headers = resp.headers_mut();
    headers.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

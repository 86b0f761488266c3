//! `/oauth2/auth` called exactly as the setups `docs/integrations.md` documents for Envoy
//! (`ext_authz` HTTP service), Istio (`envoyExtAuthzHttp` with a `CUSTOM` policy) and
//! ingress-nginx (`auth-url`) would call it. None of them can run here, so each request shape
//! is replayed against a real rocketgate: the headers the proxy sends by default, the ones the
//! documented config adds, Envoy's `path_prefix` (the original path appended), and the 200
//! contract: 200 with the identity headers only for a user the route admits.

use reqwest::Method;
use reqwest::header::COOKIE;

use crate::support::{Stack, admin_routes};

async fn stack() -> Stack {
    Stack::with(admin_routes().env("ROCKETGATE_TRUSTED_PROXIES", "127.0.0.1")).await
}

/// The session cookie of `user`, signed in directly at the stack.
async fn cookie_of(stack: &Stack, user: &str) -> String {
    let browser = stack.browser();
    assert_eq!(browser.login_as("/", user).await.status(), 200);
    browser.cookie_header()
}

/// One documented request shape: how the proxy calls the check for an original request.
struct Shape {
    name: &'static str,
    /// The method the check arrives with for an original `POST`.
    method: Method,
    /// The check's path and query for the original `path_and_query`.
    path: fn(&str) -> String,
    /// The headers the proxy sends for `path_and_query` on `app_host`.
    headers: fn(&str, &str) -> Vec<(&'static str, String)>,
}

/// Envoy `ext_authz`, HTTP service, `path_prefix: /oauth2/auth`: the original method and
/// path (prefixed), `Host` kept, `Content-Length: 0`, the headers Envoy always adds, and
/// from the documented config `cookie`/`accept`/`x-requested-with` (`allowed_headers`) and
/// `x-forwarded-uri: %REQ(:PATH)%` (`headers_to_add`).
fn envoy_headers(app_host: &str, path: &str) -> Vec<(&'static str, String)> {
    vec![
        ("host", app_host.to_owned()),
        ("content-length", "0".to_owned()),
        ("accept", "text/html,application/xhtml+xml".to_owned()),
        ("x-forwarded-proto", "https".to_owned()),
        ("x-forwarded-for", "203.0.113.7".to_owned()),
        (
            "x-request-id",
            "6d1b0e64-3f0c-4c8e-9b0a-2f4e0e6b7a11".to_owned(),
        ),
        ("x-envoy-expected-rq-timeout-ms", "2000".to_owned()),
        ("x-forwarded-uri", path.to_owned()),
    ]
}

/// Istio's `envoyExtAuthzHttp` is Envoy's filter configured by istiod: the same shape, plus
/// the headers the sidecar adds inside the mesh.
fn istio_headers(app_host: &str, path: &str) -> Vec<(&'static str, String)> {
    let mut headers = envoy_headers(app_host, path);
    headers.push(("x-envoy-internal", "true".to_owned()));
    headers.push((
        "x-forwarded-client-cert",
        "By=spiffe://cluster.local/ns/auth/sa/rocketgate;URI=spiffe://cluster.local/ns/istio-system/sa/istio-ingressgateway".to_owned(),
    ));
    headers
}

/// ingress-nginx `auth-url`: a body-less `GET` of the URL as configured, `Host` the auth
/// service's, the original as a whole URL in `X-Original-URL`.
fn ingress_nginx_headers(app_host: &str, path: &str) -> Vec<(&'static str, String)> {
    vec![
        ("host", "rocketgate.auth.svc.cluster.local:4180".to_owned()),
        ("x-original-url", format!("https://{app_host}{path}")),
        ("x-original-method", "POST".to_owned()),
        ("x-sent-from", "nginx-ingress-controller".to_owned()),
        ("x-real-ip", "203.0.113.7".to_owned()),
        ("x-forwarded-for", "203.0.113.7".to_owned()),
        ("x-auth-request-redirect", path.to_owned()),
        ("accept", "text/html,application/xhtml+xml".to_owned()),
    ]
}

const SHAPES: &[Shape] = &[
    Shape {
        name: "envoy",
        method: Method::POST,
        path: |original| format!("/oauth2/auth{original}"),
        headers: envoy_headers,
    },
    Shape {
        name: "istio",
        method: Method::POST,
        path: |original| format!("/oauth2/auth{original}"),
        headers: istio_headers,
    },
    Shape {
        name: "ingress-nginx",
        method: Method::GET,
        path: |_| "/oauth2/auth".to_owned(),
        headers: ingress_nginx_headers,
    },
];

async fn replay(
    stack: &Stack,
    shape: &Shape,
    original: &str,
    cookie: Option<&str>,
) -> reqwest::Response {
    let mut request = stack
        .client()
        .request(shape.method.clone(), stack.url(&(shape.path)(original)));
    for (name, value) in (shape.headers)("app.example.com", original) {
        request = request.header(name, value);
    }
    if let Some(cookie) = cookie {
        request = request.header(COOKIE, cookie);
    }
    request.send().await.unwrap()
}

#[tokio::test]
async fn each_documented_request_shape_gets_the_200_contract() {
    let stack = stack().await;
    let ada = cookie_of(&stack, "1001").await;
    let grace = cookie_of(&stack, "1002").await;
    let deep = "/reports/q3?region=eu&sort=-date";
    for shape in SHAPES {
        let name = shape.name;

        // Signed in and allowed: exactly 200, no body, the identity headers.
        let allowed = replay(&stack, shape, deep, Some(&ada)).await;
        assert_eq!(allowed.status(), 200, "{name}");
        let h = allowed.headers();
        assert_eq!(h["x-auth-request-user"], "1001", "{name}");
        assert_eq!(h["x-auth-request-email"], "ada@example.com", "{name}");
        assert_eq!(h["x-auth-request-preferred-username"], "ada", "{name}");
        assert!(h.get("location").is_none(), "{name}");
        assert!(
            allowed.bytes().await.unwrap().is_empty(),
            "{name}: a body on 200"
        );

        // Not signed in: 401 JSON, even for a browser's Accept (Envoy and Istio show the
        // denial as it is; ingress-nginx turns 401 into its auth-signin redirect).
        let anonymous = replay(&stack, shape, deep, None).await;
        assert_eq!(anonymous.status(), 401, "{name}");
        assert!(
            anonymous.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("application/json"),
            "{name}"
        );

        // The route comes from the reported original (`x-forwarded-uri` from Envoy's
        // `headers_to_add`, `X-Original-URL` from ingress-nginx), not from the check's own
        // path or Host: ada is refused on /admin, grace admitted.
        let refused = replay(&stack, shape, "/admin/users?page=2", Some(&ada)).await;
        assert_eq!(refused.status(), 403, "{name}: ada on /admin");
        let admitted = replay(&stack, shape, "/admin/users?page=2", Some(&grace)).await;
        assert_eq!(admitted.status(), 200, "{name}: grace on /admin");
        assert_eq!(
            admitted.headers()["x-auth-request-email"],
            "grace@example.org"
        );
    }
}

#[tokio::test]
async fn a_client_cannot_talk_its_way_past_the_check_in_any_shape() {
    let stack = stack().await;
    let ada = cookie_of(&stack, "1001").await;
    for shape in SHAPES {
        let name = shape.name;
        // Forged identity headers on the check change nothing: no session, no 200.
        let mut forged = stack
            .client()
            .request(shape.method.clone(), stack.url(&(shape.path)("/")));
        for (header, value) in (shape.headers)("app.example.com", "/") {
            forged = forged.header(header, value);
        }
        let forged = forged
            .header("x-auth-request-user", "1001")
            .header("x-forwarded-user", "1001")
            .header("authorization", "Bearer not-a-token")
            .send()
            .await
            .unwrap();
        assert_eq!(forged.status(), 401, "{name}");

        // A path the front proxy reports but no route could serve (an encoded `/`) is 403,
        // which every one of them shows as a refusal, never 400 or 500.
        let dotted = replay(&stack, shape, "/x%2F..%2Fadmin", Some(&ada)).await;
        assert_eq!(dotted.status(), 403, "{name}");
    }
}

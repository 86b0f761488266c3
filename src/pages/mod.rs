//! The few HTML pages rocketgate shows itself: small, self-contained, readable on a phone,
//! and never carrying internal details.

use http::{Response, StatusCode, header};

use crate::body::{self, Body};

mod template;

pub use template::{Template, Var};

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

/// What an error page says. Every text is escaped when the page is made.
pub struct ErrorPage<'a> {
    pub status: StatusCode,
    pub title: &'a str,
    pub message: &'a str,
    pub action: Option<Action<'a>>,
    /// The signed-in account the page refuses ("Signed in as …").
    pub account: Option<&'a str>,
    /// The request id to quote when asking for help, on failures.
    pub request_id: Option<&'a str>,
}

impl<'a> ErrorPage<'a> {
    /// A page with just a status and words.
    pub fn plain(status: StatusCode, title: &'a str, message: &'a str) -> Self {
        ErrorPage {
            status,
            title,
            message,
            action: None,
            account: None,
            request_id: None,
        }
    }
}

const STYLE: &str = "body{margin:0;font:16px/1.5 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;\
background:#f5f6f8;color:#1d2330}main{max-width:32rem;margin:12vh auto 0;padding:2rem 1.5rem;\
background:#fff;border-radius:12px;box-shadow:0 1px 4px rgba(0,0,0,.08);overflow-wrap:anywhere}\
h1{font-size:1.35rem;margin:0 0 .75rem}p{margin:0 0 1rem}.status{color:#5b6472;font-size:.875rem}\
.button{display:inline-block;padding:.6rem 1.1rem;background:#2457d6;color:#fff;border-radius:8px;\
text-decoration:none;font-weight:600;font:inherit;font-weight:600;border:0;cursor:pointer}\
.button:focus{outline:3px solid #f0b429;outline-offset:2px}\
footer{margin-top:1.5rem;font-size:.8rem;color:#5b6472}img.logo{display:block;max-height:48px;max-width:60%;margin-bottom:1rem}@media(max-width:480px){main{margin:0;\
border-radius:0;min-height:100vh;box-sizing:border-box}}";

const ERROR_TEMPLATE: &str = "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
<title>{{title}}</title><style>{{style}}</style></head><body><main>{{logo}}\
<p class=\"status\">{{status}}</p><h1>{{title}}</h1><p>{{message}}</p>{{account}}{{action}}\
{{request_id}}<footer>{{footer}}</footer></main></body></html>";

const SIGN_IN_TEMPLATE: &str = "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
<title>Sign in to {{app_name}}</title><style>{{style}}</style></head><body><main>{{logo}}\
<h1>Sign in to {{app_name}}</h1><p>{{app_name}} uses your Rocketpunch account.</p>\
<p><a class=\"button\" href=\"{{sign_in_url}}\">Sign in with Rocketpunch</a></p>\
<footer>{{footer}}</footer></main></body></html>";

/// The pages, with the operator's name, logo, footer and templates applied.
#[derive(Clone, Debug)]
pub struct Pages {
    app_name: String,
    footer: String,
    /// The `<img>` for the logo, rendered once: a `data:` URI, so the page makes no request
    /// of its own (and a large logo is not re-escaped on every page).
    logo: Option<String>,
    sign_in_page: bool,
    error: Template,
    sign_in: Template,
}

/// How an operator customises the pages (`[pages]`), already read and checked by `config`.
#[derive(Clone, Debug, Default)]
pub struct PageSettings {
    pub sign_in_page: bool,
    pub app_name: String,
    pub footer: Option<String>,
    pub logo_data_uri: Option<String>,
    pub error_template: Option<Template>,
    pub sign_in_template: Option<Template>,
}

impl Pages {
    pub fn new(settings: &PageSettings) -> Pages {
        // The built-in templates are constants whose parsing a unit test pins.
        let builtin = |text: &str| Template::parse(text).unwrap_or_else(|_| Template::empty());
        Pages {
            app_name: settings.app_name.clone(),
            footer: settings
                .footer
                .clone()
                .unwrap_or_else(|| "rocketgate".to_owned()),
            logo: settings.logo_data_uri.as_ref().map(|uri| {
                format!(
                    "<img class=\"logo\" src=\"{}\" alt=\"{} logo\">",
                    escape(uri),
                    escape(&settings.app_name)
                )
            }),
            sign_in_page: settings.sign_in_page,
            error: settings
                .error_template
                .clone()
                .unwrap_or_else(|| builtin(ERROR_TEMPLATE)),
            sign_in: settings
                .sign_in_template
                .clone()
                .unwrap_or_else(|| builtin(SIGN_IN_TEMPLATE)),
        }
    }

    /// Whether unauthenticated navigations get the sign-in page instead of a redirect.
    pub fn sign_in_enabled(&self) -> bool {
        self.sign_in_page
    }

    fn fill(&self, var: Var, page: &ErrorPage<'_>, sign_in_url: &str) -> String {
        match var {
            Var::Status => page.status.as_u16().to_string(),
            Var::Title => escape(page.title),
            Var::Message => escape(page.message),
            Var::Account => page
                .account
                .map(|a| {
                    format!(
                        "<p class=\"status\">Signed in as <strong>{}</strong></p>",
                        escape(a)
                    )
                })
                .unwrap_or_default(),
            Var::RequestId => page
                .request_id
                .map(|id| {
                    format!(
                        "<p class=\"status\">Request id <code>{}</code>: quote it when asking for help.</p>",
                        escape(id)
                    )
                })
                .unwrap_or_default(),
            Var::Action => page
                .action
                .as_ref()
                .map(|a| {
                    format!(
                        "<p><a class=\"button\" href=\"{}\">{}</a></p>",
                        escape(a.href),
                        escape(a.label)
                    )
                })
                .unwrap_or_default(),
            Var::AppName => escape(&self.app_name),
            Var::Footer => escape(&self.footer),
            Var::Logo => self.logo.clone().unwrap_or_default(),
            Var::SignInUrl => escape(sign_in_url),
            Var::Style => STYLE.to_owned(),
        }
    }

    /// An error page; every text is escaped here.
    pub fn error(&self, page: &ErrorPage<'_>) -> Response<Body> {
        let html = self.error.render(|v| self.fill(v, page, ""));
        html_response(page.status, html)
    }

    /// A 200 page that moves the browser on to `location` by itself (meta refresh) with a
    /// link as fallback: a same-site navigation, so `SameSite=Strict` cookies are sent.
    pub fn continue_to(&self, location: &str) -> Response<Body> {
        let href = escape(location);
        let html = format!(
            "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
<meta http-equiv=\"refresh\" content=\"0;url={href}\">\
<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
<title>Signed in</title><style>{STYLE}</style></head><body><main><h1>Signed in</h1>\
<p><a class=\"button\" href=\"{href}\">Continue</a></p></main></body></html>"
        );
        html_response(StatusCode::OK, html)
    }

    /// Asks before signing out: the answer to a sign-out another site started, so that an
    /// `<img>` or a hidden form elsewhere cannot end the session. The button posts back here
    /// from our own origin, which then signs out.
    pub fn sign_out(&self, action: &str, account: Option<&str>) -> Response<Body> {
        let who = account
            .map(|a| {
                format!(
                    "<p>You are signed in as <strong>{}</strong>.</p>",
                    escape(a)
                )
            })
            .unwrap_or_default();
        let html = format!(
            "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
<title>Sign out of {app}?</title><style>{STYLE}</style></head><body><main>{logo}\
<h1>Sign out of {app}?</h1>{who}\
<form method=\"post\" action=\"{action}\"><button class=\"button\" type=\"submit\">Sign out</button></form>\
<footer>{footer}</footer></main></body></html>",
            app = escape(&self.app_name),
            logo = self.logo.as_deref().unwrap_or_default(),
            action = escape(action),
            footer = escape(&self.footer),
        );
        html_response(StatusCode::OK, html)
    }

    /// The sign-in page: one button to `sign_in_url` (`/oauth2/start?rd=...`). 401, because
    /// the request it answers was not authenticated.
    pub fn sign_in(&self, sign_in_url: &str) -> Response<Body> {
        let status = StatusCode::UNAUTHORIZED;
        let page = ErrorPage::plain(status, "", "");
        let html = self.sign_in.render(|v| self.fill(v, &page, sign_in_url));
        html_response(status, html)
    }
}

fn html_response(status: StatusCode, html: String) -> Response<Body> {
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
        header::HeaderValue::from_static("default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        header::HeaderValue::from_static("nosniff"),
    );
    response
}

/// A small JSON error for API clients: `{"error": code, "message": text}`.
pub fn json_error(status: StatusCode, code: &str, message: &str) -> Response<Body> {
    let mut response = json(&serde_json::json!({ "error": code, "message": message }));
    *response.status_mut() = status;
    response
}

/// A JSON answer that no cache keeps (it is about one user or one admin action).
pub fn json(value: &serde_json::Value) -> Response<Body> {
    let mut response = Response::new(body::full(value.to_string()));
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

    async fn text(r: Response<Body>) -> String {
        String::from_utf8(r.into_body().collect().await.unwrap().to_bytes().to_vec()).unwrap()
    }

    #[test]
    fn builtin_templates_parse() {
        assert!(Template::parse(ERROR_TEMPLATE).unwrap().uses(Var::Message));
        assert!(
            Template::parse(SIGN_IN_TEMPLATE)
                .unwrap()
                .uses(Var::SignInUrl)
        );
    }

    #[tokio::test]
    async fn pages_escape_everything() {
        let pages = Pages::new(&PageSettings {
            app_name: "<App>".into(),
            ..PageSettings::default()
        });
        let r = pages.error(&ErrorPage {
            action: Some(Action {
                href: "/x?a=1&b=\"",
                label: "<go>",
            }),
            account: Some("<ada>"),
            request_id: Some("<id>"),
            ..ErrorPage::plain(StatusCode::FORBIDDEN, "<t>", "a \"b\" <script>")
        });
        assert_eq!(r.status(), 403);
        assert_eq!(r.headers()[header::CACHE_CONTROL], "no-store");
        let html = text(r).await;
        assert!(!html.contains("<script>") && !html.contains("<t>") && !html.contains("<go>"));
        assert!(
            html.contains("Signed in as <strong>&lt;ada&gt;</strong>"),
            "{html}"
        );
        assert!(html.contains("<code>&lt;id&gt;</code>"), "{html}");
        assert!(html.contains("href=\"/x?a=1&amp;b=&quot;\""));
        assert!(html.contains("lang=\"en\"") && html.contains("viewport"));
        let sign_in = text(pages.sign_in("/oauth2/start?rd=%2F&x=\"")).await;
        assert!(sign_in.contains("Sign in to &lt;App&gt;"));
        assert!(sign_in.contains("href=\"/oauth2/start?rd=%2F&amp;x=&quot;\""));
    }

    #[tokio::test]
    async fn the_sign_out_question_names_the_account_and_posts_back() {
        let pages = Pages::new(&PageSettings {
            app_name: "Acme".into(),
            ..PageSettings::default()
        });
        let r = pages.sign_out("/oauth2/sign_out?rd=%2Fbye&x=1", Some("<ada>@example.com"));
        assert_eq!(r.status(), 200);
        assert_eq!(r.headers()[header::CACHE_CONTROL], "no-store");
        let html = text(r).await;
        assert!(html.contains("Sign out of Acme?"), "{html}");
        assert!(
            html.contains("<strong>&lt;ada&gt;@example.com</strong>"),
            "{html}"
        );
        assert!(
            html.contains("method=\"post\" action=\"/oauth2/sign_out?rd=%2Fbye&amp;x=1\""),
            "{html}"
        );
        let anonymous = text(pages.sign_out("/oauth2/sign_out", None)).await;
        assert!(!anonymous.contains("signed in as"));
    }

    #[tokio::test]
    async fn operator_templates_logo_and_footer() {
        let pages = Pages::new(&PageSettings {
            sign_in_page: true,
            app_name: "Acme".into(),
            footer: Some("Acme IT <help>".into()),
            logo_data_uri: Some("data:image/png;base64,AAAA".into()),
            error_template: Some(
                Template::parse("E {{status}} {{title}} {{footer}} {{logo}}").unwrap(),
            ),
            sign_in_template: None,
        });
        assert!(pages.sign_in_enabled());
        let html = text(pages.error(&ErrorPage::plain(StatusCode::BAD_GATEWAY, "T", "M"))).await;
        assert_eq!(
            html,
            "E 502 T Acme IT &lt;help&gt; <img class=\"logo\" src=\"data:image/png;base64,AAAA\" alt=\"Acme logo\">"
        );
        let sign_in = text(pages.sign_in("/s")).await;
        assert!(sign_in.contains("Sign in with Rocketpunch") && sign_in.contains("data:image/png"));
    }
}

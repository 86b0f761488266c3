//! Shared helpers for end-to-end tests: a real rocketgate server on a 127.0.0.1 port, the
//! demo's Rocketpunch stand-in, the demo (echo) upstream, and a browser-like client.
#![allow(dead_code)]

pub mod front;
pub mod grpc;
pub mod nginx;
pub mod otel;
pub mod pki;
pub mod process;
pub mod redis;
pub mod relay;
pub mod served;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use reqwest::header::{ACCEPT, HeaderMap, HeaderValue, LOCATION};
use reqwest::redirect::Policy;
use rocketgate::app::App;
use rocketgate::{config, server};
use rocketgate_demo::{StandIn, StandInOptions, spawn_upstream};
use tokio::net::TcpListener;
use tokio::sync::oneshot;

pub const HTML: &str = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8";

/// Knobs a test can turn: config overrides as `ROCKETGATE_*` variables, stand-in options.
#[derive(Default)]
pub struct Options {
    pub env: Vec<(&'static str, String)>,
    pub standin: StandInOptions,
    /// Use this upstream address instead of the demo upstream.
    pub upstream: Option<SocketAddr>,
    /// How browsers reach the proxy when something (nginx, ...) sits in front of it: sets
    /// `public_url` and the stand-in's registered redirect URI. Default: the proxy's address.
    pub public_url: Option<String>,
    /// TOML appended to the demo configuration (`[[routes]]`, `[groups]`, ...); `{port}` is
    /// the proxy's port, `{upstream}` the upstream's address.
    pub extra_toml: String,
    /// Drop the top-level `upstream` (then `[[routes]]` must say where requests go).
    pub no_default_upstream: bool,
}

/// Options for API clients with Rocketpunch access tokens: the stand-in signs JWTs,
/// rocketgate checks them against its JWKS and accepts `Authorization: Bearer`.
pub fn bearer_options() -> Options {
    Options {
        standin: StandInOptions {
            jwt_access_tokens: true,
            ..StandInOptions::default()
        },
        ..Options::default()
    }
    .env(
        "ROCKETGATE_PROVIDER__JWKS_URL",
        "http://{provider}/.well-known/jwks.json",
    )
    .env("ROCKETGATE_PROVIDER__ISSUER", "http://{provider}")
    .env("ROCKETGATE_ACCESS__ACCEPT_BEARER_TOKENS", "true")
}

/// Options with two `[[routes]]` to the stack's upstream: `/admin` admits only example.org
/// addresses (grace, user 1002, not ada), everything else anyone signed in. For checks whose
/// answer depends on the reported path.
pub fn admin_routes() -> Options {
    Options {
        extra_toml: r#"
[[routes]]
path = "/admin"
upstream = "http://{upstream}"
allowed_email_domains = ["example.org"]

[[routes]]
path = "/"
upstream = "http://{upstream}"
"#
        .to_owned(),
        no_default_upstream: true,
        ..Options::default()
    }
}

/// Access tokens of 4 s, passed upstream: the refresh window is then 2 s (half the lifetime),
/// so a session is due 2–3 s after it was issued ([`DUE`]) and not due again for at least a
/// second after a refresh.
pub fn short_tokens() -> Options {
    Options {
        standin: StandInOptions {
            access_token_ttl: Duration::from_secs(4),
            ..StandInOptions::default()
        },
        ..Options::default()
    }
    .env("ROCKETGATE_HEADERS__PASS_ACCESS_TOKEN", "true")
}

/// How long after sign-in a [`short_tokens`] session is due for refresh.
pub const DUE: Duration = Duration::from_millis(3100);

impl Options {
    /// Adds a `ROCKETGATE_*` override; `{provider}` in `value` becomes the stand-in's address.
    pub fn env(mut self, key: &'static str, value: impl Into<String>) -> Self {
        self.env.push((key, value.into()));
        self
    }
}

/// One running proxy with its stand-in provider and upstream.
pub struct Stack {
    pub proxy: SocketAddr,
    pub provider: SocketAddr,
    pub upstream: SocketAddr,
    pub standin: Arc<StandIn>,
    /// `https` when the options configured `[tls]` (`ROCKETGATE_TLS__CERT_FILE`), else `http`.
    pub scheme: &'static str,
    /// The running proxy's shared state (config, metrics), for tests that reach inside.
    pub app: Arc<App>,
    shutdown: Option<oneshot::Sender<()>>,
    served: tokio::task::JoinHandle<()>,
}

async fn loopback() -> TcpListener {
    TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind 127.0.0.1:0")
}

impl Stack {
    pub async fn start() -> Stack {
        Stack::with(Options::default()).await
    }

    pub async fn with(options: Options) -> Stack {
        init_crypto();
        let proxy_listener = loopback().await;
        let provider_listener = loopback().await;
        let proxy = proxy_listener.local_addr().unwrap();
        let provider = provider_listener.local_addr().unwrap();
        let upstream = match options.upstream {
            Some(addr) => addr,
            None => {
                let l = loopback().await;
                let addr = l.local_addr().unwrap();
                spawn_upstream(l);
                addr
            }
        };
        let secret = "stack-client-secret".to_owned();
        let tls = options
            .env
            .iter()
            .any(|(k, _)| *k == "ROCKETGATE_TLS__CERT_FILE");
        let scheme = if tls { "https" } else { "http" };
        // `{port}` in the public URL, an env value or the extra TOML is the proxy's port.
        let port = proxy.port().to_string();
        let public_url = options
            .public_url
            .as_ref()
            .map(|u| u.replace("{port}", &port))
            .or_else(|| tls.then(|| format!("https://{proxy}")));
        let standin = StandIn::new(StandInOptions {
            client_id: "demo-client".into(),
            client_secret: secret.clone(),
            redirect_uri: format!(
                "{}/oauth2/callback",
                public_url.as_deref().map_or_else(
                    || format!("http://{proxy}"),
                    |u| u.trim_end_matches('/').to_owned()
                )
            ),
            ..options.standin
        });
        standin.spawn(provider_listener);
        let mut toml = if options.no_default_upstream {
            rocketgate_demo::proxy_config_without_upstream(proxy, provider, &secret)
        } else {
            rocketgate_demo::proxy_config(proxy, upstream, provider, &secret)
        };
        toml.push('\n');
        toml.push_str(
            &options
                .extra_toml
                .replace("{port}", &port)
                .replace("{upstream}", &upstream.to_string()),
        );
        // `{provider}` in a value stands for the stand-in's address, unknown until now.
        let mut env: HashMap<String, String> = options
            .env
            .into_iter()
            .map(|(k, v)| {
                let v = v.replace("{provider}", &provider.to_string());
                (k.to_owned(), v.replace("{port}", &port))
            })
            .collect();
        if let Some(public_url) = public_url {
            env.insert("ROCKETGATE_PUBLIC_URL".to_owned(), public_url);
        }
        let config = config::load_from_str(&toml, &env).expect("test config is valid");
        let server_tls = config
            .tls
            .as_ref()
            .map(|t| rocketgate::tls::ServerTls::start(t).expect("TLS starts"));
        let app = App::new(config).expect("app starts");
        let (tx, rx) = oneshot::channel::<()>();
        let stopped = async move {
            let _ = rx.await;
        };
        let served = match server_tls {
            Some(t) => tokio::spawn(server::serve_tls(
                rocketgate::live::Live::new(app.clone()),
                proxy_listener,
                t,
                stopped,
            )),
            None => tokio::spawn(server::serve(
                rocketgate::live::Live::new(app.clone()),
                proxy_listener,
                stopped,
            )),
        };
        Stack {
            proxy,
            provider,
            upstream,
            standin,
            scheme,
            app,
            shutdown: Some(tx),
            served,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}://{}{}", self.scheme, self.proxy, path)
    }

    /// A browser: keeps cookies, does not follow redirects (tests look at each hop), asks for HTML.
    pub fn browser(&self) -> Browser {
        Browser::new(self.proxy)
    }

    /// The Prometheus text the proxy serves at `/metrics`.
    pub async fn metrics(&self) -> String {
        self.client()
            .get(self.url("/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    /// A script's request for `/api` on this proxy with `cookie` (see [`api_get`]).
    pub async fn api(&self, cookie: &str) -> reqwest::Response {
        api_get(&self.client(), self.url("/api"), cookie).await
    }

    /// A plain client: no cookie store, no redirects.
    pub fn client(&self) -> reqwest::Client {
        reqwest::Client::builder()
            .redirect(Policy::none())
            .timeout(Duration::from_secs(20))
            .build()
            .unwrap()
    }

    /// Stops the proxy gracefully and waits for it.
    pub async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        let _ = (&mut self.served).await;
    }
}

/// What a script does: GET `url` with `Accept: application/json` and the session `cookie`.
pub async fn api_get(
    client: &reqwest::Client,
    url: impl reqwest::IntoUrl,
    cookie: &str,
) -> reqwest::Response {
    client
        .get(url)
        .header(ACCEPT, "application/json")
        .header(reqwest::header::COOKIE, cookie)
        .send()
        .await
        .expect("request")
}

/// The access token the demo upstream received (`headers.pass_access_token` must be on).
pub async fn token_seen(response: reqwest::Response) -> String {
    assert_eq!(response.status(), 200, "a signed-in request");
    let echo: Echo = response.json().await.expect("echo JSON");
    echo.header("x-forwarded-access-token")
        .expect("X-Forwarded-Access-Token")
        .to_owned()
}

pub fn init_crypto() {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
}

pub struct Browser {
    pub client: reqwest::Client,
    pub jar: Arc<reqwest::cookie::Jar>,
    proxy: SocketAddr,
    scheme: &'static str,
}

pub fn location(response: &reqwest::Response) -> String {
    response
        .headers()
        .get(LOCATION)
        .unwrap_or_else(|| panic!("no Location on {}", response.status()))
        .to_str()
        .unwrap()
        .to_owned()
}

/// All `Set-Cookie` header values of a response.
pub fn set_cookies(response: &reqwest::Response) -> Vec<String> {
    response
        .headers()
        .get_all(reqwest::header::SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect()
}

fn hidden_fields(html: &str) -> Vec<(String, String)> {
    let mut fields = Vec::new();
    for input in html.split("<input").skip(1) {
        let tag = &input[..input.find('>').unwrap_or(input.len())];
        if !tag.contains("type=\"hidden\"") {
            continue;
        }
        let attr = |name: &str| {
            let key = format!("{name}=\"");
            tag.find(&key).map(|i| {
                let rest = &tag[i + key.len()..];
                unescape(&rest[..rest.find('"').unwrap_or(rest.len())])
            })
        };
        if let (Some(n), Some(v)) = (attr("name"), attr("value")) {
            fields.push((n, v));
        }
    }
    fields
}

fn unescape(s: &str) -> String {
    s.replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&#x27;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

impl Browser {
    /// A browser for a proxy at `proxy`, wherever it runs (in this process or a child).
    pub fn new(proxy: SocketAddr) -> Browser {
        Browser::build(proxy, "http", |b| b)
    }

    /// A browser for which each of `hosts` resolves to the proxy, as DNS would send every
    /// app's name to one gateway.
    pub fn resolving(proxy: SocketAddr, hosts: &[&str]) -> Browser {
        let hosts: Vec<String> = hosts.iter().map(|h| (*h).to_owned()).collect();
        Browser::build(proxy, "http", move |mut b| {
            for host in &hosts {
                b = b.resolve(host, proxy);
            }
            b
        })
    }

    /// A browser for a proxy serving HTTPS that trusts only the CA `ca_pem`.
    pub fn https(proxy: SocketAddr, ca_pem: &str) -> Browser {
        let ca = reqwest::Certificate::from_pem(ca_pem.as_bytes()).expect("CA PEM");
        Browser::build(proxy, "https", |b| b.tls_certs_only([ca]))
    }

    fn build(
        proxy: SocketAddr,
        scheme: &'static str,
        tls: impl FnOnce(reqwest::ClientBuilder) -> reqwest::ClientBuilder,
    ) -> Browser {
        let jar = Arc::new(reqwest::cookie::Jar::default());
        let mut headers = HeaderMap::new();
        headers.insert(ACCEPT, HeaderValue::from_static(HTML));
        let client = tls(reqwest::Client::builder())
            .cookie_provider(jar.clone())
            .redirect(Policy::none())
            .default_headers(headers)
            .timeout(Duration::from_secs(20))
            .build()
            .unwrap();
        Browser {
            client,
            jar,
            proxy,
            scheme,
        }
    }

    pub async fn get(&self, url: &str) -> reqwest::Response {
        self.client.get(url).send().await.expect("request")
    }

    /// What the echo app behind the proxy saw for a signed-in script's GET of `path`.
    pub async fn echo(&self, path: &str) -> Echo {
        let response = self
            .client
            .get(self.url(path))
            .header(ACCEPT, "application/json")
            .send()
            .await
            .expect("request");
        assert_eq!(response.status(), 200, "{path}");
        response.json().await.expect("the echo app's JSON")
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}://{}{}", self.scheme, self.proxy, path)
    }

    /// On the stand-in's consent page at `authorize_url`, press Approve (as `user`) or Deny;
    /// returns the stand-in's redirect (to our callback).
    pub async fn consent(
        &self,
        authorize_url: &str,
        user: &str,
        approve: bool,
    ) -> reqwest::Response {
        let page = self.get(authorize_url).await;
        assert_eq!(page.status(), 200, "consent page for {authorize_url}");
        let html = page.text().await.unwrap();
        let mut form = hidden_fields(&html);
        form.push(("user".into(), user.into()));
        form.push((
            "decision".into(),
            if approve { "approve" } else { "deny" }.into(),
        ));
        let action = authorize_url.split('?').next().unwrap();
        self.client
            .post(action)
            .form(&form)
            .send()
            .await
            .expect("consent post")
    }

    /// Signs in through the whole flow starting from `path`, as demo user `user` ("1001" is ada);
    /// returns the final response from the proxy (the page at `path`).
    pub async fn login_as(&self, path: &str, user: &str) -> reqwest::Response {
        let first = self.get(&self.url(path)).await;
        assert_eq!(
            first.status(),
            302,
            "unauthenticated navigation must redirect"
        );
        let authorize = location(&first);
        let back = self.consent(&authorize, user, true).await;
        assert_eq!(back.status(), 302, "stand-in redirects back");
        let callback = self.get(&location(&back)).await;
        assert_eq!(
            callback.status(),
            302,
            "callback redirects to the return URL"
        );
        let target = location(&callback);
        assert!(target.starts_with('/'), "{target}");
        self.get(&self.url(&target)).await
    }

    pub async fn login(&self, path: &str) -> reqwest::Response {
        self.login_as(path, "1001").await
    }

    /// The value of a cookie the jar holds for the proxy, by name.
    pub fn cookie(&self, name: &str) -> Option<String> {
        use reqwest::cookie::CookieStore;
        let url = format!("{}://{}/", self.scheme, self.proxy)
            .parse()
            .unwrap();
        let header = self.jar.cookies(&url)?;
        header.to_str().ok()?.split("; ").find_map(|pair| {
            let (n, v) = pair.split_once('=')?;
            (n == name).then(|| v.to_owned())
        })
    }

    /// The whole `Cookie` header the jar would send to `url`.
    pub fn cookie_header_for(&self, url: &str) -> String {
        use reqwest::cookie::CookieStore;
        self.jar
            .cookies(&url.parse().unwrap())
            .map(|h| h.to_str().unwrap().to_owned())
            .unwrap_or_default()
    }

    /// The whole `Cookie` header the jar would send to the proxy.
    pub fn cookie_header(&self) -> String {
        use reqwest::cookie::CookieStore;
        let url = format!("{}://{}/", self.scheme, self.proxy)
            .parse()
            .unwrap();
        self.jar
            .cookies(&url)
            .map(|h| h.to_str().unwrap().to_owned())
            .unwrap_or_default()
    }
}

/// The demo upstream's JSON echo of what it received.
#[derive(serde::Deserialize, Debug)]
pub struct Echo {
    pub method: String,
    pub uri: String,
    pub headers: Vec<(String, String)>,
    pub body_bytes: u64,
}

impl Echo {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn all(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .collect()
    }
}

/// Waits until `addr` accepts TCP connections (bounded), for servers in other processes.
pub async fn wait_for_port(addr: SocketAddr) {
    for _ in 0..200 {
        if tokio::net::TcpStream::connect(addr).await.is_ok() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("{addr} never accepted connections");
}

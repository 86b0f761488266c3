//! Real front proxies in forward-auth mode, each run with the configuration
//! `docs/integrations.md` documents for it: nginx (`auth_request`), Caddy (`forward_auth`, the
//! short and the expanded form) and Traefik v3 (`forwardAuth`). rocketgate decides, the front
//! proxy talks to the app. `scripts/test` installs each server; these tests never skip.
//!
//! The documented configs are written here with `{rocketgate}`, `{app}` and `{host}` where
//! addresses go; `tests/it/front_proxies.rs` checks that the docs show exactly these.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use reqwest::header::ACCEPT;
use tokio::process::Command;

use super::nginx;
use super::process::{find_binary, free_port};
use super::served::{Served, StartError, TempDir, ready_token};
use super::{Browser, Echo, Options, Stack, location};

/// One documented setup of one front proxy.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Front {
    /// nginx `auth_request`, as in `docs/integrations.md`.
    Nginx,
    /// Caddy's `forward_auth` directive.
    CaddyShort,
    /// Caddy's expanded form: `reverse_proxy` with `handle_response`.
    CaddyExpanded,
    /// Traefik v3 `forwardAuth`, `trustForwardHeader` off, `addAuthCookiesToResponse` on.
    Traefik,
    /// Traefik v3 `forwardAuth` with `trustForwardHeader: true` and no
    /// `addAuthCookiesToResponse`: every refreshed cookie is dropped.
    TraefikTrustingNoCookies,
    /// nginx with this `server {}` body instead of the documented one (another project's
    /// snippet, say); its `upstream` blocks name `rocketgate` and `echo_upstream`.
    NginxWith(&'static str),
}

/// The identity header names the app reads behind a front proxy: user, email, username.
pub struct IdentityHeaders {
    pub user: &'static str,
    pub email: &'static str,
    pub username: &'static str,
}

const FORWARDED: IdentityHeaders = IdentityHeaders {
    user: "x-forwarded-user",
    email: "x-forwarded-email",
    username: "x-forwarded-preferred-username",
};

const AUTH_REQUEST: IdentityHeaders = IdentityHeaders {
    user: "x-auth-request-user",
    email: "x-auth-request-email",
    username: "x-auth-request-preferred-username",
};

impl Front {
    /// Which headers carry the identity to the app: nginx and Caddy rename the check's
    /// `X-Auth-Request-*` to rocketgate's own `X-Forwarded-*`; Traefik can only copy them.
    pub fn identity(self) -> IdentityHeaders {
        match self {
            Front::Nginx | Front::NginxWith(_) | Front::CaddyShort | Front::CaddyExpanded => {
                FORWARDED
            }
            Front::Traefik | Front::TraefikTrustingNoCookies => AUTH_REQUEST,
        }
    }

    /// Whether the browser receives the cookie of a refresh done in an auth answer (an
    /// unsplit one: nginx passes only the first `Set-Cookie`).
    pub fn passes_refreshed_cookie(self) -> bool {
        matches!(self, Front::Nginx | Front::Traefik)
    }

    /// The documented configuration, with `{rocketgate}`, `{app}` and `{host}` placeholders.
    pub fn documented(self) -> String {
        match self {
            Front::Nginx => NGINX_SERVER.to_owned(),
            Front::NginxWith(server) => server.to_owned(),
            Front::CaddyShort => CADDY_SHORT.to_owned(),
            Front::CaddyExpanded => CADDY_EXPANDED.to_owned(),
            Front::Traefik => TRAEFIK.to_owned(),
            Front::TraefikTrustingNoCookies => traefik_trusting_without_cookies(),
        }
    }

    /// Starts this front proxy on `listen`, checking with rocketgate at `rocketgate` and
    /// proxying to `app`.
    async fn start(
        self,
        listen: SocketAddr,
        rocketgate: SocketAddr,
        app: SocketAddr,
    ) -> Result<Served, StartError> {
        let fill = |text: &str| {
            text.replace("{rocketgate}", &rocketgate.to_string())
                .replace("{app}", &app.to_string())
                .replace("{host}", "127.0.0.1")
        };
        match self {
            Front::Nginx | Front::NginxWith(_) => {
                let http = format!(
                    "    upstream rocketgate    {{ server {rocketgate}; }}\n    upstream echo_upstream {{ server {app}; }}\n"
                );
                nginx::start(listen, &http, &fill(&self.documented())).await
            }
            Front::CaddyShort | Front::CaddyExpanded => {
                start_caddy(listen, &fill(&self.documented())).await
            }
            Front::Traefik | Front::TraefikTrustingNoCookies => {
                start_traefik(listen, &fill(&self.documented())).await
            }
        }
    }
}

/// The `server {}` part of the nginx config (the `upstream` blocks name `rocketgate` and
/// `echo_upstream`).
pub const NGINX_SERVER: &str = r#"
        # A session with big tokens is split into several cookies: room for them both ways.
        large_client_header_buffers 4 32k;
        proxy_buffer_size 32k;
        proxy_buffers 8 32k;

        # The check nginx runs before every protected request: a body-less subrequest.
        location = /oauth2/auth {
            internal;
            proxy_pass http://rocketgate/oauth2/auth;
            proxy_pass_request_body off;
            proxy_set_header Content-Length "";
            proxy_set_header X-Original-URI $request_uri;
            proxy_set_header X-Forwarded-Uri $request_uri;
            proxy_set_header X-Forwarded-Host $host;
            proxy_set_header X-Forwarded-Proto $scheme;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
        }

        # rocketgate's own pages: start, callback, sign_out, userinfo.
        location /oauth2/ {
            proxy_pass http://rocketgate;
            proxy_set_header Host $http_host;
            proxy_set_header X-Forwarded-Host $http_host;
            proxy_set_header X-Forwarded-Proto $scheme;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Uri "";
            proxy_set_header X-Original-URL "";
            proxy_set_header X-Original-URI "";
        }

        # The protected app.
        location / {
            auth_request /oauth2/auth;
            auth_request_set $user     $upstream_http_x_auth_request_user;
            auth_request_set $email    $upstream_http_x_auth_request_email;
            auth_request_set $username $upstream_http_x_auth_request_preferred_username;
            auth_request_set $groups   $upstream_http_x_auth_request_groups;
            auth_request_set $auth_cookie $upstream_http_set_cookie;
            add_header Set-Cookie $auth_cookie;
            # The identity the app reads, from the check alone: each line replaces the client's
            # own header of that name, and an empty value sends none.
            proxy_set_header X-Forwarded-User $user;
            proxy_set_header X-Forwarded-Email $email;
            proxy_set_header X-Forwarded-Preferred-Username $username;
            proxy_set_header X-Forwarded-Groups $groups;
            proxy_set_header X-Auth-Request-User "";
            proxy_set_header X-Auth-Request-Email "";
            proxy_set_header X-Auth-Request-Preferred-Username "";
            proxy_set_header X-Auth-Request-Groups "";
            error_page 401 = @login;
            proxy_pass http://echo_upstream;
        }

        # Not signed in: rocketgate answers browsers with a 302 to /oauth2/start carrying the
        # percent-encoded deep link, everything else with 401 JSON.
        location @login {
            rewrite ^ /oauth2/auth?mode=redirect? break;
            proxy_pass http://rocketgate;
            proxy_pass_request_body off;
            proxy_set_header Content-Length "";
            proxy_set_header X-Forwarded-Uri $request_uri;
            proxy_set_header X-Forwarded-Host $http_host;
            proxy_set_header X-Forwarded-Proto $scheme;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
        }
"#;

/// The body of the Caddy site block, `forward_auth` form.
pub const CADDY_SHORT: &str = r#"
	# rocketgate's own pages: sign-in, callback, sign-out. Only /oauth2/start?rd= says
	# where to return after sign-in, so clients' return-URL headers are dropped.
	handle /oauth2/* {
		reverse_proxy {rocketgate} {
			header_up -X-Forwarded-Uri
			header_up -X-Original-*
		}
	}

	handle {
		route {
			# Only the check speaks for the user: clients' own copies of the identity
			# headers go first (names match in any case; X_* are underscore spellings).
			request_header -X-Forwarded-User
			request_header -X-Forwarded-Email
			request_header -X-Forwarded-Preferred-Username
			request_header -X-Forwarded-Groups
			request_header -X-Auth-Request-*
			request_header -X_*

			# The check: 200 lets the request through with the identity headers renamed
			# to rocketgate's own; any other answer (302 to sign-in, 401, 403) goes to the
			# client as it is.
			forward_auth {rocketgate} {
				uri /oauth2/auth?mode=redirect
				copy_headers X-Auth-Request-User>X-Forwarded-User X-Auth-Request-Email>X-Forwarded-Email X-Auth-Request-Preferred-Username>X-Forwarded-Preferred-Username
			}

			reverse_proxy {app}
		}
	}
"#;

/// The body of the Caddy site block, expanded form (what `forward_auth` stands for).
pub const CADDY_EXPANDED: &str = r#"
	handle /oauth2/* {
		reverse_proxy {rocketgate} {
			header_up -X-Forwarded-Uri
			header_up -X-Original-*
		}
	}

	handle {
		route {
			request_header -X-Forwarded-User
			request_header -X-Forwarded-Email
			request_header -X-Forwarded-Preferred-Username
			request_header -X-Forwarded-Groups
			request_header -X-Auth-Request-*
			request_header -X_*

			reverse_proxy {rocketgate} {
				# A body-less GET of the check, naming the original request.
				method GET
				rewrite /oauth2/auth?mode=redirect
				header_up X-Forwarded-Method {method}
				header_up X-Forwarded-Uri {uri}

				# On 200, copy the identity onto the request and go on to the app;
				# any other answer goes to the client as it is.
				@allowed status 2xx
				handle_response @allowed {
					request_header X-Forwarded-User {http.reverse_proxy.header.X-Auth-Request-User}
					request_header X-Forwarded-Email {http.reverse_proxy.header.X-Auth-Request-Email}
					request_header X-Forwarded-Preferred-Username {http.reverse_proxy.header.X-Auth-Request-Preferred-Username}
				}
			}

			reverse_proxy {app}
		}
	}
"#;

/// Traefik's dynamic configuration (file provider).
pub const TRAEFIK: &str = r#"
http:
  routers:
    rocketgate:                     # rocketgate's own pages, without the check
      rule: "Host(`{host}`) && PathPrefix(`/oauth2/`)"
      service: rocketgate
      middlewares: [rocketgate-pages]
    app:
      rule: "Host(`{host}`)"
      service: app
      middlewares: [rocketgate]

  middlewares:
    rocketgate:
      forwardAuth:
        address: "http://{rocketgate}/oauth2/auth?mode=redirect"
        trustForwardHeader: false
        # Copied from the check's 200 onto the request to the app, replacing any the
        # client sent.
        authResponseHeaders:
          - X-Auth-Request-User
          - X-Auth-Request-Email
          - X-Auth-Request-Preferred-Username
          - X-Auth-Request-Groups
        # Removes every client copy of both identity families, in any case and with
        # underscores, before the check's are copied.
        authResponseHeadersRegex: "(?i)^X[-_](Forwarded|Auth[-_]Request)[-_](User|Email|Preferred[-_]Username|Groups)$"
        # The refreshed session cookie, on to the browser.
        addAuthCookiesToResponse:
          - _rocketgate
    rocketgate-pages:
      headers:
        customRequestHeaders:       # "" removes: only /oauth2/start?rd= sets the return URL
          X-Original-URL: ""
          X-Original-URI: ""

  services:
    rocketgate:
      loadBalancer:
        servers:
          - url: "http://{rocketgate}"
    app:
      loadBalancer:
        servers:
          - url: "http://{app}"
"#;

/// [`TRAEFIK`] with `trustForwardHeader: true` and without `addAuthCookiesToResponse`.
fn traefik_trusting_without_cookies() -> String {
    let trusting = TRAEFIK.replace("trustForwardHeader: false", "trustForwardHeader: true");
    let start = trusting
        .find("        # The refreshed session cookie")
        .expect("the cookie lines");
    let end = trusting[start..]
        .find("    rocketgate-pages:")
        .expect("the pages middleware");
    format!("{}{}", &trusting[..start], &trusting[start + end..])
}

/// How long Caddy or Traefik may take to load its config and answer.
const START_BOUND: Duration = Duration::from_secs(30);

/// Caddy: `$CADDY`, `caddy` on `PATH`, or Debian's `/usr/bin/caddy`.
fn caddy_binary() -> PathBuf {
    find_binary("CADDY", "caddy", &[PathBuf::from("/usr/bin/caddy")])
        .unwrap_or_else(|| panic!("caddy not found: run scripts/test, which installs it"))
}

/// Traefik: `$TRAEFIK`, `traefik` on `PATH`, or where `go install` puts it.
fn traefik_binary() -> PathBuf {
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_default();
    find_binary("TRAEFIK", "traefik", &[home.join("go/bin/traefik")])
        .unwrap_or_else(|| panic!("traefik not found: run scripts/test, which builds it"))
}

/// Caddy with `site` as the body of one plain-HTTP site on `listen`, no admin endpoint and
/// its storage in a temp dir.
async fn start_caddy(listen: SocketAddr, site: &str) -> Result<Served, StartError> {
    let dir = TempDir::new("caddy");
    let token = ready_token("caddy");
    let caddyfile = format!(
        "{{\n\tadmin off\n\tauto_https off\n\tstorage file_system {dir}/data\n}}\n\nhttp://:{port} {{\n\tbind {ip}\n\thandle /.front-ready {{\n\t\trespond \"{token}\" 200\n\t}}\n{site}}}\n",
        dir = dir.path().display(),
        port = listen.port(),
        ip = listen.ip(),
    );
    let path = dir.path().join("Caddyfile");
    std::fs::write(&path, caddyfile).expect("write Caddyfile");
    let mut command = Command::new(caddy_binary());
    command
        .arg("run")
        .arg("--config")
        .arg(&path)
        .arg("--adapter")
        .arg("caddyfile")
        .env("HOME", dir.path())
        .env("XDG_DATA_HOME", dir.path().join("data"))
        .env("XDG_CONFIG_HOME", dir.path().join("config"));
    Served::start(command, dir, listen, "/.front-ready", &token, START_BOUND).await
}

/// Traefik on `listen` with `dynamic` from the file provider, plus a readiness route to the
/// app (which echoes the path back), answering only once the routers are loaded. No version
/// check, no usage report: nothing leaves the machine.
async fn start_traefik(listen: SocketAddr, dynamic: &str) -> Result<Served, StartError> {
    let dir = TempDir::new("traefik");
    let token = ready_token("traefik");
    let probe = format!("/.front-ready/{token}");
    let ready = "  routers:\n    front-ready:\n      rule: \"PathPrefix(`/.front-ready/`)\"\n      service: app\n      priority: 10000\n";
    let dynamic = dynamic.replacen("  routers:\n", ready, 1);
    let dynamic_path = dir.path().join("dynamic.yml");
    std::fs::write(&dynamic_path, dynamic).expect("write dynamic.yml");
    let static_config = format!(
        "global:\n  checkNewVersion: false\n  sendAnonymousUsage: false\nentryPoints:\n  web:\n    address: \"{listen}\"\nproviders:\n  file:\n    filename: \"{}\"\n    watch: false\nlog:\n  level: ERROR\n",
        dynamic_path.display()
    );
    let static_path = dir.path().join("traefik.yml");
    std::fs::write(&static_path, static_config).expect("write traefik.yml");
    let mut command = Command::new(traefik_binary());
    command
        .arg(format!("--configFile={}", static_path.display()))
        .env("HOME", dir.path());
    Served::start(command, dir, listen, &probe, &token, START_BOUND).await
}

/// rocketgate (trusting 127.0.0.1, where the front proxy connects from) with its stand-in
/// provider and the echo app, behind a real front proxy whose address is rocketgate's
/// `public_url`.
pub struct Gateway {
    pub stack: Stack,
    pub front: Served,
    pub kind: Front,
}

impl Gateway {
    /// `options` is called again if the front proxy's port was taken before it could bind
    /// it, since the port is part of rocketgate's configuration. The app is the options'
    /// `upstream` when set, else the stack's echo upstream.
    pub async fn start(kind: Front, options: impl Fn() -> Options) -> Gateway {
        for attempt in 1..=3 {
            let addr = free_port();
            let stack = Stack::with(
                Options {
                    public_url: Some(format!("http://{addr}")),
                    ..options()
                }
                .env("ROCKETGATE_TRUSTED_PROXIES", "127.0.0.1"),
            )
            .await;
            match kind.start(addr, stack.proxy, stack.upstream).await {
                Ok(front) => return Gateway { stack, front, kind },
                Err(e) if e.port_taken() && attempt < 3 => stack.stop().await,
                Err(e) => panic!("{kind:?} did not start:\n{}", e.stderr),
            }
        }
        unreachable!("the last attempt returns or panics")
    }

    pub fn browser(&self) -> Browser {
        Browser::new(self.front.addr)
    }

    pub fn url(&self, path: &str) -> String {
        self.front.url(path)
    }

    /// Signs `user` in through the front proxy from `deep_link`, checking every hop; returns
    /// the final response (the app's page at the deep link).
    pub async fn login(&self, browser: &Browser, deep_link: &str, user: &str) -> reqwest::Response {
        let kind = self.kind;
        let first = browser.get(&self.url(deep_link)).await;
        assert_eq!(
            first.status(),
            302,
            "{kind:?}: protected navigation goes to the login"
        );
        let start = location(&first);
        let expected = format!(
            "{}?rd={}",
            self.url("/oauth2/start"),
            form_urlencoded::byte_serialize(deep_link.as_bytes()).collect::<String>()
        );
        assert_eq!(
            start, expected,
            "{kind:?}: the whole deep link, percent-encoded"
        );

        let to_provider = browser.get(&start).await;
        assert_eq!(to_provider.status(), 302, "{kind:?}: /oauth2/start");
        let authorize = location(&to_provider);
        assert!(
            authorize.starts_with(&format!("http://{}/oauth/authorize?", self.stack.provider)),
            "{authorize}"
        );
        let url = reqwest::Url::parse(&authorize).unwrap();
        let redirect_uri = url
            .query_pairs()
            .find(|(k, _)| k == "redirect_uri")
            .map(|(_, v)| v.into_owned());
        assert_eq!(redirect_uri, Some(self.url("/oauth2/callback")));

        let back = browser.consent(&authorize, user, true).await;
        assert_eq!(back.status(), 302, "stand-in redirects back");
        let callback_url = location(&back);
        assert!(callback_url.starts_with(&self.url("/oauth2/callback?")));
        let callback = browser.get(&callback_url).await;
        assert_eq!(callback.status(), 302, "{kind:?}: callback");
        assert_eq!(
            location(&callback),
            deep_link,
            "{kind:?}: back on the exact deep link"
        );
        browser.get(&self.url(deep_link)).await
    }

    /// A script's request through the front proxy with the browser's cookies.
    pub async fn api(&self, browser: &Browser, path: &str) -> reqwest::Response {
        browser
            .client
            .get(self.url(path))
            .header(ACCEPT, "application/json")
            .send()
            .await
            .expect("request through the front proxy")
    }

    /// What the app saw for a signed-in API request.
    pub async fn echo(&self, browser: &Browser, path: &str) -> Echo {
        let response = self.api(browser, path).await;
        assert_eq!(response.status(), 200, "{:?}: {path}", self.kind);
        response.json().await.expect("the echo app's JSON")
    }
}

//! The rocketgate configuration for a proxy in front of the demo's servers.

use std::net::SocketAddr;

use base64::Engine as _;

/// 32 random bytes in standard base64: a fresh `cookie.secret`.
pub fn random_secret() -> String {
    let bytes: [u8; 32] = rand::random();
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// The TOML for a proxy listening on `public`, in front of `upstream`, signing in at the
/// stand-in on `provider` as client `demo-client` with `client_secret`, with a fresh cookie
/// secret and cookies usable over plain http.
pub fn proxy_config(
    public: SocketAddr,
    upstream: SocketAddr,
    provider: SocketAddr,
    client_secret: &str,
) -> String {
    config(public, Some(upstream), provider, client_secret)
}

/// [`proxy_config`] without a top-level `upstream`: for a configuration whose `[[routes]]`
/// (appended by the caller) name the upstreams.
pub fn proxy_config_without_upstream(
    public: SocketAddr,
    provider: SocketAddr,
    client_secret: &str,
) -> String {
    config(public, None, provider, client_secret)
}

fn config(
    public: SocketAddr,
    upstream: Option<SocketAddr>,
    provider: SocketAddr,
    client_secret: &str,
) -> String {
    let upstream = upstream.map_or_else(String::new, |u| format!("upstream = \"http://{u}\"\n"));
    format!(
        r#"
listen = "{public}"
{upstream}public_url = "http://{public}"

[provider]
client_id = "demo-client"
client_secret = "{client_secret}"
authorize_url = "http://{provider}/oauth/authorize"
token_url = "http://{provider}/oauth/token"
profile_url = "http://{provider}/api/v1/profiles/me"

[cookie]
secret = "{secret}"
secure = false
"#,
        secret = random_secret(),
    )
}

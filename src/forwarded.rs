//! Where a request really came from: the peer, or what trusted proxies in front of us say.
//!
//! `X-Forwarded-*`, `X-Real-IP` and `X-Original-*` are believed only when the TCP peer is in
//! `trusted_proxies`; from anyone else they are ignored (and stripped before forwarding), so a
//! client cannot choose its IP, scheme, host or return URL.

use std::net::{IpAddr, SocketAddr};

use http::HeaderMap;
use http::header::{HOST, HeaderValue};
use ipnet::IpNet;

/// The `trusted_proxies` CIDR list.
#[derive(Clone, Debug, Default)]
pub struct TrustedProxies(Vec<IpNet>);

impl TrustedProxies {
    pub fn new(nets: Vec<IpNet>) -> Self {
        Self(nets)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        self.0.iter().any(|net| net.contains(&ip))
    }
}

/// Parses one entry: a CIDR (`10.0.0.0/8`) or a single address (`10.1.2.3`, `::1`).
pub fn parse_net(text: &str) -> Result<IpNet, String> {
    let text = text.trim();
    text.parse::<IpNet>()
        .or_else(|_| text.parse::<IpAddr>().map(IpNet::from))
        .map_err(|_| format!("must be a CIDR like \"10.0.0.0/8\" or an IP address, got {text:?}"))
}

/// The request's origin as rocketgate will report it upstream.
#[derive(Clone, Debug)]
pub struct Origin {
    /// The client: the peer, or the rightmost `X-Forwarded-For` address not in the trusted list.
    pub client_ip: IpAddr,
    /// `X-Forwarded-For` to send upstream: the trusted chain plus the peer.
    pub forwarded_for: String,
    /// `client_ip` as the `X-Real-IP` value, made once.
    pub real_ip: HeaderValue,
    /// `http` or `https` as the browser used it.
    pub proto: HeaderValue,
    /// The host the browser asked for.
    pub host: Option<HeaderValue>,
    /// The original URI a trusted proxy reports (`X-Forwarded-Uri`, `X-Original-URL`, or
    /// oauth2-proxy's `X-Auth-Request-Redirect`, which its nginx snippets set on `/oauth2/`),
    /// for return URLs in forward-auth setups. Never set from untrusted peers.
    pub original_uri: Option<String>,
    /// The peer is a trusted proxy: its forwarding headers (and its trace's sampled flag)
    /// are believed.
    pub peer_trusted: bool,
}

impl Origin {
    /// [`Origin::host`] as text; `None` when absent or not visible ASCII.
    pub fn host_str(&self) -> Option<&str> {
        self.host.as_ref().and_then(|h| h.to_str().ok())
    }
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| !v.is_empty())
}

/// An address as a header value (always valid: digits, hex, dots and colons).
fn ip_value(text: &str) -> HeaderValue {
    HeaderValue::from_str(text).unwrap_or_else(|_| HeaderValue::from_static("unknown"))
}

/// An `X-Forwarded-For` element: a bare IP, `IP:port`, or `[v6]:port`.
fn forwarded_ip(text: &str) -> Option<IpAddr> {
    let text = text.trim();
    text.parse::<IpAddr>()
        .ok()
        .or_else(|| text.parse::<SocketAddr>().ok().map(|s| s.ip()))
        .map(|ip| ip.to_canonical())
}

pub fn origin(
    headers: &HeaderMap,
    peer: SocketAddr,
    listener_proto: &'static str,
    trusted: &TrustedProxies,
) -> Origin {
    let peer_ip = peer.ip().to_canonical();
    let own_host = headers.get(HOST).cloned();
    if trusted.is_empty() || !trusted.contains(peer_ip) {
        let forwarded_for = peer_ip.to_string();
        return Origin {
            client_ip: peer_ip,
            real_ip: ip_value(&forwarded_for),
            forwarded_for,
            proto: HeaderValue::from_static(listener_proto),
            host: own_host,
            original_uri: None,
            peer_trusted: false,
        };
    }

    let chain: Vec<&str> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect();
    // Walk right to left past trusted hops; the first untrusted (or unreadable) one is the client.
    let mut client_ip = peer_ip;
    for entry in chain.iter().rev() {
        match forwarded_ip(entry) {
            Some(ip) => {
                client_ip = ip;
                if !trusted.contains(ip) {
                    break;
                }
            }
            None => break,
        }
    }
    if chain.is_empty()
        && let Some(ip) = header(headers, "x-real-ip").and_then(forwarded_ip)
    {
        client_ip = ip;
    }
    let mut forwarded_for = chain.join(", ");
    if !forwarded_for.is_empty() {
        forwarded_for.push_str(", ");
    }
    forwarded_for.push_str(&peer_ip.to_string());

    let proto = match header(headers, "x-forwarded-proto").map(|p| {
        p.split(',')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase()
    }) {
        Some(p) if p == "https" => HeaderValue::from_static("https"),
        Some(p) if p == "http" => HeaderValue::from_static("http"),
        _ => HeaderValue::from_static(listener_proto),
    };
    let host = header(headers, "x-forwarded-host")
        .and_then(|h| HeaderValue::from_str(h.split(',').next().unwrap_or("").trim()).ok())
        .or(own_host);
    let original_uri = header(headers, "x-forwarded-uri")
        .or_else(|| header(headers, "x-original-url"))
        .or_else(|| header(headers, "x-original-uri"))
        .or_else(|| header(headers, "x-auth-request-redirect"))
        .map(str::to_owned);
    Origin {
        client_ip,
        real_ip: ip_value(&client_ip.to_string()),
        forwarded_for,
        proto,
        host,
        original_uri,
        peer_trusted: true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn trusted(nets: &[&str]) -> TrustedProxies {
        TrustedProxies::new(nets.iter().map(|n| parse_net(n).unwrap()).collect())
    }

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(
                http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                v.parse().unwrap(),
            );
        }
        h
    }

    const PEER: &str = "10.0.0.5:40000";

    #[test]
    fn untrusted_peers_cannot_claim_anything() {
        let h = headers(&[
            ("x-forwarded-for", "1.2.3.4"),
            ("x-forwarded-proto", "https"),
            ("x-forwarded-host", "evil.com"),
            ("x-forwarded-uri", "/admin"),
            ("x-real-ip", "9.9.9.9"),
            ("host", "app.example.com"),
        ]);
        for list in [trusted(&[]), trusted(&["192.168.0.0/16"])] {
            let o = origin(&h, PEER.parse().unwrap(), "http", &list);
            assert_eq!(o.client_ip.to_string(), "10.0.0.5");
            assert_eq!(o.forwarded_for, "10.0.0.5");
            assert_eq!(o.proto, "http");
            assert_eq!(o.host.unwrap(), "app.example.com");
            assert!(o.original_uri.is_none());
        }
    }

    #[test]
    fn trusted_chain_yields_the_rightmost_untrusted_address() {
        let list = trusted(&["10.0.0.0/8", "172.16.0.1"]);
        let h = headers(&[
            ("x-forwarded-for", "6.6.6.6, 1.2.3.4"),
            ("x-forwarded-for", "172.16.0.1"),
            ("x-forwarded-proto", "HTTPS"),
            ("x-forwarded-host", "app.example.com"),
            ("x-forwarded-uri", "/deep?x=1"),
        ]);
        let o = origin(&h, PEER.parse().unwrap(), "http", &list);
        assert_eq!(
            o.client_ip.to_string(),
            "1.2.3.4",
            "6.6.6.6 was written by the client itself"
        );
        assert_eq!(o.forwarded_for, "6.6.6.6, 1.2.3.4, 172.16.0.1, 10.0.0.5");
        assert_eq!(o.proto, "https");
        assert_eq!(o.host.unwrap(), "app.example.com");
        assert_eq!(o.original_uri.as_deref(), Some("/deep?x=1"));
    }

    #[test]
    fn the_original_uri_names_are_tried_in_order() {
        let list = trusted(&["10.0.0.0/8"]);
        let peer = PEER.parse().unwrap();
        let uri =
            |pairs: &[(&str, &str)]| origin(&headers(pairs), peer, "http", &list).original_uri;
        // oauth2-proxy's nginx snippet sets only X-Auth-Request-Redirect on /oauth2/.
        assert_eq!(
            uri(&[("x-auth-request-redirect", "/app?x=1")]).as_deref(),
            Some("/app?x=1")
        );
        assert_eq!(
            uri(&[
                ("x-auth-request-redirect", "/last"),
                ("x-original-uri", "/third"),
                ("x-original-url", "https://a.example/second"),
                ("x-forwarded-uri", "/first"),
            ])
            .as_deref(),
            Some("/first")
        );
        assert_eq!(
            uri(&[
                ("x-auth-request-redirect", "/last"),
                ("x-original-uri", "/third")
            ])
            .as_deref(),
            Some("/third")
        );
        let untrusted = origin(
            &headers(&[("x-auth-request-redirect", "/app")]),
            "192.0.2.1:1".parse().unwrap(),
            "http",
            &list,
        );
        assert_eq!(untrusted.original_uri, None);
    }

    #[test]
    fn odd_chains() {
        let list = trusted(&["10.0.0.0/8"]);
        let all_trusted = headers(&[("x-forwarded-for", "10.1.1.1")]);
        assert_eq!(
            origin(&all_trusted, PEER.parse().unwrap(), "http", &list)
                .client_ip
                .to_string(),
            "10.1.1.1"
        );
        let garbage = headers(&[("x-forwarded-for", "1.2.3.4, not-an-ip")]);
        assert_eq!(
            origin(&garbage, PEER.parse().unwrap(), "http", &list)
                .client_ip
                .to_string(),
            "10.0.0.5"
        );
        let with_port = headers(&[("x-forwarded-for", "[2001:db8::1]:443")]);
        assert_eq!(
            origin(&with_port, PEER.parse().unwrap(), "http", &list)
                .client_ip
                .to_string(),
            "2001:db8::1"
        );
        let real_ip = headers(&[("x-real-ip", "8.8.8.8")]);
        assert_eq!(
            origin(&real_ip, PEER.parse().unwrap(), "http", &list)
                .client_ip
                .to_string(),
            "8.8.8.8"
        );
        let bad_proto = headers(&[("x-forwarded-proto", "gopher")]);
        assert_eq!(
            origin(&bad_proto, PEER.parse().unwrap(), "https", &list).proto,
            "https"
        );
    }

    #[test]
    fn entries_parse_as_cidrs_or_addresses() {
        assert!(parse_net("10.0.0.0/8").is_ok());
        assert!(parse_net("::1").is_ok());
        assert!(parse_net("fd00::/8").is_ok());
        assert!(parse_net("10.0.0.0/33").is_err());
        assert!(parse_net("example.com").is_err());
        assert!(trusted(&["127.0.0.1"]).contains("::ffff:127.0.0.1".parse().unwrap()));
    }
}

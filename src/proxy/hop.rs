//! Hop-by-hop headers (RFC 9110 §7.6.1): they describe one connection and go no further.

use http::header::{self, HeaderMap, HeaderName};

use super::X_REQUEST_ID;

/// Hop-by-hop headers (RFC 9110 §7.6.1, plus the legacy `Keep-Alive` and `Proxy-Connection`):
/// they describe one connection and must not be forwarded.
pub(super) static HOP_BY_HOP: [HeaderName; 9] = [
    header::CONNECTION,
    HeaderName::from_static("keep-alive"),
    HeaderName::from_static("proxy-connection"),
    header::PROXY_AUTHENTICATE,
    header::PROXY_AUTHORIZATION,
    header::TE,
    header::TRAILER,
    header::TRANSFER_ENCODING,
    header::UPGRADE,
];

/// Removes hop-by-hop headers, including every header the `Connection` header names, except
/// rocketgate's own identity headers, the request id and `Authorization`: a client listing
/// `X-Forwarded-User` or `X-Request-Id` in `Connection` must not be able to delete what
/// rocketgate sets.
pub(super) fn remove_hop_by_hop(headers: &mut HeaderMap) {
    // One pass over the names, no hashing: most messages carry at most `Connection`.
    let mut doomed: Vec<HeaderName> = headers
        .keys()
        .filter(|n| HOP_BY_HOP.contains(n))
        .cloned()
        .collect();
    if doomed.is_empty() {
        return;
    }
    for value in headers.get_all(header::CONNECTION) {
        let Ok(value) = value.to_str() else { continue };
        for token in value.split(',').map(str::trim) {
            // `keep-alive` and `upgrade` name headers removed already; `close` names one only
            // in a crafted message. None of them is worth building a header name for.
            if token.eq_ignore_ascii_case("keep-alive")
                || token.eq_ignore_ascii_case("upgrade")
                || (token.eq_ignore_ascii_case("close") && !headers.contains_key("close"))
            {
                continue;
            }
            if let Ok(name) = HeaderName::from_bytes(token.as_bytes())
                && name != header::AUTHORIZATION
                && name != X_REQUEST_ID
                && !crate::identity::is_protected(&name)
            {
                doomed.push(name);
            }
        }
    }
    for name in &doomed {
        headers.remove(name);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hop_by_hop_and_connection_named_headers_go() {
        let mut h = HeaderMap::new();
        h.insert(
            header::CONNECTION,
            "keep-alive, x-secret-hop".parse().unwrap(),
        );
        h.insert("keep-alive", "timeout=5".parse().unwrap());
        h.insert("x-secret-hop", "1".parse().unwrap());
        h.insert(header::TE, "trailers".parse().unwrap());
        h.insert(header::TRANSFER_ENCODING, "chunked".parse().unwrap());
        h.insert("x-app", "kept".parse().unwrap());
        remove_hop_by_hop(&mut h);
        let left: Vec<&str> = h.keys().map(HeaderName::as_str).collect();
        assert_eq!(left, vec!["x-app"]);
    }

    #[test]
    fn a_header_named_close_goes_when_connection_names_it() {
        let mut h = HeaderMap::new();
        h.insert(header::CONNECTION, "Close".parse().unwrap());
        h.insert("close", "smuggled".parse().unwrap());
        h.insert("x-app", "kept".parse().unwrap());
        remove_hop_by_hop(&mut h);
        let left: Vec<&str> = h.keys().map(HeaderName::as_str).collect();
        assert_eq!(left, vec!["x-app"]);
    }
}

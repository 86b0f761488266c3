//! The request's `Cookie` header(s), parsed once per request.

use http::HeaderMap;
use http::header::COOKIE;

/// Every `name=value` pair the browser sent, in order.
#[derive(Debug, Default)]
pub struct RequestCookies {
    pairs: Vec<(String, String)>,
}

impl RequestCookies {
    pub fn from_headers(headers: &HeaderMap) -> Self {
        let pairs = headers
            .get_all(COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(';'))
            .filter_map(|pair| {
                let (name, value) = pair.split_once('=')?;
                let name = name.trim();
                (!name.is_empty()).then(|| (name.to_owned(), value.trim().to_owned()))
            })
            .collect();
        Self { pairs }
    }

    /// The first value sent under `name` (browsers send the most specific path first).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.pairs.iter().map(|(n, _)| n.as_str())
    }
}

/// Rewrites the `Cookie` header without the cookies for which `ours` is true, so the
/// proxy's own cookies never reach the upstream while the app's cookies pass unchanged.
pub fn strip_cookies(headers: &mut HeaderMap, ours: impl Fn(&str) -> bool) {
    let mut kept: Vec<&str> = Vec::new();
    let values: Vec<http::HeaderValue> = headers.get_all(COOKIE).iter().cloned().collect();
    if values.is_empty() {
        return;
    }
    let mut changed = false;
    for value in &values {
        let Ok(text) = value.to_str() else {
            // Not valid text: we cannot tell which cookies it holds, so it cannot be forwarded safely.
            changed = true;
            continue;
        };
        for pair in text.split(';') {
            let trimmed = pair.trim();
            let name = trimmed.split_once('=').map_or(trimmed, |(n, _)| n).trim();
            if trimmed.is_empty() {
                continue;
            }
            if ours(name) {
                changed = true;
            } else {
                kept.push(trimmed);
            }
        }
    }
    if !changed && values.len() == 1 {
        return;
    }
    let joined = kept.join("; ");
    headers.remove(COOKIE);
    if !joined.is_empty()
        && let Ok(value) = http::HeaderValue::from_str(&joined)
    {
        headers.insert(COOKIE, value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(values: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in values {
            h.append(COOKIE, v.parse().unwrap());
        }
        h
    }

    #[test]
    fn parses_several_headers() {
        let c = RequestCookies::from_headers(&headers(&["a=1; b = 2", "c=3;;=x; d"]));
        assert_eq!(c.get("a"), Some("1"));
        assert_eq!(c.get("b"), Some("2"));
        assert_eq!(c.get("c"), Some("3"));
        assert_eq!(c.get("d"), None);
    }

    #[test]
    fn strips_only_ours_and_keeps_order() {
        let mut h = headers(&["app=1; _rg=secret; _rg_0=x", "theme=dark; _rg_csrf_ab=y"]);
        strip_cookies(&mut h, |n| n == "_rg" || n.starts_with("_rg_"));
        assert_eq!(h.get(COOKIE).unwrap(), "app=1; theme=dark");
        let mut only_ours = headers(&["_rg=1"]);
        strip_cookies(&mut only_ours, |n| n == "_rg");
        assert!(only_ours.get(COOKIE).is_none());
        let mut untouched = headers(&["app=1;x=2"]);
        strip_cookies(&mut untouched, |n| n == "_rg");
        assert_eq!(untouched.get(COOKIE).unwrap(), "app=1;x=2");
    }
}

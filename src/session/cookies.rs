//! The request's `Cookie` header(s), parsed once per request.

use std::ops::Range;

use http::HeaderMap;
use http::header::COOKIE;

/// Every `name=value` pair the browser sent, in order: the text of all pairs in one string
/// (two allocations per request, however many cookies).
#[derive(Debug, Default)]
pub struct RequestCookies {
    text: String,
    /// Byte ranges of each name and value in `text`.
    pairs: Vec<(Range<usize>, Range<usize>)>,
}

impl RequestCookies {
    pub fn from_headers(headers: &HeaderMap) -> Self {
        let capacity = headers.get_all(COOKIE).iter().map(|v| v.len()).sum();
        let mut cookies = Self {
            text: String::with_capacity(capacity),
            pairs: Vec::with_capacity(4),
        };
        for pair in headers
            .get_all(COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(';'))
        {
            let Some((name, value)) = pair.split_once('=') else {
                continue;
            };
            let (name, value) = (name.trim(), value.trim());
            if name.is_empty() {
                continue;
            }
            let at = cookies.text.len();
            cookies.text.push_str(name);
            cookies.text.push_str(value);
            let split = at + name.len();
            cookies.pairs.push((at..split, split..cookies.text.len()));
        }
        cookies
    }

    fn pairs(&self) -> impl Iterator<Item = (&str, &str)> {
        self.pairs.iter().filter_map(|(name, value)| {
            Some((self.text.get(name.clone())?, self.text.get(value.clone())?))
        })
    }

    /// The first value sent under `name` (browsers send the most specific path first).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.pairs().find(|(n, _)| *n == name).map(|(_, v)| v)
    }

    /// Every value sent under `name`, in order. A browser sends several when another host
    /// of the same site (a sibling subdomain, the parent domain) planted a cookie of the
    /// same name beside ours: which one is real only opening them can tell.
    pub fn get_all<'a, 'n>(&'a self, name: &'n str) -> impl Iterator<Item = &'a str> + use<'a, 'n> {
        self.pairs()
            .filter(move |(n, _)| *n == name)
            .map(|(_, v)| v)
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.pairs().map(|(n, _)| n)
    }
}

/// Rewrites the `Cookie` header without the cookies for which `ours` is true, so the
/// proxy's own cookies never reach the upstream while the app's cookies pass unchanged.
pub fn strip_cookies(headers: &mut HeaderMap, ours: impl Fn(&str) -> bool) {
    let mut kept = String::new();
    let mut values = 0;
    let mut changed = false;
    for value in headers.get_all(COOKIE) {
        values += 1;
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
                if !kept.is_empty() {
                    kept.push_str("; ");
                }
                kept.push_str(trimmed);
            }
        }
    }
    if values == 0 || (!changed && values == 1) {
        return;
    }
    headers.remove(COOKIE);
    if !kept.is_empty()
        && let Ok(value) = http::HeaderValue::from_str(&kept)
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
    fn every_value_of_a_repeated_name_is_kept() {
        let c = RequestCookies::from_headers(&headers(&["a=planted; b=2; a=real", "a=third"]));
        assert_eq!(c.get("a"), Some("planted"));
        assert_eq!(
            c.get_all("a").collect::<Vec<_>>(),
            vec!["planted", "real", "third"]
        );
        assert_eq!(c.get_all("z").count(), 0);
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

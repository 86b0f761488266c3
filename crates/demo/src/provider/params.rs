//! Query-string and form parsing with OAuth's rules.

use std::collections::HashMap;

/// Decoded `application/x-www-form-urlencoded` parameters.
///
/// RFC 6749 §3.1 forbids sending a parameter twice; rejecting duplicates keeps
/// the stand-in from silently picking one when a gate builds a bad request.
#[derive(Debug, Default)]
pub(super) struct Params(HashMap<String, String>);

impl Params {
    /// Parses `input`; `Err(name)` names the first repeated parameter.
    /// Invalid percent-encoding or UTF-8 is decoded lossily, as PHP does.
    pub(super) fn parse(input: &[u8]) -> Result<Self, String> {
        let mut map = HashMap::new();
        for (key, value) in form_urlencoded::parse(input) {
            let key = key.into_owned();
            if map.contains_key(&key) {
                return Err(key);
            }
            map.insert(key, value.into_owned());
        }
        Ok(Params(map))
    }

    /// The parameter's value; empty values count as absent, like league's
    /// `getRequestParameter` followed by its `is_null`/empty checks.
    pub(super) fn get(&self, key: &str) -> Option<&str> {
        self.0
            .get(key)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }

    /// The value even when empty (to tell `state=` from no state at all).
    pub(super) fn get_raw(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(String::as_str)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_and_rejects_duplicates() {
        let p = Params::parse(b"a=1&b=x+y%21&c=").unwrap();
        assert_eq!(p.get("a"), Some("1"));
        assert_eq!(p.get("b"), Some("x y!"));
        assert_eq!(p.get("c"), None);
        assert_eq!(p.get_raw("c"), Some(""));
        assert_eq!(Params::parse(b"a=1&a=2").unwrap_err(), "a");
        // Broken encodings must not panic.
        assert!(Params::parse(b"%zz=%ff&&=").is_ok());
    }
}

//! The path half of a route: a prefix that matches on segment boundaries, compared with the
//! decoded, normalised request path (`access::RequestPath`), so encodings cannot move a
//! request from one route to another.

/// Why a route's `path` was refused at start-up.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PrefixError {
    #[error("`{0}` must start with `/`")]
    NotAbsolute(String),
    #[error(
        "`{0}` must be a plain decoded path: no `%`, `?`, `#`, `;`, `\\`, empty, `.` or `..` segments"
    )]
    NotPlain(String),
}

/// `/` or `/api` (never a trailing `/`): matches `/api` and `/api/x`, not `/apix`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathPrefix(String);

impl PathPrefix {
    pub fn parse(path: Option<&str>) -> Result<PathPrefix, PrefixError> {
        let path = path.map_or("/", str::trim);
        if !path.starts_with('/') {
            return Err(PrefixError::NotAbsolute(path.to_owned()));
        }
        let trimmed = path.trim_end_matches('/');
        let plain = trimmed.split('/').skip(1).all(|segment| {
            !segment.is_empty()
                && segment != "."
                && segment != ".."
                && !segment.contains(['%', '?', '#', '\\', ';'])
                && !segment.chars().any(char::is_control)
        });
        if !plain {
            return Err(PrefixError::NotPlain(path.to_owned()));
        }
        Ok(PathPrefix(if trimmed.is_empty() {
            "/".to_owned()
        } else {
            trimmed.to_owned()
        }))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether the decoded request path is under this prefix, segment by segment, the way
    /// the most lenient upstream would read it: empty segments (`//admin`) and `;parameters`
    /// (`/admin;x`, which servlet containers drop) do not count, so neither can take a
    /// request past a route to a wider one.
    pub fn matches(&self, path: &str) -> bool {
        let mut segments = canonical_segments(path);
        self.0
            .split('/')
            .skip(1)
            .filter(|s| !s.is_empty())
            .all(|want| segments.next() == Some(want))
    }

    /// How many bytes the prefix has: the longer, the more specific.
    pub fn specificity(&self) -> usize {
        self.0.len()
    }

    pub fn is_root(&self) -> bool {
        self.0 == "/"
    }

    /// The raw request path without this prefix (`/api/x` → `/x`, `/api` → `/`). It drops as
    /// many raw segments as the prefix has: the request path refused encoded slashes before
    /// matching, so its raw and decoded segments line up one to one.
    pub fn strip(&self, raw_path: &str) -> String {
        let mut left = self.0.split('/').skip(1).filter(|s| !s.is_empty()).count();
        let mut rest = raw_path;
        // Segments that `matches` skipped (empty, or `;parameters` alone) are dropped too.
        while left > 0 && !rest.is_empty() {
            let after_slash = rest.strip_prefix('/').unwrap_or(rest);
            let (segment, tail) = match after_slash.find('/') {
                Some(i) => (&after_slash[..i], &after_slash[i..]),
                None => (after_slash, ""),
            };
            if !raw_segment_is_empty(segment) {
                left -= 1;
            }
            rest = tail;
        }
        if rest.is_empty() {
            "/".to_owned()
        } else {
            rest.to_owned()
        }
    }
}

/// A decoded path's segments as matching sees them: each cut at its first `;`, empty ones
/// left out.
fn canonical_segments(path: &str) -> impl Iterator<Item = &str> {
    path.split('/')
        .map(|segment| segment.split(';').next().unwrap_or(segment))
        .filter(|segment| !segment.is_empty())
}

/// Whether a raw segment is one [`canonical_segments`] leaves out once decoded: nothing
/// before its first `;` (raw or `%3B`).
fn raw_segment_is_empty(raw: &str) -> bool {
    let lower = raw.to_ascii_lowercase();
    let cut = [lower.find(';'), lower.find("%3b")]
        .into_iter()
        .flatten()
        .min()
        .unwrap_or(lower.len());
    cut == 0
}

impl std::fmt::Display for PathPrefix {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn prefix(p: &str) -> PathPrefix {
        PathPrefix::parse(Some(p)).unwrap()
    }

    #[test]
    fn matches_on_segment_boundaries() {
        let api = prefix("/api/");
        assert_eq!(api.as_str(), "/api");
        assert!(api.matches("/api"));
        assert!(api.matches("/api/"));
        assert!(api.matches("/api/x/y"));
        assert!(!api.matches("/apix"));
        assert!(!api.matches("/"));
        assert!(prefix("/").matches("/anything"));
        assert_eq!(PathPrefix::parse(None).unwrap().as_str(), "/");
    }

    #[test]
    fn refuses_what_could_mean_two_things() {
        for bad in ["/a/%2e", "/a/../b", "/a//b", "/a?x", "/./a", "/a\\b"] {
            assert!(
                matches!(PathPrefix::parse(Some(bad)), Err(PrefixError::NotPlain(_))),
                "{bad}"
            );
        }
        assert!(matches!(
            PathPrefix::parse(Some("api")),
            Err(PrefixError::NotAbsolute(_))
        ));
    }

    #[test]
    fn strips_raw_segments() {
        let api = prefix("/api/v1");
        assert_eq!(api.strip("/api/v1/x"), "/x");
        assert_eq!(api.strip("/api/v1"), "/");
        assert_eq!(api.strip("/api/v1/"), "/");
        assert_eq!(api.strip("/ap%69/v1/a%20b/c"), "/a%20b/c");
        assert_eq!(prefix("/").strip("/x/y"), "/x/y");
    }

    #[test]
    fn empty_segments_and_parameters_cannot_hide_a_request_from_its_route() {
        let api = prefix("/api/v1");
        for under in ["//api/v1/x", "/api;a=1/v1", "/;x/api//v1;y/z", "/api/;z/v1"] {
            assert!(api.matches(under), "{under}");
        }
        for not in ["/apix/v1", "/api/v1x", "/api;/v2", "/v1/api"] {
            assert!(!api.matches(not), "{not}");
        }
        assert_eq!(api.strip("//api/v1/x"), "/x");
        assert_eq!(api.strip("/api;a/v1;b/x"), "/x");
        assert_eq!(api.strip("/api/%3Bz/v1/x"), "/x");
        assert_eq!(api.strip("/;x/api/v1"), "/");
        assert!(matches!(
            PathPrefix::parse(Some("/a;b")),
            Err(PrefixError::NotPlain(_))
        ));
    }
}

//! The session cookie on the wire: sealed, split into `name_0`, `name_1`, ... chunks when it
//! outgrows one cookie, and always written so that no stale chunk survives.

use std::borrow::Cow;
use std::sync::Arc;
use std::time::Duration;

use cookie::{Cookie, SameSite};
use sha2::{Digest, Sha256};

use super::seal::{KeyAge, Sealer};
use super::{PrehashedKeys, RequestCookies, Session};

/// Browsers keep at most 4096 bytes per cookie, name and attributes included.
const CHUNK: usize = 3800;

/// More chunks than fit in any accepted request head are never read or cleared, so a client
/// sending `_rocketgate_0` .. `_rocketgate_1999` costs nothing.
const MAX_CHUNKS: usize = 16;

/// Sealed values tried per request when the browser sends several cookies of our name (one
/// planted by a sibling subdomain, say): enough for any honest jar, and a bound on what
/// planted duplicates can cost.
const MAX_CANDIDATES: usize = 8;

/// A session read from the request, and whether its cookie should be rewritten.
#[derive(Debug)]
pub struct Opened {
    pub session: Arc<Session>,
    /// Sealed with an old key: re-issue it with the current one.
    pub reseal: bool,
    /// Served from the opened-session cache (no decryption, no parsing).
    pub cached: bool,
}

/// Opened sessions by SHA-256 of their sealed value: steady-state requests skip AES-GCM and
/// JSON. Only values that opened are cached, so garbage cookies cannot fill it, and a cookie
/// that changes in any byte is a different key. Expiry and refresh are still decided per
/// request from the session itself.
#[derive(Clone)]
struct OpenedCache(moka::sync::Cache<[u8; 32], (Arc<Session>, bool), PrehashedKeys>);

impl std::fmt::Debug for OpenedCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "OpenedCache({} entries)", self.0.entry_count())
    }
}

/// Reads and writes cookies for one cookie name and its attributes.
#[derive(Clone, Debug)]
pub struct CookieCodec {
    name: String,
    sealer: Sealer,
    secure: bool,
    same_site: SameSite,
    max_age: Duration,
    /// `Domain` of every cookie (`cookie.domain`); `None`: host-only cookies.
    domain: Option<String>,
    opened: OpenedCache,
}

impl CookieCodec {
    pub fn new(
        name: String,
        sealer: Sealer,
        secure: bool,
        same_site: SameSite,
        max_age: Duration,
    ) -> Self {
        Self {
            name,
            sealer,
            secure,
            same_site,
            max_age,
            domain: None,
            opened: OpenedCache(
                moka::sync::Cache::builder()
                    .max_capacity(100_000)
                    .time_to_live(Duration::from_secs(600))
                    .build_with_hasher(PrehashedKeys),
            ),
        }
    }

    /// Every cookie this codec writes carries `Domain=domain` (one sign-in for every host
    /// under it); without it cookies are host-only.
    pub fn with_domain(mut self, domain: Option<String>) -> Self {
        self.domain = domain;
        self
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn sealer(&self) -> &Sealer {
        &self.sealer
    }

    /// Whether `cookie` is one of ours (the session, one of its chunks, or a CSRF cookie):
    /// such cookies are never forwarded upstream.
    pub fn is_ours(&self, cookie: &str) -> bool {
        cookie
            .strip_prefix(self.name.as_str())
            .is_some_and(|rest| rest.is_empty() || rest.starts_with('_'))
    }

    /// The sealed values the request may carry, in the order to try them: each plain cookie
    /// of our name, then each way of joining the chunks it sent (`_0`, `_1`, ... in order;
    /// one value per chunk unless some chunk name came more than once). Another host of the
    /// same site can plant cookies of our name; trying each means a planted one can neither
    /// hide the real session nor get it cleared. At most [`MAX_CANDIDATES`].
    pub fn sealed_values<'a>(&self, cookies: &'a RequestCookies) -> Vec<Cow<'a, str>> {
        let mut found: Vec<Cow<'a, str>> = cookies
            .get_all(&self.name)
            .take(MAX_CANDIDATES)
            .map(Cow::Borrowed)
            .collect();
        let mut parts: Vec<Vec<&'a str>> = Vec::new();
        for i in 0..MAX_CHUNKS {
            let name = chunk_name(&self.name, i);
            let values: Vec<&'a str> = cookies.get_all(&name).take(MAX_CANDIDATES).collect();
            if values.is_empty() {
                break;
            }
            parts.push(values);
        }
        if parts.is_empty() {
            return found;
        }
        // Every combination of one value per chunk, first values first, until the bound.
        let mut pick = vec![0usize; parts.len()];
        while found.len() < MAX_CANDIDATES {
            let joined: String = parts.iter().zip(&pick).map(|(v, &i)| v[i]).collect();
            found.push(Cow::Owned(joined));
            let Some(turn) = (0..parts.len())
                .rev()
                .find(|&c| pick[c] + 1 < parts[c].len())
            else {
                break;
            };
            pick[turn] += 1;
            for later in &mut pick[turn + 1..] {
                *later = 0;
            }
        }
        found
    }

    /// The session, or `None` for anything missing, tampered, truncated or foreign. When
    /// several cookies of our name open (a planted session beside the user's own), the most
    /// recent sign-in wins: the one the user just made.
    pub fn open(&self, cookies: &RequestCookies) -> Option<Opened> {
        // The usual jar: one cookie of our name and no chunks, nothing to choose between.
        let mut plain = cookies.get_all(&self.name);
        if let (Some(only), None) = (plain.next(), plain.next())
            && !cookies
                .names()
                .any(|n| n.strip_prefix(self.name.as_str()) == Some("_0"))
        {
            return self.open_sealed(only);
        }
        let mut best: Option<Opened> = None;
        for sealed in self.sealed_values(cookies) {
            if let Some(opened) = self.open_sealed(&sealed)
                && best
                    .as_ref()
                    .is_none_or(|b| opened.session.created_at > b.session.created_at)
            {
                best = Some(opened);
            }
        }
        best
    }

    fn open_sealed(&self, sealed: &str) -> Option<Opened> {
        let key: [u8; 32] = Sha256::digest(sealed.as_bytes()).into();
        if let Some((session, reseal)) = self.opened.0.get(&key) {
            return Some(Opened {
                session,
                reseal,
                cached: true,
            });
        }
        let (json, age) = self.sealer.open(&self.name, sealed)?;
        let session = Arc::new(Session::from_json(json.as_bytes())?);
        let reseal = age == KeyAge::Old;
        self.opened.0.insert(key, (session.clone(), reseal));
        Some(Opened {
            session,
            reseal,
            cached: false,
        })
    }

    /// Opens a value from [`Self::sealed_values`]: the plaintext and the key that opened it.
    pub fn open_value(&self, sealed: &str) -> Option<(String, KeyAge)> {
        self.sealer.open(&self.name, sealed)
    }

    /// `Set-Cookie` values that store `session` and clear whatever stale chunks the
    /// browser still holds.
    pub fn write(&self, session: &Session, cookies: &RequestCookies) -> Vec<String> {
        match serde_json::to_string(session) {
            Ok(json) => self.write_value(&json, cookies),
            Err(_) => self.clear(cookies),
        }
    }

    /// [`Self::write`] for an answer a front proxy may pass on only in part: nginx's
    /// `auth_request_set` copies the first `Set-Cookie` of a forward-auth answer alone, and a
    /// browser holding a new first chunk beside old others has no session at all. `None`
    /// when `session` needs more than one cookie.
    pub fn write_whole(&self, session: &Session, cookies: &RequestCookies) -> Option<Vec<String>> {
        match serde_json::to_string(session) {
            Ok(json) => self.sealed(&json, cookies, false),
            Err(_) => Some(self.clear(cookies)),
        }
    }

    /// `Set-Cookie` values that store `plaintext` sealed (chunked when large) and clear
    /// whatever stale chunks the browser still holds.
    pub fn write_value(&self, plaintext: &str, cookies: &RequestCookies) -> Vec<String> {
        self.sealed(plaintext, cookies, true)
            .unwrap_or_else(|| self.clear(cookies))
    }

    /// The cookies that store `plaintext` sealed, the first of them the session itself; `None`
    /// when it needs chunks and `split` is false.
    fn sealed(
        &self,
        plaintext: &str,
        cookies: &RequestCookies,
        split: bool,
    ) -> Option<Vec<String>> {
        // Known before sealing: a forward-auth answer for a split session (every request,
        // while the browser keeps its old cookie) does no encryption it would throw away.
        if !split && Sealer::sealed_len(plaintext.len()) > CHUNK {
            return None;
        }
        let sealed = self.sealer.seal(&self.name, plaintext);
        let mut out = Vec::new();
        let written: Vec<String> = if sealed.len() <= CHUNK {
            out.push(self.set(&self.name, &sealed, self.max_age));
            vec![self.name.clone()]
        } else if !split {
            return None;
        } else {
            sealed
                .as_bytes()
                .chunks(CHUNK)
                .enumerate()
                .map(|(i, part)| {
                    let name = chunk_name(&self.name, i);
                    // Base64 is ASCII, so any byte boundary is a char boundary.
                    out.push(self.set(&name, &String::from_utf8_lossy(part), self.max_age));
                    name
                })
                .collect()
        };
        out.extend(
            self.session_cookie_names(cookies)
                .filter(|n| !written.iter().any(|w| w == n))
                .map(|n| self.set(n, "", Duration::ZERO)),
        );
        Some(out)
    }

    /// Whether the request carries a session cookie or chunk (valid or not).
    pub fn has_session_cookie(&self, cookies: &RequestCookies) -> bool {
        self.session_cookie_names(cookies).next().is_some()
    }

    /// `Set-Cookie` values that delete the session cookie and every chunk the browser sent.
    pub fn clear(&self, cookies: &RequestCookies) -> Vec<String> {
        let mut names: Vec<&str> = self.session_cookie_names(cookies).collect();
        if !names.contains(&self.name.as_str()) {
            names.push(&self.name);
        }
        names
            .into_iter()
            .map(|n| self.set(n, "", Duration::ZERO))
            .collect()
    }

    fn session_cookie_names<'a>(
        &'a self,
        cookies: &'a RequestCookies,
    ) -> impl Iterator<Item = &'a str> + 'a {
        let mut seen: Vec<&'a str> = Vec::new();
        cookies.names().filter(move |n| {
            let ours = *n == self.name
                || n.strip_prefix(self.name.as_str())
                    .and_then(|rest| rest.strip_prefix('_'))
                    .and_then(|i| i.parse::<usize>().ok())
                    .is_some_and(|i| i < MAX_CHUNKS);
            // A name sent twice is cleared once.
            let fresh = ours && !seen.contains(n);
            if fresh {
                seen.push(n);
            }
            fresh
        })
    }

    /// One `Set-Cookie` value with this codec's attributes.
    pub fn set(&self, name: &str, value: &str, max_age: Duration) -> String {
        self.set_with(name, value, max_age, self.same_site)
    }

    /// A login (CSRF) cookie. It must come back on the callback, a navigation that starts on
    /// Rocketpunch, so it is never `Strict` (browsers would withhold it): `Lax`, or `None`
    /// when that is configured.
    pub fn set_login(&self, name: &str, value: &str, max_age: Duration) -> String {
        let same_site = match self.same_site {
            SameSite::None => SameSite::None,
            _ => SameSite::Lax,
        };
        self.set_with(name, value, max_age, same_site)
    }

    /// Whether the session cookie is `SameSite=Strict`, which browsers withhold on the
    /// redirect chain that follows a login.
    pub fn is_strict(&self) -> bool {
        self.same_site == SameSite::Strict
    }

    fn set_with(&self, name: &str, value: &str, max_age: Duration, same_site: SameSite) -> String {
        let max_age = time::Duration::seconds(i64::try_from(max_age.as_secs()).unwrap_or(i64::MAX));
        let mut c = Cookie::build((name.to_owned(), value.to_owned()))
            .path("/")
            .http_only(true)
            .secure(self.secure)
            .same_site(same_site)
            .max_age(max_age);
        if max_age.is_zero() {
            c = c.expires(time::OffsetDateTime::UNIX_EPOCH);
        }
        if let Some(domain) = &self.domain {
            c = c.domain(domain.clone());
        }
        c.build().to_string()
    }
}

fn chunk_name(name: &str, i: usize) -> String {
    format!("{name}_{i}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use cookie::Key;
    use http::HeaderMap;

    fn codec(keys: Vec<Key>) -> CookieCodec {
        crate::testkit::codec_with("_rg", keys)
    }

    fn session(token_len: usize) -> Session {
        crate::testkit::session_with(token_len, Some(1), 5)
    }

    /// What a browser would send back after receiving `set_cookies`.
    fn browser(set_cookies: &[String]) -> RequestCookies {
        let pairs: Vec<String> = set_cookies
            .iter()
            .filter(|s| !s.contains("Max-Age=0"))
            .map(|s| s.split(';').next().unwrap().to_owned())
            .collect();
        let mut h = HeaderMap::new();
        if !pairs.is_empty() {
            h.insert(http::header::COOKIE, pairs.join("; ").parse().unwrap());
        }
        RequestCookies::from_headers(&h)
    }

    #[test]
    fn small_session_is_one_cookie_with_safe_attributes() {
        let c = codec(vec![Key::derive_from(&[1; 32])]);
        let set = c.write(&session(10), &RequestCookies::default());
        assert_eq!(set.len(), 1);
        let s = &set[0];
        for attr in [
            "HttpOnly",
            "Secure",
            "SameSite=Lax",
            "Path=/",
            "Max-Age=3600",
        ] {
            assert!(s.contains(attr), "{s} lacks {attr}");
        }
        assert_eq!(*c.open(&browser(&set)).unwrap().session, session(10));
    }

    #[test]
    fn large_session_is_chunked_and_shrinking_clears_stale_chunks() {
        let c = codec(vec![Key::derive_from(&[1; 32])]);
        let set = c.write(&session(6000), &RequestCookies::default());
        assert!(set.len() >= 2, "{}", set.len());
        assert!(set.iter().all(|s| s.len() < 4096));
        assert!(set[0].starts_with("_rg_0="));
        let jar = browser(&set);
        assert_eq!(*c.open(&jar).unwrap().session, session(6000));

        let smaller = c.write(&session(10), &jar);
        assert!(smaller[0].starts_with("_rg="));
        let cleared: Vec<&String> = smaller.iter().filter(|s| s.contains("Max-Age=0")).collect();
        assert_eq!(cleared.len(), set.len(), "{smaller:?}");
        assert_eq!(*c.open(&browser(&smaller)).unwrap().session, session(10));
    }

    #[test]
    fn a_whole_write_is_one_cookie_or_none() {
        let c = codec(vec![Key::derive_from(&[1; 32])]);
        let split = browser(&c.write(&session(6000), &RequestCookies::default()));
        assert_eq!(c.write_whole(&session(6000), &split), None, "needs chunks");
        let whole = c
            .write_whole(&session(10), &split)
            .expect("fits one cookie");
        assert!(whole[0].starts_with("_rg="), "{whole:?}");
        // Even if only that first cookie reaches the browser, beside its old chunks, the
        // session it holds is the new one.
        let mut jar: Vec<String> = c.write(&session(6000), &RequestCookies::default());
        jar.insert(0, whole[0].clone());
        assert_eq!(*c.open(&browser(&jar)).unwrap().session, session(10));
    }

    #[test]
    fn clear_removes_every_chunk() {
        let c = codec(vec![Key::derive_from(&[1; 32])]);
        let jar = browser(&c.write(&session(9000), &RequestCookies::default()));
        let cleared = c.clear(&jar);
        assert!(cleared.iter().all(|s| s.contains("Max-Age=0")));
        assert!(
            cleared
                .iter()
                .any(|s| s.starts_with("_rg=;") || s.starts_with("_rg="))
        );
        assert!(cleared.iter().any(|s| s.starts_with("_rg_2=")));
    }

    #[test]
    fn missing_chunk_or_foreign_key_is_no_session() {
        let c = codec(vec![Key::derive_from(&[1; 32])]);
        let set = c.write(&session(6000), &RequestCookies::default());
        let without_first: Vec<String> = set[1..].to_vec();
        assert!(c.open(&browser(&without_first)).is_none());
        let other = codec(vec![Key::derive_from(&[2; 32])]);
        assert!(other.open(&browser(&set)).is_none());
    }

    #[test]
    fn old_key_opens_and_asks_for_reseal() {
        let old = codec(vec![Key::derive_from(&[1; 32])]);
        let new = codec(vec![Key::derive_from(&[2; 32]), Key::derive_from(&[1; 32])]);
        let jar = browser(&old.write(&session(10), &RequestCookies::default()));
        assert!(new.open(&jar).unwrap().reseal);
        assert!(!old.open(&jar).unwrap().reseal);
    }

    #[test]
    fn a_second_open_is_served_from_the_cache() {
        let c = codec(vec![Key::derive_from(&[1; 32])]);
        let jar = browser(&c.write(&session(10), &RequestCookies::default()));
        let first = c.open(&jar).unwrap();
        let second = c.open(&jar).unwrap();
        assert!(!first.cached && second.cached);
        assert_eq!(first.session, second.session);
        let other = codec(vec![Key::derive_from(&[2; 32])]);
        assert!(
            other.open(&jar).is_none(),
            "caches are per codec, not global"
        );
    }

    #[test]
    fn absurd_chunk_counts_are_neither_read_nor_cleared() {
        let c = codec(vec![Key::derive_from(&[1; 32])]);
        let header: Vec<String> = (0..2000).map(|i| format!("_rg_{i}=x")).collect();
        let mut h = HeaderMap::new();
        h.insert(http::header::COOKIE, header.join("; ").parse().unwrap());
        let jar = RequestCookies::from_headers(&h);
        assert!(c.open(&jar).is_none());
        assert_eq!(
            c.clear(&jar).len(),
            MAX_CHUNKS + 1,
            "chunks 0..16 plus the plain name"
        );
    }

    #[test]
    fn ours_matches_prefix_on_boundary() {
        let c = codec(vec![Key::derive_from(&[1; 32])]);
        assert!(c.is_ours("_rg"));
        assert!(c.is_ours("_rg_0"));
        assert!(c.is_ours("_rg_csrf_abc"));
        assert!(!c.is_ours("_rgx"));
        assert!(!c.is_ours("app"));
    }
}

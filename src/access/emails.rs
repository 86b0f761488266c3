//! Who may pass once signed in: `access.allowed_emails` and `access.allowed_email_domains`.
//!
//! Comparisons are case-insensitive. A domain entry matches only an email with exactly one
//! `@` and a non-empty local part, so `a@evil.com@example.com` (which oauth2-proxy let
//! through a suffix check) is refused. Domains compare in their ASCII (punycode) form, so
//! an IDN entry matches however the provider spells the address.

use std::collections::HashSet;

/// Why an allow-list entry was refused at start-up.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EmailPolicyError {
    /// An allowed email must look like `local@domain`.
    #[error("`{0}` must contain exactly one `@` with text on both sides")]
    BadEmail(String),
    /// A domain entry is a domain, `.domain` (subdomains) or `*` (any domain).
    #[error("`{0}` must not contain `@`")]
    DomainWithAt(String),
    /// Spaces and control characters are almost always a quoting mistake.
    #[error("`{entry}` contains whitespace or a control character")]
    Whitespace {
        /// The config key the entry came from.
        key: &'static str,
        /// The entry.
        entry: String,
    },
    /// Empty entries, empty labels and stray `*` are refused rather than guessed at.
    #[error(
        "`{0}` is not a domain (use `example.com`, `.example.com` for its subdomains, or `*` for any)"
    )]
    BadDomain(String),
}

impl EmailPolicyError {
    /// The `[access]` key the offending entry came from.
    pub fn key(&self) -> &'static str {
        match self {
            EmailPolicyError::BadEmail(_) => "allowed_emails",
            EmailPolicyError::DomainWithAt(_) | EmailPolicyError::BadDomain(_) => {
                "allowed_email_domains"
            }
            EmailPolicyError::Whitespace { key, .. } => key,
        }
    }
}

/// One `allowed_email_domains` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
enum DomainEntry {
    /// `*`: any well-formed email.
    Any,
    /// `example.com`: exactly that domain.
    Exact(String),
    /// `.example.com`: subdomains only; stored with the leading dot so matching is on
    /// label boundaries (`badexample.com` never matches).
    Subdomains(String),
}

/// The allow-lists, normalised for matching.
#[derive(Debug, Clone, Default)]
pub struct EmailPolicy {
    emails: HashSet<String>,
    domains: Vec<DomainEntry>,
}

impl EmailPolicy {
    /// Validates and normalises the entries; every problem is reported with the entry.
    pub fn new(
        allowed_emails: Vec<String>,
        allowed_domains: Vec<String>,
    ) -> Result<Self, EmailPolicyError> {
        let mut emails = HashSet::with_capacity(allowed_emails.len());
        for entry in allowed_emails {
            if has_space_or_control(&entry) {
                return Err(EmailPolicyError::Whitespace {
                    key: "allowed_emails",
                    entry,
                });
            }
            let Some((_, domain)) = split_email(&entry) else {
                return Err(EmailPolicyError::BadEmail(entry));
            };
            let Some(domain) = normalise_domain(domain) else {
                return Err(EmailPolicyError::BadEmail(entry));
            };
            let Some((local, _)) = entry.split_once('@') else {
                return Err(EmailPolicyError::BadEmail(entry));
            };
            emails.insert(format!("{}@{domain}", local.to_lowercase()));
        }

        let mut domains = Vec::with_capacity(allowed_domains.len());
        for entry in allowed_domains {
            if has_space_or_control(&entry) {
                return Err(EmailPolicyError::Whitespace {
                    key: "allowed_email_domains",
                    entry,
                });
            }
            if entry.contains('@') {
                return Err(EmailPolicyError::DomainWithAt(entry));
            }
            if entry == "*" {
                domains.push(DomainEntry::Any);
                continue;
            }
            let (bare, sub) = match entry.strip_prefix('.') {
                Some(rest) => (rest, true),
                None => (entry.as_str(), false),
            };
            if bare.contains('*') {
                return Err(EmailPolicyError::BadDomain(entry));
            }
            let Some(norm) = normalise_domain(bare) else {
                return Err(EmailPolicyError::BadDomain(entry));
            };
            domains.push(if sub {
                DomainEntry::Subdomains(format!(".{norm}"))
            } else {
                DomainEntry::Exact(norm)
            });
        }
        Ok(EmailPolicy { emails, domains })
    }

    /// Both lists empty: any signed-in user passes.
    pub fn is_open(&self) -> bool {
        self.emails.is_empty() && self.domains.is_empty()
    }

    /// Who passes, for a start-up banner: the domains in full, the emails counted (they
    /// name people, and a banner is often pasted into tickets).
    pub fn summary(&self) -> String {
        if self.is_open() {
            return "anyone signed in".to_owned();
        }
        let domains: Vec<String> = self
            .domains
            .iter()
            .map(|d| match d {
                DomainEntry::Any => "*".to_owned(),
                DomainEntry::Exact(d) => d.clone(),
                DomainEntry::Subdomains(d) => d.clone(),
            })
            .collect();
        match (self.emails.len(), domains.is_empty()) {
            (0, _) => format!("email domains {}", domains.join(", ")),
            (n, true) => format!("{n} listed email(s)"),
            (n, false) => format!("{n} listed email(s), email domains {}", domains.join(", ")),
        }
    }

    /// The keys a refusal by this policy names: the lists that are set.
    pub fn keys(&self) -> &'static str {
        match (self.emails.is_empty(), self.domains.is_empty()) {
            (false, true) => "allowed_emails",
            (true, false) => "allowed_email_domains",
            _ => "allowed_emails/allowed_email_domains",
        }
    }

    /// Whether a signed-in user with this email (None when the provider gave none) may
    /// pass. Without an email only an open policy lets the user through.
    pub fn allows(&self, email: Option<&str>) -> bool {
        if self.is_open() {
            return true;
        }
        let Some(email) = email else {
            return false;
        };
        if has_space_or_control(email) {
            return false;
        }
        let Some((local, domain)) = split_email(email) else {
            return false;
        };
        let Some(domain) = normalise_domain(domain) else {
            return false;
        };
        if self
            .emails
            .contains(&format!("{}@{domain}", local.to_lowercase()))
        {
            return true;
        }
        self.domains.iter().any(|d| match d {
            DomainEntry::Any => true,
            DomainEntry::Exact(e) => domain == *e,
            DomainEntry::Subdomains(suffix) => {
                domain.len() > suffix.len() && domain.ends_with(suffix.as_str())
            }
        })
    }
}

/// `local@domain` with exactly one `@` and both sides non-empty.
fn split_email(email: &str) -> Option<(&str, &str)> {
    let (local, domain) = email.split_once('@')?;
    if local.is_empty() || domain.is_empty() || domain.contains('@') {
        return None;
    }
    Some((local, domain))
}

/// Lowercase ASCII form of a domain (punycode for IDNs); None when it has empty labels or
/// characters no domain has, so that such a value can never equal an allowed entry.
fn normalise_domain(domain: &str) -> Option<String> {
    if domain.split('.').any(str::is_empty) {
        return None;
    }
    if domain.is_ascii() {
        let ok = domain
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_'));
        return ok.then(|| domain.to_ascii_lowercase());
    }
    match url::Host::parse(domain).ok()? {
        url::Host::Domain(d) => Some(d),
        _ => None,
    }
}

fn has_space_or_control(s: &str) -> bool {
    s.is_empty() || s.chars().any(|c| c.is_whitespace() || c.is_control())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(emails: &[&str], domains: &[&str]) -> EmailPolicy {
        EmailPolicy::new(
            emails.iter().map(|s| s.to_string()).collect(),
            domains.iter().map(|s| s.to_string()).collect(),
        )
        .unwrap()
    }

    #[test]
    fn open_policy_lets_everyone_in() {
        let p = policy(&[], &[]);
        assert!(p.is_open());
        assert!(p.allows(None));
        assert!(p.allows(Some("anyone@anywhere.test")));
    }

    #[test]
    fn missing_email_refused_unless_open() {
        assert!(!policy(&[], &["*"]).allows(None));
        assert!(!policy(&["a@b.c"], &[]).allows(None));
        assert!(!policy(&[], &["*"]).is_open());
    }

    #[test]
    fn explicit_emails_case_insensitive() {
        let p = policy(&["Alice@Example.com"], &[]);
        assert!(p.allows(Some("alice@example.com")));
        assert!(p.allows(Some("ALICE@EXAMPLE.COM")));
        assert!(!p.allows(Some("bob@example.com")));
        assert!(!p.allows(Some("alice@example.com.evil")));
    }

    #[test]
    fn exact_domain() {
        let p = policy(&[], &["Example.com"]);
        assert!(p.allows(Some("a@example.com")));
        assert!(p.allows(Some("a@EXAMPLE.COM")));
        assert!(!p.allows(Some("a@sub.example.com")));
        assert!(!p.allows(Some("a@badexample.com")));
        assert!(!p.allows(Some("a@evil.com@example.com")));
        assert!(!p.allows(Some("@example.com")));
        assert!(!p.allows(Some("example.com")));
        assert!(!p.allows(Some("a@example.com.")));
        assert!(!p.allows(Some("a b@example.com")));
        assert!(!p.allows(Some("a@example.com\n")));
    }

    #[test]
    fn subdomain_entry_matches_on_label_boundaries() {
        let p = policy(&[], &[".example.com"]);
        assert!(p.allows(Some("a@sub.example.com")));
        assert!(p.allows(Some("a@x.y.example.com")));
        assert!(!p.allows(Some("a@example.com")));
        assert!(!p.allows(Some("a@badexample.com")));
        assert!(!p.allows(Some("a@.example.com")));
        assert!(!p.allows(Some("a@x..example.com")));
        assert!(!p.allows(Some("a@evil.com@sub.example.com")));
    }

    #[test]
    fn any_domain_still_requires_a_well_formed_email() {
        let p = policy(&[], &["*"]);
        assert!(p.allows(Some("a@b.c")));
        assert!(!p.allows(Some("a@b@c")));
        assert!(!p.allows(Some("nobody")));
        assert!(!p.allows(Some("")));
    }

    #[test]
    fn idn_domains_compare_as_punycode() {
        let p = policy(&[], &["bücher.example"]);
        assert!(p.allows(Some("a@xn--bcher-kva.example")));
        assert!(p.allows(Some("a@BÜCHER.example")));
        let p = policy(&["a@xn--bcher-kva.example"], &[]);
        assert!(p.allows(Some("A@bücher.example")));
    }

    #[test]
    fn invalid_entries_are_refused() {
        let new = |e: &[&str], d: &[&str]| {
            EmailPolicy::new(
                e.iter().map(|s| s.to_string()).collect(),
                d.iter().map(|s| s.to_string()).collect(),
            )
            .unwrap_err()
        };
        assert!(matches!(
            new(&["alice"], &[]),
            EmailPolicyError::BadEmail(_)
        ));
        assert!(matches!(
            new(&["a@b@c"], &[]),
            EmailPolicyError::BadEmail(_)
        ));
        assert!(matches!(
            new(&["@example.com"], &[]),
            EmailPolicyError::BadEmail(_)
        ));
        assert!(matches!(
            new(&["alice@"], &[]),
            EmailPolicyError::BadEmail(_)
        ));
        assert!(matches!(
            new(&["a @b.c"], &[]),
            EmailPolicyError::Whitespace { .. }
        ));
        assert!(matches!(
            new(&[""], &[]),
            EmailPolicyError::Whitespace { .. }
        ));
        assert!(matches!(
            new(&[], &["@example.com"]),
            EmailPolicyError::DomainWithAt(_)
        ));
        assert!(matches!(
            new(&[], &["a@example.com"]),
            EmailPolicyError::DomainWithAt(_)
        ));
        assert!(matches!(
            new(&[], &["exa mple.com"]),
            EmailPolicyError::Whitespace { .. }
        ));
        assert!(matches!(
            new(&[], &[""]),
            EmailPolicyError::Whitespace { .. }
        ));
        assert!(matches!(new(&[], &["."]), EmailPolicyError::BadDomain(_)));
        assert!(matches!(
            new(&[], &["*.example.com"]),
            EmailPolicyError::BadDomain(_)
        ));
        assert!(matches!(
            new(&[], &["example..com"]),
            EmailPolicyError::BadDomain(_)
        ));
        assert_eq!(new(&[], &["a@example.com"]).key(), "allowed_email_domains");
        assert_eq!(new(&["nope"], &[]).key(), "allowed_emails");
    }
}

//! `[access]`: who may pass (allow-lists), which paths need no sign-in, where browsers may
//! be sent back to, and whether API clients may present bearer tokens.

use url::Url;

use super::AccessSettings;
use super::problems::Problems;
use super::raw::RawAccess;
use crate::access::{DomainRule, EmailPolicy, RedirectPolicy, SkipRoute, SkipRoutes};

/// `route_hosts`: every `[[routes]]` host, also an allowed redirect target;
/// `has_jwks_url`: whether `provider.jwks_url` is set, which bearer tokens need;
/// `public_url` anchors the redirect policy.
pub(super) fn validate(
    p: &mut Problems,
    raw: RawAccess,
    has_jwks_url: bool,
    public_url: Option<&Url>,
    route_hosts: Vec<DomainRule>,
) -> Option<AccessSettings> {
    let mut allowed_emails = raw.allowed_emails;
    if let Some(path) = &raw.allowed_emails_file {
        match std::fs::read_to_string(path) {
            Ok(text) => allowed_emails.extend(emails_file(p, path, &text)),
            Err(e) => p.add(
                "access.allowed_emails_file",
                format!("cannot read {path}: {e}"),
            ),
        }
    }
    let emails = match EmailPolicy::new(allowed_emails, raw.allowed_email_domains) {
        Ok(policy) => Some(policy),
        Err(e) => {
            p.add(&format!("access.{}", e.key()), e.to_string());
            None
        }
    };
    let mut routes = Vec::new();
    for (i, route) in raw.skip_auth_routes.iter().enumerate() {
        if let Some(r) = p.take(
            &format!("access.skip_auth_routes[{i}]"),
            route.parse::<SkipRoute>(),
        ) {
            routes.push(r);
        }
    }
    let mut rules = route_hosts;
    for (i, rule) in raw.redirect_domains.iter().enumerate() {
        if let Some(r) = p.take(
            &format!("access.redirect_domains[{i}]"),
            rule.parse::<DomainRule>(),
        ) {
            rules.push(r);
        }
    }
    let accept_bearer_tokens = raw.accept_bearer_tokens.unwrap_or(false);
    if accept_bearer_tokens && !has_jwks_url {
        p.add(
            "access.accept_bearer_tokens",
            "requires provider.jwks_url (Rocketpunch's signing keys) to verify tokens",
        );
    }
    Some(AccessSettings {
        emails: emails?,
        skip_routes: SkipRoutes::new(routes),
        redirects: RedirectPolicy::new(public_url?, rules),
        accept_bearer_tokens,
    })
}

/// The addresses of an `allowed_emails_file` (oauth2-proxy's `authenticated_emails_file`
/// format): one per line, blank lines and `#` comments ignored. A line that is not one
/// address is a problem named by its line number, so a typo cannot silently lock a user out
/// or let a pasted list through half-read.
fn emails_file(p: &mut Problems, path: &str, text: &str) -> Vec<String> {
    let mut emails = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let one_address = line.matches('@').count() == 1
            && !line.starts_with('@')
            && !line.ends_with('@')
            && !line.contains(char::is_whitespace)
            && !line.contains(',');
        if one_address {
            emails.push(line.to_owned());
        } else {
            p.add(
                "access.allowed_emails_file",
                format!("{path}:{}: `{line}` is not one email address", i + 1),
            );
        }
    }
    emails
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_emails_file_is_one_address_per_line_with_comments_and_blanks() {
        let mut p = Problems::default();
        let text = "# the team\nada@example.com\n\n  grace@example.org  \r\n# end\n";
        assert_eq!(
            emails_file(&mut p, "team.txt", text),
            ["ada@example.com", "grace@example.org"]
        );
        assert!(p.is_empty());
    }

    #[test]
    fn a_bad_line_is_named_by_its_number() {
        let mut p = Problems::default();
        let text = "ada@example.com\nbob, carol@example.com\nnot-an-address\n";
        assert_eq!(emails_file(&mut p, "team.txt", text), ["ada@example.com"]);
        let messages: Vec<String> = p
            .into_error()
            .problems()
            .into_iter()
            .map(|p| p.message)
            .collect();
        assert_eq!(
            messages,
            [
                "team.txt:2: `bob, carol@example.com` is not one email address",
                "team.txt:3: `not-an-address` is not one email address",
            ]
        );
    }
}

//! The provider's HTML: the login + consent page and its error page.

use std::fmt::Write as _;

use crate::page::{escape, page};

use super::DemoUser;

/// Shown on every provider page so nobody mistakes it for the real login.
const BADGE: &str = "Rocketpunch (demo stand-in)";

/// The form fields copied from the authorization request into the consent
/// form, in the order they are rendered. Absent ones are not rendered, so
/// "no state" survives the round trip as "no state".
pub(super) const CARRIED_FIELDS: [&str; 7] = [
    "client_id",
    "redirect_uri",
    "response_type",
    "scope",
    "state",
    "code_challenge",
    "code_challenge_method",
];

/// Plain-words description of a scope for the consent page.
pub(super) fn describe_scope(scope: &str) -> Option<&'static str> {
    match scope {
        "profile:read" => Some("your public profile"),
        "profile:email" => Some("your email address"),
        _ => None,
    }
}

/// The login + consent page. `carried` are (name, value) pairs to echo as
/// hidden fields; `scopes` the requested scopes.
pub(super) fn consent(
    client_id: &str,
    scopes: &[&str],
    carried: &[(&str, &str)],
    users: &[DemoUser],
) -> String {
    let mut body = String::new();
    // Writing into a String cannot fail, hence the ignored results.
    let _ = write!(
        body,
        "<h1>Sign in to continue to <strong>{app}</strong></h1>\n\
         <form method=\"post\" action=\"/oauth/authorize\">\n",
        app = escape(client_id),
    );
    for (name, value) in carried {
        let _ = writeln!(
            body,
            "<input type=\"hidden\" name=\"{}\" value=\"{}\">",
            escape(name),
            escape(value)
        );
    }
    body.push_str("<fieldset>\n<legend>Sign in as</legend>\n");
    for (i, user) in users.iter().enumerate() {
        let _ = writeln!(
            body,
            "<label for=\"user-{id}\"><input type=\"radio\" id=\"user-{id}\" name=\"user\" \
             value=\"{id}\"{checked}><span><strong>{name}</strong><br>\
             <span class=\"muted\">@{username} · {email}</span></span></label>",
            id = escape(user.id),
            checked = if i == 0 { " checked" } else { "" },
            name = escape(user.name),
            username = escape(user.username),
            email = escape(user.email),
        );
    }
    body.push_str("</fieldset>\n");
    let _ = write!(
        body,
        "<h2><strong>{app}</strong> would like to access:</h2>\n<ul>\n",
        app = escape(client_id)
    );
    if scopes.is_empty() {
        body.push_str("<li>basic information about your account</li>\n");
    }
    for scope in scopes {
        let _ = writeln!(
            body,
            "<li>{} <span class=\"muted\">(<code>{}</code>)</span></li>",
            escape(describe_scope(scope).unwrap_or(scope)),
            escape(scope)
        );
    }
    body.push_str(
        "</ul>\n<p class=\"muted\">This is a local stand-in for Rocketpunch used by \
         <code>rocketgate demo</code>. No real account is involved.</p>\n\
         <div class=\"actions\">\n\
         <button type=\"submit\" name=\"decision\" value=\"approve\" class=\"primary\">Approve</button>\n\
         <button type=\"submit\" name=\"decision\" value=\"deny\" class=\"secondary\">Deny</button>\n\
         </div>\n</form>",
    );
    page("Authorize application – Rocketpunch (demo)", BADGE, &body)
}

/// An error the provider shows itself instead of redirecting (bad client or
/// redirect URI: redirecting there could hand codes to an attacker).
pub(super) fn error(title: &str, detail: &str) -> String {
    let body = format!("<h1>{}</h1>\n<p>{}</p>", escape(title), escape(detail));
    page(&format!("{title} – Rocketpunch (demo)"), BADGE, &body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn consent_escapes_echoed_values_and_checks_first_user() {
        let users = super::super::StandIn::users();
        let html = consent(
            "<app>",
            &["profile:read", "x\"y"],
            &[("state", "\"><script>")],
            users,
        );
        assert!(!html.contains("<script>"));
        assert!(!html.contains("<app>"));
        assert!(html.contains("value=\"&quot;&gt;&lt;script&gt;\""));
        assert!(html.contains("your public profile"));
        assert!(html.contains("x&quot;y"));
        assert_eq!(html.matches(" checked").count(), 1);
        assert!(html.contains("value=\"1001\" checked"));
        assert!(html.contains("Rocketpunch (demo stand-in)"));
    }
}

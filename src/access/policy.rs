//! Who may pass a route: the baseline `[access]` lists, then the route's own lists, then
//! (for forward-auth) lists from the check's query string. Each layer narrows, none widens:
//! a user passes only when every non-empty list of every layer lets them in.
//!
//! Groups come from two places: the named `[groups]` a user matches (by email, email domain
//! or Rocketpunch user id), decided at the time of the request so a changed `[groups]`
//! applies at once, and the groups Rocketpunch itself reported (`provider.claims.groups`),
//! kept in the session from sign-in or the last refresh.

use std::collections::HashSet;

use super::emails::{EmailPolicy, EmailPolicyError};

/// The signed-in user a decision is about.
#[derive(Debug, Clone, Copy)]
pub struct Member<'a> {
    pub user: &'a str,
    pub email: Option<&'a str>,
    /// Groups Rocketpunch reported for this user.
    pub reported: &'a [String],
}

/// One `[groups]` entry.
#[derive(Debug, Clone)]
struct Group {
    name: String,
    emails: EmailPolicy,
    users: HashSet<String>,
}

/// Why a `[groups]` entry was refused at start-up.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GroupError {
    #[error("`{0}` is not a group name (letters, digits, `-`, `_`, `.`, `:`, `/`, `@`)")]
    BadName(String),
    #[error(transparent)]
    Email(#[from] EmailPolicyError),
}

/// The named groups of `[groups]`.
#[derive(Debug, Clone, Default)]
pub struct Groups(Vec<Group>);

/// What one `[groups]` entry lists.
#[derive(Debug, Clone, Default)]
pub struct GroupDefinition {
    pub emails: Vec<String>,
    pub email_domains: Vec<String>,
    pub users: Vec<String>,
}

/// A group name that is safe in a comma-separated header and in a log line.
pub fn is_group_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 128
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.:/@".contains(&b))
}

impl Groups {
    pub fn new(
        definitions: impl IntoIterator<Item = (String, GroupDefinition)>,
    ) -> Result<Self, (String, GroupError)> {
        let mut groups = Vec::new();
        for (name, definition) in definitions {
            if !is_group_name(&name) {
                return Err((name.clone(), GroupError::BadName(name)));
            }
            let emails = EmailPolicy::new(definition.emails, definition.email_domains)
                .map_err(|e| (name.clone(), e.into()))?;
            groups.push(Group {
                name,
                emails,
                users: definition.users.into_iter().collect(),
            });
        }
        Ok(Groups(groups))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(|g| g.name.as_str())
    }

    /// The member's groups: the named groups they match, by name (a TOML table has no order
    /// worth keeping), then the
    /// reported ones not already listed.
    pub fn of(&self, member: &Member<'_>) -> Vec<String> {
        let mut out: Vec<String> = self
            .0
            .iter()
            .filter(|g| {
                g.users.contains(member.user)
                    || (!g.emails.is_open() && g.emails.allows(member.email))
            })
            .map(|g| g.name.clone())
            .collect();
        for reported in member.reported {
            if !out.contains(reported) {
                out.push(reported.clone());
            }
        }
        out
    }
}

/// One layer's lists: the email lists (an email passes if either admits it, as in
/// `[access]`) and the groups (the user must be in one of them). Empty lists add no rule.
#[derive(Debug, Clone, Default)]
pub struct Rules {
    pub emails: EmailPolicy,
    pub groups: Vec<String>,
}

impl Rules {
    pub fn is_empty(&self) -> bool {
        self.emails.is_open() && self.groups.is_empty()
    }

    pub fn layer<'a>(&'a self, scope: &'a str) -> Layer<'a> {
        Layer {
            scope,
            emails: &self.emails,
            groups: &self.groups,
        }
    }
}

/// One layer of rules and where it came from, for the log line and `explain`: `access`,
/// `routes[2]`, `query`.
#[derive(Debug, Clone, Copy)]
pub struct Layer<'a> {
    pub scope: &'a str,
    pub emails: &'a EmailPolicy,
    pub groups: &'a [String],
}

/// Which rule refused a user: the layer and the key, as the configuration names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Denied {
    pub scope: String,
    pub rule: &'static str,
}

impl std::fmt::Display for Denied {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}", self.scope, self.rule)
    }
}

/// Whether `member`, in `groups` (from [`Groups::of`]), passes every layer.
pub fn check<'a>(
    layers: impl IntoIterator<Item = Layer<'a>>,
    member: &Member<'_>,
    groups: &[String],
) -> Result<(), Denied> {
    for layer in layers {
        if !layer.emails.allows(member.email) {
            return Err(Denied {
                scope: layer.scope.to_owned(),
                rule: layer.emails.keys(),
            });
        }
        if !layer.groups.is_empty() && !layer.groups.iter().any(|g| groups.contains(g)) {
            return Err(Denied {
                scope: layer.scope.to_owned(),
                rule: "allowed_groups",
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(emails: &[&str], domains: &[&str], groups: &[&str]) -> Rules {
        Rules {
            emails: EmailPolicy::new(
                emails.iter().map(|s| s.to_string()).collect(),
                domains.iter().map(|s| s.to_string()).collect(),
            )
            .unwrap(),
            groups: groups.iter().map(|s| s.to_string()).collect(),
        }
    }

    fn groups() -> Groups {
        Groups::new([
            (
                "ops".to_owned(),
                GroupDefinition {
                    emails: vec!["ada@example.com".into()],
                    users: vec!["1003".into()],
                    ..GroupDefinition::default()
                },
            ),
            (
                "staff".to_owned(),
                GroupDefinition {
                    email_domains: vec!["example.com".into()],
                    ..GroupDefinition::default()
                },
            ),
            ("empty".to_owned(), GroupDefinition::default()),
        ])
        .unwrap()
    }

    #[test]
    fn groups_by_email_domain_user_and_report() {
        let reported = vec!["billing".to_owned(), "ops".to_owned()];
        let ada = Member {
            user: "1001",
            email: Some("ADA@example.com"),
            reported: &reported,
        };
        assert_eq!(groups().of(&ada), ["ops", "staff", "billing"]);
        let by_id = Member {
            user: "1003",
            email: None,
            reported: &[],
        };
        assert_eq!(groups().of(&by_id), ["ops"]);
        let outsider = Member {
            user: "9",
            email: Some("eve@evil.com"),
            reported: &[],
        };
        assert!(
            groups().of(&outsider).is_empty(),
            "an empty group holds no one"
        );
    }

    #[test]
    fn every_layer_narrows_and_names_the_rule_that_refused() {
        let baseline = rules(&[], &["example.com"], &[]);
        let route = rules(&[], &[], &["ops"]);
        let query = rules(&["ada@example.com"], &[], &[]);
        let layers = [
            baseline.layer("access"),
            route.layer("routes[0]"),
            query.layer("query"),
        ];
        let ada = Member {
            user: "1001",
            email: Some("ada@example.com"),
            reported: &[],
        };
        assert_eq!(check(layers, &ada, &["ops".into()]), Ok(()));
        let denied = check(layers, &ada, &["staff".into()]).unwrap_err();
        assert_eq!(denied.to_string(), "routes[0].allowed_groups");
        let grace = Member {
            email: Some("grace@example.com"),
            ..ada
        };
        let denied = check(layers, &grace, &["ops".into()]).unwrap_err();
        assert_eq!(denied.to_string(), "query.allowed_emails");
        let eve = Member {
            email: Some("eve@evil.com"),
            ..ada
        };
        let denied = check(layers, &eve, &["ops".into()]).unwrap_err();
        assert_eq!(denied.to_string(), "access.allowed_email_domains");
    }

    #[test]
    fn group_names_are_header_and_log_safe() {
        assert!(is_group_name("team:ops/eu@x"));
        for bad in ["", "a,b", "a b", "ä", "a\"b"] {
            assert!(!is_group_name(bad), "{bad:?}");
        }
    }
}

//! Mapping Rocketpunch's profile JSON to an [`Identity`] by configured JSON pointers.

use serde_json::Value;

use super::ClaimPointers;
use super::ProviderError;
use crate::session::Identity;

/// Resolves `pointer` in `profile`, falling back to `/data` + pointer because the profile
/// endpoint's shape is undocumented and wraps its payload as `{"data": {...}}`.
fn find<'a>(profile: &'a Value, pointer: &str) -> Option<&'a Value> {
    profile
        .pointer(pointer)
        .or_else(|| profile.get("data").and_then(|d| d.pointer(pointer)))
}

fn scalar(found: &Value) -> Option<String> {
    match found {
        Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_owned()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn lookup(profile: &Value, pointer: &str) -> Option<String> {
    find(profile, pointer).and_then(scalar)
}

/// A claim for a header: a scalar, or a list of scalars joined by commas.
fn header_claim(profile: &Value, pointer: &str) -> Option<String> {
    match find(profile, pointer)? {
        Value::Array(items) => {
            let joined = items
                .iter()
                .filter_map(scalar)
                .collect::<Vec<_>>()
                .join(",");
            (!joined.is_empty()).then_some(joined)
        }
        other => scalar(other),
    }
}

/// The groups Rocketpunch reports: a list of names or one name. Names a header or a log
/// line could not carry safely are dropped, never passed on.
fn groups(profile: &Value, pointer: &str) -> Vec<String> {
    let names: Vec<String> = match find(profile, pointer) {
        Some(Value::Array(items)) => items.iter().filter_map(scalar).collect(),
        Some(other) => scalar(other).into_iter().collect(),
        None => Vec::new(),
    };
    let mut out: Vec<String> = Vec::with_capacity(names.len());
    for name in names {
        if crate::access::policy::is_group_name(&name) && !out.contains(&name) {
            out.push(name);
        }
    }
    out
}

pub fn identity(profile: &Value, claims: &ClaimPointers) -> Result<Identity, ProviderError> {
    let user = lookup(profile, &claims.user)
        .ok_or_else(|| ProviderError::MissingUser(claims.user.clone()))?;
    Ok(Identity {
        user,
        email: lookup(profile, &claims.email),
        preferred_username: lookup(profile, &claims.preferred_username),
        groups: claims
            .groups
            .as_deref()
            .map(|p| groups(profile, p))
            .unwrap_or_default(),
        claims: claims
            .extra
            .iter()
            .filter_map(|p| header_claim(profile, p).map(|v| (p.clone(), v)))
            .collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pointers() -> ClaimPointers {
        ClaimPointers {
            user: "/id".into(),
            email: "/email".into(),
            preferred_username: "/username".into(),
            groups: None,
            extra: Vec::new(),
        }
    }

    #[test]
    fn maps_flat_and_wrapped_profiles() {
        let flat = json!({"id": 7, "email": "a@b.c", "username": "ada"});
        let wrapped = json!({"data": {"id": 7, "email": "a@b.c", "username": "ada"}});
        let expected = Identity {
            user: "7".into(),
            email: Some("a@b.c".into()),
            preferred_username: Some("ada".into()),
            ..Identity::default()
        };
        assert_eq!(identity(&flat, &pointers()).unwrap(), expected);
        assert_eq!(identity(&wrapped, &pointers()).unwrap(), expected);
    }

    #[test]
    fn missing_user_is_an_error_and_missing_email_is_none() {
        assert!(matches!(
            identity(&json!({"email": "a@b.c"}), &pointers()),
            Err(ProviderError::MissingUser(_))
        ));
        assert!(identity(&json!({"id": ""}), &pointers()).is_err());
        assert!(identity(&json!({"id": {"nested": 1}}), &pointers()).is_err());
        let no_email = identity(&json!({"id": "u"}), &pointers()).unwrap();
        assert_eq!(no_email.email, None);
    }

    #[test]
    fn custom_pointers() {
        let p = ClaimPointers {
            user: "/account/uid".into(),
            email: "/contact/0".into(),
            preferred_username: "/nick".into(),
            groups: Some("/teams".into()),
            extra: vec!["/dept".into(), "/tags".into(), "/missing".into()],
        };
        let v = json!({"account": {"uid": "x"}, "contact": ["e@f.g"], "nick": "n",
            "teams": ["ops", "ops", "a,b", "billing", 7], "dept": "R&D", "tags": ["x", 1, true]});
        let id = identity(&v, &p).unwrap();
        assert_eq!(
            id.groups,
            ["ops", "billing", "7"],
            "unsafe names are dropped"
        );
        assert_eq!(id.claims.get("/dept").map(String::as_str), Some("R&D"));
        assert_eq!(id.claims.get("/tags").map(String::as_str), Some("x,1,true"));
        assert!(!id.claims.contains_key("/missing"));
        assert_eq!(
            (id.user.as_str(), id.email.as_deref()),
            ("x", Some("e@f.g"))
        );
    }
}

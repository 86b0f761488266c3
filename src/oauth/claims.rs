//! Mapping Rocketpunch's profile JSON to an [`Identity`] by configured JSON pointers.

use serde_json::Value;

use super::ClaimPointers;
use super::ProviderError;
use crate::session::Identity;

/// Resolves `pointer` in `profile`, falling back to `/data` + pointer because the profile
/// endpoint's shape is undocumented and wraps its payload as `{"data": {...}}`.
fn lookup(profile: &Value, pointer: &str) -> Option<String> {
    let found = profile
        .pointer(pointer)
        .or_else(|| profile.get("data").and_then(|d| d.pointer(pointer)))?;
    match found {
        Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_owned()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

pub fn identity(profile: &Value, claims: &ClaimPointers) -> Result<Identity, ProviderError> {
    let user = lookup(profile, &claims.user)
        .ok_or_else(|| ProviderError::MissingUser(claims.user.clone()))?;
    Ok(Identity {
        user,
        email: lookup(profile, &claims.email),
        preferred_username: lookup(profile, &claims.preferred_username),
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
        };
        let v = json!({"account": {"uid": "x"}, "contact": ["e@f.g"], "nick": "n"});
        let id = identity(&v, &p).unwrap();
        assert_eq!(
            (id.user.as_str(), id.email.as_deref()),
            ("x", Some("e@f.g"))
        );
    }
}

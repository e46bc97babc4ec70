//! The registered-claim checks jwt-simple makes after a signature, for tokens whose signature
//! the host already verified (Envoy's `jwt_authn` in front of Bridle): `aud`, `exp`, `nbf`,
//! `iat`, with the same skew. Only the signature is the host's; every other check stays here.

use serde_json::{Map, Value};

use super::verify::TokenError;

fn seconds(claims: &Map<String, Value>, name: &'static str) -> Result<Option<u64>, TokenError> {
    match claims.get(name) {
        None => Ok(None),
        Some(value) => value.as_u64().map(Some).ok_or_else(|| {
            TokenError::BadClaims(format!("`{name}` is not a non-negative integer"))
        }),
    }
}

pub fn check(
    claims: &Map<String, Value>,
    audiences: &std::collections::HashSet<String>,
    skew: u64,
    now: u64,
) -> Result<(), TokenError> {
    let expires_at = seconds(claims, "exp")?.ok_or(TokenError::MissingExpiry)?;
    if expires_at.saturating_add(skew) < now {
        return Err(TokenError::Expired);
    }
    if seconds(claims, "nbf")?.is_some_and(|nbf| nbf > now.saturating_add(skew)) {
        return Err(TokenError::NotYetValid);
    }
    if seconds(claims, "iat")?.is_some_and(|iat| iat > now.saturating_add(skew)) {
        return Err(TokenError::IssuedInFuture);
    }
    let accepted = |aud: &Value| aud.as_str().is_some_and(|a| audiences.contains(a));
    let any = match claims.get("aud") {
        None => return Err(TokenError::MissingAudience),
        Some(Value::Array(items)) => items.iter().any(accepted),
        Some(single @ Value::String(_)) => accepted(single),
        Some(_) => {
            return Err(TokenError::BadClaims(
                "`aud` is not a string or an array".to_owned(),
            ))
        }
    };
    if any {
        Ok(())
    } else {
        Err(TokenError::WrongAudience)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn run(claims: Value, now: u64) -> Result<(), TokenError> {
        let audiences = ["gw".to_owned()].into_iter().collect();
        check(claims.as_object().unwrap(), &audiences, 30, now)
    }

    #[test]
    fn registered_claims_are_checked_with_the_skew() {
        assert_eq!(run(json!({"exp": 1000, "aud": "gw"}), 1000), Ok(()));
        assert_eq!(run(json!({"exp": 1000, "aud": ["x", "gw"]}), 1030), Ok(()));
        assert_eq!(
            run(json!({"exp": 1000, "aud": "gw"}), 1031),
            Err(TokenError::Expired)
        );
        assert_eq!(run(json!({"aud": "gw"}), 1), Err(TokenError::MissingExpiry));
        assert_eq!(
            run(json!({"exp": 2000, "nbf": 1100, "aud": "gw"}), 1000),
            Err(TokenError::NotYetValid)
        );
        assert_eq!(
            run(json!({"exp": 2000, "iat": 1100, "aud": "gw"}), 1000),
            Err(TokenError::IssuedInFuture)
        );
        assert_eq!(
            run(json!({"exp": 2000}), 1000),
            Err(TokenError::MissingAudience)
        );
        assert_eq!(
            run(json!({"exp": 2000, "aud": ["x"]}), 1000),
            Err(TokenError::WrongAudience)
        );
        assert!(matches!(
            run(json!({"exp": "2000", "aud": "gw"}), 1000),
            Err(TokenError::BadClaims(_))
        ));
        assert!(matches!(
            run(json!({"exp": 2000, "aud": 7}), 1000),
            Err(TokenError::BadClaims(_))
        ));
    }
}

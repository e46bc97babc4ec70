//! SPIFFE IDs (`spiffe://trust-domain/path`), parsed by the rules of the SPIFFE ID standard.

use serde::Serialize;

const MAX_SPIFFE_ID_BYTES: usize = 2048;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SpiffeId {
    pub id: String,
    pub trust_domain: String,
    pub path: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SpiffeIdError {
    #[error("not a SPIFFE ID (scheme must be `spiffe://`)")]
    Scheme,
    #[error("SPIFFE ID is longer than {MAX_SPIFFE_ID_BYTES} bytes")]
    TooLong,
    #[error("SPIFFE ID has an empty trust domain")]
    EmptyTrustDomain,
    #[error("SPIFFE ID trust domain has a character other than a-z 0-9 . - _")]
    TrustDomainCharacter,
    #[error("SPIFFE ID path has an empty, `.` or `..` segment or a trailing slash")]
    PathSegment,
    #[error("SPIFFE ID path has a character other than a-z A-Z 0-9 . - _")]
    PathCharacter,
}

impl SpiffeId {
    pub fn parse(value: &str) -> Result<Self, SpiffeIdError> {
        if value.len() > MAX_SPIFFE_ID_BYTES {
            return Err(SpiffeIdError::TooLong);
        }
        let rest = value
            .strip_prefix("spiffe://")
            .ok_or(SpiffeIdError::Scheme)?;
        let (trust_domain, path) = match rest.find('/') {
            Some(at) => rest.split_at(at),
            None => (rest, ""),
        };
        if trust_domain.is_empty() {
            return Err(SpiffeIdError::EmptyTrustDomain);
        }
        if !trust_domain.bytes().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'-' | b'_')
        }) {
            return Err(SpiffeIdError::TrustDomainCharacter);
        }
        if !path.is_empty() {
            // `path` starts with '/', so the first split item is empty by construction.
            for segment in path.split('/').skip(1) {
                if segment.is_empty() || segment == "." || segment == ".." {
                    return Err(SpiffeIdError::PathSegment);
                }
                if !segment
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'))
                {
                    return Err(SpiffeIdError::PathCharacter);
                }
            }
        }
        Ok(SpiffeId {
            id: value.to_owned(),
            trust_domain: trust_domain.to_owned(),
            path: path.to_owned(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_trust_domain_and_path() {
        let id = SpiffeId::parse("spiffe://example.org/agent/research-bot").unwrap();
        assert_eq!(id.trust_domain, "example.org");
        assert_eq!(id.path, "/agent/research-bot");
    }

    #[test]
    fn trust_domain_only_is_valid() {
        let id = SpiffeId::parse("spiffe://example.org").unwrap();
        assert_eq!(id.path, "");
    }

    #[test]
    fn refuses_malformed_ids() {
        let cases = [
            ("https://example.org/a", SpiffeIdError::Scheme),
            ("spiffe:///a", SpiffeIdError::EmptyTrustDomain),
            (
                "spiffe://Example.org/a",
                SpiffeIdError::TrustDomainCharacter,
            ),
            ("spiffe://example.org/a/../b", SpiffeIdError::PathSegment),
            ("spiffe://example.org/a/", SpiffeIdError::PathSegment),
            ("spiffe://example.org//a", SpiffeIdError::PathSegment),
            ("spiffe://example.org/a?b", SpiffeIdError::PathCharacter),
            ("spiffe://example.org/a#b", SpiffeIdError::PathCharacter),
            (
                "spiffe://user@example.org/a",
                SpiffeIdError::TrustDomainCharacter,
            ),
            (
                "spiffe://example.org:8080/a",
                SpiffeIdError::TrustDomainCharacter,
            ),
        ];
        for (input, expected) in cases {
            assert_eq!(SpiffeId::parse(input), Err(expected), "{input}");
        }
        let long = format!("spiffe://example.org/{}", "a".repeat(MAX_SPIFFE_ID_BYTES));
        assert_eq!(SpiffeId::parse(&long), Err(SpiffeIdError::TooLong));
    }
}

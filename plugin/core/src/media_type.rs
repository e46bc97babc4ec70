//! The `content-type` and `content-encoding` of a body Bridle decides on: accepted only when
//! the bytes Bridle reads are the text the upstream reads. An upstream that honours `charset`
//! (UTF-7, UTF-16) or decodes a content coding would see another message than the policy saw.

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BodyEncodingError {
    #[error("request body needs `content-type: application/json`")]
    MissingContentType,
    #[error("`content-type` appears more than once")]
    RepeatedContentType,
    #[error("`content-type` is malformed")]
    Malformed,
    #[error("content type `{0}` is not `application/json`")]
    NotJson(String),
    #[error("charset `{0}` is not accepted: the body is read as UTF-8")]
    Charset(String),
    #[error("content type parameter `{0}` is not accepted")]
    Parameter(String),
    #[error("content-encoding `{0}` is not accepted: the body is read as sent")]
    ContentEncoding(String),
}

/// Checks the values of a request's `content-type` and `content-encoding` headers (every
/// occurrence, as received) for a JSON body: `application/json` with no parameter but one
/// optional `charset=utf-8` (names and values in any case, the value bare or quoted), and no
/// content coding. Anything else is refused rather than interpreted: a parameter list that
/// could be read two ways (a quoted `;`, an escape) never equals the one accepted form.
pub fn check_json(content_types: &[&[u8]], encodings: &[&[u8]]) -> Result<(), BodyEncodingError> {
    for encoding in encodings {
        let text = trim_ows(encoding);
        if !text.is_empty() && !text.eq_ignore_ascii_case(b"identity") {
            return Err(BodyEncodingError::ContentEncoding(shown(text)));
        }
    }
    let value = match content_types {
        [] => return Err(BodyEncodingError::MissingContentType),
        [one] => *one,
        _ => return Err(BodyEncodingError::RepeatedContentType),
    };
    let mut parts = value.split(|b| *b == b';');
    let essence = trim_ows(parts.next().unwrap_or_default());
    if !essence.eq_ignore_ascii_case(b"application/json") {
        return Err(BodyEncodingError::NotJson(shown(essence)));
    }
    let mut charset_seen = false;
    for part in parts.map(trim_ows).filter(|p| !p.is_empty()) {
        let (name, value) = match part.iter().position(|b| *b == b'=') {
            Some(at) => (part.get(..at).unwrap_or_default(), part.get(at + 1..).unwrap_or_default()),
            None => return Err(BodyEncodingError::Malformed),
        };
        if !name.eq_ignore_ascii_case(b"charset") {
            return Err(BodyEncodingError::Parameter(shown(name)));
        }
        let bare = value
            .strip_prefix(b"\"")
            .and_then(|v| v.strip_suffix(b"\""))
            .unwrap_or(value);
        if charset_seen || !bare.eq_ignore_ascii_case(b"utf-8") {
            return Err(BodyEncodingError::Charset(shown(value)));
        }
        charset_seen = true;
    }
    Ok(())
}

fn trim_ows(bytes: &[u8]) -> &[u8] {
    let is_ows = |b: &u8| *b == b' ' || *b == b'\t';
    let start = bytes.iter().position(|b| !is_ows(b)).unwrap_or(bytes.len());
    let end = bytes.iter().rposition(|b| !is_ows(b)).map_or(start, |e| e + 1);
    bytes.get(start..end).unwrap_or_default()
}

fn shown(bytes: &[u8]) -> String {
    crate::identity::verify::quote(&String::from_utf8_lossy(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(content_type: &str) -> Result<(), BodyEncodingError> {
        check_json(&[content_type.as_bytes()], &[])
    }

    #[test]
    fn accepts_json_as_utf8() {
        for ok in [
            "application/json",
            "Application/JSON",
            "application/json; charset=utf-8",
            "application/json;charset=UTF-8",
            "application/json ; charset=\"utf-8\"",
            "application/json;",
            "  application/json  ",
        ] {
            assert_eq!(check(ok), Ok(()), "{ok}");
        }
        assert_eq!(check_json(&[b"application/json"], &[b"identity"]), Ok(()));
    }

    #[test]
    fn refuses_other_charsets_types_and_codings() {
        assert_eq!(
            check("application/json; charset=utf-7"),
            Err(BodyEncodingError::Charset("utf-7".into()))
        );
        assert_eq!(
            check("application/json; charset=\"utf-16le\""),
            Err(BodyEncodingError::Charset("\"utf-16le\"".into()))
        );
        assert_eq!(
            check("application/json; charset=utf-8; charset=utf-7"),
            Err(BodyEncodingError::Charset("utf-7".into()))
        );
        assert_eq!(
            check("application/json; charset=utf-8; charset=utf-8"),
            Err(BodyEncodingError::Charset("utf-8".into()))
        );
        assert_eq!(
            check("application/json; profile=x"),
            Err(BodyEncodingError::Parameter("profile".into()))
        );
        assert_eq!(
            check("text/plain"),
            Err(BodyEncodingError::NotJson("text/plain".into()))
        );
        assert_eq!(
            check("application/json-seq"),
            Err(BodyEncodingError::NotJson("application/json-seq".into()))
        );
        for refused in [
            "application",
            "application/json; charset",
            "application/json; charset=\"utf-8",
            "application/json; charset=\"utf-8;\"",
            "application/json; charset=\"utf\\-8\"",
            "application/json x",
            "application/json; charset=utf-8 x",
            "/json",
            "application/json\0",
        ] {
            assert!(check(refused).is_err(), "{refused}");
        }
        assert_eq!(
            check_json(&[], &[]),
            Err(BodyEncodingError::MissingContentType)
        );
        assert_eq!(
            check_json(&[b"application/json", b"application/json"], &[]),
            Err(BodyEncodingError::RepeatedContentType)
        );
        for coding in ["gzip", "identity, gzip", "br"] {
            assert!(
                matches!(
                    check_json(&[b"application/json"], &[coding.as_bytes()]),
                    Err(BodyEncodingError::ContentEncoding(_))
                ),
                "{coding}"
            );
        }
    }
}

//! The `content-type` and `content-encoding` of a body Bridle decides on: accepted only when
//! the bytes Bridle reads are the text the upstream reads. An upstream that honours `charset`
//! (UTF-7, UTF-16) or decodes a content coding would see another message than the policy saw.

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BodyEncodingError {
    #[error("request body needs one `content-type: application/json` (at most `charset=utf-8`); got {0}")]
    ContentType(String),
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
    match content_types {
        [value] if is_utf8_json(value) => Ok(()),
        [value] => Err(BodyEncodingError::ContentType(format!(
            "`{}`",
            shown(value)
        ))),
        values => Err(BodyEncodingError::ContentType(format!(
            "{} values",
            values.len()
        ))),
    }
}

fn is_utf8_json(value: &[u8]) -> bool {
    let lower = value.to_ascii_lowercase();
    let mut parts = lower.split(|b| *b == b';').map(trim_ows);
    if parts.next() != Some(b"application/json".as_slice()) {
        return false;
    }
    let mut charsets = 0;
    for part in parts {
        match part {
            b"" => {}
            b"charset=utf-8" | b"charset=\"utf-8\"" => charsets += 1,
            _ => return false,
        }
    }
    charsets <= 1
}

fn trim_ows(bytes: &[u8]) -> &[u8] {
    let is_ows = |b: &u8| *b == b' ' || *b == b'\t';
    let start = bytes.iter().position(|b| !is_ows(b)).unwrap_or(bytes.len());
    let end = bytes
        .iter()
        .rposition(|b| !is_ows(b))
        .map_or(start, |e| e + 1);
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
        for refused in [
            "application/json; charset=utf-7",
            "application/json; charset=\"utf-16le\"",
            "application/json; charset=utf-8; charset=utf-7",
            "application/json; charset=utf-8; charset=utf-8",
            "application/json; profile=x",
            "text/plain",
            "application/json-seq",
            "application",
            "application/json; charset",
            "application/json; charset=\"utf-8",
            "application/json; charset=\"utf-8;\"",
            "application/json; charset=\"utf\\-8\"",
            "application/json; charset =utf-8",
            "application/json x",
            "application/json; charset=utf-8 x",
            "/json",
            "application/json\0",
        ] {
            assert_eq!(
                check(refused),
                Err(BodyEncodingError::ContentType(format!(
                    "`{}`",
                    refused.replace('\0', "")
                ))),
                "{refused}"
            );
        }
        assert_eq!(
            check_json(&[], &[]),
            Err(BodyEncodingError::ContentType("0 values".into()))
        );
        assert_eq!(
            check_json(&[b"application/json", b"application/json"], &[]),
            Err(BodyEncodingError::ContentType("2 values".into()))
        );
        for coding in ["gzip", "identity, gzip", "br"] {
            assert_eq!(
                check_json(&[b"application/json"], &[coding.as_bytes()]),
                Err(BodyEncodingError::ContentEncoding(coding.into())),
                "{coding}"
            );
        }
    }
}

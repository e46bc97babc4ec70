//! Reading credentials out of a request: the one value of a credential header, and the token
//! after its scheme word.

use crate::identity::TokenError;
use crate::request::RequestView;

/// The workload token in `header`, after `scheme` (empty: the whole value is the token).
pub fn token<'r>(
    request: &'r RequestView,
    header: &str,
    scheme: &str,
    max_token_bytes: usize,
) -> Result<&'r str, TokenError> {
    let value =
        single_header(request, header)?.ok_or_else(|| TokenError::Missing(header.to_owned()))?;
    if value.len() > max_token_bytes + scheme.len() + 16 {
        return Err(TokenError::TooLarge(max_token_bytes));
    }
    let value = value.trim();
    let wrong_scheme = || TokenError::WrongScheme(header.to_owned(), scheme.to_owned());
    let token = if scheme.is_empty() {
        value
    } else {
        let (given, rest) = value.split_once(' ').ok_or_else(wrong_scheme)?;
        if !given.eq_ignore_ascii_case(scheme) {
            return Err(wrong_scheme());
        }
        rest.trim_start()
    };
    if token.is_empty() {
        return Err(TokenError::Missing(header.to_owned()));
    }
    Ok(token)
}

/// The one value of a header that must not repeat, as ASCII text.
pub fn single_header<'r>(
    request: &'r RequestView,
    name: &str,
) -> Result<Option<&'r str>, TokenError> {
    let mut values = request.headers.iter().filter(|(n, _)| n == name);
    let Some((_, value)) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(TokenError::Malformed(
            "a credential header appears more than once",
        ));
    }
    if !value.is_ascii() {
        return Err(TokenError::Malformed("credential is not ASCII"));
    }
    std::str::from_utf8(value)
        .map(Some)
        .map_err(|_| TokenError::Malformed("credential is not ASCII"))
}

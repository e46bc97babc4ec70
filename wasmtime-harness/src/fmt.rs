//! Readable `Debug` output for byte strings (header values, bodies) in test failures.

use std::fmt;

/// Shows bytes as a string when they are UTF-8, as an escaped byte string otherwise.
pub(crate) struct Lossy<'a>(pub(crate) &'a [u8]);

impl fmt::Debug for Lossy<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match std::str::from_utf8(self.0) {
            Ok(text) => fmt::Debug::fmt(text, f),
            Err(_) => write!(f, "b\"{}\"", self.0.escape_ascii()),
        }
    }
}

/// `(name, value)` pairs with readable values.
pub(crate) struct Pairs<'a, N>(pub(crate) &'a [(N, Vec<u8>)]);

impl<N: AsRef<[u8]>> fmt::Debug for Pairs<'_, N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.0.iter().map(|(n, v)| (Lossy(n.as_ref()), Lossy(v))))
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_print_readably() {
        assert_eq!(format!("{:?}", Lossy(b"a\"b")), r#""a\"b""#);
        assert_eq!(format!("{:?}", Lossy(&[0xff, b'a'])), r#"b"\xffa""#);
        let pairs = vec![("x".to_owned(), b"1".to_vec())];
        assert_eq!(format!("{:?}", Pairs(&pairs)), r#"[("x", "1")]"#);
    }
}

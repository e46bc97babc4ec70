//! Header maps and the proxy-wasm "pairs" wire format.
//!
//! Pairs format (little-endian): `u32` count, then `count` × (`u32` name length, `u32` value
//! length), then each name and value followed by a NUL byte. Lengths exclude the NUL.

use std::ops::Deref;

/// An ordered header map with lower-case names, like Envoy's: duplicates are kept in order,
/// pseudo-headers (`:method`, `:path`, `:authority`, `:scheme`, `:status`) live in the map.
///
/// Values are bytes (HTTP allows non-UTF-8 values). It dereferences to a slice of
/// `(name, value)` pairs.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Headers {
    entries: Vec<(String, Vec<u8>)>,
}

impl Headers {
    /// An empty map.
    pub const fn new() -> Self {
        Self {
            entries: Vec::new(),
        }
    }

    /// Builds a map from pairs; names are lower-cased.
    pub fn from_pairs<N, V>(pairs: impl IntoIterator<Item = (N, V)>) -> Self
    where
        N: AsRef<[u8]>,
        V: AsRef<[u8]>,
    {
        let mut headers = Self::new();
        for (name, value) in pairs {
            headers.add(name.as_ref(), value.as_ref());
        }
        headers
    }

    /// The first value of `name` (case-insensitive).
    pub fn get(&self, name: &str) -> Option<&[u8]> {
        self.first(name.as_bytes())
    }

    /// The first value of `name` as text (lossy UTF-8), case-insensitive.
    pub fn header(&self, name: &str) -> Option<String> {
        self.get(name)
            .map(|value| String::from_utf8_lossy(value).into_owned())
    }

    /// Every value of `name`, in order.
    pub fn get_all(&self, name: &str) -> Vec<&[u8]> {
        self.entries
            .iter()
            .filter(|(n, _)| n.as_bytes().eq_ignore_ascii_case(name.as_bytes()))
            .map(|(_, v)| v.as_slice())
            .collect()
    }

    /// Whether `name` is present.
    pub fn contains(&self, name: &str) -> bool {
        self.get(name).is_some()
    }

    /// The pairs, consuming the map.
    pub fn into_vec(self) -> Vec<(String, Vec<u8>)> {
        self.entries
    }

    pub(crate) fn first(&self, name: &[u8]) -> Option<&[u8]> {
        self.entries
            .iter()
            .find(|(n, _)| n.as_bytes().eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_slice())
    }

    /// Appends a value (Envoy `addCopy`).
    pub(crate) fn add(&mut self, name: &[u8], value: &[u8]) {
        self.entries.push((lower_name(name), value.to_vec()));
    }

    /// Sets the only value of `name` (Envoy `setCopy`): the first occurrence keeps its place,
    /// later ones are dropped; a missing header is appended.
    pub(crate) fn replace(&mut self, name: &[u8], value: &[u8]) {
        let mut seen = false;
        self.entries.retain_mut(|(n, v)| {
            if !n.as_bytes().eq_ignore_ascii_case(name) {
                return true;
            }
            if seen {
                return false;
            }
            seen = true;
            v.clear();
            v.extend_from_slice(value);
            true
        });
        if !seen {
            self.add(name, value);
        }
    }

    /// Removes every value of `name`.
    pub(crate) fn remove(&mut self, name: &[u8]) {
        self.entries
            .retain(|(n, _)| !n.as_bytes().eq_ignore_ascii_case(name));
    }

    /// Replaces the whole map (`proxy_set_header_map_pairs`).
    pub(crate) fn set_all(&mut self, pairs: Vec<(Vec<u8>, Vec<u8>)>) {
        self.entries.clear();
        for (name, value) in pairs {
            self.entries.push((lower_name(&name), value));
        }
    }

    /// Appends the pairs encoding of this map to `out`.
    pub(crate) fn serialize_into(&self, out: &mut Vec<u8>) {
        serialize_pairs(
            self.entries
                .iter()
                .map(|(n, v)| (n.as_bytes(), v.as_slice())),
            out,
        );
    }

    /// Sum of name and value lengths (Envoy's `HeaderMap::byteSize`).
    pub(crate) fn byte_size(&self) -> usize {
        self.entries.iter().map(|(n, v)| n.len() + v.len()).sum()
    }
}

impl std::fmt::Debug for Headers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        crate::fmt::Pairs(&self.entries).fmt(f)
    }
}

impl Deref for Headers {
    type Target = [(String, Vec<u8>)];

    fn deref(&self) -> &Self::Target {
        &self.entries
    }
}

impl IntoIterator for Headers {
    type Item = (String, Vec<u8>);
    type IntoIter = std::vec::IntoIter<(String, Vec<u8>)>;

    fn into_iter(self) -> Self::IntoIter {
        self.entries.into_iter()
    }
}

impl<'a> IntoIterator for &'a Headers {
    type Item = &'a (String, Vec<u8>);
    type IntoIter = std::slice::Iter<'a, (String, Vec<u8>)>;

    fn into_iter(self) -> Self::IntoIter {
        self.entries.iter()
    }
}

impl From<Headers> for Vec<(String, Vec<u8>)> {
    fn from(headers: Headers) -> Self {
        headers.entries
    }
}

/// Envoy lower-cases header names (ASCII only). Names are tokens; a non-UTF-8 name, which no
/// HTTP codec would accept, is kept lossily.
fn lower_name(name: &[u8]) -> String {
    String::from_utf8(name.to_ascii_lowercase())
        .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

/// Appends the pairs encoding of `pairs` to `out`.
pub(crate) fn serialize_pairs<'a, I>(pairs: I, out: &mut Vec<u8>)
where
    I: Iterator<Item = (&'a [u8], &'a [u8])> + Clone,
{
    let (count, data) = pairs.clone().fold((0usize, 0usize), |(c, d), (n, v)| {
        (c + 1, d + n.len() + v.len() + 2)
    });
    out.reserve(4 + count * 8 + data);
    out.extend_from_slice(&len_u32(count).to_le_bytes());
    for (name, value) in pairs.clone() {
        out.extend_from_slice(&len_u32(name.len()).to_le_bytes());
        out.extend_from_slice(&len_u32(value.len()).to_le_bytes());
    }
    for (name, value) in pairs {
        out.extend_from_slice(name);
        out.push(0);
        out.extend_from_slice(value);
        out.push(0);
    }
}

fn len_u32(len: usize) -> u32 {
    u32::try_from(len).unwrap_or(u32::MAX)
}

/// Decodes the pairs encoding; `None` if the bytes are malformed or truncated. An empty
/// input is an empty map (the SDK sends that for "no headers").
pub(crate) fn parse_pairs(bytes: &[u8]) -> Option<Vec<(Vec<u8>, Vec<u8>)>> {
    if bytes.is_empty() {
        return Some(Vec::new());
    }
    let count = usize::try_from(read_u32(bytes, 0)?).ok()?;
    let sizes_end = count.checked_mul(8)?.checked_add(4)?;
    if sizes_end > bytes.len() {
        return None;
    }
    let mut pairs = Vec::with_capacity(count);
    let mut data = sizes_end;
    for i in 0..count {
        let at = 4 + i * 8;
        let name_len = usize::try_from(read_u32(bytes, at)?).ok()?;
        let value_len = usize::try_from(read_u32(bytes, at + 4)?).ok()?;
        let name = bytes.get(data..data.checked_add(name_len)?)?;
        data = data + name_len + 1;
        let value = bytes.get(data..data.checked_add(value_len)?)?;
        data = data + value_len + 1;
        if data > bytes.len() {
            return None;
        }
        pairs.push((name.to_vec(), value.to_vec()));
    }
    Some(pairs)
}

fn read_u32(bytes: &[u8], at: usize) -> Option<u32> {
    let b: [u8; 4] = bytes.get(at..at.checked_add(4)?)?.try_into().ok()?;
    Some(u32::from_le_bytes(b))
}

/// Splits a property path as the SDK sends it: segments separated by NUL (a trailing NUL, as
/// some SDKs send, is ignored).
pub(crate) fn parse_property_path(bytes: &[u8]) -> Vec<String> {
    let bytes = bytes.strip_suffix(&[0]).unwrap_or(bytes);
    if bytes.is_empty() {
        return Vec::new();
    }
    bytes
        .split(|b| *b == 0)
        .map(|s| String::from_utf8_lossy(s).into_owned())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(list: &[(&str, &[u8])]) -> Vec<(Vec<u8>, Vec<u8>)> {
        list.iter()
            .map(|(n, v)| (n.as_bytes().to_vec(), v.to_vec()))
            .collect()
    }

    fn encode(list: &[(&str, &[u8])]) -> Vec<u8> {
        let mut out = Vec::new();
        serialize_pairs(list.iter().map(|(n, v)| (n.as_bytes(), *v)), &mut out);
        out
    }

    #[test]
    fn encoding_matches_the_sdk_layout() {
        #[rustfmt::skip]
        let expected: Vec<u8> = vec![
            2, 0, 0, 0,
            5, 0, 0, 0, 3, 0, 0, 0,
            1, 0, 0, 0, 0, 0, 0, 0,
            b':', b'p', b'a', b't', b'h', 0, b'/', b'a', b'b', 0,
            b'x', 0, 0,
        ];
        assert_eq!(encode(&[(":path", b"/ab"), ("x", b"")]), expected);
        assert_eq!(encode(&[]), vec![0, 0, 0, 0]);
    }

    #[test]
    fn pairs_round_trip_including_non_utf8_values() {
        let list: &[(&str, &[u8])] = &[
            (":method", b"GET"),
            ("x-bin", &[0xff, 0x00, 0xfe]),
            ("x-empty", b""),
            ("x-dup", b"1"),
            ("x-dup", b"2"),
        ];
        assert_eq!(parse_pairs(&encode(list)), Some(pairs(list)));
        assert_eq!(parse_pairs(&[]), Some(Vec::new()));
        assert_eq!(parse_pairs(&[0, 0, 0, 0]), Some(Vec::new()));
    }

    #[test]
    fn malformed_pairs_are_refused() {
        let good = encode(&[("name", b"value")]);
        for cut in 1..good.len() {
            assert_eq!(parse_pairs(&good[..cut]), None, "truncated at {cut}");
        }
        // A count that would need more size slots than bytes.
        assert_eq!(parse_pairs(&[0xff, 0xff, 0xff, 0xff]), None);
        // A length that points past the end.
        let mut bad = good.clone();
        bad[4] = 200;
        assert_eq!(parse_pairs(&bad), None);
    }

    #[test]
    fn header_map_follows_envoy_semantics() {
        let mut h = Headers::from_pairs([("X-A", "1"), ("x-b", "2"), ("x-a", "3")]);
        assert_eq!(h.get("x-a"), Some(&b"1"[..]));
        assert_eq!(h.get("X-A"), Some(&b"1"[..]));
        assert_eq!(h.get_all("x-a"), vec![&b"1"[..], &b"3"[..]]);
        assert_eq!(h[0].0, "x-a");

        h.replace(b"X-A", b"9");
        assert_eq!(h.get_all("x-a"), vec![&b"9"[..]]);
        assert_eq!(h.len(), 2);

        h.replace(b"x-new", b"n");
        assert_eq!(h.last().map(|(n, _)| n.as_str()), Some("x-new"));

        h.remove(b"X-B");
        assert!(!h.contains("x-b"));

        h.set_all(pairs(&[("Y", b"1")]));
        assert_eq!(h.into_vec(), vec![("y".to_owned(), b"1".to_vec())]);
    }

    #[test]
    fn serialized_map_round_trips() {
        let h = Headers::from_pairs([(":status", &b"200"[..]), ("x", &[0xc3, 0x28][..])]);
        let mut out = vec![9];
        h.serialize_into(&mut out);
        let back = parse_pairs(&out[1..]).map(Headers::from_pairs);
        assert_eq!(back, Some(h));
    }

    #[test]
    fn property_paths_split_on_nul() {
        assert_eq!(
            parse_property_path(b"connection\0uri_san_peer_certificate"),
            vec!["connection", "uri_san_peer_certificate"]
        );
        assert_eq!(parse_property_path(b"a\0b\0"), vec!["a", "b"]);
        assert!(parse_property_path(b"").is_empty());
    }
}

//! The gateway-neutral view of an HTTP request, and its parsed path and query.

/// What a host adapter collects from its gateway. Header names are lower-case.
#[derive(Debug, Clone, Default)]
pub struct RequestView {
    pub method: String,
    pub scheme: String,
    pub authority: String,
    /// Path with query, as received (`:path`).
    pub path: String,
    pub headers: Vec<(String, Vec<u8>)>,
    pub body: Option<Vec<u8>>,
    pub connection: ConnectionFacts,
    /// The host attests it verified a workload token in this request (the proof property of
    /// `identity.host_verification` is present). Adapters only set it when configured.
    pub host_verified: bool,
}

/// Facts about the downstream connection, where the host can provide them.
#[derive(Debug, Clone, Default)]
pub struct ConnectionFacts {
    /// The mTLS peer certificate's URI SAN (a SPIFFE ID for SPIFFE workloads).
    pub peer_uri_san: Option<String>,
}

/// A request path split into its decoded segments, and its query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedPath {
    /// The decoded path, segments joined by `/`.
    pub path: String,
    pub segments: Vec<String>,
    pub query: Vec<(String, String)>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    #[error("request path must start with `/`")]
    NotAbsolute,
    #[error("request path has a fragment")]
    Fragment,
    #[error("request path has an invalid percent-encoding")]
    BadEncoding,
    #[error("request path has an encoded `/`, `\\` or NUL")]
    EncodedSeparator,
    #[error("request path has an empty, `.` or `..` segment (normalize paths at the gateway)")]
    DotOrEmptySegment,
    /// Servers that take `;` as a path-parameter delimiter (Tomcat, Jetty, Spring) resolve
    /// `/a/..;/b` to `/b`: the upstream would serve another path than the policy judged.
    #[error("request path has a `;` in a segment (path parameters are not accepted)")]
    PathParameter,
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Percent-decodes `input`; `plus_is_space` for query components.
fn percent_decode(input: &str, plus_is_space: bool) -> Option<Vec<u8>> {
    let bytes = input.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        match b {
            b'%' => {
                let hi = bytes.get(i + 1).copied().and_then(hex)?;
                let lo = bytes.get(i + 2).copied().and_then(hex)?;
                out.push(hi << 4 | lo);
                i += 3;
            }
            b'+' if plus_is_space => {
                out.push(b' ');
                i += 1;
            }
            _ => {
                out.push(b);
                i += 1;
            }
        }
    }
    Some(out)
}

/// Parses `:path`. Paths a policy could misread (dot segments, encoded separators) are refused
/// rather than normalized here, so that policy and upstream always see the same path.
pub fn parse_path(raw: &str) -> Result<ParsedPath, PathError> {
    if raw.contains('#') {
        return Err(PathError::Fragment);
    }
    let (path, query) = match raw.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (raw, None),
    };
    let rest = path.strip_prefix('/').ok_or(PathError::NotAbsolute)?;
    let mut segments = Vec::new();
    if !rest.is_empty() {
        let parts: Vec<&str> = rest.split('/').collect();
        let last = parts.len().saturating_sub(1);
        for (index, part) in parts.into_iter().enumerate() {
            let decoded = percent_decode(part, false).ok_or(PathError::BadEncoding)?;
            if decoded.iter().any(|b| matches!(b, b'/' | b'\\' | 0)) {
                return Err(PathError::EncodedSeparator);
            }
            if decoded.contains(&b';') {
                return Err(PathError::PathParameter);
            }
            let decoded = String::from_utf8(decoded).map_err(|_| PathError::BadEncoding)?;
            // A trailing slash leaves one empty final segment, which is kept.
            if (decoded.is_empty() && index != last) || decoded == "." || decoded == ".." {
                return Err(PathError::DotOrEmptySegment);
            }
            segments.push(decoded);
        }
    }
    let mut decoded_path = String::with_capacity(path.len());
    for segment in &segments {
        decoded_path.push('/');
        decoded_path.push_str(segment);
    }
    if decoded_path.is_empty() {
        decoded_path.push('/');
    }
    if segments.last().is_some_and(String::is_empty) {
        segments.pop();
    }
    let query = query
        .map(|q| {
            q.split('&')
                .filter(|pair| !pair.is_empty())
                .map(|pair| {
                    let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
                    (lossy_decode(k), lossy_decode(v))
                })
                .collect()
        })
        .unwrap_or_default();
    Ok(ParsedPath {
        path: decoded_path,
        segments,
        query,
    })
}

fn lossy_decode(component: &str) -> String {
    match percent_decode(component, true) {
        Some(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
        None => component.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_path_and_query() {
        let parsed = parse_path("/api/reports/q%203?limit=10&tag=a+b&tag=c&flag").unwrap();
        assert_eq!(parsed.path, "/api/reports/q 3");
        assert_eq!(parsed.segments, ["api", "reports", "q 3"]);
        assert_eq!(
            parsed.query,
            [
                ("limit".to_owned(), "10".to_owned()),
                ("tag".to_owned(), "a b".to_owned()),
                ("tag".to_owned(), "c".to_owned()),
                ("flag".to_owned(), String::new()),
            ]
        );
    }

    #[test]
    fn root_and_trailing_slash() {
        assert_eq!(parse_path("/").unwrap().segments, Vec::<String>::new());
        let parsed = parse_path("/a/").unwrap();
        assert_eq!(parsed.path, "/a/");
        assert_eq!(parsed.segments, ["a"]);
    }

    #[test]
    fn refuses_ambiguous_paths() {
        assert_eq!(parse_path("a/b"), Err(PathError::NotAbsolute));
        assert_eq!(parse_path("/a/../admin"), Err(PathError::DotOrEmptySegment));
        assert_eq!(
            parse_path("/a/%2e%2e/admin"),
            Err(PathError::DotOrEmptySegment)
        );
        assert_eq!(parse_path("/a//b"), Err(PathError::DotOrEmptySegment));
        assert_eq!(parse_path("/a/./b"), Err(PathError::DotOrEmptySegment));
        assert_eq!(parse_path("/a%2fb"), Err(PathError::EncodedSeparator));
        assert_eq!(parse_path("/a%5cb"), Err(PathError::EncodedSeparator));
        assert_eq!(parse_path("/a%00b"), Err(PathError::EncodedSeparator));
        assert_eq!(parse_path("/a%zz"), Err(PathError::BadEncoding));
        assert_eq!(parse_path("/a%ff"), Err(PathError::BadEncoding));
        assert_eq!(parse_path("/a#x"), Err(PathError::Fragment));
    }

    #[test]
    fn refuses_path_parameters() {
        for path in [
            "/api/deployments/..;/..;/mcp",
            "/a;jsessionid=1/b",
            "/a/b;",
            "/a/%3b/b",
            "/a/..%3B/b",
        ] {
            assert_eq!(parse_path(path), Err(PathError::PathParameter), "{path}");
        }
        // In the query, `;` is data.
        assert!(parse_path("/a?x=1;2").is_ok());
    }
}

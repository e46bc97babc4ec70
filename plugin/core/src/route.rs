//! Route patterns from the configuration: `/api/reports/{report}` captures a segment,
//! `*` matches one segment, a trailing `/**` matches any remainder (including none).

use std::collections::BTreeMap;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Literal(String),
    Capture(String),
    Any,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathPattern {
    segments: Vec<Segment>,
    rest: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PatternError {
    #[error("must start with `/`")]
    NotAbsolute,
    #[error("`**` may only be the last segment")]
    InnerDoubleStar,
    #[error("segment `{0}` is not a literal, `*`, or a `{{name}}` capture")]
    BadSegment(String),
    #[error("capture `{0}` appears twice")]
    DuplicateCapture(String),
}

impl PathPattern {
    pub fn parse(pattern: &str) -> Result<Self, PatternError> {
        let rest_of = pattern.strip_prefix('/').ok_or(PatternError::NotAbsolute)?;
        let mut parts: Vec<&str> = if rest_of.is_empty() {
            Vec::new()
        } else {
            rest_of.split('/').collect()
        };
        let rest = parts.last() == Some(&"**");
        if rest {
            parts.pop();
        }
        let mut names = Vec::new();
        let mut segments = Vec::with_capacity(parts.len());
        for part in parts {
            let segment = match part {
                "**" => return Err(PatternError::InnerDoubleStar),
                "*" => Segment::Any,
                _ if part.starts_with('{') && part.ends_with('}') && part.len() > 2 => {
                    let name = part.get(1..part.len() - 1).unwrap_or_default();
                    if !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
                        return Err(PatternError::BadSegment(part.to_owned()));
                    }
                    if names.contains(&name) {
                        return Err(PatternError::DuplicateCapture(name.to_owned()));
                    }
                    names.push(name);
                    Segment::Capture(name.to_owned())
                }
                _ if part.is_empty() || part.contains(['{', '}', '*']) => {
                    return Err(PatternError::BadSegment(part.to_owned()))
                }
                _ => Segment::Literal(part.to_owned()),
            };
            segments.push(segment);
        }
        Ok(Self { segments, rest })
    }

    /// Matches decoded path segments; returns the captures.
    pub fn matches(&self, path: &[String]) -> Option<BTreeMap<String, String>> {
        if path.len() < self.segments.len() || (!self.rest && path.len() != self.segments.len()) {
            return None;
        }
        let mut captures = BTreeMap::new();
        for (segment, actual) in self.segments.iter().zip(path) {
            match segment {
                Segment::Literal(expected) if expected != actual => return None,
                Segment::Capture(name) => {
                    captures.insert(name.clone(), actual.clone());
                }
                Segment::Literal(_) | Segment::Any => {}
            }
        }
        Some(captures)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn segs(path: &str) -> Vec<String> {
        path.split('/')
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect()
    }

    #[test]
    fn captures_and_wildcards() {
        let p = PathPattern::parse("/api/reports/{report}").unwrap();
        assert_eq!(
            p.matches(&segs("/api/reports/q3"))
                .unwrap()
                .get("report")
                .map(String::as_str),
            Some("q3")
        );
        assert!(p.matches(&segs("/api/reports")).is_none());
        assert!(p.matches(&segs("/api/reports/q3/raw")).is_none());
        let any = PathPattern::parse("/api/*/items").unwrap();
        assert!(any.matches(&segs("/api/x/items")).is_some());
        let rest = PathPattern::parse("/mcp/**").unwrap();
        assert!(rest.matches(&segs("/mcp")).is_some());
        assert!(rest.matches(&segs("/mcp/a/b")).is_some());
        assert!(rest.matches(&segs("/other")).is_none());
        let all = PathPattern::parse("/**").unwrap();
        assert!(all.matches(&[]).is_some());
        assert!(PathPattern::parse("/").unwrap().matches(&[]).is_some());
    }

    #[test]
    fn refuses_bad_patterns() {
        assert_eq!(PathPattern::parse("api"), Err(PatternError::NotAbsolute));
        assert_eq!(
            PathPattern::parse("/a/**/b"),
            Err(PatternError::InnerDoubleStar)
        );
        assert_eq!(
            PathPattern::parse("/a/{x}/{x}"),
            Err(PatternError::DuplicateCapture("x".into()))
        );
        assert!(matches!(
            PathPattern::parse("/a/b*"),
            Err(PatternError::BadSegment(_))
        ));
        assert!(matches!(
            PathPattern::parse("/a//b"),
            Err(PatternError::BadSegment(_))
        ));
        assert!(matches!(
            PathPattern::parse("/{a-b}"),
            Err(PatternError::BadSegment(_))
        ));
    }
}

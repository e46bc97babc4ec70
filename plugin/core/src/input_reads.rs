//! Which parts of the input document a policy can read, so a request builds only those.
//!
//! Found by scanning the policy's source text for every occurrence of `input` (in code,
//! strings and comments alike) and reading the reference that follows it. Anything but a plain
//! `input.name` or `input["name"]` chain (the bare `input` passed to a function, `input[x]`,
//! `object.get(input, …)`, whitespace inside the reference, an unknown field) counts as reading
//! everything below that point. Scanning all text, not parsed references, keeps the result a
//! superset of what evaluation can reach: a missed part would be undefined for the policy, and
//! `not input.request.headers[...]` would then hold when it should not.
//!
//! This holds for regorus 0.14.1, pinned in the workspace: its RVM loads the input only for the
//! identifier `input` (one contiguous ASCII word in the source), rejects `with`, and has no
//! template strings. A regorus upgrade must re-check that. Prose that mentions input (`# the
//! input document`, `"bad input"`) costs only the saving: it reads as the whole document.

/// One part of the input document that is built only when the policy may read it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u16)]
pub enum Part {
    Identity = 1,
    /// `input.request` apart from its headers and query, which have their own parts.
    Request = 1 << 1,
    RequestHeaders = 1 << 2,
    RequestQuery = 1 << 3,
    Connection = 1 << 4,
    Environment = 1 << 5,
    Task = 1 << 6,
    Delegation = 1 << 7,
    Intent = 1 << 8,
}

const WHOLE_REQUEST: u16 =
    Part::Request as u16 | Part::RequestHeaders as u16 | Part::RequestQuery as u16;

/// The set of parts a policy may read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InputReads(u16);

impl InputReads {
    /// Every part: what a policy that passes `input` around, or indexes it dynamically, reads.
    pub const ALL: Self = Self(
        Part::Identity as u16
            | WHOLE_REQUEST
            | Part::Connection as u16
            | Part::Environment as u16
            | Part::Task as u16
            | Part::Delegation as u16
            | Part::Intent as u16,
    );

    pub const NONE: Self = Self(0);

    /// The parts the given Rego sources may read.
    pub fn scan<'a>(sources: impl IntoIterator<Item = &'a str>) -> Self {
        let mut reads = Self::NONE;
        for source in sources {
            for (at, _) in source.match_indices("input") {
                let rest = source.get(at + "input".len()..).unwrap_or_default();
                reads.0 |= reference_reads(rest);
                if reads == Self::ALL {
                    return reads;
                }
            }
        }
        reads
    }

    pub fn reads(self, part: Part) -> bool {
        self.0 & part as u16 != 0
    }

    /// Whether any part of `input.request` is read: then the request object is built.
    pub fn reads_request(self) -> bool {
        self.0 & WHOLE_REQUEST != 0
    }
}

/// The parts one reference may reach, given the text right after its `input`.
fn reference_reads(rest: &str) -> u16 {
    let Some((top, rest)) = field(rest) else {
        return InputReads::ALL.0;
    };
    match top {
        "identity" => Part::Identity as u16,
        "connection" => Part::Connection as u16,
        "environment" => Part::Environment as u16,
        "task" => Part::Task as u16,
        "delegation" => Part::Delegation as u16,
        "intent" => Part::Intent as u16,
        "request" => match field(rest) {
            Some(("headers", _)) => Part::RequestHeaders as u16,
            Some(("query", _)) => Part::RequestQuery as u16,
            Some(("method" | "scheme" | "host" | "path" | "raw_path" | "segments", _)) => {
                Part::Request as u16
            }
            _ => WHOLE_REQUEST,
        },
        _ => InputReads::ALL.0,
    }
}

/// A `.name` or `["name"]` step at the start of `text`, and the text after it.
fn field(text: &str) -> Option<(&str, &str)> {
    if let Some(rest) = text.strip_prefix('.') {
        let end = rest
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(rest.len());
        let (name, rest) = rest.split_at(end);
        return (!name.is_empty()).then_some((name, rest));
    }
    let rest = text.strip_prefix("[\"")?;
    let end = rest.find(['"', '\\'])?;
    let (name, rest) = rest.split_at(end);
    Some((name, rest.strip_prefix("\"]")?))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scan(source: &str) -> InputReads {
        InputReads::scan([source])
    }

    fn parts(parts: &[Part]) -> InputReads {
        InputReads(parts.iter().fold(0, |bits, part| bits | *part as u16))
    }

    #[test]
    fn plain_references_read_their_parts_only() {
        let source = r#"
            package p
            allow if {
                input.identity.spiffe.id == "x"
                input.request.method == "GET"
                input["request"]["segments"][0] == "api"
            }"#;
        assert_eq!(scan(source), parts(&[Part::Identity, Part::Request]));
        assert!(!scan(source).reads(Part::RequestHeaders));
        assert!(scan(source).reads_request());
        assert!(scan("input.request.query.a").reads_request());
        assert!(!scan("input.identity.sub").reads_request());
    }

    #[test]
    fn headers_and_query_are_their_own_parts() {
        assert_eq!(
            scan(r#"x := input.request.headers["x-a"]"#),
            parts(&[Part::RequestHeaders])
        );
        assert_eq!(
            scan(r#"x := input.request["query"].a"#),
            parts(&[Part::RequestQuery])
        );
    }

    #[test]
    fn anything_but_a_plain_chain_reads_everything_below_it() {
        for source in [
            "x := object.get(input, \"intent\", {})",
            "x := input",
            "x := input[k]",
            "x := input[\"a\\\"b\"]",
            "x := input .request",
            "import input",
            "x := json.marshal(input)",
            "x := input.unknown_field",
            "x := input.",
            "x := $\"{input}\"",
            "input",
        ] {
            assert_eq!(scan(source), InputReads::ALL, "{source}");
        }
        for source in [
            "r := input.request; r.headers",
            "x := input.request[k]",
            "import input.request as r",
            "x := input.request.other",
            "x := input.request",
        ] {
            assert_eq!(scan(source), InputReads(WHOLE_REQUEST), "{source}");
        }
    }

    #[test]
    fn strings_and_comments_count_too() {
        // Reads more than needed, never less: a template string or a comment may mention input.
        assert_eq!(
            scan("# input.intent is optional\nx := 1"),
            parts(&[Part::Intent])
        );
        assert_eq!(scan(r#"msg := "no input given""#), InputReads::ALL);
        assert_eq!(
            scan("my_input.task.x == 1"),
            parts(&[Part::Task]),
            "an identifier that ends in `input` counts as a reference"
        );
    }

    #[test]
    fn all_sources_are_scanned() {
        let reads = InputReads::scan(["a := input.task", "b := input.delegation.depth"]);
        assert_eq!(reads, parts(&[Part::Task, Part::Delegation]));
        assert_eq!(InputReads::scan(["package p"]), InputReads::NONE);
    }
}

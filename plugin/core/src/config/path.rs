//! The path of the configuration field (`policy.modules[0].name`) at which serde_json stopped,
//! recovered from the error's line and column by re-reading the document up to there. Tracking
//! the path during deserialization instead (serde_path_to_error) wraps every `Deserialize`
//! impl and costs ~80 KB of wasm; this runs only when a configuration is refused.

use serde_json::error::Category;

/// Path of the key or value serde_json was reading when it failed with `err`, in the syntax of
/// serde_path_to_error: keys joined by `.`, array indices as `[i]`, `.` for the document.
pub(super) fn of_error(bytes: &[u8], err: &serde_json::Error) -> String {
    let Some(line_start) = line_start(bytes, err.line()) else {
        return ".".to_owned();
    };
    let mut end = line_start.saturating_add(err.column());
    // Data errors (wrong type, unknown field, missing field...) point just past the key or
    // value they concern, or past the object missing a field; end-of-file errors at the end.
    // Syntax errors point at the offending byte, which must not be read: it may close the
    // object being reported.
    match err.classify() {
        Category::Syntax => end = end.saturating_sub(1),
        // A value of the wrong type that is an object or array is refused before its first
        // byte: read that byte too, so that an array element counts as begun.
        Category::Data => {
            let rest = bytes.get(end..).unwrap_or_default();
            if let Some(skip) = rest.iter().position(|b| !b" \t\n\r".contains(b)) {
                if matches!(rest.get(skip), Some(b'{' | b'[')) {
                    end += skip + 1;
                }
            }
        }
        Category::Io | Category::Eof => {}
    }
    at(bytes.get(..end).unwrap_or(bytes))
}

/// Byte offset of the first byte of `line` (1-based); `None` for line 0 (no position).
fn line_start(bytes: &[u8], line: usize) -> Option<usize> {
    match line {
        0 => None,
        1 => Some(0),
        _ => bytes
            .iter()
            .enumerate()
            .filter(|(_, b)| **b == b'\n')
            .nth(line - 2)
            .map(|(i, _)| i + 1),
    }
}

enum Frame {
    /// `key` is set once a key has been read in full, cleared by the `,` after its value.
    Object { key: Option<String>, in_value: bool },
    /// `started` is set once the element at `index` begins.
    Array { index: usize, started: bool },
}

/// Path of the innermost key or value that `text` (a prefix of a JSON document) ends in or
/// just after; an object or array that `text` closes no longer counts.
fn at(text: &[u8]) -> String {
    let mut stack: Vec<Frame> = Vec::new();
    let mut i = 0;
    while let Some(&byte) = text.get(i) {
        match byte {
            b'{' => {
                value_starts(&mut stack);
                stack.push(Frame::Object {
                    key: None,
                    in_value: false,
                });
            }
            b'[' => {
                value_starts(&mut stack);
                stack.push(Frame::Array {
                    index: 0,
                    started: false,
                });
            }
            b'}' | b']' => {
                stack.pop();
            }
            b':' => {
                if let Some(Frame::Object { in_value, .. }) = stack.last_mut() {
                    *in_value = true;
                }
            }
            b',' => match stack.last_mut() {
                Some(Frame::Object { key, in_value }) => {
                    *key = None;
                    *in_value = false;
                }
                Some(Frame::Array { index, started }) => {
                    *index += 1;
                    *started = false;
                }
                None => {}
            },
            b'"' => {
                let close = string_end(text, i + 1);
                match stack.last_mut() {
                    Some(Frame::Object {
                        key,
                        in_value: false,
                    }) => {
                        // A key cut short is not yet the key of anything.
                        if let Some(close) = close {
                            *key = Some(decode(text.get(i..=close).unwrap_or_default()));
                        }
                    }
                    _ => value_starts(&mut stack),
                }
                match close {
                    Some(close) => i = close,
                    None => break,
                }
            }
            b' ' | b'\t' | b'\n' | b'\r' => {}
            // Numbers, `true`, `false`, `null`.
            _ => value_starts(&mut stack),
        }
        i += 1;
    }
    render(&stack)
}

fn value_starts(stack: &mut [Frame]) {
    if let Some(Frame::Array { started, .. }) = stack.last_mut() {
        *started = true;
    }
}

/// Index of the quote closing the string whose contents start at `from`.
fn string_end(text: &[u8], mut from: usize) -> Option<usize> {
    loop {
        match text.get(from)? {
            b'"' => return Some(from),
            b'\\' => from += 2,
            _ => from += 1,
        }
    }
}

/// A key as written (`"a\u0062"`, quotes included) to the key it names (`ab`).
fn decode(quoted: &[u8]) -> String {
    serde_json::from_slice(quoted).unwrap_or_else(|_| {
        let inner = quoted.get(1..quoted.len().saturating_sub(1));
        String::from_utf8_lossy(inner.unwrap_or_default()).into_owned()
    })
}

fn render(stack: &[Frame]) -> String {
    let mut path = String::new();
    for frame in stack {
        match frame {
            Frame::Object { key: Some(key), .. } => {
                if !path.is_empty() {
                    path.push('.');
                }
                path.push_str(key);
            }
            Frame::Array {
                index,
                started: true,
            } => {
                path.push('[');
                path.push_str(&index.to_string());
                path.push(']');
            }
            _ => {}
        }
    }
    if path.is_empty() {
        path.push('.');
    }
    path
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The path at the first `|` of `marked`, the document being read without it.
    fn path_at_mark(marked: &str) -> String {
        let end = marked.find('|').unwrap();
        at(&marked.as_bytes()[..end])
    }

    #[test]
    fn paths_at_offsets() {
        let cases = [
            ("|{\"a\": 1}", "."),
            ("{|\"a\": 1}", "."),
            ("{\"a|\": 1}", "."),
            ("{\"a\"|: 1}", "a"),
            ("{\"a\": |1}", "a"),
            ("{\"a\": 1|}", "a"),
            ("{\"a\": 1}|", "."),
            ("{\"a\": 1, |\"b\": 2}", "."),
            ("{\"a\": 1, \"b\": \"x|\"}", "b"),
            ("{\"a\": {\"b\": {}|}}", "a.b"),
            ("{\"a\": {\"b\": {}}|}", "a"),
            ("{\"a\": [|]}", "a"),
            ("{\"a\": [1, [2, 3], {\"b\": [4, 5|]}]}", "a[2].b[1]"),
            ("{\"a\": [1, [2, 3], {\"b\": [4, |5]}]}", "a[2].b"),
            ("{\"a\": [1, [2, 3], {\"b\": [4, 5]}|]}", "a[2]"),
            ("{\"a\": [1, [2, 3|], {}]}", "a[1][1]"),
            ("{\"a\": [1, [2, 3]|, {}]}", "a[1]"),
            ("{\"a\": [1, [2, 3],| {}]}", "a"),
            ("[{\"a\": 1}, {|}]", "[1]"),
            ("{\"a\": true, \"b\": nu|ll}", "b"),
        ];
        for (marked, path) in cases {
            assert_eq!(path_at_mark(marked), path, "{marked}");
        }
    }

    #[test]
    fn strings_hide_brackets_quotes_and_escapes() {
        let cases = [
            (r#"{"a": "}]{[,:\"\\", "b": |1}"#, "b"),
            (r#"{"a": ["\"]", "x\\"], "b": {"c\"d": |1}}"#, "b.c\"d"),
            (r#"{"a\u0062\n": |1}"#, "ab\n"),
            (r#"{"a": {"é \\ ü": [0, 1|]}}"#, "a.é \\ ü[1]"),
            (r#"{"a": "unterminated \"|"#, "a"),
        ];
        for (marked, path) in cases {
            assert_eq!(path_at_mark(marked), path, "{marked}");
        }
    }

    #[test]
    fn lines_and_columns_become_offsets() {
        let text = b"{\n  \"a\": 1,\r\n  \"b\": [true]\n}";
        assert_eq!(line_start(text, 0), None);
        assert_eq!(line_start(text, 1), Some(0));
        assert_eq!(line_start(text, 2), Some(2));
        assert_eq!(line_start(text, 3), Some(13));
        assert_eq!(line_start(text, 4), Some(27));
        assert_eq!(line_start(text, 5), None);
    }

    #[test]
    fn errors_name_the_field_serde_json_stopped_at() {
        #[derive(Debug, serde::Deserialize)]
        #[serde(deny_unknown_fields)]
        #[allow(dead_code)]
        struct Doc {
            a: Vec<Inner>,
            #[serde(default)]
            b: bool,
            #[serde(default)]
            c: Vec<u8>,
        }
        #[derive(Debug, serde::Deserialize)]
        #[serde(deny_unknown_fields)]
        #[allow(dead_code)]
        struct Inner {
            n: u8,
        }
        let cases = [
            ("{\"a\": [{\"n\": 1}, {\"n\": 300}]}", "a[1].n"),
            ("{\"a\": [{\"n\": 1}, {\"m\": 3}]}", "a[1].m"),
            ("{\"a\": [{\"n\": 1},\n  {}\n]}", "a[1]"),
            ("{}", "."),
            ("{\"a\": [], \"b\": \"yes\"}", "b"),
            ("{\"a\": {\"n\": 1}}", "a"),
            ("{\"a\": [{\"n\": 1}, []]}", "a[1]"),
            ("{\"a\": [{\"n\": 1}, {\"n\":\n {}}]}", "a[1].n"),
            ("{\"a\": [], \"c\": [1, {}]}", "c[1]"),
            ("{\"a\": [], \"c\": [1,\n\t[]]}", "c[1]"),
            ("{\"a\": [{\"n\": 1}}", "a[0]"),
            ("{\"a\": [], \"a\": []}", "a"),
            ("{\"a\": [{\"n\": 1}]} x", "."),
            ("{\"a\": [{\"n\": 1,}]}", "a[0]"),
            ("{\"a\": [{\"n\" 1}]}", "a[0].n"),
            ("{\"a\": [{\"n\": 1}], \"b\": tru}", "b"),
            ("{\"a\": [{\"n\": 1}", "a[0]"),
            ("", "."),
        ];
        for (text, path) in cases {
            let err = serde_json::from_str::<Doc>(text).unwrap_err();
            assert_eq!(of_error(text.as_bytes(), &err), path, "{text}: {err}");
        }
    }
}

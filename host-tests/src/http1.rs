//! Just enough HTTP/1.1 for a test client and a test upstream over `std::net`: a head, then a
//! body framed by `content-length`, `transfer-encoding: chunked`, or the end of the stream.
//! Written here rather than taken from a client library so tests can send anything, including
//! requests a library would refuse to build.

use std::io::{BufRead, Read};

use crate::Error;

/// Bounds so a confused peer cannot make a test allocate without limit.
const MAX_HEAD_BYTES: usize = 256 * 1024;
const MAX_BODY_BYTES: usize = 64 * 1024 * 1024;

pub(crate) struct Head {
    /// The request line or status line.
    pub start: String,
    /// Names as received; lookups are case-insensitive.
    pub headers: Vec<(String, String)>,
}

pub(crate) fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

fn http_error(what: impl Into<String>) -> Error {
    Error::Http(what.into())
}

fn io(err: std::io::Error) -> Error {
    Error::Io {
        context: "http".into(),
        source: err,
    }
}

/// Reads one line without its CRLF; `None` at a clean end of stream.
fn read_line(reader: &mut impl BufRead) -> Result<Option<String>, Error> {
    let mut line = Vec::new();
    let n = reader
        .take(MAX_HEAD_BYTES as u64)
        .read_until(b'\n', &mut line)
        .map_err(io)?;
    if n == 0 {
        return Ok(None);
    }
    while line.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
        line.pop();
    }
    String::from_utf8(line)
        .map(Some)
        .map_err(|_| http_error("head is not UTF-8"))
}

/// Reads a message head; `None` when the peer closed the connection before sending one.
pub(crate) fn read_head(reader: &mut impl BufRead) -> Result<Option<Head>, Error> {
    let Some(start) = read_line(reader)? else {
        return Ok(None);
    };
    let mut headers = Vec::new();
    let mut size = start.len();
    loop {
        let line = read_line(reader)?.ok_or_else(|| http_error("stream ended inside a head"))?;
        if line.is_empty() {
            break;
        }
        size += line.len();
        if size > MAX_HEAD_BYTES {
            return Err(http_error("head too large"));
        }
        let (name, value) = line
            .split_once(':')
            .ok_or_else(|| http_error(format!("bad header line `{line}`")))?;
        headers.push((name.trim().to_owned(), value.trim().to_owned()));
    }
    Ok(Some(Head { start, headers }))
}

/// How the body after a head is framed.
pub(crate) enum Framing {
    Length(usize),
    Chunked,
    /// Until the peer closes (responses only).
    UntilClose,
    None,
}

pub(crate) fn framing(
    headers: &[(String, String)],
    until_close_allowed: bool,
) -> Result<Framing, Error> {
    if header(headers, "transfer-encoding")
        .is_some_and(|v| v.to_ascii_lowercase().contains("chunked"))
    {
        return Ok(Framing::Chunked);
    }
    if let Some(length) = header(headers, "content-length") {
        let length: usize = length
            .parse()
            .map_err(|_| http_error(format!("bad content-length `{length}`")))?;
        return Ok(Framing::Length(length));
    }
    Ok(if until_close_allowed {
        Framing::UntilClose
    } else {
        Framing::None
    })
}

pub(crate) fn read_body(reader: &mut impl BufRead, framing: Framing) -> Result<Vec<u8>, Error> {
    let mut body = Vec::new();
    match framing {
        Framing::None => {}
        Framing::Length(length) => {
            if length > MAX_BODY_BYTES {
                return Err(http_error("body too large"));
            }
            body.resize(length, 0);
            reader.read_exact(&mut body).map_err(io)?;
        }
        Framing::UntilClose => {
            reader
                .take(MAX_BODY_BYTES as u64)
                .read_to_end(&mut body)
                .map_err(io)?;
        }
        Framing::Chunked => loop {
            let line = read_line(reader)?.ok_or_else(|| http_error("stream ended in a chunk"))?;
            let size = line.split(';').next().unwrap_or_default().trim();
            let size = usize::from_str_radix(size, 16)
                .map_err(|_| http_error(format!("bad chunk size `{line}`")))?;
            if size == 0 {
                // Trailers, then the empty line.
                while read_line(reader)?.is_some_and(|l| !l.is_empty()) {}
                break;
            }
            if body.len() + size > MAX_BODY_BYTES {
                return Err(http_error("body too large"));
            }
            let start = body.len();
            body.resize(start + size, 0);
            let chunk = body
                .get_mut(start..)
                .ok_or_else(|| http_error("chunk bounds"))?;
            reader.read_exact(chunk).map_err(io)?;
            read_line(reader)?;
        },
    }
    Ok(body)
}

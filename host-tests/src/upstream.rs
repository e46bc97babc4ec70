//! A recording upstream: an HTTP/1.1 server on 127.0.0.1 that remembers every request it
//! receives, so tests can assert what reached it (and, above all, what never did).
//!
//! By default it answers 200 with a JSON echo `{"method", "path", "headers"}`; a test can set
//! another reply, for a path also one sent chunked with trailers.

use std::collections::BTreeMap;
use std::io::{BufReader, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Duration;

use serde_json::{json, Value};

use crate::http1;
use crate::{Error, IoContext};

/// One request as the upstream received it.
#[derive(Debug, Clone)]
pub struct ReceivedRequest {
    pub method: String,
    /// The request target, query included.
    pub path: String,
    /// Names as received (Envoy sends them lower-case).
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl ReceivedRequest {
    /// The first value of a header (case-insensitive name).
    pub fn header(&self, name: &str) -> Option<&str> {
        http1::header(&self.headers, name)
    }

    /// Whether `needle` occurs anywhere in the request: target, header names and values, body.
    pub fn contains(&self, needle: &str) -> bool {
        self.path.contains(needle)
            || self
                .headers
                .iter()
                .any(|(n, v)| n.contains(needle) || v.contains(needle))
            || String::from_utf8_lossy(&self.body).contains(needle)
    }
}

/// A fixed reply for every request (instead of the echo).
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

/// How a reply's body goes on the wire.
#[derive(Debug, Clone)]
enum ReplyFraming {
    /// `content-length`.
    Length,
    /// `transfer-encoding: chunked` in `pieces` chunks, each written after a short pause (so
    /// the proxy sees several body callbacks), then these trailers after the last chunk.
    Chunked {
        pieces: usize,
        trailers: Vec<(String, String)>,
    },
}

/// The pause before each chunk of a chunked reply.
const CHUNK_PAUSE: Duration = Duration::from_millis(20);

#[derive(Default)]
struct Shared {
    received: Mutex<Vec<ReceivedRequest>>,
    reply: Mutex<Option<Reply>>,
    /// Replies by exact path (without the query), before `reply` and the echo.
    paths: Mutex<BTreeMap<String, (Reply, ReplyFraming)>>,
    stop: AtomicBool,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panicking connection thread must not hide what was recorded.
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The server; stops when dropped.
pub struct Upstream {
    port: u16,
    shared: Arc<Shared>,
    acceptor: Option<JoinHandle<()>>,
}

impl Upstream {
    /// Starts listening on 127.0.0.1 on a free port.
    pub fn start() -> Result<Self, Error> {
        let listener =
            TcpListener::bind("127.0.0.1:0").context(|| "binding the upstream".into())?;
        let port = listener
            .local_addr()
            .context(|| "upstream address".into())?
            .port();
        let shared = Arc::new(Shared::default());
        let acceptor = {
            let shared = Arc::clone(&shared);
            std::thread::Builder::new()
                .name("upstream-accept".into())
                .spawn(move || accept(listener, shared))
                .context(|| "spawning the upstream".into())?
        };
        Ok(Self {
            port,
            shared,
            acceptor: Some(acceptor),
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Every request received so far, in order.
    pub fn requests(&self) -> Vec<ReceivedRequest> {
        lock(&self.shared.received).clone()
    }

    pub fn count(&self) -> usize {
        lock(&self.shared.received).len()
    }

    /// The most recent request, if any.
    pub fn last(&self) -> Option<ReceivedRequest> {
        lock(&self.shared.received).last().cloned()
    }

    /// Whether `needle` (a token, say) occurs in any request received so far.
    pub fn ever_saw(&self, needle: &str) -> bool {
        lock(&self.shared.received)
            .iter()
            .any(|r| r.contains(needle))
    }

    /// Answers later requests for exactly `path` with `reply` (a control document, say);
    /// `None` removes it. A reply with an `etag` header answers a matching `if-none-match`
    /// with 304, like a bundle server.
    pub fn set_path_reply(&self, path: &str, reply: Option<Reply>) {
        let mut paths = lock(&self.shared.paths);
        match reply {
            Some(reply) => paths.insert(path.to_owned(), (reply, ReplyFraming::Length)),
            None => paths.remove(path),
        };
    }

    /// Answers later requests for exactly `path` with `reply`, its body sent as
    /// `transfer-encoding: chunked` in `pieces` chunks (a short pause before each) and followed
    /// by `trailers`. Envoy forwards HTTP/1 trailers only when its cluster enables them
    /// ([`crate::EnvoyOptions::upstream_http1_trailers`]).
    pub fn set_path_reply_chunked(
        &self,
        path: &str,
        reply: Reply,
        pieces: usize,
        trailers: &[(&str, &str)],
    ) {
        let trailers = trailers
            .iter()
            .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
            .collect();
        lock(&self.shared.paths).insert(
            path.to_owned(),
            (
                reply,
                ReplyFraming::Chunked {
                    pieces: pieces.max(1),
                    trailers,
                },
            ),
        );
    }

    /// Requests received for exactly `path`, in order.
    pub fn requests_for(&self, path: &str) -> Vec<ReceivedRequest> {
        lock(&self.shared.received)
            .iter()
            .filter(|r| r.path.split('?').next() == Some(path))
            .cloned()
            .collect()
    }

    /// Answers every later request with `reply`; `None` restores the echo.
    pub fn set_reply(&self, reply: Option<Reply>) {
        *lock(&self.shared.reply) = reply;
    }
}

impl Drop for Upstream {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        // Wake the acceptor so it sees the flag.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        if let Some(acceptor) = self.acceptor.take() {
            let _ = acceptor.join();
        }
    }
}

fn accept(listener: TcpListener, shared: Arc<Shared>) {
    for stream in listener.incoming() {
        if shared.stop.load(Ordering::SeqCst) {
            break;
        }
        let Ok(stream) = stream else { continue };
        let shared = Arc::clone(&shared);
        // Connection threads are detached: Envoy keeps pooled connections open, and they end
        // when Envoy closes them or the process exits.
        let _ = std::thread::Builder::new()
            .name("upstream-conn".into())
            .spawn(move || {
                let _ = serve(stream, &shared);
            });
    }
}

fn serve(stream: TcpStream, shared: &Shared) -> Result<(), Error> {
    stream
        .set_read_timeout(Some(Duration::from_secs(120)))
        .context(|| "upstream timeout".into())?;
    let mut writer = stream.try_clone().context(|| "upstream stream".into())?;
    let mut reader = BufReader::new(stream);
    while let Some(head) = http1::read_head(&mut reader)? {
        if shared.stop.load(Ordering::SeqCst) {
            break;
        }
        let mut start = head.start.split(' ');
        let method = start.next().unwrap_or_default().to_owned();
        let path = start.next().unwrap_or_default().to_owned();
        let framing = http1::framing(&head.headers, false)?;
        let body = http1::read_body(&mut reader, framing)?;
        let request = ReceivedRequest {
            method,
            path,
            headers: head.headers,
            body,
        };
        let by_path = lock(&shared.paths)
            .get(request.path.split('?').next().unwrap_or_default())
            .cloned();
        let (reply, framing) = match by_path {
            Some((reply, framing)) => match not_modified(&request, reply) {
                // A 304 has no body to chunk.
                Ok(reply) => (reply, framing),
                Err(not_modified) => (not_modified, ReplyFraming::Length),
            },
            None => (
                lock(&shared.reply)
                    .clone()
                    .unwrap_or_else(|| echo(&request)),
                ReplyFraming::Length,
            ),
        };
        lock(&shared.received).push(request);
        write_reply(&mut writer, &reply, &framing)?;
    }
    let _ = writer.shutdown(Shutdown::Both);
    Ok(())
}

/// `Err` with a 304 when the request's `if-none-match` matches the reply's `etag`.
fn not_modified(request: &ReceivedRequest, reply: Reply) -> Result<Reply, Reply> {
    let etag = reply
        .headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case("etag"))
        .map(|(_, v)| v.as_str());
    if etag.is_some() && etag == request.header("if-none-match") {
        return Err(Reply {
            status: 304,
            headers: Vec::new(),
            body: Vec::new(),
        });
    }
    Ok(reply)
}

fn echo(request: &ReceivedRequest) -> Reply {
    let mut headers: BTreeMap<String, Value> = BTreeMap::new();
    for (name, value) in &request.headers {
        let name = name.to_ascii_lowercase();
        match headers.get_mut(&name) {
            Some(Value::String(existing)) => {
                existing.push_str(", ");
                existing.push_str(value);
            }
            _ => {
                headers.insert(name, Value::String(value.clone()));
            }
        }
    }
    let body = json!({
        "method": request.method,
        "path": request.path,
        "headers": headers,
    });
    Reply {
        status: 200,
        headers: vec![("content-type".into(), "application/json".into())],
        body: body.to_string().into_bytes(),
    }
}

fn write_reply(writer: &mut TcpStream, reply: &Reply, framing: &ReplyFraming) -> Result<(), Error> {
    let mut head = format!("HTTP/1.1 {} OK\r\n", reply.status);
    for (name, value) in &reply.headers {
        if name.eq_ignore_ascii_case("content-length")
            || name.eq_ignore_ascii_case("transfer-encoding")
        {
            continue;
        }
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    let (pieces, trailers) = match framing {
        ReplyFraming::Length => {
            head.push_str(&format!("content-length: {}\r\n\r\n", reply.body.len()));
            return writer
                .write_all(head.as_bytes())
                .and_then(|()| writer.write_all(&reply.body))
                .and_then(|()| writer.flush())
                .context(|| "upstream reply".into());
        }
        ReplyFraming::Chunked { pieces, trailers } => (*pieces, trailers),
    };
    head.push_str("transfer-encoding: chunked\r\n\r\n");
    writer
        .write_all(head.as_bytes())
        .and_then(|()| writer.flush())
        .context(|| "upstream reply head".into())?;
    let size = reply.body.len().div_ceil(pieces).max(1);
    for chunk in reply.body.chunks(size) {
        std::thread::sleep(CHUNK_PAUSE);
        let mut frame = format!("{:x}\r\n", chunk.len()).into_bytes();
        frame.extend_from_slice(chunk);
        frame.extend_from_slice(b"\r\n");
        writer
            .write_all(&frame)
            .and_then(|()| writer.flush())
            .context(|| "upstream reply chunk".into())?;
    }
    std::thread::sleep(CHUNK_PAUSE);
    let mut end = String::from("0\r\n");
    for (name, value) in trailers {
        end.push_str(&format!("{name}: {value}\r\n"));
    }
    end.push_str("\r\n");
    writer
        .write_all(end.as_bytes())
        .and_then(|()| writer.flush())
        .context(|| "upstream reply trailers".into())
}

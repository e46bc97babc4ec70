//! `tools/list` responses filtered down to the tools the agent may call, so an agent is not
//! even shown what it cannot use. Works on a JSON body and on an SSE stream of JSON events.

use serde_json::Value;

/// What a response filter needs from the request: the policy input it was allowed with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ToolsListFilter {
    pub(crate) input: regorus::Value,
    pub(crate) route: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ToolsListError {
    #[error("tools/list response is not valid JSON")]
    Json,
    #[error("tools/list response is not UTF-8")]
    Utf8,
}

/// Why a `tools/list` response could not be filtered, as the JSON-RPC error that replaces it:
/// no tools are shown rather than all of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Unfiltered {
    #[error("{0}")]
    Unreadable(ToolsListError),
    #[error("authorizer unavailable")]
    NoAuthorizer,
    #[error("tools/list response too large to filter on this host")]
    TooLarge,
}

impl Unfiltered {
    /// The replacement body. The messages are this module's own, with nothing to escape.
    pub fn body(self) -> Vec<u8> {
        format!(
            r#"{{"jsonrpc":"2.0","id":null,"error":{{"code":-32603,"message":"bridle: {self}"}}}}"#
        )
        .into_bytes()
    }
}

/// Removes from every `result.tools` array the tools `keep` refuses. Returns the new body.
pub fn filter_body(
    body: &[u8],
    content_type: &str,
    keep: &mut dyn FnMut(&str) -> bool,
) -> Result<Vec<u8>, ToolsListError> {
    if content_type
        .to_ascii_lowercase()
        .starts_with("text/event-stream")
    {
        let text = std::str::from_utf8(body).map_err(|_| ToolsListError::Utf8)?;
        return Ok(filter_sse(text, keep)?.into_bytes());
    }
    let mut message: Value = serde_json::from_slice(body).map_err(|_| ToolsListError::Json)?;
    filter_message(&mut message, keep);
    serde_json::to_vec(&message).map_err(|_| ToolsListError::Json)
}

fn filter_message(message: &mut Value, keep: &mut dyn FnMut(&str) -> bool) -> bool {
    let Some(tools) = message
        .pointer_mut("/result/tools")
        .and_then(Value::as_array_mut)
    else {
        return false;
    };
    // A tool without a string name cannot be authorized, so it is not shown.
    tools.retain(|tool| {
        tool.get("name")
            .and_then(Value::as_str)
            .is_some_and(&mut *keep)
    });
    true
}

/// SSE events are separated by blank lines; an event's `data:` lines join with `\n`.
fn filter_sse(text: &str, keep: &mut dyn FnMut(&str) -> bool) -> Result<String, ToolsListError> {
    let mut out = String::with_capacity(text.len());
    let mut data: Vec<&str> = Vec::new();
    let mut other: Vec<&str> = Vec::new();
    let mut flush = |out: &mut String,
                     data: &mut Vec<&str>,
                     other: &mut Vec<&str>|
     -> Result<(), ToolsListError> {
        for line in other.drain(..) {
            out.push_str(line);
            out.push('\n');
        }
        if !data.is_empty() {
            let joined = data.join("\n");
            data.clear();
            match serde_json::from_str::<Value>(&joined) {
                Ok(mut message) => {
                    if filter_message(&mut message, keep) {
                        let encoded =
                            serde_json::to_string(&message).map_err(|_| ToolsListError::Json)?;
                        out.push_str("data: ");
                        out.push_str(&encoded);
                        out.push('\n');
                    } else {
                        for line in joined.split('\n') {
                            out.push_str("data: ");
                            out.push_str(line);
                            out.push('\n');
                        }
                    }
                }
                Err(_) => return Err(ToolsListError::Json),
            }
        }
        Ok(())
    };
    for line in text.split('\n') {
        let line = line.strip_suffix('\r').unwrap_or(line);
        if line.is_empty() {
            flush(&mut out, &mut data, &mut other)?;
            out.push('\n');
        } else if let Some(value) = line.strip_prefix("data:") {
            data.push(value.strip_prefix(' ').unwrap_or(value));
        } else {
            other.push(line);
        }
    }
    flush(&mut out, &mut data, &mut other)?;
    // `split` yields one empty piece after a final newline; do not add a line for it.
    if text.ends_with('\n') && out.ends_with("\n\n") {
        out.pop();
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unfiltered_list_becomes_a_json_rpc_error() {
        for reason in [
            Unfiltered::Unreadable(ToolsListError::Json),
            Unfiltered::NoAuthorizer,
            Unfiltered::TooLarge,
        ] {
            let body: Value = serde_json::from_slice(&reason.body()).unwrap();
            assert_eq!(body["error"]["code"], -32603);
            assert_eq!(body["error"]["message"], format!("bridle: {reason}"));
            assert!(body["id"].is_null());
        }
    }

    fn only_read(name: &str) -> bool {
        name.starts_with("read")
    }

    #[test]
    fn filters_a_json_response() {
        let body = br#"{"jsonrpc":"2.0","id":2,"result":{"tools":[{"name":"read_file"},{"name":"deploy_service"},{"title":"no name"}]}}"#;
        let out = filter_body(body, "application/json", &mut only_read).unwrap();
        let v: Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(
            v["result"]["tools"],
            serde_json::json!([{"name": "read_file"}])
        );
        assert_eq!(v["id"], 2);
    }

    #[test]
    fn filters_an_sse_stream_and_keeps_other_events() {
        let body = "event: message\nid: 1\ndata: {\"jsonrpc\":\"2.0\",\"id\":2,\"result\":{\"tools\":[{\"name\":\"read_file\"},{\"name\":\"deploy_service\"}]}}\n\ndata: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/progress\"}\n\n";
        let out = String::from_utf8(
            filter_body(body.as_bytes(), "text/event-stream", &mut only_read).unwrap(),
        )
        .unwrap();
        assert_eq!(
            out,
            "event: message\nid: 1\ndata: {\"id\":2,\"jsonrpc\":\"2.0\",\"result\":{\"tools\":[{\"name\":\"read_file\"}]}}\n\ndata: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/progress\"}\n\n"
        );
    }

    #[test]
    fn unreadable_responses_are_errors() {
        assert_eq!(
            filter_body(b"{", "application/json", &mut only_read),
            Err(ToolsListError::Json)
        );
        assert_eq!(
            filter_body(b"data: {\n\n", "text/event-stream", &mut only_read),
            Err(ToolsListError::Json)
        );
    }
}

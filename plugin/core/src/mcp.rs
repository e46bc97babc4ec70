//! MCP (streamable HTTP) request bodies: one JSON-RPC message, read strictly.

use serde_json::{Map, Value};

use crate::identity::verify::quote;
use crate::json_strict;

/// What an MCP request asks for.
#[derive(Debug, Clone, PartialEq)]
pub struct McpMessage {
    pub method: String,
    /// Absent for notifications.
    pub id: Option<Value>,
    /// `tools/call`: the tool's name; `prompts/get`: the prompt's name.
    pub name: Option<String>,
    /// `tools/call` arguments (an object, empty when absent).
    pub arguments: Map<String, Value>,
    /// `resources/read` and friends: the resource URI.
    pub uri: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum McpError {
    #[error("MCP body is not valid UTF-8")]
    NotUtf8,
    #[error("MCP body is not valid JSON: {0}")]
    InvalidJson(String),
    #[error("JSON-RPC batches are not accepted (MCP has not used them since 2025-06-18)")]
    Batch,
    #[error("MCP body is not a JSON-RPC object")]
    NotAnObject,
    #[error("MCP body has no `jsonrpc: \"2.0\"`")]
    Version,
    #[error("MCP body has no string `method`")]
    Method,
    #[error("`{0}` has no string `params.{1}`")]
    MissingParam(String, &'static str),
    #[error("`tools/call` `params.arguments` is not an object")]
    Arguments,
    #[error("header `{header}` says `{header_value}` but the body says `{body_value}`")]
    HeaderMismatch {
        header: &'static str,
        header_value: String,
        body_value: String,
    },
    /// The body is not sent as UTF-8 JSON: 415.
    #[error(transparent)]
    Encoding(#[from] crate::media_type::BodyEncodingError),
}

/// Parses one MCP JSON-RPC message. Duplicate keys, batches and non-UTF-8 are refused.
pub fn parse(body: &[u8]) -> Result<McpMessage, McpError> {
    if std::str::from_utf8(body).is_err() {
        return Err(McpError::NotUtf8);
    }
    let value =
        json_strict::parse(body).map_err(|e| McpError::InvalidJson(quote(&e.to_string())))?;
    let mut object = match value {
        Value::Object(object) => object,
        Value::Array(_) => return Err(McpError::Batch),
        _ => return Err(McpError::NotAnObject),
    };
    if object.get("jsonrpc").and_then(Value::as_str) != Some("2.0") {
        return Err(McpError::Version);
    }
    let method = match object.remove("method") {
        Some(Value::String(method)) => method,
        _ => return Err(McpError::Method),
    };
    let id = object.remove("id");
    let mut params = match object.remove("params") {
        Some(Value::Object(params)) => params,
        _ => Map::new(),
    };
    let mut take_string = |key: &'static str| match params.remove(key) {
        Some(Value::String(s)) => Ok(s),
        _ => Err(McpError::MissingParam(method.clone(), key)),
    };
    let (name, uri) = match method.as_str() {
        "tools/call" | "prompts/get" => (Some(take_string("name")?), None),
        "resources/read" | "resources/subscribe" | "resources/unsubscribe" => {
            (None, Some(take_string("uri")?))
        }
        _ => (None, None),
    };
    let arguments = if method == "tools/call" {
        match params.remove("arguments") {
            None | Some(Value::Null) => Map::new(),
            Some(Value::Object(arguments)) => arguments,
            Some(_) => return Err(McpError::Arguments),
        }
    } else {
        Map::new()
    };
    Ok(McpMessage {
        method,
        id,
        name,
        arguments,
        uri,
    })
}

impl McpMessage {
    /// MCP 2026-07-28 repeats the method and tool name in `Mcp-Method` / `Mcp-Name` headers.
    /// Bridle authorizes on the body; a header that disagrees with it is refused.
    pub fn check_headers(
        &self,
        method_header: Option<&str>,
        name_header: Option<&str>,
    ) -> Result<(), McpError> {
        if let Some(header) = method_header {
            if header != self.method {
                return Err(McpError::HeaderMismatch {
                    header: "mcp-method",
                    header_value: quote(header),
                    body_value: quote(&self.method),
                });
            }
        }
        if let Some(header) = name_header {
            let body = self
                .name
                .as_deref()
                .or(self.uri.as_deref())
                .unwrap_or_default();
            if header != body {
                return Err(McpError::HeaderMismatch {
                    header: "mcp-name",
                    header_value: quote(header),
                    body_value: quote(body),
                });
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_tool_call() {
        let m = parse(br#"{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"deploy_service","arguments":{"env":"prod"}}}"#).unwrap();
        assert_eq!(m.method, "tools/call");
        assert_eq!(m.name.as_deref(), Some("deploy_service"));
        assert_eq!(m.arguments.get("env"), Some(&Value::from("prod")));
        assert_eq!(m.id, Some(Value::from(7)));
    }

    #[test]
    fn reads_other_methods() {
        let m = parse(br#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#).unwrap();
        assert_eq!(
            (m.method.as_str(), m.id, m.name),
            ("notifications/initialized", None, None)
        );
        let m = parse(
            br#"{"jsonrpc":"2.0","id":"a","method":"resources/read","params":{"uri":"file:///x"}}"#,
        )
        .unwrap();
        assert_eq!(m.uri.as_deref(), Some("file:///x"));
    }

    #[test]
    fn refuses_what_could_be_read_two_ways() {
        let cases: [(&[u8], McpError); 7] = [
            (b"[{\"jsonrpc\":\"2.0\",\"method\":\"tools/list\"}]", McpError::Batch),
            (b"\"x\"", McpError::NotAnObject),
            (b"{\"method\":\"tools/list\"}", McpError::Version),
            (b"{\"jsonrpc\":\"2.0\",\"method\":1}", McpError::Method),
            (b"{\"jsonrpc\":\"2.0\",\"method\":\"tools/call\",\"params\":{}}", McpError::MissingParam("tools/call".into(), "name")),
            (b"{\"jsonrpc\":\"2.0\",\"method\":\"tools/call\",\"params\":{\"name\":\"a\",\"arguments\":[1]}}", McpError::Arguments),
            (b"{\"jsonrpc\":\"2.0\",\"method\":\"x\",\"m\":\"\xff\"}", McpError::NotUtf8),
        ];
        for (body, expected) in cases {
            assert_eq!(parse(body), Err(expected));
        }
        let dup = parse(
            br#"{"jsonrpc":"2.0","method":"tools/call","params":{"name":"read","name":"deploy"}}"#,
        );
        assert!(matches!(dup, Err(McpError::InvalidJson(m)) if m.contains("duplicate key `name`")));
    }

    #[test]
    fn headers_must_agree_with_the_body() {
        let m = parse(
            br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"read_file"}}"#,
        )
        .unwrap();
        assert!(m
            .check_headers(Some("tools/call"), Some("read_file"))
            .is_ok());
        assert!(m.check_headers(None, None).is_ok());
        assert!(matches!(
            m.check_headers(Some("tools/list"), None),
            Err(McpError::HeaderMismatch {
                header: "mcp-method",
                ..
            })
        ));
        assert!(matches!(
            m.check_headers(None, Some("deploy")),
            Err(McpError::HeaderMismatch {
                header: "mcp-name",
                ..
            })
        ));
    }
}

//! What a request is trying to do: protocol, action class, resource, and for MCP the tool and
//! its arguments.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use crate::compile::{Mcp, Route};
use crate::config::{ActionClass, Protocol};
use crate::mcp::{self, McpError};
use crate::request::{ParsedPath, RequestView};

#[derive(Debug, Clone, PartialEq)]
pub struct Intent {
    pub protocol: Protocol,
    pub route: Option<String>,
    pub action: ActionClass,
    pub resource: Option<String>,
    pub params: BTreeMap<String, String>,
    /// JSON-RPC method (MCP).
    pub rpc_method: Option<String>,
    pub tool: Option<String>,
    pub arguments: Map<String, Value>,
    pub data_class: Option<String>,
}

/// The first route whose method and path match: its index and its captures.
pub fn match_route(
    routes: &[Route],
    method: &str,
    path: &ParsedPath,
) -> Option<(usize, BTreeMap<String, String>)> {
    routes.iter().enumerate().find_map(|(index, route)| {
        if !route.methods.is_empty() && !route.methods.iter().any(|m| m == method) {
            return None;
        }
        route
            .pattern
            .matches(&path.segments)
            .map(|captures| (index, captures))
    })
}

/// HTTP's own meaning of a method: safe methods read, the rest write.
pub fn method_action(method: &str) -> ActionClass {
    match method {
        "GET" | "HEAD" | "OPTIONS" => ActionClass::Read,
        _ => ActionClass::Write,
    }
}

/// Whether the request's body must be read before deciding, and how much of it at most.
pub fn body_limit(route: Option<&Route>, method: &str, mcp: &Mcp) -> Option<usize> {
    route
        .filter(|route| route.reads_body(method))
        .map(|_| mcp.max_body_bytes)
}

pub fn build(
    view: &RequestView,
    route: Option<(&Route, BTreeMap<String, String>)>,
    mcp_settings: &Mcp,
) -> Result<Intent, McpError> {
    let (route, params) = match route {
        Some((route, params)) => (Some(route), params),
        None => (None, BTreeMap::new()),
    };
    let mut intent = Intent {
        protocol: route.map_or(Protocol::Http, |r| r.protocol),
        route: route.map(|r| r.name.clone()),
        action: route
            .and_then(|r| r.action)
            .unwrap_or_else(|| method_action(&view.method)),
        resource: route.and_then(|r| r.resource.clone()),
        params,
        rpc_method: None,
        tool: None,
        arguments: Map::new(),
        data_class: None,
    };
    if intent.protocol != Protocol::Mcp || view.method != "POST" {
        return Ok(intent);
    }
    crate::media_type::check_json(
        &header_values(view, "content-type"),
        &header_values(view, "content-encoding"),
    )?;
    let body = view.body.as_deref().unwrap_or_default();
    let message = mcp::parse(body)?;
    message.check_headers(
        header(view, "mcp-method").as_deref(),
        header(view, "mcp-name").as_deref(),
    )?;
    intent.action = match message.method.as_str() {
        "tools/call" => {
            let annotation = message
                .name
                .as_ref()
                .and_then(|name| mcp_settings.tools.get(name))
                .unwrap_or(&mcp_settings.unknown_tool);
            intent.data_class = Some(annotation.data_class.clone());
            annotation.action
        }
        "logging/setLevel" | "resources/subscribe" | "resources/unsubscribe" => ActionClass::Write,
        _ => ActionClass::Read,
    };
    if message.uri.is_some() {
        intent.resource = message.uri.clone();
    }
    intent.tool = if message.method == "tools/call" {
        message.name
    } else {
        None
    };
    intent.arguments = message.arguments;
    intent.rpc_method = Some(message.method);
    Ok(intent)
}

fn header_values<'v>(view: &'v RequestView, name: &str) -> Vec<&'v [u8]> {
    view.headers
        .iter()
        .filter(|(n, _)| n == name)
        .map(|(_, v)| v.as_slice())
        .collect()
}

fn header(view: &RequestView, name: &str) -> Option<String> {
    view.headers
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| String::from_utf8_lossy(v).into_owned())
}

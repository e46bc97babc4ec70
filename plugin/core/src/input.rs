//! The policy input document (`input.identity`, `input.request`, `input.connection`,
//! `input.environment`), built directly as regorus values.

use std::collections::BTreeMap;

use regorus::Value;

use crate::identity::VerifiedToken;
use crate::request::{ParsedPath, RequestView};

fn string(s: &str) -> Value {
    Value::from(s)
}

fn object(entries: impl IntoIterator<Item = (&'static str, Value)>) -> Value {
    Value::from(
        entries
            .into_iter()
            .map(|(k, v)| (string(k), v))
            .collect::<BTreeMap<Value, Value>>(),
    )
}

/// `input.identity`, built once per verified token and cached with it.
pub fn identity(token: &VerifiedToken) -> Value {
    let mut fields = vec![
        ("issuer", string(&token.issuer)),
        ("profile", string(token.profile.as_str())),
        (
            "claims",
            Value::from(serde_json::Value::Object(token.claims.clone())),
        ),
        ("token", token_reference(token)),
    ];
    if let Some(subject) = &token.subject {
        fields.push(("subject", string(subject)));
    }
    if let Some(spiffe) = &token.spiffe {
        fields.push((
            "spiffe",
            object([
                ("id", string(&spiffe.id)),
                ("trust_domain", string(&spiffe.trust_domain)),
                ("path", string(&spiffe.path)),
            ]),
        ));
    }
    object(fields)
}

fn token_reference(token: &VerifiedToken) -> Value {
    let mut fields = vec![("digest", string(&token.digest))];
    if let Some(jti) = &token.jti {
        fields.push(("jti", string(jti)));
    }
    object(fields)
}

/// Headers a policy never sees: credentials.
pub fn is_credential_header(name: &str, credential_header: &str) -> bool {
    name == credential_header || matches!(name, "authorization" | "proxy-authorization" | "cookie")
}

/// `input.request`.
pub fn request(view: &RequestView, parsed: &ParsedPath, credential_header: &str) -> Value {
    let mut headers: BTreeMap<Value, Value> = BTreeMap::new();
    for (name, value) in &view.headers {
        if name.starts_with(':') || is_credential_header(name, credential_header) {
            continue;
        }
        let value = String::from_utf8_lossy(value);
        let key = string(name);
        // Repeated fields are joined as RFC 9110 allows for list-valued headers.
        let joined = match headers.get(&key) {
            Some(Value::String(prev)) => format!("{prev}, {value}"),
            _ => value.into_owned(),
        };
        headers.insert(key, Value::from(joined));
    }
    let mut query: BTreeMap<Value, Value> = BTreeMap::new();
    for (k, v) in &parsed.query {
        let key = string(k);
        let mut values = match query.remove(&key) {
            Some(Value::Array(values)) => values.iter().cloned().collect::<Vec<_>>(),
            _ => Vec::new(),
        };
        values.push(string(v));
        query.insert(key, Value::from(values));
    }
    let raw_path = view.path.split('?').next().unwrap_or_default();
    object([
        ("method", string(&view.method)),
        ("scheme", string(&view.scheme)),
        ("host", string(&view.authority)),
        ("path", string(&parsed.path)),
        ("raw_path", string(raw_path)),
        (
            "segments",
            Value::from(
                parsed
                    .segments
                    .iter()
                    .map(|s| string(s))
                    .collect::<Vec<_>>(),
            ),
        ),
        ("query", Value::from(query)),
        ("headers", Value::from(headers)),
    ])
}

/// `input.connection`.
pub fn connection(view: &RequestView) -> Value {
    match &view.connection.peer_uri_san {
        Some(san) => object([("peer_uri_san", string(san))]),
        None => object([]),
    }
}

pub fn document(identity: Value, request: Value, connection: Value, environment: Value) -> Value {
    object([
        ("identity", identity),
        ("request", request),
        ("connection", connection),
        ("environment", environment),
    ])
}

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

pub struct Parts {
    pub identity: Value,
    pub request: Value,
    pub connection: Value,
    pub environment: Value,
    pub task: Option<Value>,
    pub delegation: Value,
    pub intent: Value,
}

pub fn document(parts: Parts) -> Value {
    let mut fields = vec![
        ("identity", parts.identity),
        ("request", parts.request),
        ("connection", parts.connection),
        ("environment", parts.environment),
        ("delegation", parts.delegation),
        ("intent", parts.intent),
    ];
    if let Some(task) = parts.task {
        fields.push(("task", task));
    }
    object(fields)
}

/// `input.task`, built once per verified task credential.
pub fn task(
    token: &VerifiedToken,
    txn: &str,
    scopes: Option<&std::collections::BTreeSet<String>>,
    bound_to: Option<&str>,
) -> Value {
    let mut fields = vec![
        ("txn", string(txn)),
        ("issuer", string(&token.issuer)),
        ("expires_at", Value::from(token.expires_at)),
        (
            "scopes",
            Value::from(
                scopes
                    .map(|s| s.iter().map(|x| string(x)).collect::<Vec<_>>())
                    .unwrap_or_default(),
            ),
        ),
        ("token", token_reference(token)),
    ];
    if let Some(subject) = &token.subject {
        fields.push(("subject", string(subject)));
    }
    if let Some(bound) = bound_to {
        fields.push(("workload", string(bound)));
    }
    for (claim, key) in [("tctx", "context"), ("rctx", "request_context")] {
        if let Some(value) = token.claims.get(claim) {
            fields.push((key, Value::from(value.clone())));
        }
    }
    object(fields)
}

/// `input.delegation`: always present; depth 0 and an empty chain without `act`.
pub fn delegation(chain: Option<&crate::delegation::Chain>) -> Value {
    let Some(chain) = chain else {
        return object([
            ("depth", Value::from(0u64)),
            ("chain", Value::from(Vec::<Value>::new())),
        ]);
    };
    let actors: Vec<Value> = chain
        .chain
        .iter()
        .map(|actor| {
            let mut fields = vec![("sub", string(&actor.sub))];
            if let Some(scopes) = &actor.scopes {
                fields.push((
                    "scopes",
                    Value::from(scopes.iter().map(|s| string(s)).collect::<Vec<_>>()),
                ));
            }
            object(fields)
        })
        .collect();
    object([
        ("depth", Value::from(chain.depth() as u64)),
        ("origin", string(chain.origin())),
        ("actor", string(chain.current_actor())),
        ("chain", Value::from(actors)),
    ])
}

/// `input.intent`.
pub fn intent(intent: &crate::intent::Intent) -> Value {
    let mut fields = vec![
        ("protocol", string(intent.protocol.as_str())),
        ("action", string(intent.action.as_str())),
        (
            "params",
            Value::from(
                intent
                    .params
                    .iter()
                    .map(|(k, v)| (string(k), string(v)))
                    .collect::<BTreeMap<Value, Value>>(),
            ),
        ),
        (
            "arguments",
            Value::from(serde_json::Value::Object(intent.arguments.clone())),
        ),
    ];
    for (key, value) in [
        ("route", &intent.route),
        ("resource", &intent.resource),
        ("rpc_method", &intent.rpc_method),
        ("tool", &intent.tool),
        ("data_class", &intent.data_class),
    ] {
        if let Some(value) = value {
            fields.push((key, string(value)));
        }
    }
    object(fields)
}

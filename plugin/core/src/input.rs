//! The policy input document (`input.identity`, `input.request`, `input.connection`,
//! `input.environment`), built directly as regorus values.

use std::collections::btree_map::Entry;
use std::collections::BTreeMap;
use std::sync::LazyLock;

use regorus::Value;

use crate::identity::VerifiedToken;
use crate::input_reads::{InputReads, Part};
use crate::request::{ParsedPath, RequestView};

fn string(s: &str) -> Value {
    Value::from(s)
}

macro_rules! keys {
    ($($name:ident),* $(,)?) => {
        /// The input document's field names, allocated once: a request clones them (a reference
        /// count) instead of allocating a string per key.
        struct Keys { $($name: Value,)* }

        static KEYS: LazyLock<Keys> = LazyLock::new(|| Keys { $($name: string(stringify!($name)),)* });
    };
}

keys!(
    action,
    actor,
    arguments,
    chain,
    claims,
    connection,
    context,
    data_class,
    delegation,
    depth,
    digest,
    environment,
    expires_at,
    headers,
    host,
    id,
    identity,
    intent,
    issuer,
    jti,
    method,
    origin,
    params,
    path,
    peer_uri_san,
    principal,
    profile,
    protocol,
    query,
    raw_path,
    request,
    request_context,
    resource,
    route,
    rpc_method,
    scheme,
    scopes,
    segments,
    spiffe,
    sub,
    subject,
    task,
    token,
    tool,
    trust_domain,
    txn,
    workload,
);

/// An object from its fields.
fn object<const N: usize>(entries: [(&'static Value, Value); N]) -> Value {
    object_of(entries.map(|(key, value)| (key, Some(value))))
}

/// An object with optional fields; later fields replace earlier ones with the same key.
fn object_of(entries: impl IntoIterator<Item = (&'static Value, Option<Value>)>) -> Value {
    let mut map = BTreeMap::new();
    for (key, value) in entries {
        if let Some(value) = value {
            map.insert(key.clone(), value);
        }
    }
    Value::from(map)
}

/// `input.identity`, built once per verified token and cached with it.
pub fn identity(token: &VerifiedToken) -> Value {
    let k = &*KEYS;
    let spiffe = token.spiffe.as_ref().map(|spiffe| {
        object([
            (&k.id, string(&spiffe.id)),
            (&k.trust_domain, string(&spiffe.trust_domain)),
            (&k.path, string(&spiffe.path)),
        ])
    });
    object_of([
        (&k.issuer, Some(string(&token.issuer))),
        (&k.profile, Some(string(token.profile.as_str()))),
        (
            &k.claims,
            Some(Value::from(serde_json::Value::Object(token.claims.clone()))),
        ),
        (&k.token, Some(token_reference(token))),
        // The caller: the current actor of a delegated credential, acting for `principal`.
        (
            &k.subject,
            token
                .actor
                .as_deref()
                .or(token.subject.as_deref())
                .map(string),
        ),
        (
            &k.principal,
            token
                .actor
                .as_ref()
                .and(token.subject.as_deref())
                .map(string),
        ),
        (&k.spiffe, spiffe),
    ])
}

fn token_reference(token: &VerifiedToken) -> Value {
    let k = &*KEYS;
    object_of([
        (&k.digest, Some(string(&token.digest))),
        (&k.jti, token.jti.as_deref().map(string)),
    ])
}

/// Headers a policy never sees: credentials, the configured ones (`credential_headers`: the
/// workload, task and approval credentials' headers) and the usual ones.
pub fn is_credential_header(name: &str, credential_headers: &[String]) -> bool {
    matches!(name, "authorization" | "proxy-authorization" | "cookie")
        || credential_headers.iter().any(|h| h == name)
}

/// `input.request`; `headers` and `query` only when `reads` has them.
pub fn request(
    view: &RequestView,
    parsed: &ParsedPath,
    credential_headers: &[String],
    reads: InputReads,
) -> Value {
    let headers = reads
        .reads(Part::RequestHeaders)
        .then(|| headers(view, credential_headers));
    let query = reads.reads(Part::RequestQuery).then(|| query(parsed));
    let raw_path = view.path.split('?').next().unwrap_or_default();
    let k = &*KEYS;
    object_of([
        (&k.method, Some(string(&view.method))),
        (&k.scheme, Some(string(&view.scheme))),
        (&k.host, Some(string(&view.authority))),
        (&k.path, Some(string(&parsed.path))),
        (&k.raw_path, Some(string(raw_path))),
        (
            &k.segments,
            Some(Value::from(
                parsed
                    .segments
                    .iter()
                    .map(|s| string(s))
                    .collect::<Vec<_>>(),
            )),
        ),
        (&k.query, query),
        (&k.headers, headers),
    ])
}

fn headers(view: &RequestView, credential_headers: &[String]) -> Value {
    let mut headers: BTreeMap<Value, Value> = BTreeMap::new();
    for (name, value) in &view.headers {
        if name.starts_with(':') || is_credential_header(name, credential_headers) {
            continue;
        }
        let value = String::from_utf8_lossy(value);
        match headers.entry(string(name)) {
            Entry::Vacant(entry) => {
                entry.insert(string(&value));
            }
            // Repeated fields are joined as RFC 9110 allows for list-valued headers.
            Entry::Occupied(mut entry) => {
                let joined = format!("{}, {value}", entry.get().as_string().map_or("", |s| s));
                entry.insert(Value::from(joined));
            }
        }
    }
    Value::from(headers)
}

fn query(parsed: &ParsedPath) -> Value {
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
    Value::from(query)
}

/// `input.connection`.
pub fn connection(view: &RequestView) -> Value {
    let k = &*KEYS;
    object_of([(
        &k.peer_uri_san,
        view.connection.peer_uri_san.as_deref().map(string),
    )])
}

/// The document's parts; a part left out is one the policy does not read (`task` is also left
/// out when the request has no task credential).
pub struct Parts {
    pub identity: Option<Value>,
    pub request: Option<Value>,
    pub connection: Option<Value>,
    pub environment: Option<Value>,
    pub task: Option<Value>,
    pub delegation: Option<Value>,
    pub intent: Option<Value>,
}

pub fn document(parts: Parts) -> Value {
    let k = &*KEYS;
    object_of([
        (&k.identity, parts.identity),
        (&k.request, parts.request),
        (&k.connection, parts.connection),
        (&k.environment, parts.environment),
        (&k.delegation, parts.delegation),
        (&k.intent, parts.intent),
        (&k.task, parts.task),
    ])
}

/// `input.task`, built once per verified task credential.
pub fn task(
    token: &VerifiedToken,
    txn: &str,
    scopes: Option<&std::collections::BTreeSet<String>>,
    bound_to: Option<&str>,
) -> Value {
    let k = &*KEYS;
    let claim = |name: &str| token.claims.get(name).map(|v| Value::from(v.clone()));
    object_of([
        (&k.txn, Some(string(txn))),
        (&k.issuer, Some(string(&token.issuer))),
        (&k.expires_at, Some(Value::from(token.expires_at))),
        (
            &k.scopes,
            Some(Value::from(
                scopes
                    .map(|s| s.iter().map(|x| string(x)).collect::<Vec<_>>())
                    .unwrap_or_default(),
            )),
        ),
        (&k.token, Some(token_reference(token))),
        (&k.subject, token.subject.as_deref().map(string)),
        (&k.workload, bound_to.map(string)),
        (&k.context, claim("tctx")),
        (&k.request_context, claim("rctx")),
    ])
}

/// `input.delegation` without `act`: the same for every such request.
static NO_DELEGATION: LazyLock<Value> = LazyLock::new(|| {
    let k = &*KEYS;
    object([
        (&k.depth, Value::from(0u64)),
        (&k.chain, Value::from(Vec::<Value>::new())),
    ])
});

/// `input.delegation`: always present; depth 0 and an empty chain without `act`.
pub fn delegation(chain: Option<&crate::delegation::Chain>) -> Value {
    let Some(chain) = chain else {
        return NO_DELEGATION.clone();
    };
    let k = &*KEYS;
    let actors: Vec<Value> = chain
        .chain
        .iter()
        .map(|actor| {
            let scopes = actor
                .scopes
                .as_ref()
                .map(|scopes| Value::from(scopes.iter().map(|s| string(s)).collect::<Vec<_>>()));
            object_of([(&k.sub, Some(string(&actor.sub))), (&k.scopes, scopes)])
        })
        .collect();
    object([
        (&k.depth, Value::from(chain.depth() as u64)),
        (&k.origin, string(chain.origin())),
        (&k.actor, string(chain.current_actor())),
        (&k.chain, Value::from(actors)),
    ])
}

static EMPTY_OBJECT: LazyLock<Value> = LazyLock::new(|| Value::from(BTreeMap::new()));

/// `input.intent`.
pub fn intent(intent: &crate::intent::Intent) -> Value {
    let k = &*KEYS;
    let params = if intent.params.is_empty() {
        EMPTY_OBJECT.clone()
    } else {
        Value::from(
            intent
                .params
                .iter()
                .map(|(k, v)| (string(k), string(v)))
                .collect::<BTreeMap<Value, Value>>(),
        )
    };
    let arguments = if intent.arguments.is_empty() {
        EMPTY_OBJECT.clone()
    } else {
        Value::from(serde_json::Value::Object(intent.arguments.clone()))
    };
    object_of([
        (&k.protocol, Some(string(intent.protocol.as_str()))),
        (&k.action, Some(string(intent.action.as_str()))),
        (&k.params, Some(params)),
        (&k.arguments, Some(arguments)),
        (&k.route, intent.route.as_deref().map(string)),
        (&k.resource, intent.resource.as_deref().map(string)),
        (&k.rpc_method, intent.rpc_method.as_deref().map(string)),
        (&k.tool, intent.tool.as_deref().map(string)),
        (&k.data_class, intent.data_class.as_deref().map(string)),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::request::parse_path;

    #[test]
    fn request_joins_repeated_headers_and_hides_credentials() {
        let view = RequestView {
            method: "GET".to_owned(),
            scheme: "https".to_owned(),
            authority: "api.internal".to_owned(),
            path: "/a/b%20c?x=1&x=2&y".to_owned(),
            headers: [
                ("accept", "text/plain"),
                ("authorization", "Bearer secret"),
                ("x-agent-token", "secret"),
                ("txn-token", "task secret"),
                ("x-bridle-approval", "approval secret"),
                ("cookie", "s=1"),
                ("accept", "application/json"),
                ("x-one", "1"),
            ]
            .into_iter()
            .map(|(n, v)| (n.to_owned(), v.as_bytes().to_vec()))
            .collect(),
            ..RequestView::default()
        };
        let parsed = parse_path(&view.path).unwrap();
        let json = |reads| -> serde_json::Value {
            let hidden = ["x-agent-token", "txn-token", "x-bridle-approval"].map(str::to_owned);
            let value = request(&view, &parsed, &hidden, reads);
            serde_json::from_str(&value.to_json_str().unwrap()).unwrap()
        };
        assert_eq!(
            json(InputReads::ALL),
            serde_json::json!({
                "method": "GET", "scheme": "https", "host": "api.internal",
                "path": "/a/b c", "raw_path": "/a/b%20c", "segments": ["a", "b c"],
                "query": {"x": ["1", "2"], "y": [""]},
                "headers": {"accept": "text/plain, application/json", "x-one": "1"},
            })
        );
        // A policy that never reads the headers or the query does not get them built.
        assert_eq!(
            json(InputReads::scan(["input.request.method"])),
            serde_json::json!({
                "method": "GET", "scheme": "https", "host": "api.internal",
                "path": "/a/b c", "raw_path": "/a/b%20c", "segments": ["a", "b c"],
            })
        );
        assert_eq!(
            json(InputReads::scan(["input.request.query"]))["query"],
            serde_json::json!({"x": ["1", "2"], "y": [""]})
        );
    }

    #[test]
    fn shared_parts_are_the_documented_shapes() {
        let json = |v: &Value| -> serde_json::Value {
            serde_json::from_str(&v.to_json_str().unwrap()).unwrap()
        };
        assert_eq!(
            json(&delegation(None)),
            serde_json::json!({"depth": 0, "chain": []})
        );
        let view = RequestView::default();
        assert_eq!(json(&connection(&view)), serde_json::json!({}));
    }
}

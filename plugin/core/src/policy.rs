//! Rego policy: compiled once to regorus bytecode at configure time, evaluated per request.

use std::sync::Arc;

use regorus::languages::rego::compiler::Compiler;
use regorus::rvm::RegoVM;
use regorus::{Engine, Value};

use crate::config::RawPolicy;
use crate::error::ConfigError;
use crate::input_reads::InputReads;

/// What the policy decided. Anything the entrypoint returns that does not fit this shape is an
/// error, and an error never allows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyDecision {
    pub allow: bool,
    /// The action may go ahead once a human approves exactly this action.
    pub approval_required: bool,
    pub reasons: Vec<String>,
    pub headers: Vec<(String, String)>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    #[error("policy evaluation failed: {0}")]
    Evaluation(String),
    #[error("policy returned no decision (entrypoint `{0}` is undefined for this input)")]
    Undefined(String),
    #[error("policy decision malformed: {0}")]
    Malformed(String),
}

pub struct Policy {
    vm: RegoVM,
    entrypoint: String,
    reads: InputReads,
}

impl Policy {
    pub fn compile(raw: &RawPolicy) -> Result<Self, ConfigError> {
        if !raw.entrypoint.starts_with("data.") {
            return Err(ConfigError::invalid(
                "policy.entrypoint",
                format!(
                    "`{}` must be a rule path starting with `data.`",
                    raw.entrypoint
                ),
            ));
        }
        if raw.modules.is_empty() {
            return Err(ConfigError::invalid(
                "policy.modules",
                "at least one module is required",
            ));
        }
        if raw.max_instructions == 0 {
            return Err(ConfigError::invalid(
                "policy.max_instructions",
                "must be greater than 0",
            ));
        }
        let mut engine = Engine::new();
        let data = Value::from(serde_json::Value::Object(raw.data.clone()));
        engine
            .add_data(data)
            .map_err(|err| ConfigError::invalid("policy.data", err))?;
        let mut names = std::collections::HashSet::new();
        for (index, module) in raw.modules.iter().enumerate() {
            if module.name.is_empty() || !names.insert(module.name.as_str()) {
                return Err(ConfigError::invalid(
                    format!("policy.modules[{index}].name"),
                    "must be non-empty and unique",
                ));
            }
            engine
                .add_policy(module.name.clone(), module.source.clone())
                .map_err(|err| {
                    ConfigError::invalid(
                        format!("policy.modules[{index}].source"),
                        one_line(&err.to_string()),
                    )
                })?;
        }
        let entrypoint: regorus::Rc<str> = raw.entrypoint.as_str().into();
        let compiled = engine
            .compile_with_entrypoint(&entrypoint)
            .map_err(|err| ConfigError::invalid("policy.entrypoint", one_line(&err.to_string())))?;
        let program = Compiler::compile_from_policy(&compiled, &[raw.entrypoint.as_str()])
            .map_err(|err| ConfigError::invalid("policy.modules", one_line(&err.to_string())))?;
        let mut vm = RegoVM::new();
        vm.load_program(Arc::clone(&program));
        vm.set_data(engine.get_data())
            .map_err(|err| ConfigError::invalid("policy.data", err))?;
        vm.set_max_instructions(raw.max_instructions);
        Ok(Self {
            vm,
            entrypoint: raw.entrypoint.clone(),
            reads: InputReads::scan(raw.modules.iter().map(|m| m.source.as_str())),
        })
    }

    pub fn entrypoint(&self) -> &str {
        &self.entrypoint
    }

    /// The parts of the input document this policy's modules may read.
    pub fn reads(&self) -> InputReads {
        self.reads
    }

    pub fn evaluate(&mut self, input: Value) -> Result<PolicyDecision, PolicyError> {
        self.vm.set_input(input);
        let result = self
            .vm
            .execute()
            .map_err(|err| PolicyError::Evaluation(one_line(&err.to_string())))?;
        parse_decision(&result, &self.entrypoint)
    }
}

/// regorus reports errors as multi-line source excerpts; logs want one line: where, and what.
fn one_line(message: &str) -> String {
    let parts: Vec<&str> = message
        .lines()
        .map(str::trim)
        .filter(|l| {
            !l.is_empty()
                && !l.starts_with('|')
                && !l.chars().next().is_some_and(|c| c.is_ascii_digit())
        })
        .map(|l| l.trim_start_matches("--> "))
        .collect();
    if parts.is_empty() {
        message.trim().to_owned()
    } else {
        parts.join(": ")
    }
}

fn parse_decision(value: &Value, entrypoint: &str) -> Result<PolicyDecision, PolicyError> {
    let malformed = |what: &str| PolicyError::Malformed(what.to_owned());
    let object = match value {
        Value::Undefined => return Err(PolicyError::Undefined(entrypoint.to_owned())),
        Value::Object(object) => object,
        _ => return Err(malformed("the entrypoint must return an object")),
    };
    let mut allow = None;
    let mut approval_required = false;
    let mut reasons = Vec::new();
    let mut headers = Vec::new();
    for (key, field) in object.iter() {
        let Value::String(key) = key else {
            return Err(malformed("decision keys must be strings"));
        };
        match key.as_ref() {
            "allow" => match field {
                Value::Bool(b) => allow = Some(*b),
                _ => return Err(malformed("`allow` must be a boolean")),
            },
            "approval_required" => match field {
                Value::Bool(b) => approval_required = *b,
                _ => return Err(malformed("`approval_required` must be a boolean")),
            },
            "reasons" => {
                let items: Vec<&Value> = match field {
                    Value::Array(items) => items.iter().collect(),
                    Value::Set(items) => items.iter().collect(),
                    _ => return Err(malformed("`reasons` must be an array of strings")),
                };
                for item in items {
                    match item {
                        Value::String(s) => reasons.push(s.to_string()),
                        _ => return Err(malformed("`reasons` must be an array of strings")),
                    }
                }
            }
            "headers" => {
                let Value::Object(map) = field else {
                    return Err(malformed("`headers` must be an object of strings"));
                };
                for (name, value) in map.iter() {
                    let (Value::String(name), Value::String(value)) = (name, value) else {
                        return Err(malformed("`headers` must be an object of strings"));
                    };
                    if !valid_header_name(name) {
                        return Err(PolicyError::Malformed(format!(
                            "header name `{name}` is not a lower-case HTTP token"
                        )));
                    }
                    if FRAMING_HEADERS.contains(&name.as_ref()) {
                        return Err(PolicyError::Malformed(format!(
                            "header `{name}` frames or routes the message and cannot be set by a policy"
                        )));
                    }
                    if !valid_header_value(value) {
                        return Err(PolicyError::Malformed(format!(
                            "header `{name}` has a control character in its value"
                        )));
                    }
                    headers.push((name.to_string(), value.to_string()));
                }
            }
            // Other keys are the policy's own (e.g. `obligations`), carried in the audit event.
            _ => {}
        }
    }
    let allow = allow.ok_or_else(|| malformed("`allow` is missing"))?;
    if allow && approval_required {
        return Err(malformed(
            "`allow` and `approval_required` cannot both be true",
        ));
    }
    Ok(PolicyDecision {
        allow,
        approval_required,
        reasons,
        headers,
    })
}

/// Headers that decide how the request is framed, routed or upgraded (RFC 9110 §7.6.1, RFC 9112):
/// set by a policy they could split the request or send it elsewhere than the route decided.
const FRAMING_HEADERS: &[&str] = &[
    "connection",
    "content-length",
    "host",
    "keep-alive",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

/// A value that cannot end the header or the head (no CR, LF or NUL).
pub fn valid_header_value(value: &str) -> bool {
    !value.bytes().any(|b| b == b'\r' || b == b'\n' || b == 0)
}

/// A lower-case RFC 9110 token, not a pseudo-header.
pub fn valid_header_name(name: &str) -> bool {
    !name.is_empty()
        && name.bytes().all(|b| {
            b.is_ascii_lowercase()
                || b.is_ascii_digit()
                || matches!(
                    b,
                    b'!' | b'#'
                        | b'$'
                        | b'%'
                        | b'&'
                        | b'\''
                        | b'*'
                        | b'+'
                        | b'-'
                        | b'.'
                        | b'^'
                        | b'_'
                        | b'`'
                        | b'|'
                        | b'~'
                )
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::RawModule;

    fn policy(source: &str) -> Result<Policy, ConfigError> {
        Policy::compile(&RawPolicy {
            entrypoint: "data.t.decision".to_owned(),
            modules: vec![RawModule {
                name: "t.rego".to_owned(),
                source: source.to_owned(),
            }],
            data: serde_json::from_str(r#"{"allowed": ["alice"]}"#).unwrap(),
            max_instructions: 10_000,
        })
    }

    fn input(user: &str) -> Value {
        Value::from(serde_json::json!({"user": user}))
    }

    #[test]
    fn evaluates_repeatedly_with_fresh_input() {
        let mut p = policy(
            r#"package t
            import rego.v1
            default decision := {"allow": false, "reasons": ["not listed"]}
            decision := {"allow": true, "reasons": [], "headers": {"x-user": input.user}} if input.user in data.allowed"#,
        )
        .unwrap();
        let yes = p.evaluate(input("alice")).unwrap();
        assert!(yes.allow);
        assert_eq!(yes.headers, [("x-user".to_owned(), "alice".to_owned())]);
        let no = p.evaluate(input("mallory")).unwrap();
        assert!(!no.allow);
        assert_eq!(no.reasons, ["not listed"]);
        assert!(p.evaluate(input("alice")).unwrap().allow);
    }

    #[test]
    fn undefined_and_malformed_decisions_are_errors() {
        let mut p = policy(
            "package t\nimport rego.v1\ndecision := {\"allow\": true} if input.user == \"alice\"",
        )
        .unwrap();
        assert!(matches!(
            p.evaluate(input("bob")),
            Err(PolicyError::Undefined(_))
        ));
        for body in [
            "decision := true",
            "decision := {\"allow\": \"yes\"}",
            "decision := {\"reasons\": []}",
            "decision := {\"allow\": true, \"reasons\": [1]}",
            "decision := {\"allow\": true, \"headers\": {\"X-Upper\": \"v\"}}",
            "decision := {\"allow\": true, \"headers\": {\"x-a\": \"v\\r\\nx-b: w\"}}",
            "decision := {\"allow\": true, \"headers\": {\"content-length\": \"0\"}}",
            "decision := {\"allow\": true, \"headers\": {\"transfer-encoding\": \"chunked\"}}",
            "decision := {\"allow\": true, \"headers\": {\"connection\": \"close\"}}",
            "decision := {\"allow\": true, \"headers\": {\"host\": \"admin.internal\"}}",
            "decision := {\"allow\": true, \"headers\": {\"te\": \"trailers\"}}",
            "decision := {\"allow\": true, \"headers\": {\"upgrade\": \"websocket\"}}",
        ] {
            let mut p = policy(&format!("package t\nimport rego.v1\n{body}")).unwrap();
            assert!(
                matches!(p.evaluate(input("a")), Err(PolicyError::Malformed(_))),
                "{body}"
            );
        }
    }

    #[test]
    fn runaway_policy_is_stopped() {
        let mut p = policy(
            "package t\nimport rego.v1\ndecision := {\"allow\": count([x | some x in numbers.range(1, 1000000)]) > 0}",
        )
        .unwrap();
        assert!(matches!(
            p.evaluate(input("a")),
            Err(PolicyError::Evaluation(_))
        ));
    }

    #[test]
    fn bad_policies_are_refused_naming_the_field() {
        let err = policy("package t\ndecision := {").err().unwrap();
        assert_eq!(err.field(), "policy.modules[0].source");
        let err = policy("package other\nimport rego.v1\nx := 1")
            .err()
            .unwrap();
        assert_eq!(err.field(), "policy.entrypoint");
    }
}

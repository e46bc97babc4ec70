//! A JSON Schema draft 4 validator for the keywords Bridle's generated configuration schema
//! uses, so tests can check shipped configurations against `kong/bridle.meta.json` the way
//! Kong does. A keyword it does not know is an error, never silently ignored.

use serde_json::{Map, Value};

/// Keywords that carry no constraint.
const ANNOTATIONS: [&str; 6] = [
    "$schema",
    "title",
    "description",
    "default",
    "definitions",
    "examples",
];

/// Checks `instance` against `schema` (whose `#/definitions/…` references resolve in `root`).
/// Returns every violation as `path: what`.
pub fn validate(root: &Value, instance: &Value) -> Result<(), Vec<String>> {
    let mut errors = Vec::new();
    check(root, root, instance, "$", &mut errors);
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors)
    }
}

fn type_matches(name: &str, value: &Value) -> bool {
    match name {
        "object" => value.is_object(),
        "array" => value.is_array(),
        "string" => value.is_string(),
        "boolean" => value.is_boolean(),
        "null" => value.is_null(),
        "number" => value.is_number(),
        // Draft 4: a number without a fractional part.
        "integer" => value.is_i64() || value.is_u64(),
        _ => false,
    }
}

fn resolve<'a>(root: &'a Value, reference: &str) -> Option<&'a Value> {
    let name = reference.strip_prefix("#/definitions/")?;
    root.get("definitions")?.get(name)
}

fn check(root: &Value, schema: &Value, value: &Value, at: &str, errors: &mut Vec<String>) {
    let Some(schema) = schema.as_object() else {
        errors.push(format!(
            "{at}: schema is not an object (draft 4 has no boolean schemas)"
        ));
        return;
    };
    for (keyword, argument) in schema {
        keyword_check(root, schema, keyword, argument, value, at, errors);
    }
}

fn keyword_check(
    root: &Value,
    schema: &Map<String, Value>,
    keyword: &str,
    argument: &Value,
    value: &Value,
    at: &str,
    errors: &mut Vec<String>,
) {
    match keyword {
        k if ANNOTATIONS.contains(&k) => {}
        "$ref" => match argument.as_str().and_then(|r| resolve(root, r)) {
            Some(target) => check(root, target, value, at, errors),
            None => errors.push(format!("{at}: unresolvable $ref {argument}")),
        },
        "type" => {
            let names: Vec<&str> = match argument {
                Value::String(name) => vec![name.as_str()],
                Value::Array(names) => names.iter().filter_map(Value::as_str).collect(),
                _ => Vec::new(),
            };
            if !names.iter().any(|n| type_matches(n, value)) {
                errors.push(format!("{at}: expected {names:?}, got {value}"));
            }
        }
        "enum" => {
            if !argument
                .as_array()
                .is_some_and(|options| options.contains(value))
            {
                errors.push(format!("{at}: {value} is not one of {argument}"));
            }
        }
        "required" => {
            if let (Some(names), Some(object)) = (argument.as_array(), value.as_object()) {
                for name in names.iter().filter_map(Value::as_str) {
                    if !object.contains_key(name) {
                        errors.push(format!("{at}: missing required `{name}`"));
                    }
                }
            }
        }
        "properties" => {
            if let (Some(properties), Some(object)) = (argument.as_object(), value.as_object()) {
                for (name, sub) in properties {
                    if let Some(item) = object.get(name) {
                        check(root, sub, item, &format!("{at}.{name}"), errors);
                    }
                }
            }
        }
        "additionalProperties" => {
            let Some(object) = value.as_object() else {
                return;
            };
            let known = schema.get("properties").and_then(Value::as_object);
            for (name, item) in object {
                if known.is_some_and(|k| k.contains_key(name)) {
                    continue;
                }
                match argument {
                    Value::Bool(false) => {
                        errors.push(format!("{at}: unknown field `{name}`"));
                    }
                    Value::Bool(true) => {}
                    sub => check(root, sub, item, &format!("{at}.{name}"), errors),
                }
            }
        }
        "items" => {
            if let Some(items) = value.as_array() {
                for (i, item) in items.iter().enumerate() {
                    check(root, argument, item, &format!("{at}[{i}]"), errors);
                }
            }
        }
        "minItems" | "maxItems" => {
            if let (Some(limit), Some(items)) = (argument.as_u64(), value.as_array()) {
                let len = items.len() as u64;
                if (keyword == "minItems" && len < limit) || (keyword == "maxItems" && len > limit)
                {
                    errors.push(format!("{at}: {len} items, {keyword} {limit}"));
                }
            }
        }
        "minimum" | "maximum" => {
            if let (Some(limit), Some(number)) = (argument.as_f64(), value.as_f64()) {
                let exclusive = schema
                    .get(if keyword == "minimum" {
                        "exclusiveMinimum"
                    } else {
                        "exclusiveMaximum"
                    })
                    .and_then(Value::as_bool)
                    .unwrap_or(false);
                let ok = match (keyword, exclusive) {
                    ("minimum", false) => number >= limit,
                    ("minimum", true) => number > limit,
                    (_, false) => number <= limit,
                    (_, true) => number < limit,
                };
                if !ok {
                    errors.push(format!(
                        "{at}: {number} is out of bounds ({keyword} {limit})"
                    ));
                }
            }
        }
        "exclusiveMinimum" | "exclusiveMaximum" => {
            if !argument.is_boolean() {
                errors.push(format!("{at}: {keyword} must be a boolean in draft 4"));
            }
        }
        "anyOf" | "oneOf" => {
            let options = argument.as_array().map(Vec::as_slice).unwrap_or_default();
            let passing = options
                .iter()
                .filter(|option| {
                    let mut sub = Vec::new();
                    check(root, option, value, at, &mut sub);
                    sub.is_empty()
                })
                .count();
            let ok = if keyword == "anyOf" {
                passing > 0
            } else {
                passing == 1
            };
            if !ok {
                errors.push(format!(
                    "{at}: {passing} of the {keyword} options match {value}"
                ));
            }
        }
        "allOf" => {
            for option in argument.as_array().map(Vec::as_slice).unwrap_or_default() {
                check(root, option, value, at, errors);
            }
        }
        "not" => {
            let mut sub = Vec::new();
            check(root, argument, value, at, &mut sub);
            if sub.is_empty() {
                errors.push(format!("{at}: matches a schema it must not match"));
            }
        }
        other => errors.push(format!(
            "{at}: keyword `{other}` is not supported by this validator"
        )),
    }
}

/// Keywords [`validate`] enforces.
const CONSTRAINTS: [&str; 17] = [
    "$ref",
    "type",
    "enum",
    "required",
    "properties",
    "additionalProperties",
    "items",
    "minItems",
    "maxItems",
    "minimum",
    "maximum",
    "exclusiveMinimum",
    "exclusiveMaximum",
    "anyOf",
    "oneOf",
    "allOf",
    "not",
];

/// Every problem that makes `schema` something other than a draft 4 schema this validator
/// fully understands: boolean schemas, unknown keywords, draft 6+ forms.
pub fn lint(schema: &Value) -> Vec<String> {
    let mut problems = Vec::new();
    lint_at(schema, "#", &mut problems);
    problems
}

fn lint_at(schema: &Value, at: &str, problems: &mut Vec<String>) {
    let Some(object) = schema.as_object() else {
        problems.push(format!("{at}: not an object"));
        return;
    };
    for (keyword, value) in object {
        let here = format!("{at}/{keyword}");
        if !ANNOTATIONS.contains(&keyword.as_str()) && !CONSTRAINTS.contains(&keyword.as_str()) {
            problems.push(format!("{here}: unknown keyword"));
        }
        match keyword.as_str() {
            "properties" | "definitions" => {
                for (name, sub) in value.as_object().into_iter().flatten() {
                    lint_at(sub, &format!("{here}/{name}"), problems);
                }
            }
            "items" | "not" => lint_at(value, &here, problems),
            "additionalProperties" if !value.is_boolean() => lint_at(value, &here, problems),
            "anyOf" | "oneOf" | "allOf" => {
                for (i, sub) in value.as_array().into_iter().flatten().enumerate() {
                    lint_at(sub, &format!("{here}/{i}"), problems);
                }
            }
            "exclusiveMinimum" | "exclusiveMaximum" if !value.is_boolean() => {
                problems.push(format!("{here}: must be a boolean in draft 4"));
            }
            _ => {}
        }
    }
}

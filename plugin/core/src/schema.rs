//! The configuration's JSON Schema, generated from the types in [`crate::config`] (feature
//! `schema`), in the dialect Kong validates filter configuration with: JSON Schema draft 4.
//!
//! schemars writes draft 7; the few constructs draft 4 lacks are rewritten: boolean schemas
//! (`true` for any JSON value) become `{}` / `{"not": {}}`, `const` becomes a one-value `enum`,
//! numeric `exclusiveMinimum`/`exclusiveMaximum` become draft 4's boolean flags, and the
//! integer `format`s schemars invents (`uint64`, ...) are dropped (their bounds stay as
//! `minimum`).

use schemars::gen::SchemaSettings;
use serde_json::{json, Map, Value};

use crate::config::RawConfig;

/// `$schema` of the generated document.
pub const DRAFT_4: &str = "http://json-schema.org/draft-04/schema#";

/// The JSON Schema (draft 4) of Bridle's configuration document.
pub fn config_schema() -> Value {
    let generator = SchemaSettings::draft07().into_generator();
    let root = generator.into_root_schema_for::<RawConfig>();
    let mut schema = serde_json::to_value(root).unwrap_or_else(|_| json!({}));
    to_draft4(&mut schema);
    if let Some(object) = schema.as_object_mut() {
        object.insert("$schema".to_owned(), Value::String(DRAFT_4.to_owned()));
    }
    schema
}

/// Kong's `<filter>.meta.json` for Bridle: `{"config_schema": …}`, as the text shipped in
/// `kong/bridle.meta.json` (pretty, keys sorted, final newline).
pub fn kong_meta_json() -> String {
    let meta = json!({ "config_schema": config_schema() });
    let mut text = serde_json::to_string_pretty(&meta).unwrap_or_default();
    text.push('\n');
    text
}

/// Keywords whose value is one schema.
const SCHEMA_VALUED: [&str; 4] = ["items", "not", "additionalItems", "additionalProperties"];
/// Keywords whose value is a list of schemas.
const SCHEMA_LISTS: [&str; 3] = ["anyOf", "allOf", "oneOf"];
/// Keywords whose value maps names to schemas.
const SCHEMA_MAPS: [&str; 3] = ["properties", "definitions", "patternProperties"];

fn to_draft4(schema: &mut Value) {
    match schema {
        Value::Bool(true) => *schema = json!({}),
        Value::Bool(false) => *schema = json!({"not": {}}),
        Value::Object(object) => rewrite(object),
        _ => {}
    }
}

fn rewrite(object: &mut Map<String, Value>) {
    if let Some(value) = object.remove("const") {
        object.insert("enum".to_owned(), Value::Array(vec![value]));
    }
    for (numeric, bound) in [
        ("exclusiveMinimum", "minimum"),
        ("exclusiveMaximum", "maximum"),
    ] {
        if let Some(limit) = object.get(numeric).filter(|v| v.is_number()).cloned() {
            object.insert(bound.to_owned(), limit);
            object.insert(numeric.to_owned(), Value::Bool(true));
        }
    }
    let invented_format = object
        .get("format")
        .and_then(Value::as_str)
        .is_some_and(|f| {
            matches!(
                f,
                "int8"
                    | "int16"
                    | "int32"
                    | "int64"
                    | "uint"
                    | "uint8"
                    | "uint16"
                    | "uint32"
                    | "uint64"
                    | "int"
                    | "float"
                    | "double"
            )
        });
    if invented_format {
        object.remove("format");
    }
    for (key, value) in object.iter_mut() {
        let key = key.as_str();
        if SCHEMA_VALUED.contains(&key) {
            // `additionalProperties: false` is draft 4 as it is.
            if !(key.starts_with("additional") && value.is_boolean()) {
                to_draft4(value);
            }
        } else if SCHEMA_LISTS.contains(&key) {
            if let Some(items) = value.as_array_mut() {
                items.iter_mut().for_each(to_draft4);
            }
        } else if SCHEMA_MAPS.contains(&key) {
            if let Some(map) = value.as_object_mut() {
                map.values_mut().for_each(to_draft4);
            }
        }
    }
}

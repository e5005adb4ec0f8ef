//! Parameter checks against the official schema (a subset of PVE 8.4's
//! apidata.js, made by tests/data/pve-schema-subset.py), with Proxmox's
//! own error texts.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use serde_json::Value;

fn schema() -> &'static Value {
    static SCHEMA: OnceLock<Value> = OnceLock::new();
    SCHEMA.get_or_init(|| {
        serde_json::from_str(include_str!("../../data/pve-schema-subset.json"))
            .expect("the committed schema subset is valid JSON")
    })
}

/// Checks `params` (path parameters included) for `METHOD /path/{template}`;
/// returns Proxmox's per-parameter errors.
pub fn check(endpoint: &str, params: &BTreeMap<String, String>) -> BTreeMap<String, String> {
    let mut errors = BTreeMap::new();
    let Some(spec) = schema().get(endpoint) else {
        errors.insert("_".into(), format!("simulator: no schema for {endpoint}"));
        return errors;
    };
    let props = &spec["properties"];
    let open = spec["additionalProperties"].as_bool().unwrap_or(true);
    for (name, value) in params {
        match property(props, name) {
            Some(p) => {
                if let Err(msg) = check_value(p, value) {
                    errors.insert(name.clone(), msg);
                }
            }
            None if !open => {
                errors.insert(
                    name.clone(),
                    "property is not defined in schema and the schema does not allow additional properties".into(),
                );
            }
            None => {}
        }
    }
    if let Some(all) = props.as_object() {
        for (name, p) in all {
            let optional = p.get("optional").and_then(Value::as_u64) == Some(1);
            if !optional && !name.contains("[n]") && !params.contains_key(name) {
                errors.insert(
                    name.clone(),
                    "property is missing and it is not optional".into(),
                );
            }
        }
    }
    errors
}

/// `net0` is described as `net[n]`.
fn property<'a>(props: &'a Value, name: &str) -> Option<&'a Value> {
    props.get(name).or_else(|| {
        let base = name.trim_end_matches(|c: char| c.is_ascii_digit());
        (base.len() < name.len()).then(|| props.get(format!("{base}[n]")))?
    })
}

fn check_value(p: &Value, value: &str) -> Result<(), String> {
    match p["type"].as_str().unwrap_or("string") {
        "boolean" if value != "0" && value != "1" => {
            return Err(format!("type check ('boolean') failed - got '{value}'"));
        }
        "integer" => {
            let n: i64 = value
                .parse()
                .map_err(|_| format!("type check ('integer') failed - got '{value}'"))?;
            if let Some(min) = bound(&p["minimum"]).filter(|m| n < *m) {
                return Err(format!("value must have a minimum value of {min}"));
            }
            if let Some(max) = bound(&p["maximum"]).filter(|m| n > *m) {
                return Err(format!("value must have a maximum value of {max}"));
            }
        }
        _ => {}
    }
    if let Some(options) = p["enum"].as_array()
        && !options.iter().any(|o| o.as_str() == Some(value))
    {
        let all: Vec<&str> = options.iter().filter_map(Value::as_str).collect();
        return Err(format!(
            "value '{value}' does not have a value in the enumeration '{}'",
            all.join(", ")
        ));
    }
    if let Some(max) = p["maxLength"].as_u64().filter(|m| value.len() as u64 > *m) {
        return Err(format!("value may only be {max} characters long"));
    }
    if let Some(keys) = p["format_keys"].as_array() {
        check_keys(keys, value)?;
    }
    match p["format"].as_str() {
        Some("urlencoded") if !value.bytes().all(urlencoded_char) => Err(format!(
            "invalid format - invalid urlencoded string: {value}"
        )),
        Some("pve-tag-list") => check_tags(value),
        _ => Ok(()),
    }
}

/// A property string's `key=value` parts must name keys of its format
/// (the default key's value comes without `key=`).
fn check_keys(keys: &[Value], value: &str) -> Result<(), String> {
    for part in value.split(',').filter(|p| !p.is_empty()) {
        let Some((key, _)) = part.split_once('=') else {
            continue;
        };
        if !keys.iter().any(|k| k.as_str() == Some(key)) {
            return Err(format!(
                "invalid format - format error\n{key}: property is not defined in schema and \
                 the schema does not allow additional properties"
            ));
        }
    }
    Ok(())
}

fn bound(v: &Value) -> Option<i64> {
    v.as_i64().or_else(|| v.as_str()?.parse().ok())
}

fn urlencoded_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-%_.!~*'()".contains(&b)
}

fn check_tags(value: &str) -> Result<(), String> {
    for tag in value.split([';', ',', ' ']).filter(|t| !t.is_empty()) {
        let mut bytes = tag.bytes();
        let first_ok = bytes
            .next()
            .is_some_and(|b| b.is_ascii_alphanumeric() || b == b'_');
        let rest_ok = bytes.all(|b| b.is_ascii_alphanumeric() || b"_-+.".contains(&b));
        if !(first_ok && rest_ok) {
            return Err(format!(
                "invalid format - invalid characters in tag '{tag}'"
            ));
        }
    }
    Ok(())
}

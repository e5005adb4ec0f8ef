//! Serde helpers for fields Proxmox types loosely: integers that arrive as
//! strings (`"memory":"4096"`, `nextid`) and booleans as `0`/`1`.

use serde::{Deserialize, Deserializer};
use serde_json::Value;

/// An integer given as a number or a numeric string.
pub fn int<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    let v = Value::deserialize(d)?;
    as_int(&v).ok_or_else(|| serde::de::Error::custom(format!("expected an integer, got {v}")))
}

/// Like [`int`]; a missing or null field is `None`.
pub fn opt_int<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    match Option::<Value>::deserialize(d)? {
        None | Some(Value::Null) => Ok(None),
        Some(v) => as_int(&v)
            .map(Some)
            .ok_or_else(|| serde::de::Error::custom(format!("expected an integer, got {v}"))),
    }
}

/// A boolean given as `true`/`false`, `0`/`1` or `"0"`/`"1"`; missing is false.
pub fn flag<'de, D: Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    match Option::<Value>::deserialize(d)? {
        None | Some(Value::Null) => Ok(false),
        Some(v) => {
            as_flag(&v).ok_or_else(|| serde::de::Error::custom(format!("expected 0/1, got {v}")))
        }
    }
}

pub fn as_int(v: &Value) -> Option<u64> {
    match v {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

pub fn as_flag(v: &Value) -> Option<bool> {
    match v {
        Value::Bool(b) => Some(*b),
        other => match as_int(other)? {
            0 => Some(false),
            1 => Some(true),
            _ => None,
        },
    }
}

/// A config value as text: strings as they are, numbers printed.
pub fn as_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    #[derive(Deserialize)]
    struct Probe {
        #[serde(deserialize_with = "super::int")]
        memory: u64,
        #[serde(default, deserialize_with = "super::flag")]
        template: bool,
        #[serde(default, deserialize_with = "super::opt_int")]
        pid: Option<u64>,
    }

    #[test]
    fn strings_and_numbers_and_01_are_all_read() {
        for text in [
            r#"{"memory":"4096","template":1,"pid":"12"}"#,
            r#"{"memory":4096,"template":true,"pid":12}"#,
            r#"{"memory":" 4096","template":"1","pid":12}"#,
        ] {
            let p: Probe = serde_json::from_str(text).unwrap();
            assert_eq!(
                (p.memory, p.template, p.pid),
                (4096, true, Some(12)),
                "{text}"
            );
        }
        let p: Probe = serde_json::from_str(r#"{"memory":1}"#).unwrap();
        assert_eq!((p.template, p.pid), (false, None));
        assert!(serde_json::from_str::<Probe>(r#"{"memory":"x"}"#).is_err());
        assert!(serde_json::from_str::<Probe>(r#"{"memory":1,"template":2}"#).is_err());
    }
}

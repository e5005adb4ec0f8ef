//! The JSON Schema (draft 7) of oxbake.toml, made from the serde model the
//! file is read with (see [`crate::recipe::schema`] for why). The targets,
//! read one at a time because `kind` picks their shape, are added from the
//! target settings type itself.

use schemars::generate::SchemaSettings;
use serde_json::{Value, json};

use super::{Config, TargetSettings};

pub fn config_schema() -> Value {
    let mut generator = SchemaSettings::draft07().into_generator();
    let target = generator.subschema_for::<TargetSettings>();
    let mut root: Value = generator.into_root_schema_for::<Config>().into();
    root["title"] = json!("oxbake.toml");
    root["properties"]["targets"] = json!({
        "description": "Where VMs live, by name (`[targets.NAME]`); `kind` picks the settings.",
        "type": "object",
        "additionalProperties": Value::from(target),
    });
    root
}

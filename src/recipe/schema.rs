//! The JSON Schema (draft 7) of a recipe file, made from the serde model the
//! loader reads it with, so it cannot drift from what oxbake accepts: TOML
//! editors that read a `#:schema` line complete and check recipes with it.
//! What the model reads by hand (the steps: `kind` picks a step's shape) is
//! added here from the step type itself; a step's shape refuses keys of
//! other kinds, as the loader does (serde's flatten loses that).

use schemars::generate::SchemaSettings;
use serde_json::{Value, json};

use super::{Recipe, Step};

pub fn recipe_schema() -> Value {
    let mut generator = SchemaSettings::draft07().into_generator();
    let step = generator.subschema_for::<Step>();
    let mut root: Value = generator.into_root_schema_for::<Recipe>().into();
    root["title"] = json!("oxbake recipe");
    root["properties"]["step"] = json!({
        "description": "The bake steps, in order (`[[step]]` tables); `kind` selects what each does.",
        "type": "array",
        "items": Value::from(step),
    });
    close_step_variants(&mut root["definitions"]["Step"]);
    root
}

/// Each `kind`'s shape also takes the step's own keys (`name`, `when`) and
/// no other.
fn close_step_variants(step: &mut Value) {
    let own = step["properties"].as_object().cloned().unwrap_or_default();
    let Some(variants) = step["oneOf"].as_array_mut() else {
        return;
    };
    for variant in variants {
        if let Some(properties) = variant["properties"].as_object_mut() {
            properties.extend(own.clone());
        }
        variant["additionalProperties"] = json!(false);
    }
}

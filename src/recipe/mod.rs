//! Recipes: what a role is made of. `model` holds the format, `load` reads a
//! file, `clean` lists the clean-up operations a recipe selects from (what
//! a recipe means in its project, its validation and inputs, is `role/`).

pub mod clean;
pub mod load;
pub mod model;
pub mod schema;

pub use model::{Action, Check, Deploy, Recipe, Step};

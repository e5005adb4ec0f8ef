//! Recipes: what a role is made of. `model` holds the format, `load` reads a
//! file, `validate` checks a whole project, `inputs` hashes what a role's
//! image depends on.

pub mod load;
pub mod model;

pub use model::{Action, Check, Deploy, Recipe, Step};

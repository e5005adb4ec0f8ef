//! What commands show: the reports of `oxbake ls`, `show` and `ls --target`,
//! as text (aligned tables) and as JSON documents; the one table renderer
//! and the one-line form of an error chain. The CLI prints what these
//! functions return; the registry and the pipeline only hand them data.

mod chain;
pub mod drift;
pub mod images;
pub mod table;

pub use chain::chain;

//! What commands show: the reports of `oxbake ls`, `show` and `ls --target`,
//! as text (aligned tables) and as JSON documents; the one table renderer. The CLI prints what these
//! functions return; the registry and the pipeline only hand them data.

pub mod age;
pub mod deploy;
pub mod drift;
pub mod images;
pub mod inventory;
pub mod nightly;
pub mod sbom;
pub mod table;

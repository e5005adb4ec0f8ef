//! What commands show: the reports of `oxbake ls`, `show` and `ls --target`,
//! as text (aligned tables) and as JSON documents. The CLI prints what these
//! functions return; the registry and the pipeline only hand them data.

pub mod drift;
pub mod images;
pub mod table;

//! What the servers speak and store, as text and values, with no I/O: the one quoting function
//! and validated names ([`sql`]), the server flavours and their statements ([`flavor`]), the
//! percona tables and their rows ([`state`]), and the one judge of "silent" over those rows
//! ([`clock`]).

pub mod clock;
pub mod flavor;
pub mod sql;
pub mod state;

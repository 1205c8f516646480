//! What the servers speak and store, as text and values, without touching a server: the one
//! quoting function and validated names ([`sql`]), the server flavours and their statements
//! ([`flavor`]), what a login may do from `SHOW GRANTS` ([`grants`]), the percona tables and their rows ([`state`]), the cluster-wide pause row ([`pause`]), and the one judge of "silent"
//! over those rows ([`clock`], which also keeps what this node has seen in `[files] state`).

pub mod clock;
pub mod flavor;
pub mod grants;
pub mod pause;
pub mod sql;
pub mod state;

//! What the servers speak and store, as text and values, without touching a server: the one
//! quoting function and validated names ([`sql`]), the server flavours and their statements
//! ([`flavor`]), what a login may do from `SHOW GRANTS` ([`grants`]), the percona tables and their rows ([`state`]), the cluster-wide pause row ([`pause`]), the history of each link ([`history`]), a planned move of a link's replica ([`switchover`]), and the one judge of "silent"
//! over those rows ([`clock`], which also keeps what this node has seen in `[files] state`).

pub mod clock;
pub mod flavor;
pub mod grants;
pub mod history;
pub mod pause;
pub mod sql;
pub mod state;
pub mod switchover;

/// Everything `init` creates: the state table's schema and tables ([`state::init_ddl`]), the
/// cluster-wide pause table and the history table. Every statement is `IF NOT EXISTS`.
pub fn init_ddl() -> Vec<String> {
    let mut v = state::init_ddl();
    v.push(pause::ddl());
    v.push(history::ddl());
    v.push(switchover::ddl());
    v
}

//! The named parts of a run's state ([`super::RunCtx`]): what the run did link by link
//! ([`Book`]), its fences ([`Fencing`]), what it says ([`Notices`]), what waits for its end
//! ([`Pending`]), the policy call under way ([`Call`]), the pause that holds it ([`Pause`]),
//! and which host runs ([`Variant`]: the real one, or a broken one the model checker must
//! catch). Every per-link record is keyed by [`LinkKey`].

use super::{HostMail, fence, output};
use crate::db::clock::Skew;
use crate::db::flavor::ReplicaStatus;
use crate::db::state::{ChannelState, FenceNote, LinkKey, Role};
use crate::exec::Action;
use crate::exec::hook::HookCall;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::{Duration, Instant};

/// What this run did, link by link: the interlocks of the primitives and the rules after the
/// policy read it.
#[derive(Default)]
pub struct Book {
    /// Sources connected this run.
    pub(super) connected: HashMap<LinkKey, String>,
    /// `connect` calls this run.
    pub(super) attempts: HashMap<LinkKey, usize>,
    /// Links whose proposal this node won in this run.
    pub(super) won: HashSet<LinkKey>,
    /// Links whose own row and report were written in this run.
    pub(super) refreshed: HashSet<LinkKey>,
    /// Links where this node has a row.
    pub(super) has_row: HashSet<LinkKey>,
    /// The current source's health, checked once per run on a replica: `Err(why)` when it is
    /// not worth replicating from.
    pub(super) source_check: HashMap<LinkKey, Result<(), String>>,
    /// The sources checked before the links' turns ([`super::phases::check_sources`]): when,
    /// and which address.
    pub(super) checked_early: HashMap<LinkKey, (Instant, String)>,
    /// The links whose report this run wrote, with the channel state it reported.
    pub(super) reported: HashMap<LinkKey, ChannelState>,
    /// When each of those reports was written (by this host's monotonic clock): the daemon's
    /// self-fence counts from there, not from the end of the run.
    pub(super) reported_at: HashMap<LinkKey, Instant>,
    /// This node's role per link as last read or written: a write that changes it runs the
    /// `role-change` hook.
    pub(super) own_roles: HashMap<LinkKey, Role>,
    /// Why this node gave a link up in this run, as recorded for the cluster.
    pub(super) failures: HashMap<LinkKey, String>,
    /// Links this node gave up as `Failed` in this run, with the role it had before (`None`:
    /// it had no row).
    pub(super) failed_from: HashMap<LinkKey, Option<Role>>,
    /// Why this node proposed itself for a link in this run ([`crate::metrics::Cause`]), counted as a
    /// failover when it becomes `Yes`.
    pub(super) takeover_causes: HashMap<LinkKey, crate::metrics::Cause>,
    /// The last state of the channels this run stopped and reset: what a mail's facts show of
    /// a channel that is gone (its last errors above all).
    pub(super) reset_channels: HashMap<LinkKey, ReplicaStatus>,
}

/// The peers this run fenced, what each node's fence record says, and the checks of the
/// peers' fence logins.
#[derive(Default)]
pub struct Fencing {
    /// The peers fenced in this run, by link and host, with the verdict: each is fenced once.
    /// The first peer that holds a link's takeover is what the node's fence record says
    /// ([`super::RunCtx::fence_note_pending`]).
    pub(super) verdicts: BTreeMap<(LinkKey, String), fence::Verdict>,
    /// Each link's fence record as this node last read or wrote it.
    pub(super) notes: HashMap<LinkKey, FenceNote>,
    /// How often the peers' fence logins are checked: every peer each this many seconds (a
    /// daemon: its heartbeat timeout), or `None`: one peer per run, in turn (cron).
    pub checks_every: Option<i64>,
    /// How many peers this run connected to (or tried to) to fence them.
    pub(super) contacts: u64,
    /// Fences that stopped a channel and are not yet counted in a report.
    pub(super) uncounted: HashMap<LinkKey, u64>,
}

/// What the run says: its log of changes, its mail, and what that mail is about.
#[derive(Default)]
pub struct Notices {
    /// What changed, in order, for the end-of-run log line.
    pub events: Vec<String>,
    /// Peers whose clock was newly found skewed in this run.
    pub(super) skews: Vec<Skew>,
    /// Notifications raised by the host, waiting for the policy's `mail` hook.
    pub(super) host_mail: Vec<HostMail>,
    /// What the run has logged and mailed (see [`output`]).
    pub(super) output: output::Output,
    /// The host event whose mail is being sent ([`HostMail::key`]), while the policy's `mail`
    /// hook (or the host in its place) sends it; `None` for the policy's own `notify`.
    pub mail_event: Option<String>,
    /// Each link's condition as last read: its holder and source, or none. A new condition
    /// starts a new outage for the mail rule of [`output`].
    pub(super) conditions: HashMap<LinkKey, String>,
}

/// What waits for the end of the run: the operator's hooks and the history.
#[derive(Default)]
pub struct Pending {
    /// The hooks raised in this run.
    pub(super) hooks: Vec<HookCall>,
    /// What happened in this run, for the history.
    pub(super) history: Vec<Action>,
}

/// The policy call under way, and what the run asked the policy.
#[derive(Default)]
pub struct Call {
    /// Whether the policy's `manage_link` is running: only then may a primitive change
    /// anything (not from `silent_after` or `mail`, which also run on a paused node).
    pub(super) in_manage_link: bool,
    /// The link whose policy call or hook runs now: mail is counted against it.
    pub current_link: Option<LinkKey>,
    /// The end of the current policy call, if one runs.
    pub(super) deadline: Option<Instant>,
    /// The current policy call's time limit.
    pub(super) limit: Duration,
    /// Whether this run asked the policy's `silent_after` (see [`super::run_links`]).
    pub(super) threshold_asked: bool,
}

/// What pauses this run, if anything: the node then only reports.
#[derive(Default)]
pub struct Pause {
    /// When the pause file appeared (Unix time), while it exists.
    pub since: Option<i64>,
    /// The cluster's pause row, when that is what pauses this run.
    pub cluster: Option<crate::db::pause::ClusterPause>,
}

/// Which host runs. Always the real one ([`Variant::default`]), but for the model checker,
/// which turns parts off that are not what it checks, or breaks the host on purpose to show
/// that it then finds the fault.
pub struct Variant {
    /// Whether the claim's re-checks run: `connect` and the move to `Yes` refuse while another
    /// node holds the link. Only the checker's broken host without the claim
    /// (`check::node::Mutant::NoClaim`) turns it off.
    pub claim: bool,
    /// Whether a fence that failed counts as done (the takeover goes on). Only the checker's
    /// broken host (`check::node::Mutant::FenceFailsOpen`) turns it on.
    pub fence_fails_open: bool,
    /// Whether a mail's subject and body get the link's facts ([`super::facts`]), read when
    /// it is sent. The checker turns it off: mail is not what it checks, and every read is a
    /// step of its model.
    pub mail_facts: bool,
    /// Whether the run writes what happened to `percona.replication_history`
    /// ([`crate::db::history`]). The checker turns it off: nothing reads the history to
    /// decide, and every write is a step of its model.
    pub history: bool,
}

impl Default for Variant {
    /// The real host.
    fn default() -> Variant {
        Variant {
            claim: true,
            fence_fails_open: false,
            mail_facts: true,
            history: true,
        }
    }
}

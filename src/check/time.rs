//! Time as the policy sees it. A rule (the host's or the policy's) compares an age with a
//! threshold: `[timeouts]`, `silent_after`, `failed_clears_after`, a number written in the
//! policy. Two ages that answer every such comparison alike are alike to every rule, so the
//! model need not tell them apart: between two thresholds, time can pass in one step.
//!
//! The world's time runs in ticks ([`Clock`]): one second at a threshold and the second
//! after it, at most two ticks across a longer gap; runs read seconds. While anything changes
//! time advances one tick at a time. Once a whole round of runs has changed nothing but the
//! ages it refreshes (a heartbeat), the next round would do the same, and so would every
//! round until some age reaches a threshold: time then passes in one step up to the tick
//! before the nearest threshold (see `World::room` in the world module). A comparison with an hour is reachable in a few steps,
//! and a longer timeout is never confused with "never".

use std::collections::BTreeSet;

/// The thresholds ages are compared with, in seconds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Thresholds {
    values: Vec<i64>,
}

impl Thresholds {
    /// From every time a rule may compare an age with; values below 2 are left out (an age
    /// of 0 or 1 s is what a node that just ran shows).
    pub fn new(values: impl IntoIterator<Item = i64>) -> Thresholds {
        let set: BTreeSet<i64> = values.into_iter().filter(|v| *v >= 2).collect();
        Thresholds {
            values: set.into_iter().collect(),
        }
    }

    pub fn values(&self) -> &[i64] {
        &self.values
    }

    /// The longest threshold (0 when there is none).
    pub fn longest(&self) -> i64 {
        self.values.last().copied().unwrap_or(0)
    }

    /// Ages at or beyond this are alike to every rule: the model caps them here.
    pub fn cap(&self) -> i64 {
        self.longest() + 2
    }

    /// The class of an age: how many thresholds it has reached, and how many it has passed.
    /// Ages of one class answer `age >= t`, `age > t` (and their negations) alike for every
    /// threshold `t`.
    pub fn class(&self, age: i64) -> (usize, usize) {
        let reached = self.values.partition_point(|t| *t <= age);
        let passed = self.values.partition_point(|t| *t < age);
        (reached, passed)
    }

    /// How many seconds an age can grow and stay in its class; `None` when it never leaves it
    /// (it has passed every threshold).
    pub fn room(&self, age: i64) -> Option<i64> {
        // The class changes when the age reaches a threshold, and again one second later
        // when it passes it.
        let next = self
            .values
            .iter()
            .flat_map(|t| [*t, *t + 1])
            .filter(|x| *x > age)
            .min()?;
        Some(next - 1 - age)
    }
}

/// The model's clock: ticks, mapped to the seconds every rule reads. At each threshold `c` a
/// tick is one second (`c` and `c + 1` are ticks of their own: `age >= c` and `age > c`
/// turn true there); a longer gap
/// between two thresholds takes [`Clock::GAP`] ticks, its seconds spread evenly over them. So
/// the model's size does not grow with the length of a timeout, and every comparison with a
/// threshold answers as it would in seconds, in the same order for every age.
#[derive(Clone, Debug)]
pub struct Clock {
    /// (tick, second), both increasing, from (0, 0).
    knots: Vec<(i64, i64)>,
    /// The thresholds in seconds.
    pub seconds: Thresholds,
    /// The thresholds in ticks: what the model's own comparisons and time steps use.
    pub ticks: Thresholds,
}

impl Clock {
    /// The ticks a gap between two thresholds takes, at most: two rounds of runs, so that a
    /// node that ran in the last round is never as old as the first threshold.
    pub const GAP: i64 = 2;

    pub fn new(seconds: Thresholds) -> Clock {
        let mut points: BTreeSet<i64> = BTreeSet::from([0]);
        for c in seconds.values() {
            points.extend([*c, c + 1]);
        }
        let mut knots: Vec<(i64, i64)> = Vec::new();
        for p in points {
            let t = match knots.last() {
                None => 0,
                Some((t, s)) => t + (p - s).min(Self::GAP),
            };
            knots.push((t, p));
        }
        let ticks = Thresholds::new(
            seconds
                .values()
                .iter()
                .map(|c| knots.iter().find(|(_, s)| s == c).map_or(*c, |(t, _)| *t)),
        );
        Clock {
            knots,
            seconds,
            ticks,
        }
    }

    /// An age in ticks, in seconds.
    pub fn secs(&self, t: i64) -> i64 {
        let t = t.max(0);
        let i = self.knots.partition_point(|(k, _)| *k <= t) - 1;
        let (t0, s0) = self.knots[i];
        match self.knots.get(i + 1) {
            Some((t1, s1)) => s0 + (t - t0) * (s1 - s0) / (t1 - t0),
            None => s0 + (t - t0),
        }
    }

    /// An age in seconds, in ticks: the first tick that is at least that old.
    pub fn ticks(&self, s: i64) -> i64 {
        let s = s.max(0);
        let i = self.knots.partition_point(|(_, k)| *k <= s) - 1;
        let (t0, s0) = self.knots[i];
        match self.knots.get(i + 1) {
            Some((t1, s1)) => t0 + ((s - s0) * (t1 - t0) + (s1 - s0) - 1) / (s1 - s0),
            None => t0 + (s - s0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_long_gap_takes_two_ticks_and_each_threshold_and_the_second_after_it_one() {
        let c = Clock::new(Thresholds::new([179, 180, 3600]));
        let secs: Vec<i64> = (0..10).map(|t| c.secs(t)).collect();
        assert_eq!(secs, [0, 89, 179, 180, 181, 1890, 3600, 3601, 3602, 3603]);
        assert_eq!(c.ticks.values(), [2, 3, 6]);
        for (t, s) in secs.iter().enumerate() {
            assert_eq!(c.ticks(*s), t as i64, "{s} s");
        }
        assert_eq!(c.ticks(60), 1, "the first tick at least 60 s old");
    }

    #[test]
    fn short_thresholds_keep_one_tick_per_second() {
        let c = Clock::new(Thresholds::new([2, 3]));
        assert!((0..10).all(|t| c.secs(t) == t && c.ticks(t) == t));
        assert_eq!(c.ticks.values(), [2, 3]);
    }

    #[test]
    fn ages_between_two_thresholds_are_one_class_and_the_threshold_itself_is_its_own() {
        let t = Thresholds::new([1, 18, 3600]);
        assert_eq!(t.values(), [18, 3600], "1 s is not a threshold");
        assert_eq!(t.class(0), t.class(17));
        assert_ne!(t.class(17), t.class(18));
        assert_ne!(t.class(18), t.class(19));
        assert_eq!(t.class(19), t.class(3599));
        assert_ne!(t.class(3599), t.class(3600));
        assert_eq!(t.class(3601), t.class(1_000_000));
        assert_eq!(t.cap(), 3602);
    }

    #[test]
    fn room_is_the_time_to_the_second_before_the_class_changes() {
        let t = Thresholds::new([18, 3600]);
        assert_eq!(t.room(1), Some(16), "1 + 16 = 17, the last second below 18");
        assert_eq!(t.room(17), Some(0), "the next second reaches 18");
        assert_eq!(t.room(18), Some(0), "the next second passes 18");
        assert_eq!(t.room(19), Some(3580));
        assert_eq!(t.room(3601), None);
    }
}

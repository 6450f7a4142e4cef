//! The verdict of a playbook or a batch and the exit code each maps to (the README's table);
//! the error payload of "we could not tell" (inconclusive). How a run earns its verdict is
//! `proof`'s.

use rhai::EvalAltResult;

/// What happened to a playbook, from best to worst.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Verdict {
    /// Every expectation held: exit code 0.
    Passed,
    /// `--dry-run`: nothing was injected and no expectation was evaluated: exit code 0.
    DryRun,
    /// An expectation failed: exit code 1.
    Failed,
    /// We could not tell: a fault never took effect (selected no pod, never reached
    /// injected), or a recovery was timed without the disruption ever being observed: exit code 5.
    Inconclusive,
    /// Usage error or invalid playbook; nothing was run: exit code 2.
    Invalid,
    /// Script error, API error or timeout: exit code 3.
    Error,
    /// Interrupted by Ctrl-C or SIGTERM (after cleanup): exit code 130.
    Interrupted,
    /// Cleanup could not remove everything the run created: exit code 4.
    CleanupIncomplete,
    /// Not run: another run holds the cluster's lease (past `--lock-wait`), or the cluster is
    /// frozen (`playbook freeze`); nothing was injected: exit code 6.
    Refused,
}

impl Verdict {
    /// The process exit code.
    pub fn exit_code(self) -> u8 {
        match self {
            Verdict::Passed | Verdict::DryRun => 0,
            Verdict::Failed => 1,
            Verdict::Invalid => 2,
            Verdict::Error => 3,
            Verdict::CleanupIncomplete => 4,
            Verdict::Inconclusive => 5,
            Verdict::Interrupted => 130,
            Verdict::Refused => 6,
        }
    }

    /// In a batch the most severe wins: 4, 130, 3, 2, 5, 1, 0 (dry run), 0 (6, refused, stands
    /// alone: nothing ran).
    fn severity(self) -> u8 {
        match self {
            Verdict::Passed => 0,
            Verdict::DryRun => 1,
            Verdict::Failed => 2,
            Verdict::Inconclusive => 3,
            Verdict::Invalid | Verdict::Refused => 4,
            Verdict::Error => 5,
            Verdict::Interrupted => 6,
            Verdict::CleanupIncomplete => 7,
        }
    }

    /// The more severe of two verdicts.
    pub fn worst(self, other: Verdict) -> Verdict {
        if other.severity() > self.severity() {
            other
        } else {
            self
        }
    }

    /// A word for tables and summaries.
    pub fn word(self) -> &'static str {
        match self {
            Verdict::Passed => "passed",
            Verdict::DryRun => "dry run (not evaluated)",
            Verdict::Failed => "failed",
            Verdict::Inconclusive => "inconclusive",
            Verdict::Invalid => "invalid",
            Verdict::Error => "error",
            Verdict::Interrupted => "interrupted",
            Verdict::CleanupIncomplete => "cleanup incomplete",
            Verdict::Refused => "refused (locked or frozen)",
        }
    }
}

/// The error payload of "we could not tell" (a fault that never took effect, a disruption never
/// observed): the playbook's verdict is inconclusive (exit code 5), and cleanup runs.
#[derive(Debug, Clone, PartialEq)]
pub struct Inconclusive {
    pub message: String,
}

/// The error that makes a playbook inconclusive, at `pos`.
pub fn inconclusive(message: impl Into<String>, pos: rhai::Position) -> Box<EvalAltResult> {
    EvalAltResult::ErrorRuntime(
        rhai::Dynamic::from(Inconclusive {
            message: message.into(),
        }),
        pos,
    )
    .into()
}

#[cfg(test)]
mod tests {
    use super::Verdict::*;

    #[test]
    fn the_most_severe_wins_in_the_readme_order() {
        let order = [
            Passed,
            DryRun,
            Failed,
            Inconclusive,
            Invalid,
            Error,
            Interrupted,
            CleanupIncomplete,
        ];
        for (i, a) in order.iter().enumerate() {
            for b in &order[i..] {
                assert_eq!(a.worst(*b), *b);
                assert_eq!(b.worst(*a), *b);
            }
        }
        assert_eq!(Interrupted.exit_code(), 130);
        assert_eq!(CleanupIncomplete.exit_code(), 4);
        assert_eq!(Inconclusive.exit_code(), 5);
        assert_eq!(DryRun.exit_code(), 0);
    }
}

//! The verdict of a playbook or a batch, and the exit code each maps to (the README's table).

/// What happened to a playbook, from best to worst.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Verdict {
    /// Every expectation held: exit code 0.
    Passed,
    /// An expectation failed: exit code 1.
    Failed,
    /// Usage error or invalid playbook; nothing was run: exit code 2.
    Invalid,
    /// Script error, API error or timeout: exit code 3.
    Error,
    /// Interrupted by Ctrl-C or SIGTERM (after cleanup): exit code 130.
    Interrupted,
    /// Cleanup could not remove everything the run created: exit code 4.
    CleanupIncomplete,
}

impl Verdict {
    /// The process exit code.
    pub fn exit_code(self) -> u8 {
        match self {
            Verdict::Passed => 0,
            Verdict::Failed => 1,
            Verdict::Invalid => 2,
            Verdict::Error => 3,
            Verdict::CleanupIncomplete => 4,
            Verdict::Interrupted => 130,
        }
    }

    /// In a batch the most severe wins: 4, 130, 3, 2, 1, 0.
    fn severity(self) -> u8 {
        match self {
            Verdict::Passed => 0,
            Verdict::Failed => 1,
            Verdict::Invalid => 2,
            Verdict::Error => 3,
            Verdict::Interrupted => 4,
            Verdict::CleanupIncomplete => 5,
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
            Verdict::Failed => "failed",
            Verdict::Invalid => "invalid",
            Verdict::Error => "error",
            Verdict::Interrupted => "interrupted",
            Verdict::CleanupIncomplete => "cleanup incomplete",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Verdict::*;

    #[test]
    fn the_most_severe_wins_in_the_readme_order() {
        let order = [
            Passed,
            Failed,
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
    }
}

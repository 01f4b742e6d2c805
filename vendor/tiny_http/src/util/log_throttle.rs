//! remit patch: a failure that repeats many times a second (every accept failing while the
//! process is out of open files) is logged at most once per period, with how many were left out.

use std::time::{Duration, Instant};

/// Says which of a run of failures to log.
pub(crate) struct LogThrottle {
    every: Duration,
    logged_at: Option<Instant>,
    left_out: u64,
}

impl LogThrottle {
    pub(crate) fn new(every: Duration) -> LogThrottle {
        LogThrottle {
            every,
            logged_at: None,
            left_out: 0,
        }
    }

    /// A failure at `now`: `Some(left out since the last line)` when it is to be logged,
    /// `None` when it is only counted.
    pub(crate) fn failed(&mut self, now: Instant) -> Option<u64> {
        if self
            .logged_at
            .is_some_and(|at| now.saturating_duration_since(at) < self.every)
        {
            self.left_out += 1;
            return None;
        }
        self.logged_at = Some(now);
        Some(std::mem::take(&mut self.left_out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_failure_is_logged_then_one_a_period_with_the_count_left_out() {
        let start = Instant::now();
        let mut throttle = LogThrottle::new(Duration::from_secs(10));
        assert_eq!(throttle.failed(start), Some(0));
        // A hundred a second for ten seconds: none logged until the period is over.
        let logged: Vec<_> = (1..1000)
            .filter_map(|i| throttle.failed(start + Duration::from_millis(10 * i)))
            .collect();
        assert!(logged.is_empty(), "{:?}", logged);
        assert_eq!(throttle.failed(start + Duration::from_secs(10)), Some(999));
        assert_eq!(throttle.failed(start + Duration::from_secs(11)), None);
        assert_eq!(throttle.failed(start + Duration::from_secs(25)), Some(1));
    }
}

//! Time as the controllers see it. Grace periods (`appear_grace`, `tag_grace`) and how long a
//! resource has been reconciling are measured against this clock, so tests can move time
//! forward instead of sleeping (Karpenter's `clock.Clock` is the model).

use std::sync::Mutex;
use std::time::Duration;

use k8s_openapi::jiff::{SignedDuration, Timestamp};

pub trait Clock: Send + Sync {
    fn now(&self) -> Timestamp;
}

/// The system's wall clock: the one to compare with timestamps the API server writes.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        Timestamp::now()
    }
}

/// A clock that moves only when told to.
#[derive(Debug)]
pub struct ManualClock {
    now: Mutex<Timestamp>,
}

impl ManualClock {
    pub fn new(start: Timestamp) -> Self {
        Self {
            now: Mutex::new(start),
        }
    }

    /// Starts at the current wall-clock time, so API-server timestamps (creation, deletion)
    /// compare sensibly with it.
    pub fn starting_now() -> Self {
        Self::new(Timestamp::now())
    }

    pub fn advance(&self, by: Duration) {
        let mut now = self.now.lock().unwrap_or_else(|e| e.into_inner());
        let by = SignedDuration::try_from(by).expect("a test advances by less than 292 years");
        *now = now
            .checked_add(by)
            .expect("the clock stays within jiff's range");
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Timestamp {
        *self.now.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manual_clock_moves_only_when_advanced() {
        let start = Timestamp::from_second(1_700_000_000).unwrap();
        let clock = ManualClock::new(start);
        assert_eq!(clock.now(), start);
        clock.advance(Duration::from_secs(61));
        assert_eq!(clock.now().duration_since(start).as_secs(), 61);
    }
}

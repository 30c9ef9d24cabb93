//! Timed state changes, kept in a min-heap and applied lazily: every request first applies
//! what is due by the real clock, so no background task and no polling are needed.

use std::cmp::Ordering;
use std::collections::BinaryHeap;
use std::time::Instant;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// PENDING → RUNNING, or LAUNCH_FAILED when a launch failure was queued for it.
    FinishLaunch,
    AssignPublicIp,
    /// TERMINATING → gone.
    Disappear,
    /// The end of the asynchronous operation with this number (see `operation.rs`).
    FinishOperation(u64),
}

#[derive(Debug, PartialEq, Eq)]
struct Due {
    at: Instant,
    order: u64,
    instance_id: String,
    event: Event,
}

impl Ord for Due {
    fn cmp(&self, other: &Self) -> Ordering {
        // Reversed so BinaryHeap (a max-heap) pops the earliest first.
        (other.at, other.order).cmp(&(self.at, self.order))
    }
}

impl PartialOrd for Due {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

#[derive(Debug, Default)]
pub struct Schedule {
    heap: BinaryHeap<Due>,
    order: u64,
}

impl Schedule {
    pub fn push(&mut self, at: Instant, instance_id: &str, event: Event) {
        self.order += 1;
        self.heap.push(Due {
            at,
            order: self.order,
            instance_id: instance_id.to_string(),
            event,
        });
    }

    /// The earliest event due at or before `now`, with the time it was due.
    pub fn pop_due(&mut self, now: Instant) -> Option<(Instant, String, Event)> {
        if self.heap.peek()?.at > now {
            return None;
        }
        self.heap.pop().map(|d| (d.at, d.instance_id, d.event))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn events_come_out_in_time_order_and_only_when_due() {
        let mut s = Schedule::default();
        let t0 = Instant::now();
        s.push(t0 + Duration::from_secs(2), "b", Event::Disappear);
        s.push(t0 + Duration::from_secs(1), "a", Event::FinishLaunch);
        s.push(t0 + Duration::from_secs(1), "c", Event::AssignPublicIp);
        assert!(s.pop_due(t0).is_none());
        let (_, id, _) = s.pop_due(t0 + Duration::from_secs(1)).unwrap();
        assert_eq!(id, "a");
        let (_, id, _) = s.pop_due(t0 + Duration::from_secs(1)).unwrap();
        assert_eq!(id, "c");
        assert!(s.pop_due(t0 + Duration::from_secs(1)).is_none());
        assert_eq!(
            s.pop_due(t0 + Duration::from_secs(5)).unwrap().2,
            Event::Disappear
        );
    }
}

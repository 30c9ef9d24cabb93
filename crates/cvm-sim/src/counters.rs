//! Calls per action and outcome (`Success` or the error code), for tests and benchmarks.

use std::collections::BTreeMap;

use serde::Serialize;

pub const SUCCESS: &str = "Success";

#[derive(Debug, Default, Clone, Serialize)]
pub struct Counters {
    pub calls: BTreeMap<String, BTreeMap<String, u64>>,
}

impl Counters {
    pub fn record(&mut self, action: &str, outcome: &str) {
        // Avoid allocating on the hot path once the pair exists.
        if let Some(per_action) = self.calls.get_mut(action) {
            if let Some(n) = per_action.get_mut(outcome) {
                *n += 1;
                return;
            }
            per_action.insert(outcome.to_string(), 1);
            return;
        }
        self.calls.insert(
            action.to_string(),
            BTreeMap::from([(outcome.to_string(), 1)]),
        );
    }

    pub fn reset(&mut self) {
        self.calls.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_per_action_and_outcome() {
        let mut c = Counters::default();
        c.record("RunInstances", SUCCESS);
        c.record("RunInstances", SUCCESS);
        c.record("RunInstances", "RequestLimitExceeded");
        assert_eq!(c.calls["RunInstances"][SUCCESS], 2);
        assert_eq!(c.calls["RunInstances"]["RequestLimitExceeded"], 1);
        c.reset();
        assert!(c.calls.is_empty());
    }
}

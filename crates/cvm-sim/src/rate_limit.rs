//! Per-account, per-action token buckets, as Tencent limits each API per sub-account.

use std::collections::HashMap;
use std::time::Instant;

#[derive(Debug)]
struct Bucket {
    tokens: f64,
    last: Instant,
}

#[derive(Debug, Default)]
pub struct RateLimiter {
    /// Requests per second per action; 0 or absent means unlimited.
    limits: HashMap<String, u32>,
    buckets: HashMap<(String, String), Bucket>,
}

impl RateLimiter {
    pub fn new(limits: HashMap<String, u32>) -> Self {
        Self {
            limits,
            buckets: HashMap::new(),
        }
    }

    /// Replaces the limits of the named actions and starts their buckets afresh.
    pub fn set_limits(&mut self, limits: HashMap<String, u32>) {
        for (action, limit) in limits {
            self.buckets.retain(|(_, a), _| *a != action);
            self.limits.insert(action, limit);
        }
    }

    pub fn limits(&self) -> &HashMap<String, u32> {
        &self.limits
    }

    /// Takes one token; `false` means the request is over the limit.
    pub fn try_acquire(&mut self, account: &str, action: &str, now: Instant) -> bool {
        let limit = match self.limits.get(action) {
            Some(&l) if l > 0 => f64::from(l),
            _ => return true,
        };
        // The bucket holds one second's worth, so a burst of `limit` passes and no more.
        let bucket = self
            .buckets
            .entry((account.to_string(), action.to_string()))
            .or_insert(Bucket {
                tokens: limit,
                last: now,
            });
        let elapsed = now.saturating_duration_since(bucket.last).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * limit).min(limit);
        bucket.last = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn limiter(limit: u32) -> RateLimiter {
        RateLimiter::new(HashMap::from([("RunInstances".to_string(), limit)]))
    }

    #[test]
    fn burst_of_limit_passes_then_refills_with_time() {
        let mut rl = limiter(10);
        let t0 = Instant::now();
        for _ in 0..10 {
            assert!(rl.try_acquire("a", "RunInstances", t0));
        }
        assert!(!rl.try_acquire("a", "RunInstances", t0));
        assert!(!rl.try_acquire("a", "RunInstances", t0 + Duration::from_millis(50)));
        assert!(rl.try_acquire("a", "RunInstances", t0 + Duration::from_millis(150)));
    }

    #[test]
    fn accounts_and_actions_have_separate_buckets_and_zero_is_unlimited() {
        let mut rl = limiter(1);
        let t0 = Instant::now();
        assert!(rl.try_acquire("a", "RunInstances", t0));
        assert!(!rl.try_acquire("a", "RunInstances", t0));
        assert!(rl.try_acquire("b", "RunInstances", t0));
        for _ in 0..1000 {
            assert!(rl.try_acquire("a", "DescribeInstances", t0));
        }
        rl.set_limits(HashMap::from([("RunInstances".to_string(), 0)]));
        for _ in 0..1000 {
            assert!(rl.try_acquire("a", "RunInstances", t0));
        }
    }
}

//! Client-side rate limits per action, so the operator itself never causes `RequestLimitExceeded`.
//!
//! Tencent states its limits as "N requests per second". A token bucket with burst N lets
//! almost 2N through in the first second (a full bucket plus its refill), which a server
//! that counts per window rejects. So each action gets a sliding window instead: at most N
//! requests start in any window, which a token-bucket server (burst N) and a fixed-window
//! server both accept, at the same long-run rate.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use rand::Rng;

use super::config::RateLimits;

/// The pure scheduling of one action's limit: who may send when. Time is passed in.
#[derive(Debug)]
pub struct SlidingWindow {
    limit: usize,
    window: Duration,
    /// Start times granted so far, oldest first, at most `limit` of them.
    granted: VecDeque<Instant>,
    paused_until: Option<Instant>,
}

impl SlidingWindow {
    pub fn new(limit: u32, window: Duration) -> Self {
        let limit = limit.max(1) as usize;
        Self {
            limit,
            window,
            granted: VecDeque::with_capacity(limit),
            paused_until: None,
        }
    }

    /// Reserves the earliest start time at or after `now` that keeps at most `limit`
    /// starts in any window, and returns it. The caller must wait until then.
    ///
    /// Reserving (rather than polling) keeps callers in arrival order and costs one lock.
    pub fn reserve(&mut self, now: Instant) -> Instant {
        let mut start = now;
        if let Some(paused) = self.paused_until {
            start = start.max(paused);
        }
        if let Some(&last) = self.granted.back() {
            // Keep the queue sorted so its front is the oldest start.
            start = start.max(last);
        }
        if self.granted.len() == self.limit {
            let oldest = self.granted.pop_front().expect("limit is at least 1");
            start = start.max(oldest + self.window);
        }
        self.granted.push_back(start);
        start
    }

    /// Stops granting starts before `until` (after the server said we are over the limit).
    pub fn pause_until(&mut self, until: Instant) {
        self.paused_until = Some(self.paused_until.map_or(until, |p| p.max(until)));
    }

    /// Whether a pause that began after a start was granted still covers `now`.
    pub fn is_paused(&self, now: Instant) -> bool {
        self.paused_until.is_some_and(|p| p > now)
    }
}

/// The limits of one client: a [`SlidingWindow`] per action, created on first use.
#[derive(Debug)]
pub struct RateLimiter {
    limits: RateLimits,
    windows: Mutex<HashMap<String, SlidingWindow>>,
}

impl RateLimiter {
    pub fn new(limits: RateLimits) -> Self {
        Self {
            limits,
            windows: Mutex::new(HashMap::new()),
        }
    }

    fn with_window<T>(&self, action: &str, f: impl FnOnce(&mut SlidingWindow) -> T) -> T {
        let mut windows = self.windows.lock().unwrap_or_else(|e| e.into_inner());
        if !windows.contains_key(action) {
            let window = SlidingWindow::new(self.limits.for_action(action), self.limits.window);
            windows.insert(action.to_string(), window);
        }
        f(windows.get_mut(action).expect("inserted above"))
    }

    /// Waits until `action` may be sent; returns how long that took.
    pub async fn acquire(&self, action: &str) -> Duration {
        let began = Instant::now();
        loop {
            let start = self.with_window(action, |w| w.reserve(Instant::now()));
            tokio::time::sleep_until(start.into()).await;
            // A pause that began while we slept (another call was throttled) applies to us too;
            // the reservation is given up, which only ever errs on the slow side.
            if !self.with_window(action, |w| w.is_paused(Instant::now())) {
                return began.elapsed();
            }
        }
    }

    /// Called after `RequestLimitExceeded`: every caller of `action` waits a jittered pause,
    /// so the throttled callers do not come back all at once.
    pub fn throttled(&self, action: &str) {
        let base = self.limits.throttled_pause;
        let pause = base + base.mul_f64(rand::rng().random::<f64>());
        self.with_window(action, |w| w.pause_until(Instant::now() + pause));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECOND: Duration = Duration::from_secs(1);

    /// The largest number of starts inside any half-open window of length `window`.
    fn max_in_any_window(starts: &[Instant], window: Duration) -> usize {
        starts
            .iter()
            .map(|&s| starts.iter().filter(|&&t| t >= s && t < s + window).count())
            .max()
            .unwrap_or(0)
    }

    #[test]
    fn first_burst_goes_at_once_then_waits_a_window() {
        let t0 = Instant::now();
        let mut w = SlidingWindow::new(10, SECOND);
        let starts: Vec<Instant> = (0..10).map(|_| w.reserve(t0)).collect();
        assert!(starts.iter().all(|&s| s == t0));
        assert_eq!(w.reserve(t0), t0 + SECOND);
    }

    #[test]
    fn never_more_than_limit_in_any_window_under_load() {
        let t0 = Instant::now();
        let mut w = SlidingWindow::new(10, SECOND);
        // 100 callers arriving every 7 ms, faster than the limit allows.
        let starts: Vec<Instant> = (0..100)
            .map(|i| w.reserve(t0 + Duration::from_millis(7 * i)))
            .collect();
        assert_eq!(max_in_any_window(&starts, SECOND), 10);
        // The long-run rate is the limit: the first ten go as they arrive (0..63 ms), and each
        // later one exactly a window after the one ten places before it.
        assert_eq!(starts[9], t0 + Duration::from_millis(63));
        assert_eq!(starts[99], t0 + 9 * SECOND + Duration::from_millis(63));
        // Starts never go backwards and never precede their caller's arrival.
        for (i, pair) in starts.windows(2).enumerate() {
            assert!(pair[0] <= pair[1], "out of order at {i}");
        }
    }

    #[test]
    fn idle_callers_are_not_delayed() {
        let t0 = Instant::now();
        let mut w = SlidingWindow::new(2, SECOND);
        for i in 0..5 {
            let now = t0 + i * 2 * SECOND;
            assert_eq!(w.reserve(now), now);
        }
    }

    #[test]
    fn pause_delays_everyone_then_resumes_within_limit() {
        let t0 = Instant::now();
        let mut w = SlidingWindow::new(3, SECOND);
        w.reserve(t0);
        w.pause_until(t0 + 2 * SECOND);
        assert!(w.is_paused(t0 + SECOND));
        assert!(!w.is_paused(t0 + 2 * SECOND));
        let starts: Vec<Instant> = (0..6).map(|_| w.reserve(t0 + SECOND)).collect();
        assert!(starts.iter().all(|&s| s >= t0 + 2 * SECOND));
        assert_eq!(max_in_any_window(&starts, SECOND), 3);
        // A shorter pause never shortens a longer one.
        w.pause_until(t0 + SECOND);
        assert!(w.is_paused(t0 + SECOND + Duration::from_millis(500)));
    }

    #[tokio::test]
    async fn limiter_acquire_is_immediate_within_limit() {
        let limiter = RateLimiter::new(RateLimits {
            describe_instances: 5,
            ..Default::default()
        });
        for _ in 0..5 {
            assert!(limiter.acquire("DescribeInstances").await < Duration::from_millis(50));
        }
        // Other actions have their own windows.
        assert!(limiter.acquire("RunInstances").await < Duration::from_millis(50));
    }

    #[tokio::test]
    async fn limiter_acquire_waits_for_the_window() {
        let limiter = RateLimiter::new(RateLimits {
            run_instances: 2,
            window: Duration::from_millis(200),
            ..Default::default()
        });
        limiter.acquire("RunInstances").await;
        limiter.acquire("RunInstances").await;
        let waited = limiter.acquire("RunInstances").await;
        assert!(waited >= Duration::from_millis(150), "{waited:?}");
    }
}

//! Settings of the CVM client and the hook through which it reports what it does.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

/// Receives one report per HTTP attempt and per rate-limit wait, for metrics.
///
/// Called on the request path: implementations must be cheap and must not block.
pub trait ApiObserver: Send + Sync {
    /// `outcome` is `"Success"` or the error code (`ClientError.*` for failures on our side).
    fn api_call(&self, _action: &str, _outcome: &str, _elapsed: Duration) {}
    /// A call waited `waited` for the action's rate limit before it was sent.
    fn rate_limit_wait(&self, _action: &str, _waited: Duration) {}
}

/// The observer used when none is configured.
#[derive(Debug, Default)]
pub struct NoopObserver;

impl ApiObserver for NoopObserver {}

/// Requests per window for each action; Tencent's defaults (reference §6).
///
/// A limit applies per action, region and sub-account, so each (credentials, region) client
/// holds its own limiters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RateLimits {
    pub run_instances: u32,
    pub describe_instances: u32,
    pub describe_instances_status: u32,
    pub terminate_instances: u32,
    /// Any other action (Start/Stop/Modify... are 10/s).
    pub other: u32,
    /// The window the limits count in. Slightly over a second, so that network jitter cannot
    /// squeeze a window's worth of requests into less than a second on Tencent's side.
    pub window: Duration,
    /// How long an action pauses after `RequestLimitExceeded` (someone else uses the quota);
    /// the real pause is jittered between this and twice this.
    pub throttled_pause: Duration,
}

impl Default for RateLimits {
    fn default() -> Self {
        Self {
            run_instances: 10,
            describe_instances: 40,
            describe_instances_status: 40,
            terminate_instances: 10,
            other: 10,
            window: Duration::from_millis(1050),
            throttled_pause: Duration::from_secs(1),
        }
    }
}

impl RateLimits {
    /// The limit for `action`; at least 1 so a zero in the configuration cannot stall calls forever.
    pub fn for_action(&self, action: &str) -> u32 {
        let limit = match action {
            "RunInstances" => self.run_instances,
            "DescribeInstances" => self.describe_instances,
            "DescribeInstancesStatus" => self.describe_instances_status,
            "TerminateInstances" => self.terminate_instances,
            _ => self.other,
        };
        limit.max(1)
    }
}

/// Settings shared by every client of a [`super::ClientPool`].
#[derive(Clone)]
pub struct ClientConfig {
    /// Replaces the regional endpoint `https://cvm.<region>.tencentcloudapi.com/`, e.g.
    /// `https://cvm.intl.tencentcloudapi.com/` or the simulator at `http://127.0.0.1:PORT`.
    /// Plain HTTP is accepted only for loopback addresses.
    pub endpoint: Option<String>,
    pub rate_limits: RateLimits,
    /// Coalesce concurrent lookups and terminations into calls of up to 100 IDs.
    pub batching: bool,
    /// How long a batch collects callers before it is sent (sooner when full).
    pub batch_window: Duration,
    /// Retries after the first attempt, for rate limits and transient errors only.
    pub max_retries: u32,
    /// The first retry waits up to this long; each later one up to twice as long.
    pub base_backoff: Duration,
    pub max_backoff: Duration,
    /// Timeout of one HTTP attempt.
    pub request_timeout: Duration,
    pub observer: Option<Arc<dyn ApiObserver>>,
}

impl Default for ClientConfig {
    fn default() -> Self {
        Self {
            endpoint: None,
            rate_limits: RateLimits::default(),
            batching: true,
            batch_window: Duration::from_millis(50),
            max_retries: 4,
            base_backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(10),
            request_timeout: Duration::from_secs(30),
            observer: None,
        }
    }
}

impl fmt::Debug for ClientConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientConfig")
            .field("endpoint", &self.endpoint)
            .field("rate_limits", &self.rate_limits)
            .field("batching", &self.batching)
            .field("batch_window", &self.batch_window)
            .field("max_retries", &self.max_retries)
            .field("base_backoff", &self.base_backoff)
            .field("max_backoff", &self.max_backoff)
            .field("request_timeout", &self.request_timeout)
            .field("observer", &self.observer.as_ref().map(|_| "<observer>"))
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_tencent_quotas() {
        let limits = RateLimits::default();
        assert_eq!(limits.for_action("RunInstances"), 10);
        assert_eq!(limits.for_action("DescribeInstances"), 40);
        assert_eq!(limits.for_action("DescribeInstancesStatus"), 40);
        assert_eq!(limits.for_action("TerminateInstances"), 10);
        assert_eq!(limits.for_action("StopInstances"), 10);
    }

    #[test]
    fn zero_limit_is_treated_as_one() {
        let limits = RateLimits {
            run_instances: 0,
            ..Default::default()
        };
        assert_eq!(limits.for_action("RunInstances"), 1);
    }
}

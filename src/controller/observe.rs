//! What an observed instance means for the resource: its health and when to look again.
//!
//! Pure, so every state of the CVM state table is covered by unit tests.

use std::time::Duration;

use super::conditions::Health;
use tencent_cloud::types::Instance;

/// The verdict on one observed instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Report `health` and look again after `requeue`.
    Report { health: Health, requeue: Requeue },
    /// The instance is going away on its own (spot reclaim, someone else terminated it):
    /// wait for it to disappear, then create a new one.
    Replacing { health: Health },
}

/// How soon to look again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Requeue {
    /// The instance is changing: poll soon, backing off with the time spent waiting.
    Soon,
    /// Steady state: the resync period.
    Steady,
    /// Waiting for a person: the slow retry period.
    Slow,
}

/// Judges an instance the cloud returned for this resource.
pub fn judge(instance: &Instance, wants_public_ip: bool) -> Verdict {
    let id = &instance.instance_id;
    let state = instance.instance_state.as_str();
    let report = |health, requeue| Verdict::Report { health, requeue };
    match state {
        "RUNNING" if wants_public_ip && instance.public_ip_addresses.is_empty() => report(
            Health::progressing(
                "WaitingForPublicIp",
                format!("{id} is RUNNING; waiting for its public IP"),
            ),
            Requeue::Soon,
        ),
        "RUNNING" => report(
            Health::ready("InstanceRunning", format!("{id} is RUNNING")),
            Requeue::Steady,
        ),
        "PENDING" | "STARTING" | "REBOOTING" => report(
            Health::progressing("Provisioning", format!("{id} is {state}")),
            Requeue::Soon,
        ),
        "LAUNCH_FAILED" => {
            let why = instance
                .latest_operation_error_msg
                .as_deref()
                .filter(|m| !m.is_empty())
                .unwrap_or("no reason given");
            report(
                Health::stalled("LaunchFailed", format!("{id} failed to launch: {why}")),
                Requeue::Slow,
            )
        }
        "TERMINATING" => Verdict::Replacing {
            health: Health::progressing(
                "InstanceTerminating",
                format!(
                    "{id} is being terminated outside the operator (spot reclaim?); a new instance follows"
                ),
            ),
        },
        "SHUTDOWN" => report(
            Health::stalled(
                "InstanceIsolated",
                format!(
                    "{id} is isolated (SHUTDOWN, source {}): top up the account or restore it",
                    instance.isolated_source.as_deref().unwrap_or("unknown")
                ),
            ),
            Requeue::Slow,
        ),
        "STOPPED" | "STOPPING" => report(
            Health::stalled(
                "InstanceStopped",
                format!(
                    "{id} is {state}: it was stopped outside the operator; start it to make it Ready"
                ),
            ),
            Requeue::Slow,
        ),
        other if other.contains("MIGRATE") || other.contains("RESCUE") => report(
            Health::progressing("Maintenance", format!("{id} is {other}")),
            Requeue::Soon,
        ),
        other => report(
            Health::progressing("UnknownState", format!("{id} is in state {other:?}")),
            Requeue::Soon,
        ),
    }
}

/// The polling interval while an instance is on its way: quick at first, then backing off,
/// since public IPs and boots take minutes rather than seconds.
pub fn poll_interval(waiting_for: Duration, min: Duration, max: Duration) -> Duration {
    let scaled = min.mul_f64(1.0 + waiting_for.as_secs_f64() / 30.0);
    scaled.clamp(min, max)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn instance(state: &str) -> Instance {
        Instance {
            instance_id: "ins-abcd1234".into(),
            instance_state: state.into(),
            private_ip_addresses: vec!["10.0.0.5".into()],
            ..Default::default()
        }
    }

    fn health(v: Verdict) -> (Health, Option<Requeue>) {
        match v {
            Verdict::Report { health, requeue } => (health, Some(requeue)),
            Verdict::Replacing { health } => (health, None),
        }
    }

    #[test]
    fn running_is_ready_unless_public_ip_missing() {
        let (h, r) = health(judge(&instance("RUNNING"), false));
        assert!(matches!(h, Health::Ready { .. }));
        assert_eq!(r, Some(Requeue::Steady));

        let (h, r) = health(judge(&instance("RUNNING"), true));
        assert_eq!(h.reason(), "WaitingForPublicIp");
        assert_eq!(r, Some(Requeue::Soon));

        let mut with_ip = instance("RUNNING");
        with_ip.public_ip_addresses = vec!["43.1.2.3".into()];
        assert!(matches!(
            health(judge(&with_ip, true)).0,
            Health::Ready { .. }
        ));
    }

    #[test]
    fn pending_is_progressing() {
        let (h, r) = health(judge(&instance("PENDING"), false));
        assert!(matches!(h, Health::Progressing { .. }));
        assert_eq!(h.reason(), "Provisioning");
        assert_eq!(r, Some(Requeue::Soon));
    }

    #[test]
    fn launch_failed_is_stalled_with_the_cloud_message() {
        let mut i = instance("LAUNCH_FAILED");
        i.latest_operation_error_msg = Some("the image is not available".into());
        let (h, r) = health(judge(&i, false));
        assert!(matches!(h, Health::Stalled { .. }));
        assert!(h.message().contains("the image is not available"));
        assert_eq!(r, Some(Requeue::Slow));
    }

    #[test]
    fn terminating_means_replace() {
        assert!(matches!(
            judge(&instance("TERMINATING"), false),
            Verdict::Replacing { .. }
        ));
    }

    #[test]
    fn isolated_and_stopped_need_a_person() {
        for state in ["SHUTDOWN", "STOPPED"] {
            let (h, _) = health(judge(&instance(state), false));
            assert!(matches!(h, Health::Stalled { .. }), "{state}");
        }
    }

    #[test]
    fn poll_interval_backs_off_within_bounds() {
        let min = Duration::from_secs(2);
        let max = Duration::from_secs(20);
        assert_eq!(poll_interval(Duration::ZERO, min, max), min);
        assert!(poll_interval(Duration::from_secs(60), min, max) > min);
        assert_eq!(poll_interval(Duration::from_secs(3600), min, max), max);
    }
}

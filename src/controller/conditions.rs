//! kstatus conditions (`Ready`, `Reconciling`, `Stalled`), as `kubectl wait`, Flux and
//! Argo CD read them.
//!
//! Exactly one of three situations holds after every reconcile, and the three conditions
//! are always written together so that no reader sees a stale mix.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use k8s_openapi::jiff::Timestamp;

pub const READY: &str = "Ready";
pub const RECONCILING: &str = "Reconciling";
pub const STALLED: &str = "Stalled";

/// Where a resource stands, with a CamelCase reason and a message for people.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Health {
    /// The instance is running as specified.
    Ready { reason: String, message: String },
    /// Work is in progress and will finish without help.
    Progressing { reason: String, message: String },
    /// Nothing will change until a person acts (or the cloud changes, e.g. capacity returns).
    Stalled { reason: String, message: String },
}

impl Health {
    pub fn ready(reason: &str, message: impl Into<String>) -> Self {
        Health::Ready {
            reason: reason.into(),
            message: message.into(),
        }
    }
    pub fn progressing(reason: &str, message: impl Into<String>) -> Self {
        Health::Progressing {
            reason: reason.into(),
            message: message.into(),
        }
    }
    pub fn stalled(reason: &str, message: impl Into<String>) -> Self {
        Health::Stalled {
            reason: reason.into(),
            message: message.into(),
        }
    }

    pub fn reason(&self) -> &str {
        match self {
            Health::Ready { reason, .. }
            | Health::Progressing { reason, .. }
            | Health::Stalled { reason, .. } => reason,
        }
    }

    pub fn message(&self) -> &str {
        match self {
            Health::Ready { message, .. }
            | Health::Progressing { message, .. }
            | Health::Stalled { message, .. } => message,
        }
    }

    /// The three conditions for this health, keeping `lastTransitionTime` of any condition
    /// whose status did not change.
    pub fn conditions(
        &self,
        previous: &[Condition],
        generation: Option<i64>,
        now: Timestamp,
    ) -> Vec<Condition> {
        let (ready, reconciling, stalled) = match self {
            Health::Ready { .. } => ("True", "False", "False"),
            Health::Progressing { .. } => ("False", "True", "False"),
            Health::Stalled { .. } => ("False", "False", "True"),
        };
        let reason = self.reason();
        let message = self.message();
        [
            (READY, ready),
            (RECONCILING, reconciling),
            (STALLED, stalled),
        ]
        .into_iter()
        .map(|(type_, status)| {
            let (reason, message) = if status == "True" || type_ == READY {
                (reason.to_string(), message.to_string())
            } else {
                (format!("Not{type_}"), String::new())
            };
            let since = transition_time(previous, type_, status, now);
            Condition {
                type_: type_.to_string(),
                status: status.to_string(),
                reason,
                message,
                observed_generation: generation,
                last_transition_time: since,
            }
        })
        .collect()
    }
}

/// When condition `type_` last became `status`: kept from `previous` while the status stays,
/// `now` when it changes.
pub fn transition_time(previous: &[Condition], type_: &str, status: &str, now: Timestamp) -> Time {
    previous
        .iter()
        .find(|c| c.type_ == type_ && c.status == status)
        .map(|c| c.last_transition_time.clone())
        .unwrap_or_else(|| Time(now))
}

/// A Tencent error code as a condition reason: `InvalidAccount.InsufficientBalance` becomes
/// `InvalidAccount_InsufficientBalance`, which fits the Kubernetes reason format and can
/// still be read back as the code.
pub fn reason_from_code(code: &str) -> String {
    let reason: String = code
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    let reason = reason.trim_matches('_');
    if reason.is_empty() || !reason.starts_with(|c: char| c.is_ascii_alphabetic()) {
        format!("Cloud_{reason}")
    } else {
        reason.to_string()
    }
}

/// Two condition lists say the same thing (transition times aside).
pub fn same_conditions(a: &[Condition], b: &[Condition]) -> bool {
    a.len() == b.len()
        && a.iter().zip(b).all(|(x, y)| {
            x.type_ == y.type_
                && x.status == y.status
                && x.reason == y.reason
                && x.message == y.message
                && x.observed_generation == y.observed_generation
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: i64) -> Timestamp {
        Timestamp::from_second(secs).unwrap()
    }

    #[test]
    fn ready_sets_only_ready_true() {
        let cs =
            Health::ready("InstanceRunning", "ins-1 is RUNNING").conditions(&[], Some(3), at(10));
        let status: Vec<(&str, &str)> = cs
            .iter()
            .map(|c| (c.type_.as_str(), c.status.as_str()))
            .collect();
        assert_eq!(
            status,
            [
                ("Ready", "True"),
                ("Reconciling", "False"),
                ("Stalled", "False")
            ]
        );
        assert!(cs.iter().all(|c| c.observed_generation == Some(3)));
        assert_eq!(cs[0].reason, "InstanceRunning");
        assert_eq!(cs[1].reason, "NotReconciling");
    }

    #[test]
    fn stalled_carries_reason_on_ready_and_stalled() {
        let h = Health::stalled("InvalidAccount_InsufficientBalance", "top up");
        let cs = h.conditions(&[], None, at(10));
        assert_eq!(cs[0].status, "False");
        assert_eq!(cs[0].reason, "InvalidAccount_InsufficientBalance");
        assert_eq!(cs[2].status, "True");
        assert_eq!(cs[2].message, "top up");
    }

    #[test]
    fn transition_time_kept_while_status_unchanged() {
        let first = Health::progressing("Provisioning", "PENDING").conditions(&[], Some(1), at(10));
        let second = Health::progressing("Provisioning", "still PENDING").conditions(
            &first,
            Some(1),
            at(20),
        );
        assert!(
            second
                .iter()
                .all(|c| c.last_transition_time == Time(at(10)))
        );
        let ready = Health::ready("InstanceRunning", "up").conditions(&second, Some(1), at(30));
        assert_eq!(ready[0].last_transition_time, Time(at(30)));
        assert_eq!(ready[1].last_transition_time, Time(at(30)));
        // Stalled was False before and is False now.
        assert_eq!(ready[2].last_transition_time, Time(at(10)));
    }

    #[test]
    fn codes_become_valid_reasons() {
        assert_eq!(
            reason_from_code("ResourceInsufficient.SpecifiedInstanceType"),
            "ResourceInsufficient_SpecifiedInstanceType"
        );
        assert_eq!(
            reason_from_code("RequestLimitExceeded"),
            "RequestLimitExceeded"
        );
        assert_eq!(reason_from_code("9bad"), "Cloud_9bad");
    }

    #[test]
    fn same_conditions_ignores_times_only() {
        let a = Health::ready("R", "m").conditions(&[], Some(1), at(1));
        let b = Health::ready("R", "m").conditions(&[], Some(1), at(2));
        let c = Health::ready("R", "other").conditions(&[], Some(1), at(1));
        assert!(same_conditions(&a, &b));
        assert!(!same_conditions(&a, &c));
    }
}

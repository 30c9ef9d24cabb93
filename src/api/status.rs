//! What the operator observed, written to the status subresource.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use k8s_openapi::jiff::Timestamp;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Observed state of a `CvmInstance`.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CvmInstanceStatus {
    /// ID of the CVM instance, e.g. `ins-abcd1234`, once RunInstances returned it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance_id: Option<String>,
    /// Idempotency token of the current creation attempt, persisted before RunInstances is
    /// called so that a retry after a crash can never create a second instance.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_token: Option<String>,
    /// Creation attempt; it grows only when a previous instance is known to be gone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attempt: Option<i32>,
    /// The CVM instance state, verbatim (PENDING, RUNNING, LAUNCH_FAILED, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance_state: Option<String>,
    /// Private IPv4 addresses of the primary network interface.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub private_ip_addresses: Option<Vec<String>>,
    /// Public IPv4 addresses of the primary network interface.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub public_ip_addresses: Option<Vec<String>>,
    /// The metadata.generation this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// kstatus conditions: `Ready`, `Reconciling` and `Stalled`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conditions: Option<Vec<Condition>>,
}

/// Reason of the condition a resource carries until the operator first writes its status.
pub const AWAITING_OPERATOR: &str = "AwaitingOperator";

impl CvmInstanceStatus {
    /// The CRD's default for `status`, which the API server shows on a resource that has no
    /// status yet. Without it kstatus (Flux, `helm --wait`) calls a just-created resource
    /// Current, so a pipeline could pass before any operator has looked at it, or with none
    /// running. `Reconciling=True` makes it InProgress; there is deliberately no `Ready`
    /// condition, so the Ready printer column and `kubectl wait --for=condition=Ready`
    /// (either way) are not decided by a placeholder, and no observedGeneration, since no
    /// one has observed anything. A default has to be a constant, hence the epoch as time.
    pub fn awaiting_operator() -> Self {
        CvmInstanceStatus {
            conditions: Some(vec![Condition {
                type_: "Reconciling".to_string(),
                status: "True".to_string(),
                reason: AWAITING_OPERATOR.to_string(),
                message: "cvm-operator has not reconciled this resource yet".to_string(),
                observed_generation: None,
                last_transition_time: Time(Timestamp::UNIX_EPOCH),
            }]),
            ..CvmInstanceStatus::default()
        }
    }

    /// This status without the API server's placeholder condition: what the operator itself
    /// wrote. The operator starts from this, so that the placeholder's epoch time never
    /// becomes the time its own `Reconciling` condition started.
    pub fn written_by_operator(mut self) -> Self {
        if let Some(conditions) = &mut self.conditions {
            conditions.retain(|c| c.reason != AWAITING_OPERATOR);
            if conditions.is_empty() {
                self.conditions = None;
            }
        }
        self
    }

    pub fn condition(&self, type_: &str) -> Option<&Condition> {
        self.conditions
            .as_deref()
            .and_then(|cs| cs.iter().find(|c| c.type_ == type_))
    }

    pub fn is_ready(&self) -> bool {
        self.condition("Ready").is_some_and(|c| c.status == "True")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_placeholder_is_reconciling_without_ready_or_observed_generation() {
        let status = CvmInstanceStatus::awaiting_operator();
        let reconciling = status.condition("Reconciling").unwrap();
        assert_eq!(reconciling.status, "True");
        assert_eq!(reconciling.reason, AWAITING_OPERATOR);
        assert!(status.condition("Ready").is_none());
        assert!(!status.is_ready());
        assert_eq!(status.observed_generation, None);
    }

    #[test]
    fn written_by_operator_drops_only_the_placeholder() {
        assert_eq!(
            CvmInstanceStatus::awaiting_operator().written_by_operator(),
            CvmInstanceStatus::default()
        );
        let mut own = CvmInstanceStatus::awaiting_operator();
        let placeholder = own.conditions.as_ref().unwrap()[0].clone();
        let operator_condition = Condition {
            reason: "Creating".to_string(),
            last_transition_time: Time(Timestamp::from_second(1_700_000_000).unwrap()),
            ..placeholder
        };
        own.conditions = Some(vec![operator_condition.clone()]);
        own.instance_id = Some("ins-1".to_string());
        assert_eq!(own.clone().written_by_operator(), own);
    }
}

//! What the operator observed, written to the status subresource.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use std::collections::BTreeMap;

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
    /// What the instance costs per hour while it is billed, e.g. `0.0360`: the discounted
    /// price of its zone, type and charge type (DescribeZoneInstanceConfigInfos, CPU and
    /// memory only: disks and bandwidth are billed apart), in the account's currency. Absent
    /// while nothing is billed for them (not yet created, stopped with STOP_CHARGING,
    /// terminating, failed) or while the price is unknown.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hourly_price: Option<String>,
    /// The metadata.generation this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// kstatus conditions: `Ready`, `Reconciling` and `Stalled`, and for updates `Drifted`,
    /// `RestartRequired`, `ReimageRequired` and `ReplaceRequired`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conditions: Option<Vec<Condition>>,
    /// What DescribeInstances last showed of the fields the spec governs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed: Option<ObservedInstance>,
    /// Spec changes not applied yet, each with why it waits.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pending_changes: Option<Vec<PendingChange>>,
    /// The mutating call in flight, written before it is sent: after a crash the operator
    /// matches it against the instance's LatestOperationRequestId instead of calling again,
    /// so a reimage or a recreate never happens twice.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operation: Option<Operation>,
    /// Fields changed outside the operator, and its recent corrections of them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub drift: Option<Drift>,
    /// Tag keys the operator set from spec.tags: removing a key from the spec deletes only
    /// these from the instance, never tags set by others.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub applied_tag_keys: Option<Vec<String>>,
    /// The host name last applied; DescribeInstances does not show it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub applied_host_name: Option<String>,
    /// Salted SHA-256 of the password last applied from the Secret, never the password: a new
    /// value in the Secret is a change to apply.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_hash: Option<String>,
    /// A short digest of each field no API changes (`zone`, `billing`, `userData`, ...), as
    /// the instance was created with: a different one in the spec means a new instance
    /// (`updatePolicy.replace: Recreate`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_with: Option<std::collections::BTreeMap<String, String>>,
}

/// The instance as DescribeInstances showed it, limited to what the spec governs. Field names
/// follow the Tencent Cloud JSON ones.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ObservedInstance {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance_name: Option<String>,
    /// In priority order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub security_group_ids: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance_type: Option<String>,
    /// Only the keys in spec.tags and appliedTagKeys.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub tags: BTreeMap<String, String>,
    /// RUNNING, STOPPED, ...
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance_state: Option<String>,
    /// KEEP_CHARGING, STOP_CHARGING or NOT_APPLICABLE.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_charging_mode: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub internet_max_bandwidth_out: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub project_id: Option<i64>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub key_ids: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub placement_zone: Option<String>,
    /// POSTPAID_BY_HOUR or SPOTPAID.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance_charge_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system_disk_size: Option<i32>,
    /// In the order of spec.dataDisks.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub data_disk_sizes: Vec<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latest_operation: Option<String>,
    /// OPERATING, SUCCESS or FAILED.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latest_operation_state: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latest_operation_request_id: Option<String>,
}

/// A spec change that waits.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PendingChange {
    /// The spec field, e.g. `instanceType`.
    pub field: String,
    pub class: ChangeClass,
    /// Why it waits, e.g. `RestartRequired`.
    pub reason: String,
}

/// What applying a change takes.
#[derive(Deserialize, Serialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub enum ChangeClass {
    /// One call, no restart.
    InPlace,
    /// A stop and start.
    Restart,
    /// Reinstalling the system disk.
    Reimage,
    /// A new instance.
    Replace,
}

/// A mutating call, recorded before it is sent.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Operation {
    /// The Tencent action, e.g. `ResetInstance`.
    pub action: String,
    /// The spec field it applies.
    pub field: String,
    /// Its RequestId, once the answer came.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    /// The instance's LatestOperationRequestId when the call was recorded: an operation shown
    /// under this ID is an earlier one (say, the last reimage), not this call.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prior_request_id: Option<String>,
    /// The metadata.generation it applies.
    pub generation: i64,
    pub started_at: Time,
}

/// Changes made outside the operator.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Drift {
    /// The drifted spec fields.
    pub fields: Vec<String>,
    /// When the current drift was first seen; absent while only corrections are remembered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<Time>,
    /// Recent corrections, for the guard that stops fighting a person (`Contested`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub corrections: Vec<Correction>,
}

/// One correction of a drifted field.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Correction {
    pub field: String,
    pub at: Time,
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

//! What the operator observed, written to the status subresource.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
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

impl CvmInstanceStatus {
    pub fn condition(&self, type_: &str) -> Option<&Condition> {
        self.conditions
            .as_deref()
            .and_then(|cs| cs.iter().find(|c| c.type_ == type_))
    }

    pub fn is_ready(&self) -> bool {
        self.condition("Ready").is_some_and(|c| c.status == "True")
    }
}

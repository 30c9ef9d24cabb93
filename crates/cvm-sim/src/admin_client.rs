//! A typed client of the admin API (`/_sim/`), for tests and benchmarks.

use std::collections::{BTreeMap, HashMap};

use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use super::config::{CapacityEntry, Timing};
use super::faults::FaultSpec;

#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error("admin request failed: {0}")]
    Http(#[from] reqwest::Error),
    #[error("admin API answered {status}: {body}")]
    Status { status: u16, body: String },
}

/// One entry of `GET /_sim/instances`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct SimInstance {
    pub instance_id: String,
    pub instance_state: String,
    pub zone: String,
    pub instance_type: String,
    pub instance_charge_type: String,
    pub private_ip_addresses: Vec<String>,
    pub public_ip_addresses: Vec<String>,
    pub tags: Vec<SimTag>,
    pub client_token: Option<String>,
    pub secret_id: String,
    pub latest_operation_error_msg: Option<String>,
    #[serde(default)]
    pub instance_name: String,
    #[serde(default)]
    pub security_group_ids: Vec<String>,
    #[serde(default)]
    pub image_id: String,
    #[serde(default)]
    pub stop_charging_mode: String,
    #[serde(default)]
    pub latest_operation: Option<String>,
    #[serde(default)]
    pub latest_operation_state: Option<String>,
    #[serde(default)]
    pub latest_operation_request_id: Option<String>,
    /// ResetInstance calls accepted for this instance.
    #[serde(default)]
    pub reimage_count: u32,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct SimTag {
    pub key: String,
    pub value: String,
}

/// `GET /_sim/counters`: calls per action and outcome (`Success` or the error code).
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
pub struct SimCounters {
    pub calls: BTreeMap<String, BTreeMap<String, u64>>,
}

impl SimCounters {
    pub fn get(&self, action: &str, outcome: &str) -> u64 {
        self.calls
            .get(action)
            .and_then(|m| m.get(outcome))
            .copied()
            .unwrap_or(0)
    }
}

#[derive(Debug, Clone)]
pub struct SimAdmin {
    endpoint: String,
    client: reqwest::Client,
}

impl SimAdmin {
    /// `endpoint` is what cvm-sim printed, e.g. `http://127.0.0.1:40123`.
    pub fn new(endpoint: impl Into<String>) -> Self {
        Self::with_client(endpoint, reqwest::Client::new())
    }

    /// With a client of your own, e.g. one that trusts the `--tls-cert-out` certificate.
    pub fn with_client(endpoint: impl Into<String>, client: reqwest::Client) -> Self {
        Self {
            endpoint: endpoint.into().trim_end_matches('/').to_string(),
            client,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}/_sim/{path}", self.endpoint)
    }

    async fn read<T: DeserializeOwned>(response: reqwest::Response) -> Result<T, AdminError> {
        let status = response.status();
        if !status.is_success() {
            return Err(AdminError::Status {
                status: status.as_u16(),
                body: response.text().await.unwrap_or_default(),
            });
        }
        Ok(response.json().await?)
    }

    async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T, AdminError> {
        Self::read(self.client.get(self.url(path)).send().await?).await
    }

    async fn post(&self, path: &str, body: &Value) -> Result<Value, AdminError> {
        Self::read(self.client.post(self.url(path)).json(body).send().await?).await
    }

    pub async fn healthz(&self) -> Result<(), AdminError> {
        self.get::<Value>("healthz").await.map(|_| ())
    }

    pub async fn instances(&self) -> Result<Vec<SimInstance>, AdminError> {
        #[derive(Deserialize)]
        struct List {
            instances: Vec<SimInstance>,
        }
        Ok(self.get::<List>("instances").await?.instances)
    }

    pub async fn counters(&self) -> Result<SimCounters, AdminError> {
        self.get("counters").await
    }

    pub async fn reset_counters(&self) -> Result<(), AdminError> {
        self.post("counters/reset", &json!({})).await.map(|_| ())
    }

    pub async fn add_fault(&self, fault: &FaultSpec) -> Result<(), AdminError> {
        let body = serde_json::to_value(fault).expect("a fault serializes");
        self.post("faults", &body).await.map(|_| ())
    }

    pub async fn clear_faults(&self) -> Result<(), AdminError> {
        let response = self.client.delete(self.url("faults")).send().await?;
        Self::read::<Value>(response).await.map(|_| ())
    }

    pub async fn launch_failures(&self, count: u32, message: &str) -> Result<(), AdminError> {
        self.post(
            "launch-failures",
            &json!({"count": count, "message": message}),
        )
        .await
        .map(|_| ())
    }

    pub async fn reclaim(&self, instance_id: &str) -> Result<(), AdminError> {
        self.post(&format!("instances/{instance_id}/reclaim"), &json!({}))
            .await
            .map(|_| ())
    }

    pub async fn set_balance(&self, secret_id: &str, balance: f64) -> Result<(), AdminError> {
        self.post(
            &format!("accounts/{secret_id}/balance"),
            &json!({ "balance": balance }),
        )
        .await
        .map(|_| ())
    }

    pub async fn set_quota(
        &self,
        secret_id: &str,
        instance_quota: Option<u32>,
        spot_quota: Option<u32>,
    ) -> Result<(), AdminError> {
        let mut body = serde_json::Map::new();
        if let Some(q) = instance_quota {
            body.insert("instanceQuota".into(), q.into());
        }
        if let Some(q) = spot_quota {
            body.insert("spotQuota".into(), q.into());
        }
        self.post(&format!("accounts/{secret_id}/quota"), &Value::Object(body))
            .await
            .map(|_| ())
    }

    /// Both pools of a (zone, type); `available: None` makes the pair unlimited again.
    pub async fn set_capacity(
        &self,
        zone: &str,
        instance_type: &str,
        available: Option<u32>,
    ) -> Result<(), AdminError> {
        self.set_capacity_entry(&CapacityEntry {
            zone: zone.to_string(),
            instance_type: instance_type.to_string(),
            charge_type: None,
            available,
        })
        .await
    }

    /// One capacity entry, e.g. spot alone sold out (`charge_type: Some(StockPool::Spot)`).
    pub async fn set_capacity_entry(&self, entry: &CapacityEntry) -> Result<(), AdminError> {
        let body = serde_json::to_value(entry).expect("capacity serializes");
        self.post("capacity", &body).await.map(|_| ())
    }

    pub async fn set_timing(&self, timing: Timing) -> Result<(), AdminError> {
        let body = serde_json::to_value(timing).expect("timing serializes");
        self.post("timing", &body).await.map(|_| ())
    }

    /// Requests per second per action; 0 = unlimited.
    pub async fn set_rate_limits(&self, limits: &HashMap<String, u32>) -> Result<(), AdminError> {
        let body = serde_json::to_value(limits).expect("limits serialize");
        self.post("rate-limits", &body).await.map(|_| ())
    }

    /// Creates an instance that already exists when the test starts (to adopt): `request`
    /// holds RunInstances parameters; `stopped` leaves it STOPPED. Returns its ID.
    pub async fn create_instance(
        &self,
        secret_id: &str,
        request: &Value,
        stopped: bool,
    ) -> Result<String, AdminError> {
        let answer = self
            .post(
                "instances",
                &json!({
                    "secretId": secret_id,
                    "request": request,
                    "state": if stopped { "STOPPED" } else { "RUNNING" },
                }),
            )
            .await?;
        Ok(answer["InstanceId"]
            .as_str()
            .unwrap_or_default()
            .to_string())
    }

    /// A console edit (camelCase fields: instanceName, securityGroupIds, instanceType, tags,
    /// state, internetMaxBandwidthOut, projectId, imageId). Returns the foreign request id it
    /// left as `LatestOperationRequestId` (none for a tags-only edit).
    pub async fn mutate(
        &self,
        instance_id: &str,
        edit: &Value,
    ) -> Result<Option<String>, AdminError> {
        let answer = self
            .post(&format!("instances/{instance_id}/mutate"), edit)
            .await?;
        Ok(answer["RequestId"].as_str().map(str::to_string))
    }

    /// Holds the operation in progress OPERATING (or starts a foreign one if there is none).
    pub async fn hold_operation(&self, instance_id: &str) -> Result<(), AdminError> {
        self.control_operation(instance_id, json!({"state": "OPERATING"}))
            .await
    }

    /// Ends the operation in progress as FAILED with `message`; nothing it would change changes.
    pub async fn fail_operation(&self, instance_id: &str, message: &str) -> Result<(), AdminError> {
        self.control_operation(instance_id, json!({"state": "FAILED", "errorMsg": message}))
            .await
    }

    /// Ends the operation in progress (held or not) with SUCCESS now.
    pub async fn complete_operation(&self, instance_id: &str) -> Result<(), AdminError> {
        self.control_operation(instance_id, json!({"state": "SUCCESS"}))
            .await
    }

    async fn control_operation(&self, instance_id: &str, body: Value) -> Result<(), AdminError> {
        self.post(&format!("instances/{instance_id}/operation"), &body)
            .await
            .map(|_| ())
    }

    /// How many ResetInstance calls the instance accepted (0 for an unknown instance).
    pub async fn reimage_count(&self, instance_id: &str) -> Result<u32, AdminError> {
        Ok(self
            .instances()
            .await?
            .iter()
            .find(|i| i.instance_id == instance_id)
            .map_or(0, |i| i.reimage_count))
    }
}

//! The CVM actions that change an existing instance (day 2): power, attributes, type,
//! reinstall, login, bandwidth, project and disks. Each is asynchronous on Tencent's side:
//! the call returns a RequestId, and the change is done when DescribeInstances shows that
//! RequestId as `LatestOperationRequestId` with `LatestOperationState` SUCCESS. Every
//! method returns that RequestId.
//!
//! None of them carries a ClientToken, and several are not idempotent (ResetInstance
//! reinstalls again, Start/Stop fail on the state they left), so only a rejection that
//! proves nothing happened (rate limiting) is retried here; the caller decides the rest
//! from the instance's latest operation.

use serde::Serialize;

use super::client::{CvmClient, Idempotency};
use super::credentials::SecretString;
use super::error::CloudError;
use super::types::{EmptyResponse, LoginSettings};

/// How StopInstances and RebootInstances shut the guest down.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum StopType {
    Soft,
    Hard,
    /// Soft, then hard if the soft stop fails.
    SoftFirst,
}

/// Whether a stopped pay-as-you-go instance keeps being billed. STOP_CHARGING releases its
/// CPU, memory and public IP (a new one comes at start) and refuses every action but
/// StartInstances while stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum StoppedMode {
    KeepCharging,
    StopCharging,
}

/// The one attribute a ModifyInstancesAttribute call changes: the API takes exactly one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InstanceAttribute {
    Name(String),
    /// The whole ordered list (order is priority); it replaces the current one.
    SecurityGroups(Vec<String>),
    /// `auto_reboot: false` leaves the new name for the next restart.
    HostName {
        name: String,
        auto_reboot: bool,
    },
    /// Base64; redacted in Debug.
    UserData(SecretString),
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct Ids<'a> {
    instance_ids: &'a [String],
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct StopRequest<'a> {
    instance_ids: &'a [String],
    stop_type: StopType,
    stopped_mode: StoppedMode,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct RebootRequest<'a> {
    instance_ids: &'a [String],
    stop_type: StopType,
}

#[derive(Serialize, Default)]
#[serde(rename_all = "PascalCase")]
struct ModifyAttributeRequest<'a> {
    instance_ids: &'a [String],
    #[serde(skip_serializing_if = "Option::is_none")]
    instance_name: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    security_groups: Option<&'a [String]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    host_name: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    auto_reboot: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    user_data: Option<&'a SecretString>,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct ResetTypeRequest<'a> {
    instance_ids: [&'a str; 1],
    instance_type: &'a str,
    force_stop: bool,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct ResetPasswordRequest<'a> {
    instance_ids: &'a [String],
    password: &'a SecretString,
    #[serde(skip_serializing_if = "Option::is_none")]
    user_name: Option<&'a str>,
    force_stop: bool,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct KeyPairsRequest<'a> {
    instance_ids: &'a [String],
    key_ids: &'a [String],
    force_stop: bool,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct BandwidthRequest<'a> {
    instance_ids: &'a [String],
    internet_accessible: Bandwidth,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct Bandwidth {
    internet_max_bandwidth_out: i64,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct ProjectRequest<'a> {
    instance_ids: &'a [String],
    project_id: i64,
}

/// ResetInstance: reinstall from `image_id` (the current image when `None`). Always send
/// `login_settings`: without it the API sets a random password and mails it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Default)]
#[serde(rename_all = "PascalCase")]
pub struct ResetInstanceRequest {
    pub instance_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub image_id: Option<String>,
    /// Grow only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub system_disk: Option<DiskSize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub login_settings: Option<LoginSettings>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_data: Option<SecretString>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Default)]
#[serde(rename_all = "PascalCase")]
pub struct DiskSize {
    /// The data disk to grow; absent for the system disk.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub disk_id: Option<String>,
    /// GiB, larger than today's.
    pub disk_size: i64,
}

/// ResizeInstanceDisks: grow the system disk and/or one data disk. A running instance
/// needs `force_stop` (stopped, grown, started) or `resize_online`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Default)]
#[serde(rename_all = "PascalCase")]
pub struct ResizeInstanceDisksRequest {
    pub instance_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub system_disk: Option<DiskSize>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub data_disks: Vec<DiskSize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub force_stop: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resize_online: Option<bool>,
}

impl CvmClient {
    async fn modify<Req: Serialize>(
        &self,
        action: &'static str,
        request: &Req,
    ) -> Result<String, CloudError> {
        let (_, request_id): (EmptyResponse, String) = self
            .core
            .call_for_request_id(action, request, Idempotency::Unsafe)
            .await?;
        Ok(request_id)
    }

    /// STOPPED → RUNNING (also after STOP_CHARGING, with a new public IP).
    pub async fn start_instances(&self, ids: &[String]) -> Result<String, CloudError> {
        self.modify("StartInstances", &Ids { instance_ids: ids })
            .await
    }

    pub async fn stop_instances(
        &self,
        ids: &[String],
        stop_type: StopType,
        stopped_mode: StoppedMode,
    ) -> Result<String, CloudError> {
        let request = StopRequest {
            instance_ids: ids,
            stop_type,
            stopped_mode,
        };
        self.modify("StopInstances", &request).await
    }

    pub async fn reboot_instances(
        &self,
        ids: &[String],
        stop_type: StopType,
    ) -> Result<String, CloudError> {
        let request = RebootRequest {
            instance_ids: ids,
            stop_type,
        };
        self.modify("RebootInstances", &request).await
    }

    /// ModifyInstancesAttribute with exactly one attribute, as the API requires.
    pub async fn modify_instances_attribute(
        &self,
        ids: &[String],
        attribute: &InstanceAttribute,
    ) -> Result<String, CloudError> {
        let mut request = ModifyAttributeRequest {
            instance_ids: ids,
            ..Default::default()
        };
        match attribute {
            InstanceAttribute::Name(name) => request.instance_name = Some(name),
            InstanceAttribute::SecurityGroups(groups) => request.security_groups = Some(groups),
            InstanceAttribute::HostName { name, auto_reboot } => {
                request.host_name = Some(name);
                request.auto_reboot = Some(*auto_reboot);
            }
            InstanceAttribute::UserData(data) => request.user_data = Some(data),
        }
        self.modify("ModifyInstancesAttribute", &request).await
    }

    /// One instance per call (the API's limit). The instance ends RUNNING, even if it was
    /// stopped; a running one needs `force_stop`.
    pub async fn reset_instances_type(
        &self,
        id: &str,
        instance_type: &str,
        force_stop: bool,
    ) -> Result<String, CloudError> {
        let request = ResetTypeRequest {
            instance_ids: [id],
            instance_type,
            force_stop,
        };
        self.modify("ResetInstancesType", &request).await
    }

    /// Reinstalls the system disk. Not idempotent: each accepted call reinstalls again.
    pub async fn reset_instance(
        &self,
        request: &ResetInstanceRequest,
    ) -> Result<String, CloudError> {
        self.modify("ResetInstance", request).await
    }

    /// A running instance needs `force_stop`.
    pub async fn reset_instances_password(
        &self,
        ids: &[String],
        password: &SecretString,
        user_name: Option<&str>,
        force_stop: bool,
    ) -> Result<String, CloudError> {
        let request = ResetPasswordRequest {
            instance_ids: ids,
            password,
            user_name,
            force_stop,
        };
        self.modify("ResetInstancesPassword", &request).await
    }

    /// A running instance needs `force_stop` (it is stopped, then started again).
    pub async fn associate_instances_key_pairs(
        &self,
        ids: &[String],
        key_ids: &[String],
        force_stop: bool,
    ) -> Result<String, CloudError> {
        self.key_pairs("AssociateInstancesKeyPairs", ids, key_ids, force_stop)
            .await
    }

    pub async fn disassociate_instances_key_pairs(
        &self,
        ids: &[String],
        key_ids: &[String],
        force_stop: bool,
    ) -> Result<String, CloudError> {
        self.key_pairs("DisassociateInstancesKeyPairs", ids, key_ids, force_stop)
            .await
    }

    async fn key_pairs(
        &self,
        action: &'static str,
        instance_ids: &[String],
        key_ids: &[String],
        force_stop: bool,
    ) -> Result<String, CloudError> {
        let request = KeyPairsRequest {
            instance_ids,
            key_ids,
            force_stop,
        };
        self.modify(action, &request).await
    }

    pub async fn reset_instances_internet_max_bandwidth(
        &self,
        ids: &[String],
        max_bandwidth_out_mbps: i64,
    ) -> Result<String, CloudError> {
        let request = BandwidthRequest {
            instance_ids: ids,
            internet_accessible: Bandwidth {
                internet_max_bandwidth_out: max_bandwidth_out_mbps,
            },
        };
        self.modify("ResetInstancesInternetMaxBandwidth", &request)
            .await
    }

    pub async fn modify_instances_project(
        &self,
        ids: &[String],
        project_id: i64,
    ) -> Result<String, CloudError> {
        let request = ProjectRequest {
            instance_ids: ids,
            project_id,
        };
        self.modify("ModifyInstancesProject", &request).await
    }

    /// Grow only.
    pub async fn resize_instance_disks(
        &self,
        request: &ResizeInstanceDisksRequest,
    ) -> Result<String, CloudError> {
        self.modify("ResizeInstanceDisks", request).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn one_attribute_per_request_and_enums_in_api_spelling() {
        let ids = vec!["ins-1".to_string()];
        let request = ModifyAttributeRequest {
            instance_ids: &ids,
            host_name: Some("web-1"),
            auto_reboot: Some(false),
            ..Default::default()
        };
        assert_eq!(
            serde_json::to_value(&request).unwrap(),
            json!({"InstanceIds": ["ins-1"], "HostName": "web-1", "AutoReboot": false})
        );
        let stop = StopRequest {
            instance_ids: &ids,
            stop_type: StopType::SoftFirst,
            stopped_mode: StoppedMode::StopCharging,
        };
        assert_eq!(
            serde_json::to_value(&stop).unwrap(),
            json!({"InstanceIds": ["ins-1"], "StopType": "SOFT_FIRST", "StoppedMode": "STOP_CHARGING"})
        );
    }

    #[test]
    fn secrets_are_sent_but_not_shown() {
        let password = SecretString::from("Qcloud@Secret123");
        let ids = vec!["ins-1".to_string()];
        let request = ResetPasswordRequest {
            instance_ids: &ids,
            password: &password,
            user_name: None,
            force_stop: true,
        };
        assert_eq!(
            serde_json::to_value(&request).unwrap()["Password"],
            "Qcloud@Secret123"
        );
        let attribute = InstanceAttribute::UserData("c2VjcmV0".into());
        assert!(!format!("{attribute:?}").contains("c2VjcmV0"));
    }
}

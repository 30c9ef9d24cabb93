//! The desired state of a `CvmInstance`.
//!
//! Doc comments here become the CRD's field descriptions (`kubectl explain`), and the
//! `schemars` attributes become admission-time validation, so both are part of the API.

use std::collections::BTreeMap;

use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::status::CvmInstanceStatus;

/// A Tencent Cloud CVM instance that the operator creates once, follows until it runs,
/// and terminates when this resource is deleted.
// Every printer column repeats `type_ = "string"`, which clippy mistakes for a duplicate.
#[allow(clippy::duplicated_attributes)]
#[derive(CustomResource, Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema)]
#[kube(
    group = "cvm-operator.io",
    version = "v1alpha1",
    kind = "CvmInstance",
    plural = "cvminstances",
    shortname = "cvm",
    category = "tencentcloud",
    namespaced,
    status = "CvmInstanceStatus",
    derive = "PartialEq"
)]
#[kube(printcolumn(name = "Zone", type_ = "string", json_path = ".spec.zone"))]
#[kube(printcolumn(name = "Type", type_ = "string", json_path = ".spec.instanceType"))]
#[kube(printcolumn(name = "Billing", type_ = "string", json_path = ".spec.billing.mode"))]
#[kube(printcolumn(name = "State", type_ = "string", json_path = ".status.instanceState"))]
#[kube(printcolumn(
    name = "Private-IP",
    type_ = "string",
    json_path = ".status.privateIpAddresses[0]"
))]
#[kube(printcolumn(
    name = "Public-IP",
    type_ = "string",
    json_path = ".status.publicIpAddresses[0]"
))]
#[kube(printcolumn(
    name = "Ready",
    type_ = "string",
    json_path = ".status.conditions[?(@.type==\"Ready\")].status"
))]
#[kube(printcolumn(
    name = "Instance-ID",
    type_ = "string",
    json_path = ".status.instanceId",
    priority = 1
))]
#[kube(printcolumn(
    name = "Reason",
    type_ = "string",
    json_path = ".status.conditions[?(@.type==\"Ready\")].reason",
    priority = 1
))]
#[kube(printcolumn(
    name = "Age",
    type_ = "date",
    json_path = ".metadata.creationTimestamp"
))]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-validations" = [
    {"rule": "self.zone.startsWith(self.region + '-')", "message": "spec.zone must be a zone of spec.region (e.g. ap-guangzhou-3 in ap-guangzhou)", "fieldPath": ".zone"}
]))]
pub struct CvmInstanceSpec {
    /// Region to create the instance in, e.g. `ap-guangzhou`. Immutable.
    #[schemars(regex(pattern = r"^[a-z]{2,4}-[a-z]+(-[a-z0-9]+)*$"), length(max = 64))]
    pub region: String,

    /// Availability zone inside the region, e.g. `ap-guangzhou-3`. Immutable.
    #[schemars(
        regex(pattern = r"^[a-z]{2,4}-[a-z]+(-[a-z0-9]+)*-[0-9]+$"),
        length(max = 64)
    )]
    pub zone: String,

    /// Instance type, e.g. `S5.MEDIUM2` (see DescribeZoneInstanceConfigInfos). Immutable.
    #[schemars(
        regex(pattern = r"^[A-Z][A-Z0-9]*[a-z0-9]*\.[A-Z0-9]+$"),
        length(max = 64)
    )]
    pub instance_type: String,

    /// Image to boot, `img-` followed by 8 characters: public, custom, shared or marketplace. Immutable.
    #[schemars(regex(pattern = r"^img-[a-z0-9]{8}$"))]
    pub image_id: String,

    /// How the instance is billed.
    pub billing: Billing,

    /// The system disk. Defaults to the cloud's choice of a 50 GiB disk. Immutable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system_disk: Option<SystemDisk>,

    /// Data disks created with the instance (at most 20 cloud disks). Immutable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 20))]
    pub data_disks: Option<Vec<DataDisk>>,

    /// Network placement: VPC and subnet, security groups, private and public IP. Immutable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network: Option<Network>,

    /// How to log in: SSH key IDs, a password from a Secret, or the image's own login.
    /// Omitted: Tencent Cloud generates a password and sends it to the account's inbox. Immutable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub login: Option<Login>,

    /// Name shown in the console, at most 128 characters. Default: `<namespace>-<name>`. Immutable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 128))]
    pub instance_name: Option<String>,

    /// Host name inside the OS: 2 to 60 letters, digits, `-` and `.`, not starting or ending with
    /// `.` or `-`, and without `..` or `--`. Immutable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(
        regex(pattern = r"^[A-Za-z0-9]([A-Za-z0-9]|[.-][A-Za-z0-9])*$"),
        length(min = 2, max = 60)
    )]
    pub host_name: Option<String>,

    /// Project the instance belongs to; 0 is the default project. Immutable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub project_id: Option<i64>,

    /// Tags for the instance and its disks (at most 40). Keys under `cvm-operator.io/` are
    /// reserved for the operator's own tags; keys starting with `qcloud`, `tencent` or
    /// `project` (any case) are reserved by Tencent Cloud. Immutable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend(
        "maxProperties" = 40,
        "x-kubernetes-validations" = [
            {"rule": "self.all(k, !k.startsWith('cvm-operator.io/'))", "message": "spec.tags: keys starting with cvm-operator.io/ are reserved"},
            {"rule": "self.all(k, !k.matches('^(?i)(qcloud|tencent|project)'))", "message": "spec.tags: keys starting with qcloud, tencent or project (any case) are reserved by Tencent Cloud"},
            {"rule": "self.all(k, size(k) >= 1 && size(k) <= 127)", "message": "spec.tags: keys must be 1 to 127 characters"},
            {"rule": "self.all(k, size(self[k]) <= 255)", "message": "spec.tags: values must be at most 255 characters"}
        ]
    ))]
    pub tags: Option<BTreeMap<String, String>>,

    /// Cloud-init user data as plain text; the operator base64-encodes it. The encoded form
    /// may be at most 16 KiB, so at most 12288 bytes of text. Immutable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 12288))]
    pub user_data: Option<String>,

    /// Secret in this resource's namespace holding `secretId`, `secretKey` and optionally
    /// `token` (temporary credentials). Omitted: the operator's default credentials, if enabled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credentials_secret_ref: Option<SecretRef>,

    /// What happens to the instance when this resource is deleted: `Delete` terminates it,
    /// `Orphan` leaves it running (and billing).
    #[serde(default)]
    pub deletion_policy: DeletionPolicy,
}

impl CvmInstanceSpec {
    /// The Secret key holding the login password, if the login uses one.
    pub fn password_secret_ref(&self) -> Option<&SecretKeyRef> {
        self.login.as_ref()?.password_secret_ref.as_ref()
    }

    /// Whether the instance is to get a public IP.
    pub fn wants_public_ip(&self) -> bool {
        self.network.as_ref().is_some_and(|n| n.public_ip.is_some())
    }
}

/// Billing of the instance.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-validations" = [
    {"rule": "self.mode == 'Spot' || !has(self.spot)", "message": "spec.billing.spot is only allowed when spec.billing.mode is Spot", "fieldPath": ".spot"}
]))]
pub struct Billing {
    /// `PayAsYouGo` (POSTPAID_BY_HOUR) or `Spot` (SPOTPAID: cheaper, may be reclaimed). Immutable.
    pub mode: BillingMode,

    /// Spot options; only with mode `Spot`. Immutable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spot: Option<SpotOptions>,
}

/// Billing modes.
#[derive(Deserialize, Serialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub enum BillingMode {
    /// Pay by the hour (POSTPAID_BY_HOUR). The account must hold one hour's cost.
    PayAsYouGo,
    /// Spot instance (SPOTPAID): discounted, and may be reclaimed by Tencent Cloud.
    Spot,
}

/// Spot bidding.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SpotOptions {
    /// Highest hourly price to pay, as a decimal string, e.g. `"0.08"`. Omitted: the current
    /// fixed-discount price.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^[0-9]{1,6}(\.[0-9]{1,6})?$"))]
    pub max_price: Option<String>,
}

/// The system disk.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SystemDisk {
    /// Disk type. Omitted: a type in stock.
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub disk_type: Option<SystemDiskType>,
    /// Size in GiB, 20 to 2048. Omitted: 50.
    #[serde(default, rename = "sizeGiB", skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 20, max = 2048))]
    pub size_gib: Option<i32>,
}

/// System disk types.
#[derive(Deserialize, Serialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum SystemDiskType {
    LocalBasic,
    LocalSsd,
    CloudBasic,
    CloudSsd,
    CloudPremium,
    CloudBssd,
    CloudHssd,
    CloudTssd,
}

/// A data disk.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DataDisk {
    /// Disk type.
    #[serde(rename = "type")]
    pub disk_type: DataDiskType,
    /// Size in GiB, 10 to 32000, in steps of 10.
    #[serde(rename = "sizeGiB")]
    #[schemars(range(min = 10, max = 32000))]
    #[schemars(extend("x-kubernetes-validations" = [{"rule": "self % 10 == 0", "message": "spec.dataDisks[].sizeGiB must be a multiple of 10"}]))]
    pub size_gib: i32,
    /// Terminate the disk with the instance. Default true.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delete_with_instance: Option<bool>,
    /// Snapshot to create the disk from, `snap-` followed by 8 characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^snap-[a-z0-9]{8}$"))]
    pub snapshot_id: Option<String>,
    /// Encrypt the disk.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encrypt: Option<bool>,
}

/// Data disk types.
#[derive(Deserialize, Serialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum DataDiskType {
    LocalBasic,
    LocalSsd,
    LocalNvme,
    LocalPro,
    CloudBasic,
    CloudPremium,
    CloudSsd,
    CloudHssd,
    CloudTssd,
    CloudBssd,
}

/// Network placement.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-validations" = [
    {"rule": "has(self.vpcId) == has(self.subnetId)", "message": "spec.network.vpcId and spec.network.subnetId must be given together (or neither, for the default VPC)", "fieldPath": ".subnetId"},
    {"rule": "!has(self.privateIpAddress) || has(self.subnetId)", "message": "spec.network.privateIpAddress needs spec.network.subnetId", "fieldPath": ".privateIpAddress"}
]))]
pub struct Network {
    /// VPC, `vpc-` followed by 8 characters. With subnetId, or neither for the default VPC.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^vpc-[a-z0-9]{8}$"))]
    pub vpc_id: Option<String>,
    /// Subnet, `subnet-` followed by 8 characters; must be in spec.zone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^subnet-[a-z0-9]{8}$"))]
    pub subnet_id: Option<String>,
    /// Security groups, `sg-` followed by 8 characters, at most 5. Omitted: the project's default group.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 5), inner(regex(pattern = r"^sg-[a-z0-9]{8}$")))]
    pub security_group_ids: Option<Vec<String>>,
    /// Fixed primary private IPv4 address inside the subnet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("format" = "ipv4"), length(max = 15))]
    pub private_ip_address: Option<String>,
    /// Public IPv4. Omitted: no public IP.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub public_ip: Option<PublicIp>,
}

/// A public IP for the instance.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PublicIp {
    /// Outbound bandwidth cap in Mbit/s, 1 to 1000.
    #[schemars(range(min = 1, max = 1000))]
    pub max_bandwidth_out_mbps: i32,
    /// How traffic is billed. Default `TRAFFIC_POSTPAID_BY_HOUR`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub charge_type: Option<InternetChargeType>,
}

/// Internet charge types for pay-as-you-go and spot instances.
#[derive(Deserialize, Serialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum InternetChargeType {
    /// Pay for traffic by the hour.
    TrafficPostpaidByHour,
    /// Pay for bandwidth by the hour.
    BandwidthPostpaidByHour,
    /// Use a shared bandwidth package.
    BandwidthPackage,
}

/// Login settings; at most one of keyIds, passwordSecretRef and keepImageLogin.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-validations" = [
    {"rule": "[has(self.keyIds), has(self.passwordSecretRef), has(self.keepImageLogin) && self.keepImageLogin].filter(x, x).size() <= 1", "message": "spec.login: keyIds, passwordSecretRef and keepImageLogin are mutually exclusive"}
]))]
pub struct Login {
    /// SSH key pairs, `skey-` followed by 8 characters (Linux images only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(
        length(min = 1, max = 10),
        inner(regex(pattern = r"^skey-[a-z0-9]{8}$"))
    )]
    pub key_ids: Option<Vec<String>>,
    /// A key of a Secret in this namespace holding the password (Linux: 8 to 30 characters of at
    /// least two classes; Windows: 12 to 30 of three). The password never appears in status or logs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_secret_ref: Option<SecretKeyRef>,
    /// Keep the login of a custom, shared or imported image.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keep_image_login: Option<bool>,
}

/// A Secret in the resource's own namespace.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, Eq, Hash, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SecretRef {
    /// Name of the Secret.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
}

/// One key of a Secret in the resource's own namespace.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SecretKeyRef {
    /// Name of the Secret.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
    /// Key in the Secret. Default `password`.
    #[serde(default = "default_password_key")]
    #[schemars(length(min = 1, max = 253))]
    pub key: String,
}

fn default_password_key() -> String {
    "password".to_string()
}

/// What to do with the instance when the resource is deleted.
#[derive(Deserialize, Serialize, Clone, Copy, Debug, PartialEq, Eq, Default, JsonSchema)]
pub enum DeletionPolicy {
    /// Terminate the instance, and keep the resource until it is gone.
    #[default]
    Delete,
    /// Leave the instance running.
    Orphan,
}

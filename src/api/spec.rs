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
#[kube(printcolumn(name = "Price/h", type_ = "string", json_path = ".status.hourlyPrice"))]
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
    {"rule": "self.zone.startsWith(self.region + '-')", "message": "spec.zone must be a zone of spec.region (e.g. ap-guangzhou-3 in ap-guangzhou)", "fieldPath": ".zone"},
    {"rule": "!has(self.instanceId) || !has(self.updatePolicy) || !has(self.updatePolicy.replace) || self.updatePolicy.replace != 'Recreate'", "message": "spec.updatePolicy.replace: Recreate is not allowed with spec.instanceId: an adopted instance is never terminated to make a new one", "fieldPath": ".updatePolicy.replace"},
    {"rule": "!has(self.stoppedMode) || self.stoppedMode != 'StopCharging' || self.billing.mode == 'PayAsYouGo'", "message": "spec.stoppedMode: StopCharging is only for billing.mode PayAsYouGo", "fieldPath": ".stoppedMode"},
    {"rule": "!has(self.stoppedMode) || self.stoppedMode != 'StopCharging' || (has(self.powerState) && self.powerState == 'Stopped')", "message": "spec.stoppedMode: StopCharging needs powerState Stopped", "fieldPath": ".stoppedMode"},
    {"rule": "!has(self.stoppedMode) || self.stoppedMode != 'StopCharging' || ((!has(self.systemDisk) || !has(self.systemDisk.type) || !self.systemDisk.type.startsWith('LOCAL_')) && (!has(self.dataDisks) || self.dataDisks.all(d, !d.type.startsWith('LOCAL_'))))", "message": "spec.stoppedMode: StopCharging is not possible with local disks", "fieldPath": ".stoppedMode"}
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

    /// Instance type, e.g. `S5.MEDIUM2` (see DescribeZoneInstanceConfigInfos). Changing it needs
    /// a stop (ResetInstancesType), so it waits for `updatePolicy.restart: IfNeeded`.
    #[schemars(
        regex(pattern = r"^[A-Z][A-Z0-9]*[a-z0-9]*\.[A-Z0-9]+$"),
        length(max = 64)
    )]
    pub instance_type: String,

    /// Image to boot, `img-` followed by 8 characters: public, custom, shared or marketplace.
    /// Changing it reinstalls the system disk (ResetInstance), so only with `updatePolicy.reimage: Allow`.
    #[schemars(regex(pattern = r"^img-[a-z0-9]{8}$"))]
    pub image_id: String,

    /// How the instance is billed.
    pub billing: Billing,

    /// The system disk. Defaults to the cloud's choice of a 50 GiB disk. Its size may only grow;
    /// its type cannot change in place.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system_disk: Option<SystemDisk>,

    /// Data disks created with the instance (at most 20 cloud disks). Sizes may only grow and
    /// `deleteWithInstance` may change; the number of disks, their type, snapshot and
    /// encryption cannot change in place.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 20))]
    pub data_disks: Option<Vec<DataDisk>>,

    /// Network placement: VPC and subnet, security groups, private and public IP. Security groups
    /// and the bandwidth change in place; the rest cannot.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network: Option<Network>,

    /// How to log in: SSH key IDs, a password from a Secret, or the image's own login.
    /// Omitted: Tencent Cloud generates a password and sends it to the account's inbox. Key and
    /// password changes need a stop, so they wait for `updatePolicy.restart: IfNeeded`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub login: Option<Login>,

    /// Name shown in the console, at most 128 characters. Default: `<namespace>-<name>`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 128))]
    pub instance_name: Option<String>,

    /// Host name inside the OS: 2 to 60 letters, digits, `-` and `.`, not starting or ending with
    /// `.` or `-`, and without `..` or `--`. Takes effect at a restart.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(
        regex(pattern = r"^[A-Za-z0-9]([A-Za-z0-9]|[.-][A-Za-z0-9])*$"),
        length(min = 2, max = 60)
    )]
    pub host_name: Option<String>,

    /// Project the instance belongs to; 0 is the default project.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub project_id: Option<i64>,

    /// Tags for the instance and its disks (at most 40). Keys under `cvm-operator.io/` are
    /// reserved for the operator's own tags; keys starting with `qcloud`, `tencent` or
    /// `project` (any case) are reserved by Tencent Cloud. Removing a key removes it from the
    /// instance; tags set by others (not in spec) are never touched.
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
    /// may be at most 16 KiB, so at most 12288 bytes of text. It runs only at first boot, so it
    /// cannot change in place.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 12288))]
    pub user_data: Option<String>,

    /// Secret in this resource's namespace holding `secretId`, `secretKey` and optionally
    /// `token` (temporary credentials). Omitted: the operator's default credentials, if enabled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credentials_secret_ref: Option<SecretRef>,

    /// What happens to the instance when this resource is deleted: `Delete` terminates it,
    /// `Orphan` leaves it running (and billing). Unset: `Delete` for an instance the operator
    /// created, `Orphan` for one adopted through `instanceId` (taking over a machine must not
    /// make deleting the resource destroy it unless asked).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deletion_policy: Option<DeletionPolicy>,

    /// Adopt this existing instance, `ins-` followed by 8 characters, instead of creating one:
    /// the operator never calls RunInstances for this resource. Can only be given when the
    /// resource is created, and never changes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^ins-[a-z0-9]{8}$"))]
    pub instance_id: Option<String>,

    /// `Manage` (default) changes the instance to match the spec. `ObserveOnly` only describes
    /// it and reports in status what differs, never writing to it: the safe first step of an
    /// adoption.
    #[serde(default)]
    pub management_policy: ManagementPolicy,

    /// Whether the instance should run. Default `Running`: a spec change is always acted on,
    /// while a stop done by someone else is drift, handled per `updatePolicy.drift`. `Manual`
    /// leaves starting and stopping to people.
    #[serde(default)]
    pub power_state: PowerState,

    /// How a stop made for `powerState: Stopped` bills. Default `KeepCharging`. `StopCharging`
    /// stops billing for CPU, memory and the public IP, which is released: the instance gets a
    /// new public IP when started, and the start may fail if the zone ran out of capacity. Only
    /// for `PayAsYouGo` without local disks, and only with `powerState: Stopped`.
    #[serde(default)]
    pub stopped_mode: StoppedMode,

    /// What the operator may do to bring the instance to the spec.
    #[serde(default)]
    pub update_policy: UpdatePolicy,
}

impl CvmInstanceSpec {
    /// `deletionPolicy`, or its default: an adopted instance, or one only observed, is left
    /// running; one the operator created is terminated.
    pub fn effective_deletion_policy(&self) -> DeletionPolicy {
        let observe_only = self.management_policy == ManagementPolicy::ObserveOnly;
        match self.deletion_policy {
            // Observing never writes, not even on deletion.
            _ if observe_only => DeletionPolicy::Orphan,
            Some(policy) => policy,
            None if self.instance_id.is_some() => DeletionPolicy::Orphan,
            None => DeletionPolicy::Delete,
        }
    }

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
    /// `PayAsYouGo` (POSTPAID_BY_HOUR) or `Spot` (SPOTPAID: cheaper, may be reclaimed). No API
    /// changes it: a new value replaces the instance (`updatePolicy.replace: Recreate`).
    pub mode: BillingMode,

    /// Spot options; only with mode `Spot`. Changing them replaces the instance, like `mode`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spot: Option<SpotOptions>,
}

/// Billing modes.
#[derive(Deserialize, Serialize, Clone, Copy, Debug, PartialEq, Eq, Hash, JsonSchema)]
pub enum BillingMode {
    /// Pay by the hour (POSTPAID_BY_HOUR). The account must hold one hour's cost.
    PayAsYouGo,
    /// Spot instance (SPOTPAID): discounted, and may be reclaimed by Tencent Cloud.
    Spot,
}

impl BillingMode {
    /// The Tencent `InstanceChargeType`.
    pub fn charge_type(self) -> &'static str {
        match self {
            BillingMode::PayAsYouGo => "POSTPAID_BY_HOUR",
            BillingMode::Spot => "SPOTPAID",
        }
    }

    /// The mode of a Tencent `InstanceChargeType`, if it is one of the two.
    pub fn of_charge_type(charge_type: &str) -> Option<Self> {
        [BillingMode::PayAsYouGo, BillingMode::Spot]
            .into_iter()
            .find(|mode| mode.charge_type() == charge_type)
    }

    /// The name in manifests, e.g. for metric labels.
    pub fn as_str(self) -> &'static str {
        match self {
            BillingMode::PayAsYouGo => "PayAsYouGo",
            BillingMode::Spot => "Spot",
        }
    }
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
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
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
    #[schemars(regex(pattern = r"^snap-[a-z0-9]{8}$"), length(max = 13))]
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
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
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
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
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

/// Whether the operator changes the instance or only looks at it.
#[derive(Deserialize, Serialize, Clone, Copy, Debug, PartialEq, Eq, Default, JsonSchema)]
pub enum ManagementPolicy {
    /// Change the instance to match the spec.
    #[default]
    Manage,
    /// Describe the instance and report differences in status; never write to it.
    ObserveOnly,
}

/// The power state the operator keeps the instance in.
#[derive(Deserialize, Serialize, Clone, Copy, Debug, PartialEq, Eq, Default, JsonSchema)]
pub enum PowerState {
    /// Start the instance if it is stopped (a stop by someone else is drift).
    #[default]
    Running,
    /// Stop the instance if it runs.
    Stopped,
    /// Never start or stop the instance; people do.
    Manual,
}

/// How a stopped pay-as-you-go instance bills (StopInstances `StoppedMode`).
#[derive(Deserialize, Serialize, Clone, Copy, Debug, PartialEq, Eq, Default, JsonSchema)]
pub enum StoppedMode {
    /// KEEP_CHARGING: keep paying; resources and public IP stay reserved.
    #[default]
    KeepCharging,
    /// STOP_CHARGING: stop paying for CPU, memory and public IP; the IP is released.
    StopCharging,
}

/// What the operator may do to bring an instance to its spec. The defaults do nothing a
/// person would not expect from editing a manifest: no reboot, no reinstall, no replacement,
/// and no silent reverting of someone else's change.
#[derive(Deserialize, Serialize, Clone, Copy, Debug, PartialEq, Eq, Default, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct UpdatePolicy {
    /// What to do when the instance differs from the spec although the spec did not change
    /// (someone edited it in the console). Default `Report`: an operator that silently reverts
    /// a security group someone changed during an incident is dangerous; `Correct` is opt-in.
    #[serde(default)]
    pub drift: DriftPolicy,
    /// Whether changes that need a stop (instanceType, hostName, keys, password) may stop and
    /// start the instance. Default `Never`: a reboot is an outage the user schedules; with
    /// `Never` such changes wait, reported as `RestartRequired`, until this is `IfNeeded`.
    #[serde(default)]
    pub restart: RestartPolicy,
    /// Whether a changed imageId may reinstall the system disk (its data is lost). Default `Never`.
    #[serde(default)]
    pub reimage: ReimagePolicy,
    /// Whether fields no API can change (zone, billing, disks, public IP presence, VPC,
    /// userData) may be changed by terminating the instance and creating a new one (a new
    /// ID, new private and public IPs; data disks not kept). Default `Never`: such edits are
    /// refused at admission. Not with `instanceId`: an adopted instance is never replaced.
    #[serde(default)]
    pub replace: ReplacePolicy,
}

/// Policy for drift (changes made outside the operator).
#[derive(Deserialize, Serialize, Clone, Copy, Debug, PartialEq, Eq, Default, JsonSchema)]
pub enum DriftPolicy {
    /// Report drift in status and a `Drifted` condition; change nothing.
    #[default]
    Report,
    /// Change the instance back, unless the same field keeps being changed (`Contested`).
    Correct,
}

/// Policy for changes that need the instance stopped.
#[derive(Deserialize, Serialize, Clone, Copy, Debug, PartialEq, Eq, Default, JsonSchema)]
pub enum RestartPolicy {
    /// Never stop the instance for a change; report `RestartRequired`.
    #[default]
    Never,
    /// Stop, apply every restart-class change in one stop window, and start again.
    IfNeeded,
}

/// Policy for a changed image.
#[derive(Deserialize, Serialize, Clone, Copy, Debug, PartialEq, Eq, Default, JsonSchema)]
pub enum ReimagePolicy {
    /// Never reinstall; report `ReimageRequired`.
    #[default]
    Never,
    /// Reinstall the system disk with the new image, exactly once per generation.
    Allow,
}

/// Policy for changes no API can make.
#[derive(Deserialize, Serialize, Clone, Copy, Debug, PartialEq, Eq, Default, JsonSchema)]
pub enum ReplacePolicy {
    /// Refuse such changes at admission.
    #[default]
    Never,
    /// Allow them, and terminate and recreate the instance to apply them.
    Recreate,
}

//! `CvmInstanceSet`: N machines of a kind, launched in batches, one adopted `CvmInstance`
//! child per machine (docs/design.md, instance sets).

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::spec::{BillingMode, CvmInstanceSpec};

/// Label on every child: the name of its set (also the set's `status.selector`).
pub const SET_LABEL: &str = "cvm-operator.io/instance-set";
/// Label on a pay-as-you-go child launched only because spot capacity was unavailable.
pub const FALLBACK_LABEL: &str = "cvm-operator.io/fallback";
/// Annotation a person puts on a child to have it removed first on scale-down.
pub const DELETE_PRIORITY: &str = "cvm-operator.io/delete-priority";
/// Annotation on every child: the hash of the set's template (`status.templateHash`) it was
/// built from or last brought up to date with. A child whose value differs from the set's
/// runs an older template that cannot reach its machine in place (a data disk added, ...).
pub const TEMPLATE_HASH: &str = "cvm-operator.io/template-hash";
/// Tags the set puts on every instance it launches: its UID (children of that set adopt
/// such an instance without a claim of their own), and the launch's ClientToken (recovery
/// finds a batch by it).
pub const TAG_SET_UID: &str = "cvm-operator.io/set-uid";
pub const TAG_SET_NAME: &str = "cvm-operator.io/set";
pub const TAG_LAUNCH: &str = "cvm-operator.io/launch";

/// A number of Tencent Cloud CVM instances of one configuration, launched in batches of up
/// to 100 per RunInstances call, across several offerings (instance types, zones, spot and
/// pay-as-you-go), each followed by a `CvmInstance` it owns.
// Every printer column repeats `type_`, which clippy mistakes for a duplicate.
#[allow(clippy::duplicated_attributes)]
#[derive(CustomResource, Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema)]
#[kube(
    group = "cvm-operator.io",
    version = "v1alpha1",
    kind = "CvmInstanceSet",
    plural = "cvminstancesets",
    shortname = "cvmset",
    category = "tencentcloud",
    namespaced,
    status = "CvmInstanceSetStatus",
    derive = "PartialEq",
    scale = r#"{"specReplicasPath":".spec.replicas","statusReplicasPath":".status.replicas","labelSelectorPath":".status.selector"}"#
)]
#[kube(printcolumn(name = "Desired", type_ = "integer", json_path = ".spec.replicas"))]
#[kube(printcolumn(name = "Ready", type_ = "integer", json_path = ".status.readyReplicas"))]
#[kube(printcolumn(
    name = "Up-to-date",
    type_ = "integer",
    json_path = ".status.updatedReplicas"
))]
#[kube(printcolumn(name = "Spot", type_ = "integer", json_path = ".status.spotReplicas"))]
#[kube(printcolumn(
    name = "PayAsYouGo",
    type_ = "integer",
    json_path = ".status.onDemandReplicas"
))]
#[kube(printcolumn(name = "Price/h", type_ = "string", json_path = ".status.hourlyPrice"))]
#[kube(printcolumn(
    name = "Age",
    type_ = "date",
    json_path = ".metadata.creationTimestamp"
))]
#[serde(rename_all = "camelCase")]
pub struct CvmInstanceSetSpec {
    /// How many instances to run. `kubectl scale`, an HPA or KEDA change it through the scale
    /// subresource.
    #[schemars(range(min = 0, max = 10000))]
    pub replicas: i32,

    /// The configuration every instance gets: a CvmInstance spec (copy one from a
    /// CvmInstance) without `instanceId`. Its zone, subnet, instance type and billing are the
    /// offering used when `offerings` lists none.
    pub template: InstanceTemplate,

    /// Other instance types and subnets (zones) the set may launch in, and how it picks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offerings: Option<OfferingsPolicy>,

    /// The pay-as-you-go share and the spot fallback.
    #[serde(default)]
    pub capacity: CapacityPolicy,

    /// Which instances go first when the set shrinks.
    #[serde(default)]
    pub scale_down: ScaleDownPolicy,

    /// How launches are made.
    #[serde(default)]
    pub launch: LaunchPolicy,

    /// How machines running an older template (a change no running machine can take: a
    /// data disk added, userData, another system disk...) are replaced.
    #[serde(default)]
    pub rollout: RolloutPolicy,
}

/// The instance configuration of a set.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-validations" = [
    {"rule": "!has(self.spec.instanceId)", "message": "spec.template.spec.instanceId: a set launches its own instances; adopt single instances with a CvmInstance", "fieldPath": ".spec.instanceId"},
    {"rule": "!has(self.spec.login) || !has(self.spec.login.passwordSecretRef)", "message": "spec.template.spec.login.passwordSecretRef is not supported in a set yet; use keyIds", "fieldPath": ".spec.login.passwordSecretRef"},
    {"rule": "!has(self.spec.updatePolicy) || !has(self.spec.updatePolicy.replace) || self.spec.updatePolicy.replace != 'Recreate'", "message": "spec.template.spec.updatePolicy.replace: Recreate is not supported in a set: its children adopt their machines, and a set does not replace machines yet", "fieldPath": ".spec.updatePolicy.replace"}
]))]
pub struct InstanceTemplate {
    /// Labels every child CvmInstance gets (besides `cvm-operator.io/instance-set`).
    #[serde(default)]
    pub metadata: TemplateMetadata,
    /// The CvmInstance spec of every instance.
    pub spec: CvmInstanceSpec,
}

#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TemplateMetadata {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labels: Option<BTreeMap<String, String>>,
}

/// Where else the set may launch.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct OfferingsPolicy {
    /// Instance types, in order of preference (default: the template's).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(
        length(max = 20),
        inner(regex(pattern = r"^[A-Z][A-Z0-9]*[a-z0-9]*\.[A-Z0-9]+$"))
    )]
    pub instance_types: Vec<String>,
    /// Subnets with their zones, in order of preference (default: the template's). All in the
    /// template's VPC.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 20))]
    pub subnets: Vec<SubnetOffering>,
    /// `Priority` (default): the order above, instance type first. `LowestPrice`: the cheapest
    /// hourly price first, from DescribeZoneInstanceConfigInfos; without prices, `Priority`.
    /// `CapacityOptimized`: the deepest stock first (`EnoughStock`, then `NormalStock`, then
    /// `UnderStock`, as DescribeZoneInstanceConfigInfos reports it), the order above among
    /// equals: fewer launches refused, and for spot fewer reclaims.
    #[serde(default)]
    pub allocation_strategy: AllocationStrategy,
    /// `Priority` (default): each launch goes to the first offering above with capacity, so
    /// a set may run in one zone. `Balanced`: a launch is split among the zones so that the
    /// one with the fewest of the set's machines gets the next, each zone's share to its best
    /// offering (a zone without capacity hands its share to the others), and a scale-down
    /// takes from the zone with the most first; losing a zone then costs the set as few
    /// machines as it can (Auto Scaling's `EQUALITY`, TKE's `ZoneEquality`). Balanced costs
    /// at most one RunInstances call more per zone.
    #[serde(default)]
    pub zone_balance: ZoneBalance,
}

#[derive(Deserialize, Serialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub enum ZoneBalance {
    #[default]
    Priority,
    Balanced,
}

#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SubnetOffering {
    #[schemars(
        regex(pattern = r"^[a-z]{2,4}-[a-z]+(-[a-z0-9]+)*-[0-9]+$"),
        length(max = 64)
    )]
    pub zone: String,
    #[schemars(regex(pattern = r"^subnet-[a-z0-9]{8}$"))]
    pub subnet_id: String,
}

#[derive(Deserialize, Serialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub enum AllocationStrategy {
    #[default]
    Priority,
    LowestPrice,
    CapacityOptimized,
}

/// The split between pay-as-you-go and spot. With a PayAsYouGo template every instance is
/// pay-as-you-go; with a Spot template, `onDemandBase` plus `onDemandPercentageAboveBase`
/// percent of the rest (rounded up) are pay-as-you-go and the others spot.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CapacityPolicy {
    #[serde(default)]
    #[schemars(range(min = 0))]
    pub on_demand_base: i32,
    #[serde(default)]
    #[schemars(range(min = 0, max = 100))]
    pub on_demand_percentage_above_base: i32,
    /// Launch pay-as-you-go when no spot offering has capacity (default true). Such
    /// instances are labelled `cvm-operator.io/fallback` and count as spot in the split.
    #[serde(default = "yes")]
    pub fallback_to_on_demand: bool,
    /// Going back to spot once it has capacity again.
    #[serde(default)]
    pub revert_to_spot: RevertToSpot,
}

impl Default for CapacityPolicy {
    fn default() -> Self {
        Self {
            on_demand_base: 0,
            on_demand_percentage_above_base: 0,
            fallback_to_on_demand: true,
            revert_to_spot: RevertToSpot::default(),
        }
    }
}

/// Surge first: spot replacements are launched and Ready before the fallback instances go,
/// so the set never has fewer than `replicas`.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RevertToSpot {
    /// Default true.
    #[serde(default = "yes")]
    pub enabled: bool,
    /// How long the set runs on fallback before it tries spot again, e.g. `30s`, `5m`, `1h`
    /// (default `5m`).
    #[serde(default = "five_minutes")]
    #[schemars(regex(pattern = r"^[0-9]{1,6}(s|m|h)$"))]
    pub after: String,
}

impl Default for RevertToSpot {
    fn default() -> Self {
        Self {
            enabled: true,
            after: five_minutes(),
        }
    }
}

fn yes() -> bool {
    true
}

fn five_minutes() -> String {
    "5m".into()
}

#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ScaleDownPolicy {
    /// After pending launches, never-Ready instances, those annotated
    /// `cvm-operator.io/delete-priority` and fallback ones: `Newest` (default) first,
    /// `Oldest` first, or the most expensive (`Cost`) first.
    #[serde(default)]
    pub order: ScaleDownOrder,
}

#[derive(Deserialize, Serialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub enum ScaleDownOrder {
    #[default]
    Newest,
    Oldest,
    Cost,
}

#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RolloutPolicy {
    /// `Manual` (default): out-of-date machines stay until the set shrinks (they go first)
    /// or a person deletes their child (replaced from the current template). `Surge`: up to
    /// `maxSurge` machines from the current template are launched on top of `replicas`, and
    /// an out-of-date machine is removed only once a replacement is Ready, so a rollout
    /// never leaves the set with fewer Ready machines than `replicas`.
    #[serde(default)]
    pub strategy: RolloutStrategy,
    /// Machines launched above `replicas` at once during a `Surge` rollout, 1 to 100
    /// (default 1).
    #[serde(default = "one")]
    #[schemars(range(min = 1, max = 100))]
    pub max_surge: i32,
}

impl Default for RolloutPolicy {
    fn default() -> Self {
        Self {
            strategy: RolloutStrategy::default(),
            max_surge: one(),
        }
    }
}

fn one() -> i32 {
    1
}

#[derive(Deserialize, Serialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub enum RolloutStrategy {
    #[default]
    Manual,
    Surge,
}

#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct LaunchPolicy {
    /// Instances per RunInstances call, 1 to 100 (default 100, the international API's limit).
    #[serde(default = "hundred")]
    #[schemars(range(min = 1, max = 100))]
    pub max_per_call: i32,
    /// Seconds an offering that reported no capacity is skipped (default 180).
    #[serde(default = "three_minutes")]
    #[schemars(range(min = 1, max = 86400))]
    pub unavailable_offering_seconds: i32,
}

impl Default for LaunchPolicy {
    fn default() -> Self {
        Self {
            max_per_call: hundred(),
            unavailable_offering_seconds: three_minutes(),
        }
    }
}

fn hundred() -> i32 {
    100
}

fn three_minutes() -> i32 {
    180
}

/// Observed state of a `CvmInstanceSet`.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CvmInstanceSetStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// The children's label selector, serialised (the scale subresource's selector).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selector: Option<String>,
    /// Instances not being deleted, including those of launches in flight.
    #[serde(default)]
    pub replicas: i32,
    #[serde(default)]
    pub ready_replicas: i32,
    /// Children whose spec matches the current template (`templateHash`): changes that can
    /// reach a running machine (tags, security groups, keys, image, ...) are carried to every
    /// child; one that cannot (a data disk added, ...) leaves the children out of date, and
    /// they go first on scale-down.
    #[serde(default)]
    pub updated_replicas: i32,
    #[serde(default)]
    pub spot_replicas: i32,
    #[serde(default)]
    pub on_demand_replicas: i32,
    /// Pay-as-you-go instances launched because spot had no capacity.
    #[serde(default)]
    pub fallback_replicas: i32,
    /// What the set's machines cost per hour together: the sum of its children's
    /// `hourlyPrice` (DescribeZoneInstanceConfigInfos' discounted prices). Absent while no
    /// child has a price.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hourly_price: Option<String>,
    /// SHA-256 of the current template's spec; up-to-date children carry it in their
    /// annotation `cvm-operator.io/template-hash`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template_hash: Option<String>,
    /// Per offering: instances, Ready ones, and why it is skipped until when.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub offerings: Vec<OfferingStatus>,
    /// Launches in flight, each written before its RunInstances call: the write-ahead log
    /// that makes a crash at any point end with neither a duplicate batch nor a lost one.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub launches: Vec<LaunchRecord>,
    /// The sequence number of the next launch.
    #[serde(default)]
    pub next_launch_seq: i64,
    /// A scale-down in progress, written before its instances are terminated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub removal: Option<RemovalRecord>,
    /// kstatus conditions `Ready`, `Reconciling`, `Stalled`, then `CapacityDegraded`, and
    /// `OutOfDate` (True while some children run an older template).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conditions: Option<Vec<Condition>>,
}

/// One (zone, instance type, billing) the set uses or skips.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct OfferingStatus {
    /// `*`: every zone (a spot quota error).
    pub zone: String,
    /// `*`: every instance type.
    pub instance_type: String,
    pub billing: BillingMode,
    #[serde(default)]
    pub replicas: i32,
    #[serde(default)]
    pub ready: i32,
    /// What its machines cost per hour together.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hourly_price: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unavailable_until: Option<Time>,
    /// The Tencent Cloud error code that made it unavailable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
}

/// Where one launch goes.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct LaunchOffering {
    pub zone: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subnet_id: Option<String>,
    pub instance_type: String,
    pub billing: BillingMode,
}

/// The children a scale-down removes: the write-ahead record of a removal. Written before
/// their instances are terminated, so a crash between the TerminateInstances call and the
/// deletions leaves them neither counted as replicas nor replaced as lost (the next
/// reconcile deletes them), and kept until the set's cache of children shows every one
/// deleted, so a reconcile reading a stale cache never takes them for live machines and
/// terminates them again.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RemovalRecord {
    pub children: Vec<String>,
    /// Every child named was deleted (after its instance was terminated).
    #[serde(default)]
    pub deleted: bool,
}

/// One RunInstances call of the set, recorded before it is sent.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct LaunchRecord {
    pub seq: i64,
    /// The call's ClientToken: the same token sends the same request, which returns the
    /// same instances.
    pub client_token: String,
    pub offering: LaunchOffering,
    pub count: i32,
    /// Hash of the template the request was built from: a replay after the template
    /// changed would be a different request under the same token, so it is not sent.
    pub template_hash: String,
    pub phase: LaunchPhase,
    /// Pay-as-you-go standing in for spot that had no capacity.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub fallback: bool,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub instance_ids: Vec<String>,
    pub created: Time,
}

#[derive(Deserialize, Serialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub enum LaunchPhase {
    /// Recorded; RunInstances may or may not have been sent.
    Pending,
    /// RunInstances returned the IDs; children are being created.
    Issued,
}

impl CvmInstanceSetStatus {
    pub fn condition(&self, type_: &str) -> Option<&Condition> {
        self.conditions.iter().flatten().find(|c| c.type_ == type_)
    }
}

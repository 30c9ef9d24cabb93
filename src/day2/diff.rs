//! Which governed fields differ between the spec and the instance. The variants are declared
//! in the order changes are applied (docs/design.md, "Day 2: the plan"): replacement, then
//! the in-place fields, the restart-class fields in one stop window, the reimage, and the
//! power state last.

use serde_json::{Value, json};

use super::observed::Observed;
use crate::api::{ChangeClass, CvmInstanceSpec, CvmInstanceStatus};

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Field {
    Zone,
    BillingMode,
    Tags,
    InstanceName,
    ProjectId,
    SecurityGroupIds,
    Bandwidth,
    DiskSizes,
    InstanceType,
    KeyIds,
    Password,
    HostName,
    ImageId,
    PowerState,
    /// A field no API changes and DescribeInstances may not show (`userData`, the spot bid,
    /// the disk layout, ...), compared with what the instance was created with
    /// (`status.createdWith`); named by its spec path.
    CreatedWith(&'static str),
}

impl Field {
    pub const ALL: [Field; 14] = [
        Field::Zone,
        Field::BillingMode,
        Field::Tags,
        Field::InstanceName,
        Field::ProjectId,
        Field::SecurityGroupIds,
        Field::Bandwidth,
        Field::DiskSizes,
        // The type change last in the stop window: Tencent starts the instance again after
        // ResetInstancesType, so anything after it would need a second stop.
        Field::KeyIds,
        Field::Password,
        Field::HostName,
        Field::InstanceType,
        Field::ImageId,
        Field::PowerState,
    ];

    /// The spec path, as status and conditions name it.
    pub fn name(self) -> &'static str {
        match self {
            Field::Zone => "zone",
            Field::BillingMode => "billing.mode",
            Field::Tags => "tags",
            Field::InstanceName => "instanceName",
            Field::ProjectId => "projectId",
            Field::SecurityGroupIds => "network.securityGroupIds",
            Field::Bandwidth => "network.publicIp.maxBandwidthOutMbps",
            Field::DiskSizes => "disks.sizeGiB",
            Field::InstanceType => "instanceType",
            Field::KeyIds => "login.keyIds",
            Field::Password => "login.passwordSecretRef",
            Field::HostName => "hostName",
            Field::ImageId => "imageId",
            Field::PowerState => "powerState",
            Field::CreatedWith(path) => path,
        }
    }

    pub fn class(self) -> ChangeClass {
        match self {
            Field::Zone | Field::BillingMode | Field::CreatedWith(_) => ChangeClass::Replace,
            Field::InstanceType | Field::KeyIds | Field::Password | Field::HostName => {
                ChangeClass::Restart
            }
            Field::ImageId => ChangeClass::Reimage,
            _ => ChangeClass::InPlace,
        }
    }

    /// Whether DescribeInstances shows the field, so that a change by someone else can be seen.
    pub fn observable(self) -> bool {
        !matches!(
            self,
            Field::Password | Field::HostName | Field::CreatedWith(_)
        )
    }

    /// The field's value in an observation, to tell whether the cloud changed it since.
    pub fn observed_value(self, o: &Observed) -> Value {
        match self {
            Field::Zone => json!(o.placement_zone),
            Field::BillingMode => json!(o.instance_charge_type),
            Field::Tags => json!(o.tags),
            Field::InstanceName => json!(o.instance_name),
            Field::ProjectId => json!(o.project_id),
            Field::SecurityGroupIds => json!(o.security_group_ids),
            Field::Bandwidth => json!(o.internet_max_bandwidth_out),
            Field::DiskSizes => json!([o.system_disk_size, o.data_disk_sizes]),
            Field::InstanceType => json!(o.instance_type),
            Field::KeyIds => json!(sorted(&o.key_ids)),
            Field::ImageId => json!(o.image_id),
            Field::PowerState => json!(o.instance_state),
            Field::Password | Field::HostName | Field::CreatedWith(_) => Value::Null,
        }
    }
}

/// What the planner compares against the spec besides the observation.
pub struct Applied<'a> {
    pub status: &'a CvmInstanceStatus,
    /// Salted digest of the password in the Secret now, if the login uses one.
    pub password_digest: Option<&'a str>,
}

/// Whether `field` of the instance differs from the spec. A field the spec leaves out is not
/// governed and never differs; sizes differ only when the spec is larger (they only grow).
pub fn differs(field: Field, spec: &CvmInstanceSpec, o: &Observed, applied: &Applied) -> bool {
    match field {
        Field::Zone => o.placement_zone.as_ref().is_some_and(|z| *z != spec.zone),
        Field::BillingMode => o
            .instance_charge_type
            .as_deref()
            .is_some_and(|c| c != charge_type(spec)),
        Field::Tags => {
            let tags = spec.tags.clone().unwrap_or_default();
            tags.iter().any(|(k, v)| o.tags.get(k) != Some(v))
                || !tags_to_remove(spec, o, applied.status).is_empty()
        }
        Field::InstanceName => spec
            .instance_name
            .as_ref()
            .is_some_and(|n| o.instance_name.as_ref() != Some(n)),
        Field::ProjectId => spec.project_id.is_some_and(|p| o.project_id != Some(p)),
        Field::SecurityGroupIds => spec
            .network
            .as_ref()
            .and_then(|n| n.security_group_ids.as_ref())
            .is_some_and(|ids| *ids != o.security_group_ids),
        Field::Bandwidth => match (bandwidth(spec), o.internet_max_bandwidth_out) {
            (Some(want), Some(have)) => want != have,
            _ => false,
        },
        Field::DiskSizes => !disks_to_grow(spec, o).is_empty(),
        Field::InstanceType => o
            .instance_type
            .as_ref()
            .is_some_and(|t| *t != spec.instance_type),
        Field::KeyIds => spec
            .login
            .as_ref()
            .and_then(|l| l.key_ids.as_ref())
            .is_some_and(|ids| sorted(ids) != sorted(&o.key_ids)),
        // A digest only after one was recorded at creation: the first one is the baseline.
        Field::Password => match (applied.password_digest, &applied.status.password_hash) {
            (Some(now), Some(before)) => now != before,
            _ => false,
        },
        Field::HostName => match (&spec.host_name, &applied.status.applied_host_name) {
            (Some(want), Some(have)) => want != have,
            _ => false,
        },
        Field::ImageId => o.image_id.as_ref().is_some_and(|i| *i != spec.image_id),
        // Power is decided by the planner from the state; it differs here only to be named.
        Field::PowerState => false,
        // Only against a record: an instance created before one was kept has its first
        // observation as the baseline.
        Field::CreatedWith(path) => applied.status.created_with.as_ref().is_some_and(|was| {
            let now = crate::api::replace_only_digests(spec);
            was.get(path).is_some_and(|d| now.get(path) != Some(d))
        }),
    }
}

/// Tag keys the operator set before that the spec no longer has and the instance still carries.
pub fn tags_to_remove(
    spec: &CvmInstanceSpec,
    o: &Observed,
    status: &CvmInstanceStatus,
) -> Vec<String> {
    let spec_tags = spec.tags.clone().unwrap_or_default();
    status
        .applied_tag_keys
        .iter()
        .flatten()
        .filter(|k| !spec_tags.contains_key(*k) && o.tags.contains_key(*k))
        .cloned()
        .collect()
}

/// The system disk's new size, if it grows, and each data disk (by index) that grows.
pub fn disks_to_grow(spec: &CvmInstanceSpec, o: &Observed) -> Vec<(Option<usize>, i32)> {
    let system = spec
        .system_disk
        .as_ref()
        .and_then(|d| d.size_gib)
        .filter(|want| o.system_disk_size.is_some_and(|have| *want > have))
        .map(|want| (None, want));
    let data = spec
        .data_disks
        .iter()
        .flatten()
        .enumerate()
        .filter_map(|(i, d)| {
            o.data_disk_sizes
                .get(i)
                .is_some_and(|have| d.size_gib > *have)
                .then_some((Some(i), d.size_gib))
        });
    system.into_iter().chain(data).collect()
}

pub fn bandwidth(spec: &CvmInstanceSpec) -> Option<i32> {
    Some(
        spec.network
            .as_ref()?
            .public_ip
            .as_ref()?
            .max_bandwidth_out_mbps,
    )
}

fn charge_type(spec: &CvmInstanceSpec) -> &'static str {
    spec.billing.mode.charge_type()
}

fn sorted(ids: &[String]) -> Vec<String> {
    let mut ids = ids.to_vec();
    ids.sort();
    ids
}

//! One launch of a set: its write-ahead record and the RunInstances request made from it.
//!
//! The request is a function of the template and the record alone, so a replay after a
//! crash sends the identical request under the identical ClientToken, which returns the
//! instances of the first call instead of launching a second batch.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use kube::ResourceExt;

use crate::api::{
    Billing, BillingMode, CvmInstanceSet, CvmInstanceSpec, LaunchOffering, LaunchPhase,
    LaunchRecord, TAG_LAUNCH, TAG_NAMESPACE, TAG_SET_NAME, TAG_SET_UID,
};
use crate::controller::PersistedToken;
use crate::controller::request::{Owner, run_instances_request, spec_tags};
use tencent_cloud::types::{RunInstancesRequest, Tag, TagSpecification};

/// `cvmset-<set UID>-<seq>`: at most 7 + 36 + 1 + 19 = 63 ASCII characters (the API allows
/// 64), unique per launch of the set, and the same for a replay.
pub fn launch_token(set_uid: &str, seq: i64) -> String {
    format!("cvmset-{set_uid}-{seq}")
}

/// SHA-256 of the template's spec as JSON: a replay is sent only while it is unchanged.
pub fn template_hash(set: &CvmInstanceSet) -> String {
    let json = serde_json::to_vec(&set.spec.template.spec).expect("the spec serialises");
    tencent_cloud::sign::sha256_hex(&json)
}

/// The record of the set's next launch, in phase Pending.
pub fn new_record(
    set: &CvmInstanceSet,
    seq: i64,
    offering: LaunchOffering,
    count: i32,
    fallback: bool,
    now: Timestamp,
) -> LaunchRecord {
    LaunchRecord {
        seq,
        client_token: launch_token(&set.uid().unwrap_or_default(), seq),
        offering,
        count,
        template_hash: template_hash(set),
        phase: LaunchPhase::Pending,
        fallback,
        instance_ids: Vec::new(),
        created: Time(now),
    }
}

/// The template's spec on `offering`: its zone, subnet, instance type and billing.
pub fn spec_on(template: &CvmInstanceSpec, offering: &LaunchOffering) -> CvmInstanceSpec {
    let mut spec = template.clone();
    spec.zone = offering.zone.clone();
    spec.instance_type = offering.instance_type.clone();
    if let (Some(network), Some(subnet)) = (spec.network.as_mut(), &offering.subnet_id) {
        network.subnet_id = Some(subnet.clone());
    }
    spec.billing = Billing {
        mode: offering.billing,
        spot: match offering.billing {
            BillingMode::Spot => template.billing.spot.clone(),
            BillingMode::PayAsYouGo => None,
        },
    };
    spec
}

/// RunInstances for a stored `record`: `count` instances (at least one, with MinCount, so
/// partial stock is taken), tagged with the set's UID and namespace and the launch token,
/// and none of the single-instance tags (a set's instance belongs to no CvmInstance until a
/// child of the set adopts it).
pub fn request(set: &CvmInstanceSet, record: &LaunchRecord) -> RunInstancesRequest {
    let namespace = set.namespace().unwrap_or_default();
    let name = set.name_any();
    let uid = set.uid().unwrap_or_default();
    let spec = spec_on(&set.spec.template.spec, &record.offering);
    let owner = Owner {
        namespace: &namespace,
        name: &name,
        uid: &uid,
        attempt: 0,
    };
    let token = PersistedToken::of_stored_launch(record);
    let mut request = run_instances_request(&spec, &owner, &token, None);
    request.instance_count = Some(i64::from(record.count));
    request.min_count = (record.count > 1).then_some(1);
    let mut tags = spec_tags(&spec);
    tags.extend([
        Tag::new(TAG_SET_UID, &uid),
        Tag::new(TAG_NAMESPACE, &namespace),
        Tag::new(TAG_SET_NAME, &name),
        Tag::new(TAG_LAUNCH, &record.client_token),
    ]);
    request.tag_specification = vec![TagSpecification {
        resource_type: "instance".to_string(),
        tags,
    }];
    request
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_fit_the_api_limit() {
        let uid = "7d3c1b52-5a7e-4f0e-9a51-1f6f3c2b9e10";
        assert!(launch_token(uid, i64::MAX).len() <= 64);
        assert_eq!(launch_token(uid, 3), format!("cvmset-{uid}-3"));
    }
}

//! Turns a `CvmInstance` spec into the one RunInstances request made for it.
//!
//! Pure, so that the exact JSON sent for each billing mode is pinned by tests.

use base64::Engine;

use super::target::PersistedToken;
use crate::api::{
    BillingMode, CvmInstanceSpec, DataDiskType, InternetChargeType, SystemDiskType, TAG_NAME,
    TAG_NAMESPACE, TAG_UID,
};
use tencent_cloud::credentials::SecretString;
use tencent_cloud::types::{
    DataDisk, InstanceMarketOptions, InternetAccessible, LoginSettings, Placement,
    RunInstancesRequest, SpotOptions, SystemDisk, Tag, TagSpecification, VirtualPrivateCloud,
};

/// The tag that ties an instance to one creation attempt, so that an instance left from an
/// earlier attempt (launch failed, or being reclaimed) is never adopted by a later one.
pub const TAG_ATTEMPT: &str = "cvm-operator.io/attempt";

/// Who the instance is for.
#[derive(Debug, Clone)]
pub struct Owner<'a> {
    pub namespace: &'a str,
    pub name: &'a str,
    pub uid: &'a str,
    pub attempt: i32,
}

/// The idempotency token of one creation attempt: `cvmop-<uid>-<attempt>` (at most 53 ASCII
/// characters, inside the API's 64). Deterministic, so that even a reconcile working from a
/// stale view of the resource resends the same token.
pub fn client_token(uid: &str, attempt: i32) -> String {
    format!("cvmop-{uid}-{attempt}")
}

/// The operator's tags on every instance it creates.
pub fn operator_tags(owner: &Owner<'_>) -> Vec<Tag> {
    vec![
        Tag::new(TAG_UID, owner.uid),
        Tag::new(TAG_NAMESPACE, owner.namespace),
        Tag::new(TAG_NAME, owner.name),
        Tag::new(TAG_ATTEMPT, owner.attempt.to_string()),
    ]
}

/// The tags `spec.tags` asks for.
pub fn spec_tags(spec: &CvmInstanceSpec) -> Vec<Tag> {
    spec.tags
        .iter()
        .flatten()
        .map(|(k, v)| Tag::new(k, v))
        .collect()
}

/// Builds RunInstances for `spec` with a ClientToken that is already in the stored status
/// (only [`PersistedToken`] carries one). `password` is the resolved login password, if the
/// spec names one.
pub fn run_instances_request(
    spec: &CvmInstanceSpec,
    owner: &Owner<'_>,
    token: &PersistedToken,
    password: Option<SecretString>,
) -> RunInstancesRequest {
    let mut tags = spec_tags(spec);
    tags.extend(operator_tags(owner));

    let network = spec.network.as_ref();
    RunInstancesRequest {
        instance_charge_type: Some(
            match spec.billing.mode {
                BillingMode::PayAsYouGo => "POSTPAID_BY_HOUR",
                BillingMode::Spot => "SPOTPAID",
            }
            .to_string(),
        ),
        placement: Placement {
            zone: spec.zone.clone(),
            project_id: spec.project_id,
            host_id: None,
        },
        instance_type: Some(spec.instance_type.clone()),
        image_id: spec.image_id.clone(),
        system_disk: spec.system_disk.as_ref().map(|d| SystemDisk {
            disk_type: d.disk_type.map(|t| system_disk_type(t).to_string()),
            disk_size: d.size_gib.map(i64::from),
            disk_id: None,
        }),
        data_disks: spec
            .data_disks
            .iter()
            .flatten()
            .map(|d| DataDisk {
                disk_type: Some(data_disk_type(d.disk_type).to_string()),
                disk_size: i64::from(d.size_gib),
                delete_with_instance: d.delete_with_instance,
                snapshot_id: d.snapshot_id.clone(),
                encrypt: d.encrypt,
                disk_id: None,
            })
            .collect(),
        virtual_private_cloud: network.and_then(|n| {
            Some(VirtualPrivateCloud {
                vpc_id: n.vpc_id.clone()?,
                subnet_id: n.subnet_id.clone()?,
                private_ip_addresses: n.private_ip_address.iter().cloned().collect(),
            })
        }),
        internet_accessible: network.and_then(|n| n.public_ip.as_ref()).map(|ip| {
            InternetAccessible {
                internet_charge_type: Some(
                    internet_charge_type(
                        ip.charge_type
                            .unwrap_or(InternetChargeType::TrafficPostpaidByHour),
                    )
                    .to_string(),
                ),
                internet_max_bandwidth_out: Some(i64::from(ip.max_bandwidth_out_mbps)),
                public_ip_assigned: Some(true),
            }
        }),
        instance_count: Some(1),
        min_count: None,
        instance_name: Some(
            spec.instance_name
                .clone()
                .unwrap_or_else(|| default_instance_name(owner)),
        ),
        login_settings: spec.login.as_ref().map(|l| LoginSettings {
            password: password.clone(),
            key_ids: l.key_ids.clone().unwrap_or_default(),
            keep_image_login: l
                .keep_image_login
                .map(|keep| if keep { "true" } else { "false" }.to_string()),
        }),
        security_group_ids: network
            .and_then(|n| n.security_group_ids.clone())
            .unwrap_or_default(),
        client_token: Some(token.as_str().to_string()),
        host_name: spec.host_name.clone(),
        tag_specification: vec![TagSpecification {
            resource_type: "instance".to_string(),
            tags,
        }],
        instance_market_options: spot_market_options(spec),
        user_data: spec.user_data.as_ref().map(|text| {
            SecretString::new(base64::engine::general_purpose::STANDARD.encode(text.as_bytes()))
        }),
        dry_run: None,
    }
}

/// Market options for a spot instance with a bid. Without a bid none are sent: the API then
/// charges the current fixed-discount price (reference §2.2), whereas market options with
/// an empty `MaxPrice` are refused, since `SpotOptions.MaxPrice` is required in the object.
fn spot_market_options(spec: &CvmInstanceSpec) -> Option<InstanceMarketOptions> {
    if spec.billing.mode != BillingMode::Spot {
        return None;
    }
    let max_price = spec.billing.spot.as_ref()?.max_price.clone()?;
    Some(InstanceMarketOptions {
        market_type: "spot".to_string(),
        spot_options: SpotOptions {
            max_price,
            spot_instance_type: Some("one-time".to_string()),
        },
    })
}

/// `<namespace>-<name>`, cut to the API's 128 characters.
pub fn default_instance_name(owner: &Owner<'_>) -> String {
    let name = format!("{}-{}", owner.namespace, owner.name);
    name.chars().take(128).collect()
}

/// User data must fit 16 KiB once base64-encoded; admission bounds the characters, this
/// bounds the bytes (multi-byte text can pass the first and fail the second).
pub fn user_data_fits(text: &str) -> bool {
    text.len().div_ceil(3) * 4 <= 16 * 1024
}

fn system_disk_type(t: SystemDiskType) -> &'static str {
    match t {
        SystemDiskType::LocalBasic => "LOCAL_BASIC",
        SystemDiskType::LocalSsd => "LOCAL_SSD",
        SystemDiskType::CloudBasic => "CLOUD_BASIC",
        SystemDiskType::CloudSsd => "CLOUD_SSD",
        SystemDiskType::CloudPremium => "CLOUD_PREMIUM",
        SystemDiskType::CloudBssd => "CLOUD_BSSD",
        SystemDiskType::CloudHssd => "CLOUD_HSSD",
        SystemDiskType::CloudTssd => "CLOUD_TSSD",
    }
}

fn data_disk_type(t: DataDiskType) -> &'static str {
    match t {
        DataDiskType::LocalBasic => "LOCAL_BASIC",
        DataDiskType::LocalSsd => "LOCAL_SSD",
        DataDiskType::LocalNvme => "LOCAL_NVME",
        DataDiskType::LocalPro => "LOCAL_PRO",
        DataDiskType::CloudBasic => "CLOUD_BASIC",
        DataDiskType::CloudPremium => "CLOUD_PREMIUM",
        DataDiskType::CloudSsd => "CLOUD_SSD",
        DataDiskType::CloudHssd => "CLOUD_HSSD",
        DataDiskType::CloudTssd => "CLOUD_TSSD",
        DataDiskType::CloudBssd => "CLOUD_BSSD",
    }
}

fn internet_charge_type(t: InternetChargeType) -> &'static str {
    match t {
        InternetChargeType::TrafficPostpaidByHour => "TRAFFIC_POSTPAID_BY_HOUR",
        InternetChargeType::BandwidthPostpaidByHour => "BANDWIDTH_POSTPAID_BY_HOUR",
        InternetChargeType::BandwidthPackage => "BANDWIDTH_PACKAGE",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::CvmInstance;
    use serde_json::json;

    const UID: &str = "7d3c1b52-5a7e-4f0e-9a51-1f6f3c2b9e10";

    fn owner() -> Owner<'static> {
        Owner {
            namespace: "default",
            name: "web-1",
            uid: UID,
            attempt: 0,
        }
    }

    /// RunInstances for `spec` as JSON, for the default owner and no password.
    fn request_body(spec: &CvmInstanceSpec) -> serde_json::Value {
        serde_json::to_value(run_instances_request(
            spec,
            &owner(),
            &token(&owner()),
            None,
        ))
        .unwrap()
    }

    /// The token a reconcile would have persisted for `owner`.
    fn token(owner: &Owner<'_>) -> PersistedToken {
        PersistedToken::assume_persisted(client_token(owner.uid, owner.attempt))
    }

    fn example(file: &str) -> CvmInstanceSpec {
        let path = format!("{}/examples/{file}", env!("CARGO_MANIFEST_DIR"));
        let text = std::fs::read_to_string(path).unwrap();
        let obj: CvmInstance = serde_saphyr::from_str(&text).unwrap();
        obj.spec
    }

    #[test]
    fn pay_as_you_go_example_request_json() {
        let req = run_instances_request(
            &example("pay-as-you-go.yaml"),
            &owner(),
            &token(&owner()),
            None,
        );
        let body = serde_json::to_value(&req).unwrap();
        assert_eq!(
            body,
            json!({
                "InstanceChargeType": "POSTPAID_BY_HOUR",
                "Placement": {"Zone": "ap-guangzhou-3"},
                "InstanceType": "S5.MEDIUM2",
                "ImageId": "img-eb30mz89",
                "SystemDisk": {"DiskType": "CLOUD_PREMIUM", "DiskSize": 50},
                "DataDisks": [{"DiskType": "CLOUD_SSD", "DiskSize": 100, "DeleteWithInstance": true}],
                "VirtualPrivateCloud": {"VpcId": "vpc-2k3m4n5p", "SubnetId": "subnet-7q8r9s0t"},
                "InternetAccessible": {
                    "InternetChargeType": "TRAFFIC_POSTPAID_BY_HOUR",
                    "InternetMaxBandwidthOut": 10,
                    "PublicIpAssigned": true
                },
                "InstanceCount": 1,
                "InstanceName": "default-web-1",
                "LoginSettings": {"KeyIds": ["skey-3x4y5z6a"]},
                "SecurityGroupIds": ["sg-5t6u7v8w"],
                "ClientToken": format!("cvmop-{UID}-0"),
                "HostName": "web-1",
                "TagSpecification": [{"ResourceType": "instance", "Tags": [
                    {"Key": "team", "Value": "web"},
                    {"Key": "cvm-operator.io/uid", "Value": UID},
                    {"Key": "cvm-operator.io/namespace", "Value": "default"},
                    {"Key": "cvm-operator.io/name", "Value": "web-1"},
                    {"Key": "cvm-operator.io/attempt", "Value": "0"}
                ]}],
                "UserData": "IyEvYmluL3NoCmVjaG8gaGVsbG8gPiAvZXRjL21vdGQK"
            })
        );
    }

    #[test]
    fn spot_example_request_json() {
        let owner = Owner {
            name: "batch-1",
            attempt: 2,
            ..owner()
        };
        let req = run_instances_request(&example("spot.yaml"), &owner, &token(&owner), None);
        let body = serde_json::to_value(&req).unwrap();
        assert_eq!(
            body,
            json!({
                "InstanceChargeType": "SPOTPAID",
                "Placement": {"Zone": "ap-guangzhou-3"},
                "InstanceType": "SA2.MEDIUM4",
                "ImageId": "img-eb30mz89",
                "SystemDisk": {"DiskType": "CLOUD_BSSD", "DiskSize": 50},
                "VirtualPrivateCloud": {"VpcId": "vpc-2k3m4n5p", "SubnetId": "subnet-7q8r9s0t"},
                "InstanceCount": 1,
                "InstanceName": "default-batch-1",
                "LoginSettings": {"KeyIds": ["skey-3x4y5z6a"]},
                "ClientToken": format!("cvmop-{UID}-2"),
                "TagSpecification": [{"ResourceType": "instance", "Tags": [
                    {"Key": "workload", "Value": "batch"},
                    {"Key": "cvm-operator.io/uid", "Value": UID},
                    {"Key": "cvm-operator.io/namespace", "Value": "default"},
                    {"Key": "cvm-operator.io/name", "Value": "batch-1"},
                    {"Key": "cvm-operator.io/attempt", "Value": "2"}
                ]}],
                "InstanceMarketOptions": {
                    "MarketType": "spot",
                    "SpotOptions": {"MaxPrice": "0.08", "SpotInstanceType": "one-time"}
                }
            })
        );
    }

    #[test]
    fn spot_without_a_bid_sends_no_market_options() {
        for spot in [None, Some(crate::api::SpotOptions { max_price: None })] {
            let mut spec = example("spot.yaml");
            spec.billing.spot = spot;
            let body = request_body(&spec);
            assert_eq!(body["InstanceChargeType"], "SPOTPAID");
            assert!(
                body.get("InstanceMarketOptions").is_none(),
                "no bid must mean no InstanceMarketOptions: {body}"
            );
        }
    }

    #[test]
    fn password_is_sent_but_never_debug_printed() {
        let mut spec = example("spot.yaml");
        spec.login = Some(crate::api::Login {
            key_ids: None,
            password_secret_ref: Some(crate::api::SecretKeyRef {
                name: "pw".into(),
                key: "password".into(),
            }),
            keep_image_login: None,
        });
        let req = run_instances_request(
            &spec,
            &owner(),
            &token(&owner()),
            Some(SecretString::new("Sup3r-secret!")),
        );
        let body = serde_json::to_value(&req).unwrap();
        assert_eq!(body["LoginSettings"], json!({"Password": "Sup3r-secret!"}));
        assert!(!format!("{req:?}").contains("Sup3r-secret!"));
    }

    #[test]
    fn keep_image_login_is_a_string() {
        let mut spec = example("spot.yaml");
        spec.login = Some(crate::api::Login {
            key_ids: None,
            password_secret_ref: None,
            keep_image_login: Some(true),
        });
        let body = request_body(&spec);
        assert_eq!(body["LoginSettings"], json!({"KeepImageLogin": "true"}));
    }

    #[test]
    fn token_fits_the_api_limit() {
        let token = client_token(UID, i32::MAX);
        assert!(token.len() <= 64 && token.is_ascii(), "{token}");
    }

    #[test]
    fn user_data_limit_counts_encoded_bytes() {
        assert!(user_data_fits(&"a".repeat(12288)));
        assert!(!user_data_fits(&"a".repeat(12289)));
        // 4096 three-byte characters pass a 12288-character limit but not 16 KiB of base64.
        assert!(!user_data_fits(&"界".repeat(4097)));
    }

    #[test]
    fn default_name_is_cut_to_128() {
        let long = "x".repeat(200);
        let o = Owner {
            name: &long,
            ..owner()
        };
        assert_eq!(default_instance_name(&o).len(), 128);
    }
}

//! Wire types of the CVM API 2017-03-12 that the operator sends and reads.
//!
//! Requests omit every absent field: the body bytes are what gets signed, and the SDKs
//! send only what is set. Responses tolerate `null` and unknown fields, which Tencent
//! returns freely (reference §3.1, §8).

use serde::{Deserialize, Deserializer, Serialize};

use super::credentials::SecretString;

/// Reads `null` (or an absent field, with `#[serde(default)]`) as the type's default.
pub(crate) fn null_as_default<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(deserializer)?.unwrap_or_default())
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
pub struct Tag {
    #[serde(default, deserialize_with = "null_as_default")]
    pub key: String,
    #[serde(default, deserialize_with = "null_as_default")]
    pub value: String,
}

impl Tag {
    pub fn new(key: impl Into<String>, value: impl Into<String>) -> Self {
        Self {
            key: key.into(),
            value: value.into(),
        }
    }
}

/// A DescribeInstances filter, e.g. `{"Name": "tag:cvm-operator.io/uid", "Values": [...]}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
pub struct Filter {
    pub name: String,
    pub values: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
pub struct Placement {
    #[serde(default, deserialize_with = "null_as_default")]
    pub zone: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub project_id: Option<i64>,
    /// Response only: the CDH host of a dedicated-host instance.
    #[serde(default, skip_serializing)]
    pub host_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
pub struct SystemDisk {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disk_type: Option<String>,
    /// GiB.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disk_size: Option<i64>,
    /// Response only.
    #[serde(default, skip_serializing)]
    pub disk_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
pub struct DataDisk {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disk_type: Option<String>,
    /// GiB; required by the API.
    #[serde(default, deserialize_with = "null_as_default")]
    pub disk_size: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delete_with_instance: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snapshot_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encrypt: Option<bool>,
    /// Response only.
    #[serde(default, skip_serializing)]
    pub disk_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
pub struct VirtualPrivateCloud {
    #[serde(default, deserialize_with = "null_as_default")]
    pub vpc_id: String,
    #[serde(default, deserialize_with = "null_as_default")]
    pub subnet_id: String,
    /// The primary ENI's IPs; as many as `InstanceCount`.
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub private_ip_addresses: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
pub struct InternetAccessible {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub internet_charge_type: Option<String>,
    /// Mbps; a public IP needs more than 0.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub internet_max_bandwidth_out: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub public_ip_assigned: Option<bool>,
}

/// How to log in. `Password`, `KeyIds` and `KeepImageLogin` are mutually exclusive.
/// Debug never shows the password.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Default)]
#[serde(rename_all = "PascalCase")]
pub struct LoginSettings {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub password: Option<SecretString>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub key_ids: Vec<String>,
    /// A **string** in the API: `"true"` or `"false"`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub keep_image_login: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Default)]
#[serde(rename_all = "PascalCase")]
pub struct TagSpecification {
    /// `instance` for the operator's instances.
    pub resource_type: String,
    pub tags: Vec<Tag>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Default)]
#[serde(rename_all = "PascalCase")]
pub struct SpotOptions {
    /// A **string** in the API, e.g. `"0.08"`.
    pub max_price: String,
    /// Only `one-time` exists.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub spot_instance_type: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Default)]
#[serde(rename_all = "PascalCase")]
pub struct InstanceMarketOptions {
    /// Only `spot` exists.
    pub market_type: String,
    pub spot_options: SpotOptions,
}

/// RunInstances with every field the operator may send (reference §2.2).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Default)]
#[serde(rename_all = "PascalCase")]
pub struct RunInstancesRequest {
    /// `POSTPAID_BY_HOUR` or `SPOTPAID` for the operator.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub instance_charge_type: Option<String>,
    pub placement: Placement,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub instance_type: Option<String>,
    pub image_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub system_disk: Option<SystemDisk>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub data_disks: Vec<DataDisk>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub virtual_private_cloud: Option<VirtualPrivateCloud>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub internet_accessible: Option<InternetAccessible>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub instance_count: Option<i64>,
    /// Partial delivery: at least this many, as many as `instance_count` if in stock (only
    /// where the account, region and charge type support it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub min_count: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub instance_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub login_settings: Option<LoginSettings>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub security_group_ids: Vec<String>,
    /// Idempotency token, at most 64 ASCII characters. Retries reuse it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_token: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host_name: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tag_specification: Vec<TagSpecification>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub instance_market_options: Option<InstanceMarketOptions>,
    /// Base64 of the user data (≤ 16 KiB encoded). Redacted in Debug: scripts often carry secrets.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_data: Option<SecretString>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dry_run: Option<bool>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
pub struct RunInstancesResponse {
    #[serde(default, deserialize_with = "null_as_default")]
    pub instance_id_set: Vec<String>,
}

/// DescribeInstances: `InstanceIds` (≤ 100) or `Filters` (≤ 10 × 5 values), never both.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Default)]
#[serde(rename_all = "PascalCase")]
pub struct DescribeInstancesRequest {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub instance_ids: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub filters: Vec<Filter>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub offset: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
pub struct DescribeInstancesResponse {
    #[serde(default, deserialize_with = "null_as_default")]
    pub total_count: i64,
    #[serde(default, deserialize_with = "null_as_default")]
    pub instance_set: Vec<Instance>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Default)]
#[serde(rename_all = "PascalCase")]
pub struct TerminateInstancesRequest {
    pub instance_ids: Vec<String>,
}

/// The response of an action whose only payload is the RequestId.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Default)]
pub struct EmptyResponse {}

/// What TerminateInstances needs of an instance: its ID, and its charge type (one call may
/// not mix charge types). Lighter than a described [`Instance`]: a set scaling down by
/// thousands holds one per machine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ToTerminate {
    pub instance_id: String,
    /// `InstanceChargeType`, e.g. `POSTPAID_BY_HOUR`.
    pub charge_type: String,
}

impl From<&Instance> for ToTerminate {
    fn from(instance: &Instance) -> Self {
        Self {
            instance_id: instance.instance_id.clone(),
            charge_type: instance.instance_charge_type.clone().unwrap_or_default(),
        }
    }
}

/// An instance as DescribeInstances returns it. Only the fields the operator reads are
/// typed; the rest are ignored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
pub struct Instance {
    #[serde(default, deserialize_with = "null_as_default")]
    pub instance_id: String,
    /// The CVM state verbatim: `PENDING`, `LAUNCH_FAILED`, `RUNNING`, `STOPPED`, ...
    #[serde(default, deserialize_with = "null_as_default")]
    pub instance_state: String,
    #[serde(default)]
    pub instance_name: Option<String>,
    #[serde(default)]
    pub instance_type: Option<String>,
    #[serde(default)]
    pub instance_charge_type: Option<String>,
    #[serde(default)]
    pub placement: Option<Placement>,
    #[serde(default)]
    pub image_id: Option<String>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub private_ip_addresses: Vec<String>,
    /// `null` until a public IP is assigned, and for instances without one.
    #[serde(default, deserialize_with = "null_as_default")]
    pub public_ip_addresses: Vec<String>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub security_group_ids: Vec<String>,
    #[serde(default)]
    pub virtual_private_cloud: Option<VirtualPrivateCloud>,
    #[serde(default)]
    pub internet_accessible: Option<InternetAccessible>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub tags: Vec<Tag>,
    #[serde(default)]
    pub host_name: Option<String>,
    #[serde(default)]
    pub latest_operation: Option<String>,
    /// `SUCCESS`, `OPERATING` or `FAILED`.
    #[serde(default)]
    pub latest_operation_state: Option<String>,
    #[serde(default)]
    pub latest_operation_request_id: Option<String>,
    /// Why a launch failed, for `LAUNCH_FAILED`.
    #[serde(default)]
    pub latest_operation_error_msg: Option<String>,
    /// RFC 3339, either `...Z` or `...+00:00`.
    #[serde(default)]
    pub created_time: Option<String>,
    #[serde(default)]
    pub expired_time: Option<String>,
    /// `NORMAL`, `EXPIRED`, `PROTECTIVELY_ISOLATED`.
    #[serde(default)]
    pub restrict_state: Option<String>,
    /// `ARREAR`, `EXPIRE`, `MANMADE`, `NOTISOLATED`.
    #[serde(default)]
    pub isolated_source: Option<String>,
    #[serde(default)]
    pub uuid: Option<String>,
    /// `KEEP_CHARGING` or `STOP_CHARGING` while stopped, `NOT_APPLICABLE` otherwise.
    #[serde(default)]
    pub stop_charging_mode: Option<String>,
    #[serde(default)]
    pub system_disk: Option<SystemDisk>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub data_disks: Vec<DataDisk>,
    /// Only the key IDs: the API never returns a password.
    #[serde(default)]
    pub login_settings: Option<ObservedLoginSettings>,
}

/// `LoginSettings` as DescribeInstances shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
pub struct ObservedLoginSettings {
    #[serde(default, deserialize_with = "null_as_default")]
    pub key_ids: Vec<String>,
}

impl Instance {
    /// The value of a tag, if the instance carries it.
    pub fn tag(&self, key: &str) -> Option<&str> {
        self.tags
            .iter()
            .find(|t| t.key == key)
            .map(|t| t.value.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn spot_request() -> RunInstancesRequest {
        RunInstancesRequest {
            instance_charge_type: Some("SPOTPAID".into()),
            placement: Placement {
                zone: "ap-guangzhou-3".into(),
                project_id: Some(0),
                host_id: None,
            },
            instance_type: Some("S5.MEDIUM2".into()),
            image_id: "img-eb30mz89".into(),
            system_disk: Some(SystemDisk {
                disk_type: Some("CLOUD_PREMIUM".into()),
                disk_size: Some(50),
                disk_id: None,
            }),
            data_disks: vec![DataDisk {
                disk_type: Some("CLOUD_SSD".into()),
                disk_size: 100,
                delete_with_instance: Some(true),
                ..Default::default()
            }],
            virtual_private_cloud: Some(VirtualPrivateCloud {
                vpc_id: "vpc-1".into(),
                subnet_id: "subnet-1".into(),
                private_ip_addresses: vec![],
            }),
            internet_accessible: Some(InternetAccessible {
                internet_charge_type: Some("TRAFFIC_POSTPAID_BY_HOUR".into()),
                internet_max_bandwidth_out: Some(10),
                public_ip_assigned: Some(true),
            }),
            instance_count: Some(1),
            min_count: None,
            instance_name: Some("team-a-web-1".into()),
            login_settings: Some(LoginSettings {
                key_ids: vec!["skey-1".into()],
                ..Default::default()
            }),
            security_group_ids: vec!["sg-1".into()],
            client_token: Some("cvmop-uid-0".into()),
            host_name: None,
            tag_specification: vec![TagSpecification {
                resource_type: "instance".into(),
                tags: vec![Tag::new("cvm-operator.io/uid", "uid")],
            }],
            instance_market_options: Some(InstanceMarketOptions {
                market_type: "spot".into(),
                spot_options: SpotOptions {
                    max_price: "0.08".into(),
                    spot_instance_type: Some("one-time".into()),
                },
            }),
            user_data: None,
            dry_run: None,
        }
    }

    #[test]
    fn spot_request_has_exact_json_shape() {
        let value = serde_json::to_value(spot_request()).unwrap();
        assert_eq!(
            value,
            json!({
                "InstanceChargeType": "SPOTPAID",
                "Placement": {"Zone": "ap-guangzhou-3", "ProjectId": 0},
                "InstanceType": "S5.MEDIUM2",
                "ImageId": "img-eb30mz89",
                "SystemDisk": {"DiskType": "CLOUD_PREMIUM", "DiskSize": 50},
                "DataDisks": [{"DiskType": "CLOUD_SSD", "DiskSize": 100, "DeleteWithInstance": true}],
                "VirtualPrivateCloud": {"VpcId": "vpc-1", "SubnetId": "subnet-1"},
                "InternetAccessible": {"InternetChargeType": "TRAFFIC_POSTPAID_BY_HOUR",
                                       "InternetMaxBandwidthOut": 10, "PublicIpAssigned": true},
                "InstanceCount": 1,
                "InstanceName": "team-a-web-1",
                "LoginSettings": {"KeyIds": ["skey-1"]},
                "SecurityGroupIds": ["sg-1"],
                "ClientToken": "cvmop-uid-0",
                "TagSpecification": [{"ResourceType": "instance",
                                      "Tags": [{"Key": "cvm-operator.io/uid", "Value": "uid"}]}],
                "InstanceMarketOptions": {"MarketType": "spot",
                                          "SpotOptions": {"MaxPrice": "0.08", "SpotInstanceType": "one-time"}}
            })
        );
        assert!(value["InstanceMarketOptions"]["SpotOptions"]["MaxPrice"].is_string());
    }

    #[test]
    fn minimal_request_omits_every_absent_field() {
        let req = RunInstancesRequest {
            placement: Placement {
                zone: "ap-guangzhou-6".into(),
                ..Default::default()
            },
            image_id: "img-xxxxxxxx".into(),
            instance_type: Some("S5.MEDIUM2".into()),
            client_token: Some("op-1234".into()),
            ..Default::default()
        };
        assert_eq!(
            serde_json::to_string(&req).unwrap(),
            r#"{"Placement":{"Zone":"ap-guangzhou-6"},"InstanceType":"S5.MEDIUM2","ImageId":"img-xxxxxxxx","ClientToken":"op-1234"}"#
        );
    }

    #[test]
    fn password_login_and_user_data_are_sent_but_not_shown() {
        let req = RunInstancesRequest {
            login_settings: Some(LoginSettings {
                password: Some("Qcloud@TestApi123++".into()),
                ..Default::default()
            }),
            user_data: Some("IyEvYmluL3NoCmV4cG9ydCBUT0tFTj1zM2NyM3QK".into()),
            ..Default::default()
        };
        let body = serde_json::to_value(&req).unwrap();
        assert_eq!(
            body["LoginSettings"],
            json!({"Password": "Qcloud@TestApi123++"})
        );
        assert_eq!(body["UserData"], "IyEvYmluL3NoCmV4cG9ydCBUT0tFTj1zM2NyM3QK");
        let shown = format!("{req:?}");
        assert!(!shown.contains("Qcloud@TestApi123++"), "{shown}");
        assert!(!shown.contains("IyEvYmluL3No"), "{shown}");
    }

    #[test]
    fn keep_image_login_is_a_string() {
        let login = LoginSettings {
            keep_image_login: Some("true".into()),
            ..Default::default()
        };
        assert_eq!(
            serde_json::to_value(login).unwrap(),
            json!({"KeepImageLogin": "true"})
        );
    }

    #[test]
    fn describe_request_by_ids_omits_filters_and_paging() {
        let req = DescribeInstancesRequest {
            instance_ids: vec!["ins-1".into(), "ins-2".into()],
            ..Default::default()
        };
        assert_eq!(
            serde_json::to_string(&req).unwrap(),
            r#"{"InstanceIds":["ins-1","ins-2"]}"#
        );
        let req = DescribeInstancesRequest {
            filters: vec![Filter {
                name: "tag:cvm-operator.io/uid".into(),
                values: vec!["u1".into()],
            }],
            offset: Some(0),
            limit: Some(100),
            ..Default::default()
        };
        assert_eq!(
            serde_json::to_string(&req).unwrap(),
            r#"{"Filters":[{"Name":"tag:cvm-operator.io/uid","Values":["u1"]}],"Offset":0,"Limit":100}"#
        );
    }

    #[test]
    fn instance_tolerates_nulls_and_unknown_fields() {
        let instance: Instance = serde_json::from_value(json!({
            "InstanceId": "ins-abc",
            "InstanceState": "PENDING",
            "InstanceName": null,
            "Placement": {"Zone": "ap-guangzhou-3", "ProjectId": 0, "HostId": null, "NewField": 1},
            "PrivateIpAddresses": ["10.0.0.12"],
            "PublicIpAddresses": null,
            "Tags": null,
            "SecurityGroupIds": null,
            "LatestOperation": null,
            "LatestOperationState": null,
            "LatestOperationErrorMsg": "",
            "CreatedTime": "2020-09-22T00:00:00+00:00",
            "ExpiredTime": null,
            "CPU": 2,
            "GPUInfo": null,
            "SomethingNew": {"Nested": [1, 2]}
        }))
        .unwrap();
        assert_eq!(instance.instance_id, "ins-abc");
        assert_eq!(instance.instance_state, "PENDING");
        assert_eq!(instance.instance_name, None);
        assert_eq!(instance.private_ip_addresses, vec!["10.0.0.12"]);
        assert!(instance.public_ip_addresses.is_empty());
        assert!(instance.tags.is_empty());
        assert_eq!(instance.placement.unwrap().zone, "ap-guangzhou-3");
        assert_eq!(instance.latest_operation_error_msg.as_deref(), Some(""));
        assert_eq!(instance.stop_charging_mode, None, "absent in old answers");
        assert!(instance.data_disks.is_empty());
        assert_eq!(instance.login_settings, None);
        assert_eq!(
            instance.created_time.as_deref(),
            Some("2020-09-22T00:00:00+00:00")
        );
    }

    #[test]
    fn describe_response_reads_tags() {
        let resp: DescribeInstancesResponse = serde_json::from_value(json!({
            "TotalCount": 1,
            "InstanceSet": [{
                "InstanceId": "ins-1", "InstanceState": "RUNNING",
                "PublicIpAddresses": ["43.1.2.3"],
                "Tags": [{"Key": "cvm-operator.io/uid", "Value": "u1"}]
            }],
            "RequestId": "r"
        }))
        .unwrap();
        assert_eq!(resp.total_count, 1);
        assert_eq!(resp.instance_set[0].tag("cvm-operator.io/uid"), Some("u1"));
        assert_eq!(resp.instance_set[0].tag("other"), None);
        assert_eq!(resp.instance_set[0].public_ip_addresses, vec!["43.1.2.3"]);
    }

    #[test]
    fn day2_fields_are_read() {
        let instance: Instance = serde_json::from_value(json!({
            "InstanceId": "ins-1", "InstanceState": "STOPPED",
            "StopChargingMode": "STOP_CHARGING",
            "Placement": {"Zone": "ap-guangzhou-3", "ProjectId": 7},
            "SecurityGroupIds": ["sg-2", "sg-1"],
            "InternetAccessible": {"InternetChargeType": "TRAFFIC_POSTPAID_BY_HOUR",
                                   "InternetMaxBandwidthOut": 20},
            "SystemDisk": {"DiskType": "CLOUD_PREMIUM", "DiskId": "disk-1", "DiskSize": 60},
            "DataDisks": [{"DiskType": "CLOUD_SSD", "DiskId": "disk-2", "DiskSize": 200}],
            "LoginSettings": {"Password": null, "KeyIds": ["skey-1"], "KeepImageLogin": null},
            "LatestOperation": "StopInstances", "LatestOperationState": "SUCCESS",
            "LatestOperationRequestId": "r-1"
        }))
        .unwrap();
        assert_eq!(
            instance.stop_charging_mode.as_deref(),
            Some("STOP_CHARGING")
        );
        assert_eq!(instance.placement.unwrap().project_id, Some(7));
        assert_eq!(instance.security_group_ids, vec!["sg-2", "sg-1"]);
        assert_eq!(
            instance
                .internet_accessible
                .unwrap()
                .internet_max_bandwidth_out,
            Some(20)
        );
        assert_eq!(instance.system_disk.unwrap().disk_size, Some(60));
        assert_eq!(instance.data_disks[0].disk_size, 200);
        assert_eq!(instance.data_disks[0].disk_id.as_deref(), Some("disk-2"));
        assert_eq!(instance.login_settings.unwrap().key_ids, vec!["skey-1"]);
        assert_eq!(instance.latest_operation_request_id.as_deref(), Some("r-1"));
    }

    #[test]
    fn null_instance_set_is_empty() {
        let resp: DescribeInstancesResponse =
            serde_json::from_value(json!({"TotalCount": 0, "InstanceSet": null})).unwrap();
        assert!(resp.instance_set.is_empty());
        let resp: RunInstancesResponse =
            serde_json::from_value(json!({"InstanceIdSet": ["ins-1"], "RequestId": "r"})).unwrap();
        assert_eq!(resp.instance_id_set, vec!["ins-1"]);
    }
}

//! DescribeZoneInstanceConfigInfos: what a region sells, per zone, instance type and charge
//! type, with its stock and hourly price. One call covers a whole region for one charge
//! type, so the operator calls it at most once per charge type per cache period.

use serde::{Deserialize, Serialize};

use super::client::{CvmClient, Idempotency};
use super::error::CloudError;
use super::types::{Filter, null_as_default};

const DESCRIBE_ZONE_INSTANCE_CONFIG_INFOS: &str = "DescribeZoneInstanceConfigInfos";

/// Filters: `zone`, `instance-family`, `instance-type`, `instance-charge-type` (at most 10
/// filters of 100 values each).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Default)]
#[serde(rename_all = "PascalCase")]
pub struct DescribeZoneInstanceConfigInfosRequest {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub filters: Vec<Filter>,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
pub struct DescribeZoneInstanceConfigInfosResponse {
    #[serde(default, deserialize_with = "null_as_default")]
    pub instance_type_quota_set: Vec<InstanceTypeQuotaItem>,
}

/// One offering. Only the fields the operator reads are typed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
pub struct InstanceTypeQuotaItem {
    pub zone: String,
    pub instance_type: String,
    pub instance_charge_type: String,
    #[serde(default, deserialize_with = "null_as_default")]
    pub instance_family: String,
    #[serde(default, deserialize_with = "null_as_default")]
    pub cpu: i64,
    /// GiB.
    #[serde(default, deserialize_with = "null_as_default")]
    pub memory: i64,
    /// `SELL` or `SOLD_OUT`.
    #[serde(default, deserialize_with = "null_as_default")]
    pub status: String,
    /// `EnoughStock`, `NormalStock`, `UnderStock` (about to sell out) or `WithoutStock`.
    #[serde(default, deserialize_with = "null_as_default")]
    pub status_category: String,
    #[serde(default)]
    pub sold_out_reason: Option<String>,
    #[serde(default)]
    pub price: Option<ItemPrice>,
}

impl InstanceTypeQuotaItem {
    /// On sale with some stock left.
    pub fn available(&self) -> bool {
        self.status == "SELL" && self.status_category != "WithoutStock"
    }

    /// The discounted hourly price of a pay-as-you-go or spot offering.
    pub fn hourly_price(&self) -> Option<f64> {
        let price = self.price.as_ref()?;
        price.unit_price_discount.or(price.unit_price)
    }
}

/// Prices of an offering; pay-as-you-go and spot carry the hourly ones (`ChargeUnit` HOUR).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
pub struct ItemPrice {
    #[serde(default)]
    pub unit_price: Option<f64>,
    #[serde(default)]
    pub unit_price_discount: Option<f64>,
    #[serde(default)]
    pub charge_unit: Option<String>,
}

impl CvmClient {
    /// Every offering of the region that matches the filters. Read-only, so retried freely.
    pub async fn describe_zone_instance_config_infos(
        &self,
        filters: Vec<Filter>,
    ) -> Result<Vec<InstanceTypeQuotaItem>, CloudError> {
        let request = DescribeZoneInstanceConfigInfosRequest { filters };
        let response: DescribeZoneInstanceConfigInfosResponse = self
            .core
            .call(
                DESCRIBE_ZONE_INSTANCE_CONFIG_INFOS,
                &request,
                Idempotency::Safe,
            )
            .await?;
        Ok(response.instance_type_quota_set)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_sdk_example_shape() {
        let body = r#"{"InstanceTypeQuotaSet":[{"Zone":"ap-guangzhou-3","InstanceType":"S5.MEDIUM2",
            "InstanceChargeType":"SPOTPAID","InstanceFamily":"S5","Cpu":2,"Memory":2,"Status":"SELL",
            "StatusCategory":"UnderStock","SoldOutReason":null,
            "Price":{"UnitPrice":0.18,"UnitPriceDiscount":0.036,"ChargeUnit":"HOUR"}},
            {"Zone":"ap-guangzhou-4","InstanceType":"S5.MEDIUM2","InstanceChargeType":"SPOTPAID",
            "Status":"SOLD_OUT","StatusCategory":"WithoutStock","Price":null}],"RequestId":"r"}"#;
        let response: DescribeZoneInstanceConfigInfosResponse = serde_json::from_str(body).unwrap();
        let [selling, sold_out] = &response.instance_type_quota_set[..] else {
            panic!("two items expected")
        };
        assert!(selling.available());
        assert_eq!(selling.hourly_price(), Some(0.036));
        assert_eq!((selling.cpu, selling.memory), (2, 2));
        assert!(!sold_out.available());
        assert_eq!(sold_out.hourly_price(), None);
    }
}

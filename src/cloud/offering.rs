//! What a region sells: one (zone, instance type, charge type) with its stock and hourly
//! price, as DescribeZoneInstanceConfigInfos reports it. Sets pick among offerings; every
//! instance shows the price of the one it runs on.

use tencent_cloud::offerings::InstanceTypeQuotaItem;

/// One offering of a region.
#[derive(Debug, Clone, PartialEq)]
pub struct Offering {
    pub zone: String,
    pub instance_type: String,
    /// `POSTPAID_BY_HOUR` or `SPOTPAID`.
    pub charge_type: String,
    /// On sale (`SELL`) with stock left (not `WithoutStock`).
    pub available: bool,
    /// `StatusCategory`: `EnoughStock`, `NormalStock`, `UnderStock` or `WithoutStock`.
    pub stock: String,
    /// The discounted price per hour (`UnitPriceDiscount`), in the account's currency.
    pub hourly_price: Option<f64>,
    pub cpu: u32,
    pub memory_gib: u32,
}

impl From<&InstanceTypeQuotaItem> for Offering {
    fn from(item: &InstanceTypeQuotaItem) -> Self {
        Offering {
            zone: item.zone.clone(),
            instance_type: item.instance_type.clone(),
            charge_type: item.instance_charge_type.clone(),
            available: item.available(),
            stock: item.status_category.clone(),
            hourly_price: item.hourly_price(),
            cpu: u32::try_from(item.cpu).unwrap_or(0),
            memory_gib: u32::try_from(item.memory).unwrap_or(0),
        }
    }
}

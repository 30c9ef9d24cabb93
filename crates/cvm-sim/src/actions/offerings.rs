//! DescribeZoneInstanceConfigInfos: what the region sells, one item per (zone, instance
//! type, charge type), with stock and hourly price.
//!
//! The simulator sells the instance types of [`SOLD_TYPES`] in every zone of the request's
//! region, pay-as-you-go and spot. Stock follows the capacity model (accounts.rs): a zone
//! the catalogue marks sold out, or a pool with nothing left, is `SOLD_OUT`/`WithoutStock`;
//! a pool with fewer than [`UNDER_STOCK`] left is `UnderStock`; any other limit is
//! `NormalStock`; no limit is `EnoughStock`. Prices come from pricing.rs: the list price is
//! `UnitPrice`, spot's `UnitPriceDiscount` is the list price times `SPOT_DISCOUNT`.
//!
//! Filters (at most 10, 100 values each): `zone`, `instance-family`, `instance-type`,
//! `instance-charge-type` (values match or not, as filters do: an unknown zone matches
//! nothing), and `sort-keys` (`cpu` or `mem`, `:asc` or `:desc`). Any other name is
//! `InvalidFilter`.

use serde::Serialize;
use serde_json::Value;

use super::params::{Filter, check_filters, parse_known};
use super::{Ctx, to_json};
use crate::catalogue::{AVAILABLE, Language};
use crate::config::StockPool;
use crate::error::{ApiError, ApiResult};
use crate::pricing::{InstanceTypeSpec, SPOT_DISCOUNT};
use crate::state::SimState;

/// The instance types on sale, in every zone.
pub const SOLD_TYPES: &[&str] = &[
    "S5.SMALL1",
    "S5.MEDIUM2",
    "S5.MEDIUM4",
    "S5.LARGE8",
    "S5.XLARGE16",
    "SA2.MEDIUM2",
    "SA2.MEDIUM4",
    "SA2.LARGE8",
    "SA2.XLARGE16",
    "M5.LARGE32",
    "C5.LARGE8",
];

/// Fewer left than this reads as "about to sell out".
pub const UNDER_STOCK: u32 = 10;

const MAX_FILTER_VALUES: usize = 100;

#[derive(serde::Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Request {
    filters: Option<Vec<Filter>>,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct Response {
    instance_type_quota_set: Vec<Item>,
}

/// `InstanceTypeQuotaItem` of the SDK (the fields a CPU-only type has).
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct Item {
    zone: String,
    instance_type: &'static str,
    instance_charge_type: &'static str,
    network_card: u32,
    externals: serde_json::Map<String, Value>,
    cpu: u32,
    memory: u32,
    instance_family: String,
    type_name: String,
    local_disk_type_list: Vec<Value>,
    status: &'static str,
    price: ItemPrice,
    sold_out_reason: String,
    instance_bandwidth: f64,
    instance_pps: u32,
    storage_block_amount: u32,
    cpu_type: &'static str,
    gpu: u32,
    fpga: u32,
    remark: &'static str,
    gpu_count: f64,
    frequency: &'static str,
    status_category: &'static str,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct ItemPrice {
    unit_price: f64,
    unit_price_discount: f64,
    /// Percent of the list price, e.g. 20.0 is 20%.
    discount: f64,
    charge_unit: &'static str,
}

/// A filter by what it matches on.
enum Criterion {
    Zone,
    Family,
    InstanceType,
    ChargeType,
}

impl Criterion {
    fn parse(name: &str) -> ApiResult<Option<Self>> {
        Ok(Some(match name {
            "zone" => Self::Zone,
            "instance-family" => Self::Family,
            "instance-type" => Self::InstanceType,
            "instance-charge-type" => Self::ChargeType,
            "sort-keys" => return Ok(None),
            other => {
                return Err(ApiError::new(
                    "InvalidFilter",
                    format!(
                        "Invalid filter: `{other}` is not a filter of DescribeZoneInstanceConfigInfos."
                    ),
                ));
            }
        }))
    }

    fn matches(&self, item: &Item, value: &str) -> bool {
        match self {
            Self::Zone => item.zone == value,
            Self::Family => item.instance_family == value,
            Self::InstanceType => item.instance_type == value,
            Self::ChargeType => item.instance_charge_type == value,
        }
    }
}

/// `cpu:desc`, `mem:asc`.
#[derive(Clone, Copy)]
struct SortKey {
    memory: bool,
    descending: bool,
}

impl SortKey {
    fn parse(value: &str) -> ApiResult<Self> {
        let bad = || {
            ApiError::invalid_value(format!(
                "The sort key `{value}` is not `cpu` or `mem` followed by `:asc` or `:desc`."
            ))
        };
        let (field, order) = value.split_once(':').ok_or_else(bad)?;
        let memory = match field {
            "cpu" => false,
            "mem" => true,
            _ => return Err(bad()),
        };
        let descending = match order {
            "asc" => false,
            "desc" => true,
            _ => return Err(bad()),
        };
        Ok(Self { memory, descending })
    }

    fn key(self, item: &Item) -> u32 {
        if self.memory { item.memory } else { item.cpu }
    }
}

pub fn handle(ctx: &Ctx<'_>, state: &mut SimState, params: Value) -> ApiResult<Vec<u8>> {
    let request: Request = parse_known(params, &["Filters"])?;
    let filters = request.filters.unwrap_or_default();
    check_filters(&filters, MAX_FILTER_VALUES)?;
    let mut criteria = Vec::new();
    let mut sort_keys = Vec::new();
    for filter in &filters {
        match Criterion::parse(&filter.name)? {
            Some(criterion) => criteria.push((criterion, filter.values.as_slice())),
            None => {
                for value in &filter.values {
                    sort_keys.push(SortKey::parse(value)?);
                }
            }
        }
    }
    let mut items: Vec<Item> = offerings(ctx, state)?
        .into_iter()
        .filter(|item| {
            criteria
                .iter()
                .all(|(c, values)| values.iter().any(|v| c.matches(item, v)))
        })
        .collect();
    // Stable sorts, last key first, so the first key decides and later ones break ties.
    for key in sort_keys.iter().rev() {
        items.sort_by(|a, b| {
            let order = key.key(a).cmp(&key.key(b));
            if key.descending {
                order.reverse()
            } else {
                order
            }
        });
    }
    to_json(&Response {
        instance_type_quota_set: items,
    })
}

/// Every zone × sold type × charge type of the request's region, zone by zone.
fn offerings(ctx: &Ctx<'_>, state: &SimState) -> ApiResult<Vec<Item>> {
    let mut items = Vec::new();
    for zone in state.catalogue.zones(ctx.region, Language::English) {
        for instance_type in SOLD_TYPES {
            let spec = InstanceTypeSpec::parse(instance_type)?;
            for pool in [StockPool::Regular, StockPool::Spot] {
                let zone_sold_out = zone.zone_state != AVAILABLE;
                let remaining = state.capacity.remaining(zone.zone, instance_type, pool);
                items.push(item(
                    zone.zone,
                    instance_type,
                    &spec,
                    pool,
                    zone_sold_out,
                    remaining,
                ));
            }
        }
    }
    Ok(items)
}

fn item(
    zone: &str,
    instance_type: &'static str,
    spec: &InstanceTypeSpec,
    pool: StockPool,
    zone_sold_out: bool,
    remaining: Option<u32>,
) -> Item {
    let (status, status_category, sold_out_reason) = match remaining {
        _ if zone_sold_out => (
            "SOLD_OUT",
            "WithoutStock",
            "The availability zone has been sold out.",
        ),
        Some(0) => (
            "SOLD_OUT",
            "WithoutStock",
            "The instance type has been sold out in this availability zone.",
        ),
        Some(n) if n < UNDER_STOCK => ("SELL", "UnderStock", ""),
        Some(_) => ("SELL", "NormalStock", ""),
        None => ("SELL", "EnoughStock", ""),
    };
    let list_price = to_ten_thousandths(spec.hourly_price());
    let (charge_type, discount) = match pool {
        StockPool::Regular => ("POSTPAID_BY_HOUR", 1.0),
        StockPool::Spot => ("SPOTPAID", SPOT_DISCOUNT),
    };
    let family = instance_type
        .split_once('.')
        .map_or(instance_type, |(f, _)| f)
        .to_string();
    Item {
        zone: zone.to_string(),
        instance_type,
        instance_charge_type: charge_type,
        network_card: 0,
        externals: serde_json::Map::new(),
        cpu: spec.cpu,
        memory: spec.memory_gib,
        type_name: type_name(&spec.family, &family),
        instance_family: family,
        local_disk_type_list: Vec::new(),
        status,
        price: ItemPrice {
            unit_price: list_price,
            unit_price_discount: to_ten_thousandths(spec.hourly_price() * discount),
            discount: discount * 100.0,
            charge_unit: "HOUR",
        },
        sold_out_reason: sold_out_reason.to_string(),
        instance_bandwidth: 1.5,
        instance_pps: 30,
        storage_block_amount: 0,
        cpu_type: "Intel Xeon Cascade Lake 8255C(2.5 GHz)",
        gpu: 0,
        fpga: 0,
        remark: "",
        gpu_count: 0.0,
        frequency: "2.5/3.1GHz",
        status_category,
    }
}

/// Prices to 1/10000 of a yuan, as the API quotes them (no float noise like 0.18000000000000002).
fn to_ten_thousandths(price: f64) -> f64 {
    (price * 10_000.0).round() / 10_000.0
}

/// `Standard S5`, `Memory Optimized M5`: the console's names of the families sold here.
fn type_name(letters: &str, family: &str) -> String {
    let kind = match letters {
        "S" => "Standard",
        "SA" => "Standard AMD",
        "M" => "Memory Optimized",
        "C" => "Compute Optimized",
        _ => "General",
    };
    format!("{kind} {family}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_sold_type_parses() {
        for t in SOLD_TYPES {
            InstanceTypeSpec::parse(t).unwrap();
        }
    }

    #[test]
    fn stock_follows_what_is_left() {
        let spec = InstanceTypeSpec::parse("S5.MEDIUM2").unwrap();
        let category = |zone_sold_out, remaining| {
            let i = item(
                "z",
                "S5.MEDIUM2",
                &spec,
                StockPool::Spot,
                zone_sold_out,
                remaining,
            );
            (i.status, i.status_category)
        };
        assert_eq!(category(false, None), ("SELL", "EnoughStock"));
        assert_eq!(category(false, Some(500)), ("SELL", "NormalStock"));
        assert_eq!(category(false, Some(3)), ("SELL", "UnderStock"));
        assert_eq!(category(false, Some(0)), ("SOLD_OUT", "WithoutStock"));
        assert_eq!(category(true, None), ("SOLD_OUT", "WithoutStock"));
    }

    #[test]
    fn spot_is_the_discounted_list_price() {
        let spec = InstanceTypeSpec::parse("S5.MEDIUM2").unwrap();
        let spot = item("z", "S5.MEDIUM2", &spec, StockPool::Spot, false, None);
        assert_eq!(spot.price.unit_price, 0.18);
        assert_eq!(spot.price.unit_price_discount, 0.036);
        assert_eq!(spot.price.discount, 20.0);
        let paygo = item("z", "S5.MEDIUM2", &spec, StockPool::Regular, false, None);
        assert_eq!(paygo.price.unit_price_discount, 0.18);
        assert_eq!(paygo.instance_family, "S5");
        assert_eq!(paygo.type_name, "Standard S5");
    }
}

//! DescribeRegions and DescribeZones: the catalogue (catalogue.rs) in the shapes of
//! the real API. Neither takes parameters; DescribeRegions lists every region whatever the
//! request's region, DescribeZones the zones of the request's region, sold-out ones
//! included (`ZoneState: UNAVAILABLE`).

use serde::Serialize;
use serde_json::Value;

use super::params::reject_unknown;
use super::{Ctx, to_json};
use crate::catalogue::{RegionInfo, ZoneInfo};
use crate::error::ApiResult;
use crate::state::SimState;

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct Regions<'a> {
    total_count: usize,
    region_set: Vec<RegionInfo<'a>>,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct Zones<'a> {
    total_count: usize,
    zone_set: Vec<ZoneInfo<'a>>,
}

pub fn describe_regions(ctx: &Ctx<'_>, state: &mut SimState, params: Value) -> ApiResult<Vec<u8>> {
    reject_unknown(&params, &[])?;
    let region_set = state.catalogue.regions(ctx.language);
    to_json(&Regions {
        total_count: region_set.len(),
        region_set,
    })
}

pub fn describe_zones(ctx: &Ctx<'_>, state: &mut SimState, params: Value) -> ApiResult<Vec<u8>> {
    reject_unknown(&params, &[])?;
    let zone_set = state.catalogue.zones(ctx.region, ctx.language);
    to_json(&Zones {
        total_count: zone_set.len(),
        zone_set,
    })
}

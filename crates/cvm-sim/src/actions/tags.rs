//! The Tag service (`tag`, 2018-08-13): DescribeResourceTagsByResourceIds, for CVM instances.
//! Resources are named by service type, prefix and region plus their IDs; the answer lists
//! one entry per (resource, tag), paged by Offset/Limit.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::params::{parse, reject_unknown, required};
use super::{Ctx, to_json};
use crate::error::{ApiError, ApiResult};
use crate::state::SimState;

const KNOWN: &[&str] = &[
    "ServiceType",
    "ResourcePrefix",
    "ResourceIds",
    "ResourceRegion",
    "Offset",
    "Limit",
];
/// The most resource IDs one call takes.
const MAX_RESOURCE_IDS: usize = 50;
const MAX_LIMIT: i64 = 50;

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Request {
    service_type: Option<String>,
    resource_prefix: Option<String>,
    resource_ids: Option<Vec<String>>,
    resource_region: Option<String>,
    offset: Option<i64>,
    limit: Option<i64>,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct Response<'a> {
    total_count: usize,
    offset: i64,
    limit: i64,
    tags: Vec<ResourceTag<'a>>,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct ResourceTag<'a> {
    tag_key: &'a str,
    tag_value: &'a str,
    resource_id: &'a str,
}

pub fn describe_resource_tags_by_resource_ids(
    ctx: &Ctx<'_>,
    state: &mut SimState,
    params: Value,
) -> ApiResult<Vec<u8>> {
    reject_unknown(&params, KNOWN)?;
    let request: Request = parse(params)?;
    let service_type = required(request.service_type, "ServiceType")?;
    let prefix = required(request.resource_prefix, "ResourcePrefix")?;
    let region = required(request.resource_region, "ResourceRegion")?;
    let ids = required(request.resource_ids, "ResourceIds")?;
    if ids.is_empty() || ids.len() > MAX_RESOURCE_IDS {
        return Err(ApiError::invalid_value(format!(
            "`ResourceIds` takes 1 to {MAX_RESOURCE_IDS} IDs, {} were given.",
            ids.len()
        )));
    }
    let offset = request.offset.unwrap_or(0);
    let limit = request.limit.unwrap_or(15);
    if offset < 0 || !(1..=MAX_LIMIT).contains(&limit) {
        return Err(ApiError::invalid_value(format!(
            "`Offset` must be >= 0 and `Limit` 1 to {MAX_LIMIT}; got {offset} and {limit}."
        )));
    }
    // Only CVM instances live here; other resource kinds simply have no tags.
    let tags: Vec<ResourceTag<'_>> = if service_type == "cvm" && prefix == "instance" {
        ids.iter()
            .filter_map(|id| state.store.get_owned(ctx.owner, id))
            .filter(|instance| instance.region == region)
            .flat_map(|instance| {
                instance.tags.iter().map(|tag| ResourceTag {
                    tag_key: &tag.key,
                    tag_value: &tag.value,
                    resource_id: &instance.id,
                })
            })
            .collect()
    } else {
        Vec::new()
    };
    let total_count = tags.len();
    let tags = tags
        .into_iter()
        .skip(offset as usize)
        .take(limit as usize)
        .collect();
    to_json(&Response {
        total_count,
        offset,
        limit,
        tags,
    })
}

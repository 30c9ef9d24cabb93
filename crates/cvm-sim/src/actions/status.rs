//! DescribeInstancesStatus: InstanceIds (≤100) or all, paged; no Filters.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::params::{instance_ids, page, parse, reject_unknown};
use super::{Ctx, to_json};
use crate::error::ApiResult;
use crate::state::SimState;
use crate::state::instance::Instance;

const KNOWN: &[&str] = &["InstanceIds", "Offset", "Limit"];

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Request {
    instance_ids: Option<Vec<String>>,
    offset: Option<i64>,
    limit: Option<i64>,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct Response<'a> {
    total_count: usize,
    instance_status_set: Vec<Status<'a>>,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct Status<'a> {
    instance_id: &'a str,
    instance_state: &'static str,
}

pub fn handle(ctx: &Ctx<'_>, state: &mut SimState, params: Value) -> ApiResult<Vec<u8>> {
    reject_unknown(&params, KNOWN)?;
    let request: Request = parse(params)?;
    let (offset, limit) = page(request.offset, request.limit)?;
    let ids = request.instance_ids.unwrap_or_default();
    let found: Vec<&Instance> = if ids.is_empty() {
        state
            .store
            .owned(ctx.owner)
            .filter(|i| i.region == ctx.region)
            .collect()
    } else {
        instance_ids(&ids)?
            .into_iter()
            .filter_map(|id| state.store.get_owned(ctx.owner, id))
            .filter(|i| i.region == ctx.region)
            .collect()
    };
    to_json(&Response {
        total_count: found.len(),
        instance_status_set: found
            .into_iter()
            .skip(offset)
            .take(limit)
            .map(|i| Status {
                instance_id: &i.id,
                instance_state: i.state.as_str(),
            })
            .collect(),
    })
}

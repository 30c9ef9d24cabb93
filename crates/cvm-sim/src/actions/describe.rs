//! DescribeInstances: by InstanceIds (≤100) or by Filters (≤10, ≤5 values each), paged by
//! Offset/Limit. Lookups by id and by tag go through indexes; other filters scan the
//! account's instances of the region.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::params::{Filter, check_filters, instance_ids, page, parse, reject_unknown};
use super::{Ctx, to_json};
use crate::error::{ApiError, ApiResult};
use crate::state::SimState;
use crate::state::instance::{ApiInstance, Instance};

const KNOWN: &[&str] = &["InstanceIds", "Filters", "Offset", "Limit"];
const MAX_FILTER_VALUES: usize = 5;

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Request {
    instance_ids: Option<Vec<String>>,
    filters: Option<Vec<Filter>>,
    offset: Option<i64>,
    limit: Option<i64>,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct Response<'a> {
    total_count: usize,
    instance_set: Vec<ApiInstance<'a>>,
}

/// A filter by what it matches on.
enum Criterion<'a> {
    Zone,
    InstanceId,
    InstanceName,
    InstanceState,
    ChargeType,
    VpcId,
    SubnetId,
    PrivateIp,
    PublicIp,
    ProjectId,
    SecurityGroupId,
    Uuid,
    TagKey,
    TagValue,
    Tag(&'a str),
}

impl<'a> Criterion<'a> {
    fn parse(name: &'a str) -> ApiResult<Self> {
        Ok(match name {
            "zone" => Self::Zone,
            "instance-id" => Self::InstanceId,
            "instance-name" => Self::InstanceName,
            "instance-state" => Self::InstanceState,
            "instance-charge-type" => Self::ChargeType,
            "vpc-id" => Self::VpcId,
            "subnet-id" => Self::SubnetId,
            "private-ip-address" => Self::PrivateIp,
            "public-ip-address" => Self::PublicIp,
            "project-id" => Self::ProjectId,
            "security-group-id" => Self::SecurityGroupId,
            "uuid" => Self::Uuid,
            "tag-key" => Self::TagKey,
            "tag-value" => Self::TagValue,
            other => match other.strip_prefix("tag:") {
                Some(key) if !key.is_empty() => Self::Tag(key),
                _ => {
                    return Err(ApiError::new(
                        "InvalidFilter",
                        format!("Invalid filter: `{other}` is not a filter of DescribeInstances."),
                    ));
                }
            },
        })
    }

    fn matches(&self, i: &Instance, value: &str) -> bool {
        match self {
            Self::Zone => i.zone == value,
            Self::InstanceId => i.id == value,
            // The real filter matches names fuzzily; a substring match is the closest simple rule.
            Self::InstanceName => i.name.contains(value),
            Self::InstanceState => i.state.as_str() == value,
            Self::ChargeType => i.charge.as_str() == value,
            Self::VpcId => i.vpc_id == value,
            Self::SubnetId => i.subnet_id == value,
            Self::PrivateIp => i.private_ip.to_string() == value,
            Self::PublicIp => i.public_ip.is_some_and(|ip| ip.to_string() == value),
            Self::ProjectId => i.project_id.to_string() == value,
            Self::SecurityGroupId => i.security_group_ids.iter().any(|s| s == value),
            Self::Uuid => i.uuid == value,
            Self::TagKey => i.tags.iter().any(|t| t.key == value),
            Self::TagValue => i.tags.iter().any(|t| t.value == value),
            Self::Tag(key) => i.tags.iter().any(|t| t.key == *key && t.value == value),
        }
    }
}

pub fn handle(ctx: &Ctx<'_>, state: &mut SimState, params: Value) -> ApiResult<Vec<u8>> {
    reject_unknown(&params, KNOWN)?;
    let request: Request = parse(params)?;
    let (offset, limit) = page(request.offset, request.limit)?;
    let ids = request.instance_ids.unwrap_or_default();
    let filters = request.filters.unwrap_or_default();
    if !ids.is_empty() && !filters.is_empty() {
        return Err(ApiError::invalid_parameter(
            "The parameters `InstanceIds` and `Filters` cannot be specified at the same time.",
        ));
    }
    let found: Vec<&Instance> = if !ids.is_empty() {
        instance_ids(&ids)?
            .into_iter()
            .filter_map(|id| state.store.get_owned(ctx.owner, id))
            .filter(|i| i.region == ctx.region)
            .collect()
    } else {
        filtered(ctx, state, &filters)?
    };
    let total_count = found.len();
    let instance_set = found
        .into_iter()
        .skip(offset)
        .take(limit)
        .map(Instance::api_view)
        .collect();
    to_json(&Response {
        total_count,
        instance_set,
    })
}

fn filtered<'s>(
    ctx: &Ctx<'_>,
    state: &'s SimState,
    filters: &'s [Filter],
) -> ApiResult<Vec<&'s Instance>> {
    check_filters(filters, MAX_FILTER_VALUES)?;
    let mut criteria = Vec::with_capacity(filters.len());
    for filter in filters {
        criteria.push((Criterion::parse(&filter.name)?, filter.values.as_slice()));
    }
    // Start from the narrowest index available, then apply every filter to what it gives.
    let candidates: Vec<&Instance> = if let Some((_, values)) = criteria
        .iter()
        .find(|(c, _)| matches!(c, Criterion::InstanceId))
    {
        let mut seen = Vec::new();
        values
            .iter()
            .filter_map(|id| state.store.get_owned(ctx.owner, id))
            .filter(|i| {
                let fresh = !seen.contains(&i.seq);
                seen.push(i.seq);
                fresh
            })
            .collect()
    } else if let Some((Criterion::Tag(key), values)) = criteria
        .iter()
        .find(|(c, _)| matches!(c, Criterion::Tag(_)))
    {
        state.store.tagged(ctx.owner, key, values)
    } else {
        state.store.owned(ctx.owner).collect()
    };
    let mut result: Vec<&Instance> = candidates
        .into_iter()
        .filter(|i| i.region == ctx.region)
        .filter(|i| {
            criteria
                .iter()
                .all(|(c, values)| values.iter().any(|v| c.matches(i, v)))
        })
        .collect();
    result.sort_by_key(|i| i.seq);
    Ok(result)
}

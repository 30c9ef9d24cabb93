//! The actions the simulator serves: CVM's, and the Tag service's.

mod describe;
mod naming;
pub mod params;
mod run;
mod status;
mod tags;
mod terminate;
mod zones;

use std::time::Instant;

use serde_json::Value;

use super::catalogue::Language;
use super::error::ApiResult;
use super::state::SimState;

pub use tencent_cloud::service::{CVM, Service, TAG};

/// The services served, each with its version: one endpoint for all of them.
pub const SERVICES: &[Service] = &[CVM, TAG];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    RunInstances,
    DescribeInstances,
    DescribeInstancesStatus,
    TerminateInstances,
    DescribeRegions,
    DescribeZones,
    DescribeResourceTagsByResourceIds,
}

impl Action {
    /// The action `name` of `service`, if the simulator serves it.
    pub fn from_name(service: Service, name: &str) -> Option<Self> {
        if service == TAG {
            return (name == "DescribeResourceTagsByResourceIds")
                .then_some(Self::DescribeResourceTagsByResourceIds);
        }
        Some(match name {
            "RunInstances" => Self::RunInstances,
            "DescribeInstances" => Self::DescribeInstances,
            "DescribeInstancesStatus" => Self::DescribeInstancesStatus,
            "TerminateInstances" => Self::TerminateInstances,
            "DescribeRegions" => Self::DescribeRegions,
            "DescribeZones" => Self::DescribeZones,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::RunInstances => "RunInstances",
            Self::DescribeInstances => "DescribeInstances",
            Self::DescribeInstancesStatus => "DescribeInstancesStatus",
            Self::TerminateInstances => "TerminateInstances",
            Self::DescribeRegions => "DescribeRegions",
            Self::DescribeZones => "DescribeZones",
            Self::DescribeResourceTagsByResourceIds => "DescribeResourceTagsByResourceIds",
        }
    }
}

/// Who is calling, where, and when.
pub struct Ctx<'a> {
    pub owner: &'a str,
    pub region: &'a str,
    /// From `X-TC-Language`: the language of region and zone names.
    pub language: Language,
    pub request_id: &'a str,
    pub now: Instant,
}

/// Runs one action; the answer is the serialized fields of `Response` (without RequestId).
pub fn handle(
    action: Action,
    ctx: &Ctx<'_>,
    state: &mut SimState,
    params: Value,
) -> ApiResult<Vec<u8>> {
    match action {
        Action::RunInstances => run::handle(ctx, state, params),
        Action::DescribeInstances => describe::handle(ctx, state, params),
        Action::DescribeInstancesStatus => status::handle(ctx, state, params),
        Action::TerminateInstances => terminate::handle(ctx, state, params),
        Action::DescribeRegions => zones::describe_regions(ctx, state, params),
        Action::DescribeZones => zones::describe_zones(ctx, state, params),
        Action::DescribeResourceTagsByResourceIds => {
            tags::describe_resource_tags_by_resource_ids(ctx, state, params)
        }
    }
}

fn to_json(value: &impl serde::Serialize) -> ApiResult<Vec<u8>> {
    serde_json::to_vec(value).map_err(|e| super::error::ApiError::internal(e.to_string()))
}

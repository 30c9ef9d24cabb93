//! TerminateInstances: up to 100 ids; the whole call fails if any id cannot be terminated.

use serde::Deserialize;
use serde_json::Value;

use super::params::{instance_ids, parse, reject_unknown};
use super::{Ctx, to_json};
use crate::error::{ApiError, ApiResult};
use crate::state::SimState;
use crate::state::instance::InstanceState;

const KNOWN: &[&str] = &["InstanceIds", "ReleaseAddress", "ReleasePrepaidDataDisks"];

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Request {
    instance_ids: Option<Vec<String>>,
}

pub fn handle(ctx: &Ctx<'_>, state: &mut SimState, params: Value) -> ApiResult<Vec<u8>> {
    reject_unknown(&params, KNOWN)?;
    let request: Request = parse(params)?;
    let ids = request
        .instance_ids
        .filter(|ids| !ids.is_empty())
        .ok_or_else(|| ApiError::missing_parameter("InstanceIds"))?;
    let ids = instance_ids(&ids)?;

    let missing: Vec<&str> = ids
        .iter()
        .copied()
        .filter(|id| {
            state
                .store
                .get_owned(ctx.owner, id)
                .is_none_or(|i| i.region != ctx.region)
        })
        .collect();
    if !missing.is_empty() {
        return Err(ApiError::new(
            "InvalidInstanceId.NotFound",
            format!("No instance found: please check that the instance IDs `{missing:?}` exist."),
        ));
    }
    let mut charge_types = Vec::new();
    for id in &ids {
        let instance = state.store.get(id).expect("checked above");
        let refusal = match instance.state {
            InstanceState::Terminating => Some((
                "UnsupportedOperation.InstanceStateTerminating",
                "The instance is being terminated, and the operation is not supported.",
            )),
            InstanceState::Pending => Some((
                "UnsupportedOperation.InstanceStatePending",
                "The instances are being created, and this operation is not supported.",
            )),
            _ if instance.disable_api_termination => Some((
                "UnsupportedOperation.InstancesProtected",
                "The instance is protected against termination (DisableApiTermination).",
            )),
            _ => None,
        };
        if let Some((code, message)) = refusal {
            return Err(ApiError::new(code, format!("{message} Instance: `{id}`.")));
        }
        let charge = instance.charge.as_str();
        if !charge_types.contains(&charge) {
            charge_types.push(charge);
        }
    }
    if charge_types.len() > 1 {
        return Err(ApiError::new(
            "UnsupportedOperation.InstanceMixedPricingModel",
            "All instances terminated in one call must share one billing mode.",
        ));
    }
    for id in ids {
        state.begin_termination(id, Some(ctx.request_id), ctx.now);
    }
    to_json(&serde_json::Map::new())
}

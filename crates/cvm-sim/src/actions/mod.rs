//! The actions the simulator serves: CVM's, and the Tag service's.

mod attribute;
mod describe;
mod guard;
mod naming;
mod offerings;
pub mod params;
mod power;
mod reconfigure;
mod reimage;
mod run;
mod status;
mod tag_write;
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

/// Declares the actions served: each variant, the service it belongs to, and its handler.
/// One table, so the name, the lookup and the dispatch cannot disagree.
macro_rules! actions {
    ($($service:ident $variant:ident => $handler:path,)*) => {
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum Action {
            $($variant,)*
        }

        impl Action {
            pub const ALL: &[Action] = &[$(Action::$variant,)*];

            /// The action `name` of `service`, if the simulator serves it.
            pub fn from_name(service: Service, name: &str) -> Option<Self> {
                Self::ALL
                    .iter()
                    .copied()
                    .find(|a| a.service() == service && a.name() == name)
            }

            pub fn name(self) -> &'static str {
                match self {
                    $(Self::$variant => stringify!($variant),)*
                }
            }

            pub fn service(self) -> Service {
                match self {
                    $(Self::$variant => $service,)*
                }
            }

            fn handler(self) -> Handler {
                match self {
                    $(Self::$variant => $handler,)*
                }
            }
        }
    };
}

type Handler = fn(&Ctx<'_>, &mut SimState, Value) -> ApiResult<Vec<u8>>;

actions! {
    CVM RunInstances => run::handle,
    CVM DescribeInstances => describe::handle,
    CVM DescribeInstancesStatus => status::handle,
    CVM TerminateInstances => terminate::handle,
    CVM DescribeRegions => zones::describe_regions,
    CVM DescribeZones => zones::describe_zones,
    CVM DescribeZoneInstanceConfigInfos => offerings::handle,
    CVM StartInstances => power::start,
    CVM StopInstances => power::stop,
    CVM RebootInstances => power::reboot,
    CVM ModifyInstancesAttribute => attribute::modify_attribute,
    CVM ModifyInstancesProject => attribute::modify_project,
    CVM ResetInstancesInternetMaxBandwidth => attribute::reset_bandwidth,
    CVM ResetInstancesType => reconfigure::reset_type,
    CVM ResetInstancesPassword => reconfigure::reset_password,
    CVM AssociateInstancesKeyPairs => reconfigure::key_pairs,
    CVM DisassociateInstancesKeyPairs => reconfigure::key_pairs,
    CVM ResizeInstanceDisks => reconfigure::resize_disks,
    CVM ResetInstance => reimage::handle,
    TAG DescribeResourceTagsByResourceIds => tags::describe_resource_tags_by_resource_ids,
    TAG ModifyResourceTags => tag_write::modify_resource_tags,
    TAG TagResources => tag_write::tag_resources,
    TAG UnTagResources => tag_write::untag_resources,
}

/// Who is calling, where, and when.
pub struct Ctx<'a> {
    /// The action being served: day-2 operations record it as `LatestOperation`.
    pub action: Action,
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
    (action.handler())(ctx, state, params)
}

fn to_json(value: &impl serde::Serialize) -> ApiResult<Vec<u8>> {
    serde_json::to_vec(value).map_err(|e| super::error::ApiError::internal(e.to_string()))
}

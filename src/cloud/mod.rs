//! The seam between what the controllers decide and how Tencent Cloud is called.
//!
//! Controllers hold an `Arc<dyn Cloud>` for one (credentials, region) and get it from a
//! [`Clouds`]. Production uses [`TencentCloud`] (the CVM and Tag service clients of one
//! pair) from [`TencentClouds`] over a [`tencent_cloud::pool::ClientPool`]; tests put a scripted, recording fake behind the same
//! traits, so the create and delete protocol can be driven call by call, crash by crash.
//! Methods return boxed futures so the traits stay object-safe without a macro crate.

mod clock;
mod modification;
mod offering;
mod offering_cache;
mod tencent;

pub use clock::{Clock, ManualClock, SystemClock};
pub use modification::{
    DiskSize, InstanceAttribute, Modification, ResetInstanceRequest, ResizeInstanceDisksRequest,
    StopType, StoppedMode,
};
pub use offering::Offering;
pub use offering_cache::OfferingCache;
pub use tencent::{TencentCloud, TencentClouds};

use std::sync::Arc;

use futures::future::BoxFuture;

use tencent_cloud::credentials::Credentials;
use tencent_cloud::error::CloudError;
use tencent_cloud::types::{Instance, RunInstancesRequest, ToTerminate};

/// What the controllers need from the CVM API for one (credentials, region).
pub trait Cloud: Send + Sync {
    /// Launches instances; their IDs. The request's ClientToken makes a repeat return the
    /// same instances.
    fn run_instances<'a>(
        &'a self,
        request: &'a RunInstancesRequest,
    ) -> BoxFuture<'a, Result<Vec<String>, CloudError>>;

    /// One instance; `None` when it does not exist (any more).
    fn describe_instance<'a>(
        &'a self,
        id: &'a str,
    ) -> BoxFuture<'a, Result<Option<Instance>, CloudError>>;

    /// The given instances that exist; unknown IDs are absent.
    fn describe_instances<'a>(
        &'a self,
        ids: &'a [String],
    ) -> BoxFuture<'a, Result<Vec<Instance>, CloudError>>;

    /// Every instance carrying the tag `key=value`.
    fn find_instances_by_tag<'a>(
        &'a self,
        key: &'a str,
        value: &'a str,
    ) -> BoxFuture<'a, Result<Vec<Instance>, CloudError>>;

    /// Terminates instances. Already gone or terminating counts as done.
    fn terminate_instances<'a>(
        &'a self,
        instances: &'a [ToTerminate],
    ) -> BoxFuture<'a, Result<(), CloudError>>;

    /// One change to an existing instance, one API call. The RequestId of a CVM operation
    /// (DescribeInstances shows it as `LatestOperationRequestId` while and after it runs);
    /// `None` for the Tag service's synchronous changes.
    fn change_instance<'a>(
        &'a self,
        id: &'a str,
        change: &'a Modification,
    ) -> BoxFuture<'a, Result<Option<String>, CloudError>>;

    /// Every offering of the region for one charge type (`POSTPAID_BY_HOUR`, `SPOTPAID`):
    /// one DescribeZoneInstanceConfigInfos call, uncached; callers cache.
    fn zone_offerings<'a>(
        &'a self,
        charge_type: &'a str,
    ) -> BoxFuture<'a, Result<Vec<Offering>, CloudError>>;
}

/// Hands out the [`Cloud`] for credentials and a region; the same one for the same pair, so
/// rate limits and batches are shared.
pub trait Clouds: Send + Sync {
    fn get(&self, credentials: &Credentials, region: &str) -> Arc<dyn Cloud>;
}

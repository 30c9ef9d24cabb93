//! Offerings per (cloud, charge type), fetched at most once per period and shared by every
//! set and instance of that cloud: prices and stock change slowly, and one
//! DescribeZoneInstanceConfigInfos call covers a whole region.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use k8s_openapi::jiff::Timestamp;
use tencent_cloud::error::CloudError;

use super::{Clock, Cloud, Offering};

/// Clouds are handed out once per (credentials, region), so the allocation identifies one.
type Key = (usize, String);

struct Entry {
    fetched_at: Timestamp,
    offerings: Arc<Vec<Offering>>,
}

/// After a failed fetch, how long [`OfferingCache::quietly`] answers nothing instead of
/// asking again: a missing CAM permission or an outage then costs one call per pause, not one
/// per reconcile.
pub const FAILURE_PAUSE: Duration = Duration::from_secs(60);

/// How long [`OfferingCache::quietly`] waits for an answer before going without.
pub const QUIET_TIMEOUT: Duration = Duration::from_secs(2);

pub struct OfferingCache {
    period: Duration,
    clock: Arc<dyn Clock>,
    /// One lock per key: concurrent callers of a stale key wait for one fetch.
    entries: Mutex<HashMap<Key, Arc<tokio::sync::Mutex<Option<Entry>>>>>,
    /// When the last fetch of a key failed, for [`OfferingCache::quietly`]; removed when one
    /// works again.
    failed: Mutex<HashMap<Key, Timestamp>>,
}

impl OfferingCache {
    pub fn new(period: Duration, clock: Arc<dyn Clock>) -> Self {
        Self {
            period,
            clock,
            entries: Mutex::new(HashMap::new()),
            failed: Mutex::new(HashMap::new()),
        }
    }

    fn key(cloud: &Arc<dyn Cloud>, charge_type: &str) -> Key {
        (
            Arc::as_ptr(cloud) as *const () as usize,
            charge_type.to_string(),
        )
    }

    /// [`OfferingCache::get`] for what only informs (the price an instance shows): never an
    /// error and never a long wait. A failure is logged once (warn) until a fetch works
    /// again, and for [`FAILURE_PAUSE`] afterwards callers get `None` without a call.
    pub async fn quietly(
        &self,
        cloud: &Arc<dyn Cloud>,
        charge_type: &str,
    ) -> Option<Arc<Vec<Offering>>> {
        let key = Self::key(cloud, charge_type);
        let now = self.clock.now();
        let failed_before = self
            .failed
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&key)
            .copied();
        if let Some(at) = failed_before
            && now.duration_since(at).unsigned_abs() < FAILURE_PAUSE
        {
            return None;
        }
        let error = match tokio::time::timeout(QUIET_TIMEOUT, self.get(cloud, charge_type)).await {
            Ok(Ok(offerings)) => {
                self.failed
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .remove(&key);
                return Some(offerings);
            }
            Ok(Err(error)) => error.to_string(),
            Err(_) => format!("no answer within {QUIET_TIMEOUT:?}"),
        };
        if failed_before.is_none() {
            tracing::warn!(charge_type, %error, "cannot get offerings and prices (DescribeZoneInstanceConfigInfos); prices stay as they are");
        } else {
            tracing::debug!(charge_type, %error, "offerings still unavailable");
        }
        self.failed
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(key, now);
        None
    }

    /// The offerings of `cloud` for `charge_type`, fetched when none are younger than the
    /// period. A failed fetch keeps nothing, so the next caller tries again.
    pub async fn get(
        &self,
        cloud: &Arc<dyn Cloud>,
        charge_type: &str,
    ) -> Result<Arc<Vec<Offering>>, CloudError> {
        let key = Self::key(cloud, charge_type);
        let slot = {
            let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
            entries.entry(key).or_default().clone()
        };
        let mut slot = slot.lock().await;
        let now = self.clock.now();
        if let Some(entry) = slot.as_ref()
            && now.duration_since(entry.fetched_at).unsigned_abs() < self.period
        {
            return Ok(entry.offerings.clone());
        }
        let offerings = Arc::new(cloud.zone_offerings(charge_type).await?);
        *slot = Some(Entry {
            fetched_at: now,
            offerings: offerings.clone(),
        });
        Ok(offerings)
    }

    /// The hourly price of one offering, if the cache can tell.
    pub async fn hourly_price(
        &self,
        cloud: &Arc<dyn Cloud>,
        zone: &str,
        instance_type: &str,
        charge_type: &str,
    ) -> Result<Option<f64>, CloudError> {
        let offerings = self.get(cloud, charge_type).await?;
        Ok(offerings
            .iter()
            .find(|o| o.zone == zone && o.instance_type == instance_type)
            .and_then(|o| o.hourly_price))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use futures::future::BoxFuture;
    use tencent_cloud::types::{Instance, RunInstancesRequest};

    use super::*;
    use crate::cloud::{ManualClock, Modification};

    /// Sells one offering whose price goes up by one with every call, or refuses while
    /// `failing`.
    #[derive(Default)]
    struct CountingCloud {
        calls: AtomicU32,
        failing: std::sync::atomic::AtomicBool,
    }

    impl Cloud for CountingCloud {
        fn run_instances<'a>(
            &'a self,
            _: &'a RunInstancesRequest,
        ) -> BoxFuture<'a, Result<Vec<String>, CloudError>> {
            unreachable!("offerings only")
        }
        fn describe_instance<'a>(
            &'a self,
            _: &'a str,
        ) -> BoxFuture<'a, Result<Option<Instance>, CloudError>> {
            unreachable!("offerings only")
        }
        fn describe_instances<'a>(
            &'a self,
            _: &'a [String],
        ) -> BoxFuture<'a, Result<Vec<Instance>, CloudError>> {
            unreachable!("offerings only")
        }
        fn find_instances_by_tag<'a>(
            &'a self,
            _: &'a str,
            _: &'a str,
        ) -> BoxFuture<'a, Result<Vec<Instance>, CloudError>> {
            unreachable!("offerings only")
        }
        fn terminate_instances<'a>(
            &'a self,
            _: &'a [tencent_cloud::types::ToTerminate],
        ) -> BoxFuture<'a, Result<(), CloudError>> {
            unreachable!("offerings only")
        }
        fn change_instance<'a>(
            &'a self,
            _: &'a str,
            _: &'a Modification,
        ) -> BoxFuture<'a, Result<Option<String>, CloudError>> {
            unreachable!("offerings only")
        }
        fn zone_offerings<'a>(
            &'a self,
            charge_type: &'a str,
        ) -> BoxFuture<'a, Result<Vec<Offering>, CloudError>> {
            let call = self.calls.fetch_add(1, Ordering::SeqCst) + 1;
            let failing = self.failing.load(Ordering::SeqCst);
            Box::pin(async move {
                if failing {
                    return Err(CloudError::Api {
                        action: "DescribeZoneInstanceConfigInfos".into(),
                        code: "UnauthorizedOperation".into(),
                        message: "no permission".into(),
                        request_id: "r".into(),
                    });
                }
                Ok(vec![Offering {
                    zone: "ap-guangzhou-3".into(),
                    instance_type: "S5.MEDIUM2".into(),
                    charge_type: charge_type.to_string(),
                    available: true,
                    stock: "EnoughStock".into(),
                    hourly_price: Some(f64::from(call)),
                    cpu: 2,
                    memory_gib: 2,
                }])
            })
        }
    }

    #[tokio::test]
    async fn fetches_once_per_period_and_charge_type() {
        let clock = Arc::new(ManualClock::new(Timestamp::UNIX_EPOCH));
        let cache = OfferingCache::new(Duration::from_secs(120), clock.clone());
        let counting = Arc::new(CountingCloud::default());
        let cloud: Arc<dyn Cloud> = counting.clone();
        let price = |charge: &'static str| {
            let (cache, cloud) = (&cache, &cloud);
            async move {
                cache
                    .hourly_price(cloud, "ap-guangzhou-3", "S5.MEDIUM2", charge)
                    .await
                    .unwrap()
            }
        };
        assert_eq!(price("SPOTPAID").await, Some(1.0));
        assert_eq!(price("SPOTPAID").await, Some(1.0), "cached");
        assert_eq!(price("POSTPAID_BY_HOUR").await, Some(2.0), "own key");
        clock.advance(Duration::from_secs(119));
        assert_eq!(price("SPOTPAID").await, Some(1.0), "still fresh");
        clock.advance(Duration::from_secs(1));
        assert_eq!(price("SPOTPAID").await, Some(3.0), "refetched");
        assert_eq!(counting.calls.load(Ordering::SeqCst), 3);
        let unknown = cache
            .hourly_price(&cloud, "ap-guangzhou-4", "S5.MEDIUM2", "SPOTPAID")
            .await
            .unwrap();
        assert_eq!(unknown, None);
    }

    #[tokio::test]
    async fn quietly_pauses_after_a_failure_instead_of_asking_every_time() {
        let clock = Arc::new(ManualClock::new(Timestamp::UNIX_EPOCH));
        let cache = OfferingCache::new(Duration::from_secs(300), clock.clone());
        let counting = Arc::new(CountingCloud::default());
        counting.failing.store(true, Ordering::SeqCst);
        let cloud: Arc<dyn Cloud> = counting.clone();
        assert!(cache.quietly(&cloud, "SPOTPAID").await.is_none());
        assert!(cache.quietly(&cloud, "SPOTPAID").await.is_none());
        clock.advance(FAILURE_PAUSE - Duration::from_secs(1));
        assert!(cache.quietly(&cloud, "SPOTPAID").await.is_none());
        assert_eq!(
            counting.calls.load(Ordering::SeqCst),
            1,
            "one call per pause"
        );
        counting.failing.store(false, Ordering::SeqCst);
        clock.advance(Duration::from_secs(1));
        let offerings = cache
            .quietly(&cloud, "SPOTPAID")
            .await
            .expect("asked again");
        assert_eq!(offerings[0].hourly_price, Some(2.0));
        assert_eq!(counting.calls.load(Ordering::SeqCst), 2);
        cache.quietly(&cloud, "SPOTPAID").await.expect("cached");
        assert_eq!(counting.calls.load(Ordering::SeqCst), 2);
    }
}

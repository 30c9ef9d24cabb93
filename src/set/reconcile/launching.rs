//! Launching: the offerings' stock and prices, the way back to spot, and the launches a pass
//! sends, each recorded before its RunInstances call, across offerings and zones.

use std::collections::HashSet;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use tracing::{info, warn};

use super::{CAPACITY_DEGRADED, Run};
use crate::api::{BillingMode, LaunchOffering, LaunchPhase, LaunchRecord, OfferingStatus};
use crate::controller::Error;
use crate::controller::conditions::reason_from_code;
use crate::controller::events::EventType;
use crate::set::launch::{new_record, request};
use crate::set::plan::{self, LaunchFailure, Market, Markets, Member, candidates, classify};
use tencent_cloud::error::CloudError;

impl Run<'_> {
    /// Stock and prices, when the offerings API answers; without them, the spec's order.
    pub(super) async fn markets(&mut self) -> Markets {
        let mut markets = Markets::new();
        let Ok(Some(cloud)) = self.cloud().await else {
            return markets;
        };
        for (charge_type, billing) in [
            ("POSTPAID_BY_HOUR", BillingMode::PayAsYouGo),
            ("SPOTPAID", BillingMode::Spot),
        ] {
            if let Ok(offerings) = self.ctx.offerings.get(&cloud, charge_type).await {
                for o in offerings.iter() {
                    markets.insert(
                        (o.zone.clone(), o.instance_type.clone(), billing),
                        Market {
                            available: o.available,
                            hourly_price: o.hourly_price,
                            stock_rank: plan::stock_rank(&o.stock),
                        },
                    );
                }
            }
        }
        markets
    }

    /// The offerings of `billing` to try now, best first (see [`candidates`]).
    fn offerings_now(&self, billing: BillingMode, markets: &Markets) -> Vec<LaunchOffering> {
        let now = self.ctx.clock.now();
        candidates(
            &self.set.spec,
            billing,
            &self.status.offerings,
            markets,
            now,
        )
    }

    /// Fallback machines run, spot has capacity again, and they have run on fallback for
    /// `revertToSpot.after`.
    pub(super) fn reverting(&self, members: &[Member], markets: &Markets) -> bool {
        let policy = &self.set.spec.capacity.revert_to_spot;
        let spec = &self.set.spec;
        if !policy.enabled
            || spec.template.spec.billing.mode != BillingMode::Spot
            || !members.iter().any(|m| m.fallback && !m.deleting)
        {
            return false;
        }
        let now = self.ctx.clock.now();
        let spot = self.offerings_now(BillingMode::Spot, markets);
        let since = self
            .status
            .condition(CAPACITY_DEGRADED)
            .filter(|c| c.status == "True")
            .map_or(now, |c| c.last_transition_time.0);
        !spot.is_empty() && now.duration_since(since) >= parse_after(&policy.after)
    }

    pub(super) async fn scale_up(
        &mut self,
        wanted: plan::Need,
        reverting: bool,
        markets: &Markets,
        members: &[Member],
    ) -> Result<(), Error> {
        if self.cloud().await?.is_none() {
            return Ok(());
        }
        let spec = self.set.spec.clone();
        let on_demand = self.offerings_now(BillingMode::PayAsYouGo, markets);
        let left = self
            .launch_across(&on_demand, wanted.on_demand, false, members)
            .await?;
        if left > 0 || self.stall.is_some() || self.retry {
            return Ok(());
        }
        let spot = self.offerings_now(BillingMode::Spot, markets);
        let left = self
            .launch_across(&spot, wanted.spot, false, members)
            .await?;
        // No spot capacity anywhere: pay-as-you-go in its place, if allowed (and not while
        // replacing fallback machines, which would only swap one for another).
        if left > 0
            && spec.capacity.fallback_to_on_demand
            && !reverting
            && self.stall.is_none()
            && !self.retry
        {
            let on_demand = self.offerings_now(BillingMode::PayAsYouGo, markets);
            let before = left;
            let left = self.launch_across(&on_demand, left, true, members).await?;
            if left < before {
                self.fell_back = true;
                self.event(
                    EventType::Warning,
                    "SpotFallback",
                    &format!(
                        "no spot offering has capacity; launched {} pay-as-you-go instead",
                        before - left
                    ),
                )
                .await;
            }
        }
        Ok(())
    }

    /// Launches `n` across `offerings`, by the set's `zoneBalance`; how many are still
    /// missing.
    pub(super) async fn launch_across(
        &mut self,
        offerings: &[LaunchOffering],
        n: i32,
        fallback: bool,
        members: &[Member],
    ) -> Result<i32, Error> {
        if !plan::balances_zones(&self.set.spec) {
            return self.launch_in_order(offerings, n, fallback).await;
        }
        // Each round splits what is missing among the zones still open; a zone that launched
        // less than its share has no more capacity now and is left out of the next round, so
        // every round either completes or closes a zone.
        let mut left = n;
        let mut closed: HashSet<String> = HashSet::new();
        while left > 0 {
            let open: Vec<LaunchOffering> = offerings
                .iter()
                .filter(|o| !closed.contains(&o.zone))
                .cloned()
                .collect();
            let counts = plan::zone_counts(members, &self.status.launches);
            let shares = plan::zone_shares(&open, &counts, left);
            if shares.is_empty() {
                break;
            }
            for (zone, share) in shares {
                let in_zone: Vec<LaunchOffering> =
                    open.iter().filter(|o| o.zone == zone).cloned().collect();
                let missing = self.launch_in_order(&in_zone, share, fallback).await?;
                left -= share - missing;
                if missing > 0 {
                    closed.insert(zone);
                }
                if self.stall.is_some() || self.retry {
                    return Ok(left);
                }
            }
        }
        Ok(left)
    }

    /// Launches `n` across `offerings` in order, moving on when one has no capacity; how
    /// many are still missing.
    pub(super) async fn launch_in_order(
        &mut self,
        offerings: &[LaunchOffering],
        mut n: i32,
        fallback: bool,
    ) -> Result<i32, Error> {
        let max = self.set.spec.launch.max_per_call.clamp(1, 100);
        for offering in offerings {
            while n > 0 {
                if plan::unavailable(offering, &self.status.offerings, self.ctx.clock.now()) {
                    break;
                }
                let count = n.min(max);
                match self.launch(offering, count, fallback).await? {
                    Some(launched) => {
                        n -= launched;
                        // Partial stock (MinCount): this offering has nothing more now.
                        if launched < count {
                            break;
                        }
                    }
                    None => break,
                }
                if self.stall.is_some() || self.retry {
                    return Ok(n);
                }
            }
            if n == 0 || self.stall.is_some() || self.retry {
                break;
            }
        }
        Ok(n)
    }

    /// One launch: the record written first, then RunInstances, then the IDs recorded (the
    /// caller creates the children once every launch of the pass is sent). `None` when the
    /// call failed.
    pub(super) async fn launch(
        &mut self,
        offering: &LaunchOffering,
        count: i32,
        fallback: bool,
    ) -> Result<Option<i32>, Error> {
        let Some(cloud) = self.cloud().await? else {
            return Ok(None);
        };
        let seq = self.status.next_launch_seq;
        let record = new_record(
            &self.set,
            seq,
            offering.clone(),
            count,
            fallback,
            self.ctx.clock.now(),
        );
        self.status.next_launch_seq = seq + 1;
        self.status.launches.push(record.clone());
        self.write().await?;
        let result = cloud.run_instances(&request(&self.set, &record)).await;
        let ids = match result {
            Ok(ids) => ids,
            Err(error) => {
                if !self.failed(&record, &error).await {
                    self.status.launches.retain(|r| r.seq != seq);
                    self.write().await?;
                }
                return Ok(None);
            }
        };
        let launched = ids.len() as i32;
        info!(seq, count, launched, zone = %offering.zone, instance_type = %offering.instance_type, "launched");
        if let Some(r) = self.status.launches.iter_mut().find(|r| r.seq == seq) {
            r.phase = LaunchPhase::Issued;
            r.instance_ids = ids;
        }
        self.write().await?;
        self.event(
            EventType::Normal,
            "LaunchIssued",
            &format!(
                "launch {seq}: {launched} of {count} {:?} {} in {} (one RunInstances call)",
                offering.billing, offering.instance_type, offering.zone
            ),
        )
        .await;
        Ok(Some(launched))
    }

    /// Acts on a failed RunInstances of `record`; whether the record stays Pending (the
    /// call may have launched: replay later).
    pub(super) async fn failed(&mut self, record: &LaunchRecord, error: &CloudError) -> bool {
        let code = error.code().to_string();
        let offering = &record.offering;
        match classify(error) {
            LaunchFailure::OfferingSoldOut => {
                self.mark(
                    &offering.zone,
                    &offering.instance_type,
                    offering.billing,
                    &code,
                );
                self.event(
                    EventType::Warning,
                    "OfferingUnavailable",
                    &format!(
                        "{:?} {} in {}: {code}: {}; trying the next offering",
                        offering.billing,
                        offering.instance_type,
                        offering.zone,
                        error.message()
                    ),
                )
                .await;
                false
            }
            LaunchFailure::NoSpot => {
                self.mark("*", "*", BillingMode::Spot, &code);
                self.event(
                    EventType::Warning,
                    "OfferingUnavailable",
                    &format!("spot: {code}: {}", error.message()),
                )
                .await;
                false
            }
            LaunchFailure::Retry => {
                warn!(error = %error, seq = record.seq, "RunInstances without an answer; replaying the same token later");
                self.retry = true;
                true
            }
            LaunchFailure::Stall => {
                self.stall = Some((
                    reason_from_code(&code),
                    format!("RunInstances: {code}: {}", error.message()),
                ));
                false
            }
        }
    }

    /// Skips (zone, type, billing) until now + `unavailableOfferingSeconds`.
    pub(super) fn mark(
        &mut self,
        zone: &str,
        instance_type: &str,
        billing: BillingMode,
        code: &str,
    ) {
        let ttl =
            SignedDuration::from_secs(i64::from(self.set.spec.launch.unavailable_offering_seconds));
        let until = self
            .ctx
            .clock
            .now()
            .checked_add(ttl)
            .unwrap_or(Timestamp::MAX);
        let entry =
            match self.status.offerings.iter_mut().find(|o| {
                o.zone == zone && o.instance_type == instance_type && o.billing == billing
            }) {
                Some(entry) => entry,
                None => {
                    self.status.offerings.push(OfferingStatus {
                        zone: zone.into(),
                        instance_type: instance_type.into(),
                        billing,
                        replicas: 0,
                        ready: 0,
                        hourly_price: None,
                        unavailable_until: None,
                        last_error: None,
                    });
                    self.status.offerings.last_mut().expect("just pushed")
                }
            };
        entry.unavailable_until = Some(Time(until));
        entry.last_error = Some(code.into());
    }
}

/// `30s`, `5m`, `1h` (admission checked the form).
pub fn parse_after(text: &str) -> SignedDuration {
    let (number, unit) = text.split_at(text.len().saturating_sub(1));
    let n: i64 = number.parse().unwrap_or(0);
    match unit {
        "h" => SignedDuration::from_hours(n),
        "m" => SignedDuration::from_mins(n),
        _ => SignedDuration::from_secs(n),
    }
}

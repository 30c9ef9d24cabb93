//! The set's status, conditions and Events from what a pass saw and did, and when to look
//! again.

use std::time::Duration;

use k8s_openapi::jiff::Timestamp;
use kube::Resource;
use kube::runtime::controller::Action;

use super::{CAPACITY_DEGRADED, OUT_OF_DATE, Run};
use crate::api::{OfferingStatus, RolloutStrategy};
use crate::controller::Error;
use crate::controller::conditions::{Health, transition_time};
use crate::controller::events::EventType;
use crate::controller::price::format_price;
use crate::set::children::selector;
use crate::set::launch::template_hash;
use crate::set::plan::{Member, census};

impl Run<'_> {
    pub(super) async fn report(&mut self, members: &[Member]) -> Result<Action, Error> {
        let c = census(members, &self.status.launches);
        let now = self.ctx.clock.now();
        let spec = &self.set.spec;
        let generation = self.set.meta().generation;
        let previous = self.status.conditions.clone().unwrap_or_default();
        self.status.observed_generation = generation;
        self.status.selector = Some(selector(&self.set));
        self.status.replicas = c.live;
        self.status.ready_replicas = c.ready;
        let live = members.iter().filter(|m| !m.deleting);
        self.status.updated_replicas = live.filter(|m| m.up_to_date).count() as i32;
        self.status.template_hash = Some(template_hash(&self.set));
        self.status.spot_replicas = c.spot;
        self.status.on_demand_replicas = c.on_demand + c.fallback;
        self.status.fallback_replicas = c.fallback;
        self.status.offerings = offering_rows(&self.status.offerings, members, now);
        self.status.hourly_price = total_price(members.iter().filter(|m| !m.deleting));
        let rolling = spec.rollout.strategy == RolloutStrategy::Surge && c.outdated() > 0;
        let complete = c.live == spec.replicas
            && c.ready == spec.replicas
            && self.status.launches.is_empty()
            && !rolling;
        let marked = self
            .status
            .offerings
            .iter()
            .any(|o| o.unavailable_until.is_some());
        let health = match &self.stall {
            Some((reason, message)) => Health::stalled(reason, message.clone()),
            None if complete => Health::ready(
                "Ready",
                format!("{} of {} instances Ready", c.ready, spec.replicas),
            ),
            None if marked && c.live < spec.replicas && !self.retry => Health::progressing(
                "WaitingForCapacity",
                format!(
                    "{} of {} instances; no offering has capacity now",
                    c.live, spec.replicas
                ),
            ),
            None if rolling => Health::progressing(
                "RollingOut",
                format!(
                    "{} of {} instances run the current template, {} Ready; replacing up to {} at a time, each out-of-date instance removed once its replacement is Ready",
                    self.status.updated_replicas, spec.replicas, c.ready, spec.rollout.max_surge
                ),
            ),
            None => Health::progressing(
                "Scaling",
                format!(
                    "{} of {} instances, {} Ready, {} launching",
                    c.live, spec.replicas, c.ready, c.in_flight
                ),
            ),
        };
        let mut conditions = health.conditions(&previous, generation, now);
        let degraded = c.fallback > 0;
        let status = if degraded { "True" } else { "False" };
        conditions.push(k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition {
            type_: CAPACITY_DEGRADED.into(),
            status: status.into(),
            reason: if degraded {
                "SpotFallback"
            } else {
                "NotDegraded"
            }
            .into(),
            message: if degraded {
                format!("{} pay-as-you-go instances stand in for spot", c.fallback)
            } else {
                String::new()
            },
            observed_generation: generation,
            last_transition_time: transition_time(&previous, CAPACITY_DEGRADED, status, now),
        });
        let outdated = members
            .iter()
            .filter(|m| !m.deleting && !m.up_to_date)
            .count();
        let status = if outdated > 0 { "True" } else { "False" };
        conditions.push(k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition {
            type_: OUT_OF_DATE.into(),
            status: status.into(),
            reason: if outdated > 0 {
                "TemplateNotApplicable"
            } else {
                "UpToDate"
            }
            .into(),
            message: if outdated > 0 {
                format!(
                    "{outdated} instances run an older template: {} cannot change on a running machine; {}",
                    if self.behind.is_empty() {
                        "the template".to_string()
                    } else {
                        self.behind.join(", ")
                    },
                    if rolling {
                        "the Surge rollout replaces them"
                    } else {
                        "they go first on scale-down, a child deleted by hand is replaced from the current template, \
                         and spec.rollout.strategy: Surge replaces them all"
                    }
                )
            } else {
                String::new()
            },
            observed_generation: generation,
            last_transition_time: transition_time(&previous, OUT_OF_DATE, status, now),
        });
        let stalled_now = matches!(health, Health::Stalled { .. });
        let was_stalled = previous.iter().any(|cond| {
            cond.type_ == "Stalled" && cond.status == "True" && cond.reason == health.reason()
        });
        self.status.conditions = Some(conditions);
        if Some(&self.status) != self.set.status.as_ref() {
            self.write().await?;
        }
        if stalled_now && !was_stalled {
            self.event(EventType::Warning, health.reason(), health.message())
                .await;
        }
        // The children's Ready is told here, once for all of them.
        let was_ready = previous
            .iter()
            .any(|cond| cond.type_ == "Ready" && cond.status == "True");
        if complete && self.stall.is_none() && !was_ready {
            self.event(EventType::Normal, "Ready", health.message())
                .await;
        }
        let s = &self.ctx.settings;
        Ok(if stalled_now {
            Action::requeue(s.slow_retry)
        } else if self.retry || self.follow_again {
            Action::requeue(s.poll_min)
        } else if let Some(until) = earliest_mark(&self.status.offerings, now) {
            Action::requeue(until.max(s.poll_min))
        } else if complete && c.fallback == 0 {
            Action::requeue(s.resync)
        } else {
            Action::requeue(s.poll_max)
        })
    }
}

/// The hourly price of `members` together, formatted like an instance's; `None` when none
/// of them has a price (prices unknown), so an absent price never reads as free.
pub(super) fn total_price<'a>(members: impl Iterator<Item = &'a Member>) -> Option<String> {
    let prices: Vec<f64> = members.filter_map(|m| m.hourly_price).collect();
    (!prices.is_empty()).then(|| format_price(prices.iter().sum()))
}

/// Per offering in use or marked: machines, Ready ones, and the mark while it lasts.
pub(super) fn offering_rows(
    marks: &[OfferingStatus],
    members: &[Member],
    now: Timestamp,
) -> Vec<OfferingStatus> {
    let mut rows: Vec<OfferingStatus> = marks
        .iter()
        .filter(|m| m.unavailable_until.as_ref().is_some_and(|t| t.0 > now))
        .map(|m| OfferingStatus {
            replicas: 0,
            ready: 0,
            hourly_price: None,
            ..m.clone()
        })
        .collect();
    for m in members.iter().filter(|m| !m.deleting) {
        let row = match rows.iter_mut().find(|r| {
            r.zone == m.zone && r.instance_type == m.instance_type && r.billing == m.billing
        }) {
            Some(row) => row,
            None => {
                rows.push(OfferingStatus {
                    zone: m.zone.clone(),
                    instance_type: m.instance_type.clone(),
                    billing: m.billing,
                    replicas: 0,
                    ready: 0,
                    hourly_price: None,
                    unavailable_until: None,
                    last_error: None,
                });
                rows.last_mut().expect("just pushed")
            }
        };
        row.replicas += 1;
        row.ready += i32::from(m.ready);
    }
    for row in &mut rows {
        row.hourly_price = total_price(members.iter().filter(|m| {
            !m.deleting
                && m.zone == row.zone
                && m.instance_type == row.instance_type
                && m.billing == row.billing
        }));
    }
    rows.sort_by(|a, b| {
        (&a.zone, &a.instance_type, format!("{:?}", a.billing)).cmp(&(
            &b.zone,
            &b.instance_type,
            format!("{:?}", b.billing),
        ))
    });
    rows
}

pub(super) fn earliest_mark(offerings: &[OfferingStatus], now: Timestamp) -> Option<Duration> {
    offerings
        .iter()
        .filter_map(|o| o.unavailable_until.as_ref())
        .filter(|t| t.0 > now)
        .map(|t| Duration::try_from(t.0.duration_since(now)).unwrap_or_default())
        .min()
}

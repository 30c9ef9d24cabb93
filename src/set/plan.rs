//! What a set needs, as pure functions of what it has: the pay-as-you-go/spot split, the
//! count of machines it runs and launches, the offerings to try in order, and the children
//! to remove first. No I/O, so every rule is a table test (`plan_table.rs`); the executor
//! (`reconcile.rs`) acts on the answers.

use std::collections::{HashMap, HashSet};

use k8s_openapi::jiff::Timestamp;

use crate::api::{
    AllocationStrategy, BillingMode, CvmInstanceSetSpec, LaunchOffering, LaunchPhase, LaunchRecord,
    OfferingStatus, RolloutStrategy, ScaleDownOrder, ZoneBalance,
};

/// One child as the planner sees it.
#[derive(Debug, Clone)]
pub struct Member {
    pub name: String,
    pub instance_id: Option<String>,
    pub zone: String,
    pub instance_type: String,
    pub billing: BillingMode,
    /// Pay-as-you-go standing in for spot (label `cvm-operator.io/fallback`).
    pub fallback: bool,
    pub ready: bool,
    /// Being deleted: no longer counted, never chosen again.
    pub deleting: bool,
    /// Annotated `cvm-operator.io/delete-priority`.
    pub delete_priority: bool,
    /// Its spec matches the set's current template (a change that cannot reach a running
    /// machine leaves it out of date).
    pub up_to_date: bool,
    /// Its instance is gone for good (reclaimed, terminated outside, failed to launch): a
    /// child cannot launch another, so the set replaces it.
    pub lost: bool,
    pub created: Timestamp,
    pub hourly_price: Option<f64>,
}

/// What the set has: children not being deleted plus launches not yet children.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Census {
    pub live: i32,
    pub ready: i32,
    pub spot: i32,
    /// Pay-as-you-go by policy (not fallback).
    pub on_demand: i32,
    pub fallback: i32,
    /// Of `live`, machines of launches whose children do not exist yet.
    pub in_flight: i32,
    /// Ready and not fallback: what a revert to spot waits for.
    pub ready_not_fallback: i32,
    /// Of `live`, children running an older template: in the spot share (spot or fallback)
    /// and pay-as-you-go by policy.
    pub outdated_spot_share: i32,
    pub outdated_on_demand: i32,
    /// Of `live`, up-to-date machines not Ready yet, launches in flight included: what a
    /// Surge rollout waits for before it removes an out-of-date machine.
    pub unready_current: i32,
}

impl Census {
    pub fn outdated(&self) -> i32 {
        self.outdated_spot_share + self.outdated_on_demand
    }
}

/// Counts `members` and the launches in flight. An Issued launch counts its IDs that have no
/// child yet; a Pending one its whole count (RunInstances may have been sent).
pub fn census(members: &[Member], launches: &[LaunchRecord]) -> Census {
    let mut c = Census::default();
    let with_child = with_child(members);
    for m in members.iter().filter(|m| !m.deleting) {
        c.live += 1;
        c.ready += i32::from(m.ready);
        c.ready_not_fallback += i32::from(m.ready && !m.fallback);
        count_billing(&mut c, m.billing, m.fallback, 1);
        match (m.up_to_date, m.billing, m.fallback) {
            (true, ..) => c.unready_current += i32::from(!m.ready),
            (false, BillingMode::PayAsYouGo, false) => c.outdated_on_demand += 1,
            (false, ..) => c.outdated_spot_share += 1,
        }
    }
    for launch in launches {
        let n = in_flight(launch, &with_child);
        c.live += n;
        c.in_flight += n;
        c.unready_current += n;
        count_billing(&mut c, launch.offering.billing, launch.fallback, n);
    }
    c
}

/// The instance IDs that have a child.
fn with_child(members: &[Member]) -> HashSet<&str> {
    members
        .iter()
        .filter_map(|m| m.instance_id.as_deref())
        .collect()
}

/// Machines of `launch` that have no child yet: an Issued launch's IDs without one, a
/// Pending launch's whole count (RunInstances may have been sent).
fn in_flight(launch: &LaunchRecord, with_child: &HashSet<&str>) -> i32 {
    match launch.phase {
        LaunchPhase::Pending => launch.count,
        LaunchPhase::Issued => launch
            .instance_ids
            .iter()
            .filter(|id| !with_child.contains(id.as_str()))
            .count() as i32,
    }
}

/// The set's machines per zone: children not being deleted and launches in flight.
pub fn zone_counts(members: &[Member], launches: &[LaunchRecord]) -> HashMap<String, i32> {
    let with_child = with_child(members);
    let mut counts: HashMap<String, i32> = HashMap::new();
    for m in members.iter().filter(|m| !m.deleting) {
        *counts.entry(m.zone.clone()).or_default() += 1;
    }
    for launch in launches {
        *counts.entry(launch.offering.zone.clone()).or_default() += in_flight(launch, &with_child);
    }
    counts
}

/// Whether the set spreads its machines across zones (`offerings.zoneBalance: Balanced`).
pub fn balances_zones(spec: &CvmInstanceSetSpec) -> bool {
    spec.offerings
        .as_ref()
        .is_some_and(|o| o.zone_balance == ZoneBalance::Balanced)
}

/// Splits `n` launches among the zones of `offerings`, each to the zone with the fewest
/// machines (`counts`, plus what this split gave it already); ties go to the zone that comes
/// first in `offerings`, i.e. the preferred one. Zones in that order, with a share above 0.
pub fn zone_shares(
    offerings: &[LaunchOffering],
    counts: &HashMap<String, i32>,
    n: i32,
) -> Vec<(String, i32)> {
    let mut zones: Vec<(String, i32, i32)> = Vec::new(); // zone, machines, share
    for o in offerings {
        if !zones.iter().any(|(z, ..)| *z == o.zone) {
            let have = counts.get(&o.zone).copied().unwrap_or(0);
            zones.push((o.zone.clone(), have, 0));
        }
    }
    if zones.is_empty() {
        return Vec::new();
    }
    for _ in 0..n.max(0) {
        // `min_by_key` keeps the first of equals: the preferred zone.
        let (.., share) = zones
            .iter_mut()
            .min_by_key(|(_, have, share)| *have + *share)
            .expect("not empty");
        *share += 1;
    }
    zones
        .into_iter()
        .filter(|(.., share)| *share > 0)
        .map(|(zone, _, share)| (zone, share))
        .collect()
}

fn count_billing(c: &mut Census, billing: BillingMode, fallback: bool, n: i32) {
    match (billing, fallback) {
        (BillingMode::Spot, _) => c.spot += n,
        (BillingMode::PayAsYouGo, true) => c.fallback += n,
        (BillingMode::PayAsYouGo, false) => c.on_demand += n,
    }
}

/// How many of `replicas` are pay-as-you-go by policy: all with a PayAsYouGo template;
/// with a Spot one `onDemandBase + ceil(pct% × (replicas − base))`, at most `replicas`.
pub fn on_demand_target(spec: &CvmInstanceSetSpec) -> i32 {
    let replicas = spec.replicas.max(0);
    if spec.template.spec.billing.mode == BillingMode::PayAsYouGo {
        return replicas;
    }
    let c = &spec.capacity;
    let base = c.on_demand_base.clamp(0, replicas);
    let above = i64::from(replicas - base) * i64::from(c.on_demand_percentage_above_base);
    // Rounded up, as Auto Scaling does; both factors are non-negative.
    (base + ((above + 99) / 100) as i32).min(replicas)
}

/// Machines to launch now, per kind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Need {
    pub on_demand: i32,
    /// Spot, or fallback pay-as-you-go when spot has no capacity and fallback is allowed.
    pub spot: i32,
}

impl Need {
    pub fn total(&self) -> i32 {
        self.on_demand + self.spot
    }
}

/// Machines a `Surge` rollout launches on top of `replicas` now: `maxSurge`, and no more
/// than the out-of-date machines left. None while reverting to spot (that surge first).
pub fn rollout_surge(spec: &CvmInstanceSetSpec, c: &Census, reverting: bool) -> i32 {
    if spec.rollout.strategy != RolloutStrategy::Surge || reverting {
        return 0;
    }
    spec.rollout.max_surge.max(1).min(c.outdated())
}

/// What to launch. `reverting`: spot has capacity again and fallback machines are due to go
/// back, so spot replacements are launched on top of `replicas` (surge first). A `Surge`
/// rollout likewise launches replacements for up to `maxSurge` out-of-date machines, in
/// their share (spot first, as they go first).
pub fn need(spec: &CvmInstanceSetSpec, c: &Census, reverting: bool) -> Need {
    let surge = rollout_surge(spec, c, reverting);
    let retiring_spot = c.outdated_spot_share.min(surge);
    let retiring_on_demand = (surge - retiring_spot).min(c.outdated_on_demand);
    let od_target = on_demand_target(spec);
    let spot_target = spec.replicas.max(0) - od_target;
    let on_demand = (od_target - (c.on_demand - retiring_on_demand)).max(0);
    // Fallback machines fill the spot share, except when they are being replaced.
    let spot_have = c.spot + if reverting { 0 } else { c.fallback } - retiring_spot;
    let spot = (spot_target - spot_have).max(0);
    let room = spec.replicas.max(0) + if reverting { c.fallback } else { 0 } + surge - c.live;
    let room = room.max(0);
    // Within the room, on-demand (the base) first.
    let on_demand = on_demand.min(room);
    Need {
        on_demand,
        spot: spot.min(room - on_demand),
    }
}

/// How many children are surplus. While reverting, fallback machines stay until enough
/// spot replacements are Ready: the set never drops below `replicas` Ready-able machines.
pub fn surplus(spec: &CvmInstanceSetSpec, c: &Census, reverting: bool) -> i32 {
    let keep_fallback = reverting && c.ready_not_fallback < spec.replicas;
    // A rollout keeps an out-of-date machine for each replacement not Ready yet.
    let keep_outdated = if spec.rollout.strategy == RolloutStrategy::Surge {
        c.unready_current.min(c.outdated())
    } else {
        0
    };
    let allowed = spec.replicas.max(0) + if keep_fallback { c.fallback } else { 0 } + keep_outdated;
    (c.live - allowed).max(0)
}

/// The `n` children to remove, in order: never Ready, annotated
/// `cvm-operator.io/delete-priority`, out of date (an older template), fallback, then
/// `scaleDown.order`. While `reverting` to spot, fallback goes before out of date: the
/// surplus then is the fallback machines the spot replacements stand in for, and removing
/// an out-of-date spot machine instead would only launch another spot one. With
/// `zoneBalance: Balanced`, among equals of those classes the zone with the most
/// machines loses one first. Children already being deleted are never chosen again (no
/// over-delete on a stale view).
pub fn victims(
    spec: &CvmInstanceSetSpec,
    members: &[Member],
    n: i32,
    reverting: bool,
) -> Vec<String> {
    let mut candidates: Vec<&Member> = members.iter().filter(|m| !m.deleting).collect();
    let order = spec.scale_down.order;
    // During a Surge rollout an up-to-date machine still booting is a replacement, not a
    // never-Ready machine to drop first.
    let rolling =
        spec.rollout.strategy == RolloutStrategy::Surge && candidates.iter().any(|m| !m.up_to_date);
    let class = |m: &Member| {
        let (outdated, fallback) = (!m.up_to_date, m.fallback);
        let (first, second) = if reverting {
            (fallback, outdated)
        } else {
            (outdated, fallback)
        };
        (
            m.ready || (rolling && m.up_to_date),
            !m.delete_priority,
            !first,
            !second,
        )
    };
    candidates.sort_by(|a, b| {
        class(a).cmp(&class(b)).then_with(|| match order {
            ScaleDownOrder::Newest => b.created.cmp(&a.created),
            ScaleDownOrder::Oldest => a.created.cmp(&b.created),
            ScaleDownOrder::Cost => price_key(b)
                .partial_cmp(&price_key(a))
                .unwrap_or(std::cmp::Ordering::Equal)
                .then_with(|| b.created.cmp(&a.created)),
        })
    });
    let n = n.max(0) as usize;
    if !balances_zones(spec) {
        return candidates
            .into_iter()
            .take(n)
            .map(|m| m.name.clone())
            .collect();
    }
    // One at a time: the best class first, within it the most crowded zone, then the order.
    let mut per_zone: HashMap<&str, i32> = HashMap::new();
    for m in &candidates {
        *per_zone.entry(m.zone.as_str()).or_default() += 1;
    }
    let mut chosen = Vec::with_capacity(n.min(candidates.len()));
    for _ in 0..n.min(candidates.len()) {
        let (at, _) = candidates
            .iter()
            .enumerate()
            .min_by_key(|(i, m)| (class(m), -per_zone[m.zone.as_str()], *i))
            .expect("fewer chosen than candidates");
        let m = candidates.remove(at);
        *per_zone.get_mut(m.zone.as_str()).expect("counted") -= 1;
        chosen.push(m.name.clone());
    }
    chosen
}

/// Unknown prices sort as the cheapest: a machine is removed for its price only when its
/// price is known.
fn price_key(m: &Member) -> f64 {
    m.hourly_price.unwrap_or(f64::MIN)
}

/// Stock and price of an offering, when DescribeZoneInstanceConfigInfos answered.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Market {
    pub available: bool,
    pub hourly_price: Option<f64>,
    /// How deep the stock is: 0 `EnoughStock`, 1 `NormalStock`, 2 `UnderStock`, 3 anything
    /// else (`WithoutStock` is not `available`).
    pub stock_rank: u8,
}

/// The rank of a `StatusCategory` of DescribeZoneInstanceConfigInfos (see [`Market`]).
pub fn stock_rank(category: &str) -> u8 {
    match category {
        "EnoughStock" => 0,
        "NormalStock" => 1,
        "UnderStock" => 2,
        _ => 3,
    }
}

pub type Markets = HashMap<(String, String, BillingMode), Market>;

/// The offerings to try for `billing`, best first: instance types in order, each across
/// the subnets in order (or by lowest price); without those lists, the template's own.
/// Offerings marked unavailable until after `now`, or sold out per `markets`, are left out.
pub fn candidates(
    spec: &CvmInstanceSetSpec,
    billing: BillingMode,
    marked: &[OfferingStatus],
    markets: &Markets,
    now: Timestamp,
) -> Vec<LaunchOffering> {
    let template = &spec.template.spec;
    let policy = spec.offerings.clone().unwrap_or_default();
    let types = if policy.instance_types.is_empty() {
        vec![template.instance_type.clone()]
    } else {
        policy.instance_types.clone()
    };
    let subnets: Vec<(String, Option<String>)> = if policy.subnets.is_empty() {
        let subnet = template.network.as_ref().and_then(|n| n.subnet_id.clone());
        vec![(template.zone.clone(), subnet)]
    } else {
        policy
            .subnets
            .iter()
            .map(|s| (s.zone.clone(), Some(s.subnet_id.clone())))
            .collect()
    };
    let mut out: Vec<LaunchOffering> = types
        .iter()
        .flat_map(|t| {
            subnets.iter().map(move |(zone, subnet)| LaunchOffering {
                zone: zone.clone(),
                subnet_id: subnet.clone(),
                instance_type: t.clone(),
                billing,
            })
        })
        .filter(|o| !unavailable(o, marked, now))
        .filter(|o| market(markets, o).is_none_or(|m| m.available))
        .collect();
    // Both sorts are stable: equals keep the priority order; unknown prices or stock last.
    match policy.allocation_strategy {
        AllocationStrategy::Priority => {}
        AllocationStrategy::LowestPrice => {
            out.sort_by_key(|o| match market(markets, o).and_then(|m| m.hourly_price) {
                Some(price) => (0, (price * 1e6) as i64),
                None => (1, 0),
            });
        }
        AllocationStrategy::CapacityOptimized => {
            out.sort_by_key(|o| market(markets, o).map_or(u8::MAX, |m| m.stock_rank));
        }
    }
    out
}

fn market<'a>(markets: &'a Markets, o: &LaunchOffering) -> Option<&'a Market> {
    markets.get(&(o.zone.clone(), o.instance_type.clone(), o.billing))
}

/// Whether a mark (`*` for every zone or type) says `offering` has no capacity at `now`.
pub fn unavailable(offering: &LaunchOffering, marked: &[OfferingStatus], now: Timestamp) -> bool {
    marked.iter().any(|m| {
        m.billing == offering.billing
            && (m.zone == "*" || m.zone == offering.zone)
            && (m.instance_type == "*" || m.instance_type == offering.instance_type)
            && m.unavailable_until.as_ref().is_some_and(|t| t.0 > now)
    })
}

/// What a failed RunInstances means for the set (fleets reference §7.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LaunchFailure {
    /// This offering has no capacity: skip it for a while, try the next one now.
    OfferingSoldOut,
    /// No spot anywhere (quota, region): skip every spot offering, fall back if allowed.
    NoSpot,
    /// The request may or may not have been processed: replay the same token later.
    Retry,
    /// Nothing other offerings can fix: the configuration, quota or balance.
    Stall,
}

pub fn classify(error: &tencent_cloud::error::CloudError) -> LaunchFailure {
    use tencent_cloud::error::{CloudError, ErrorClass};
    let code = error.code();
    if matches!(
        code,
        "LimitExceeded.SpotQuota"
            | "LimitExceeded.UserSpotQuota"
            | "UnsupportedOperation.SpotUnsupportedRegion"
    ) {
        return LaunchFailure::NoSpot;
    }
    let sold_out = code.starts_with("ResourceInsufficient.")
        || code.starts_with("ResourcesSoldOut.")
        || matches!(
            code,
            "InvalidParameterValue.InsufficientOffering"
                | "InvalidParameterValue.InsufficientPrice"
                | "InvalidParameter.InvalidCloudDiskSoldOut"
                | "UnsupportedOperation.NoInstanceTypeSupportSpot"
                | "FailedOperation.NoAvailableIpAddressCountInSubnet"
        );
    if sold_out || error.class() == ErrorClass::Capacity {
        return LaunchFailure::OfferingSoldOut;
    }
    // Only an answer from the API proves the request was refused; anything else may have
    // launched the batch.
    if error.is_retryable() || !matches!(error, CloudError::Api { .. }) {
        return LaunchFailure::Retry;
    }
    LaunchFailure::Stall
}

#[cfg(test)]
#[path = "plan_table.rs"]
mod table;

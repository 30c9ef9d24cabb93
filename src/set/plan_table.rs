//! Table tests of the set planner: the split, the counts, the offering order and the
//! scale-down order, each row a situation and what it must lead to.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use super::*;
use crate::api::CvmInstanceSet;
use tencent_cloud::error::CloudError;

fn t(seconds: i64) -> Timestamp {
    Timestamp::from_second(1_767_225_600 + seconds).unwrap()
}

/// A Spot set of `replicas` with `extra` merged into its spec.
fn spec(replicas: i32, extra: serde_json::Value) -> CvmInstanceSetSpec {
    let mut value = serde_json::json!({
        "replicas": replicas,
        "template": {"spec": {
            "region": "ap-guangzhou",
            "zone": "ap-guangzhou-3",
            "instanceType": "S5.MEDIUM2",
            "imageId": "img-eb30mz89",
            "billing": {"mode": "Spot"},
            "network": {"vpcId": "vpc-aaaaaaaa", "subnetId": "subnet-aaaaaaaa"}
        }}
    });
    json_patch::merge(&mut value, &extra);
    let set: CvmInstanceSet =
        serde_json::from_value(serde_json::json!({"metadata": {"name": "w"}, "spec": value}))
            .unwrap();
    set.spec
}

fn member(name: &str, billing: BillingMode, ready: bool, created: i64) -> Member {
    Member {
        name: name.into(),
        instance_id: Some(format!("ins-{name}")),
        zone: "ap-guangzhou-3".into(),
        instance_type: "S5.MEDIUM2".into(),
        billing,
        fallback: false,
        ready,
        deleting: false,
        delete_priority: false,
        up_to_date: true,
        lost: false,
        created: t(created),
        hourly_price: None,
    }
}

fn fallback(mut m: Member) -> Member {
    m.fallback = true;
    m
}

fn record(phase: LaunchPhase, count: i32, ids: &[&str]) -> LaunchRecord {
    LaunchRecord {
        seq: 0,
        client_token: "cvmset-u-0".into(),
        offering: LaunchOffering {
            zone: "ap-guangzhou-3".into(),
            subnet_id: None,
            instance_type: "S5.MEDIUM2".into(),
            billing: BillingMode::Spot,
        },
        count,
        template_hash: "h".into(),
        phase,
        fallback: false,
        instance_ids: ids.iter().map(|s| s.to_string()).collect(),
        created: Time(t(0)),
    }
}

#[test]
fn the_on_demand_share_rounds_up_and_a_pay_as_you_go_template_is_all_on_demand() {
    let rows = [
        (10, serde_json::json!({}), 0),
        (10, serde_json::json!({"capacity": {"onDemandBase": 2}}), 2),
        (
            10,
            serde_json::json!({"capacity": {"onDemandBase": 2, "onDemandPercentageAboveBase": 10}}),
            3,
        ),
        (
            10,
            serde_json::json!({"capacity": {"onDemandPercentageAboveBase": 25}}),
            3,
        ),
        (1, serde_json::json!({"capacity": {"onDemandBase": 5}}), 1),
        (
            4,
            serde_json::json!({"template": {"spec": {"billing": {"mode": "PayAsYouGo"}}}}),
            4,
        ),
    ];
    for (replicas, extra, expected) in rows {
        assert_eq!(
            on_demand_target(&spec(replicas, extra.clone())),
            expected,
            "{replicas} {extra}"
        );
    }
}

#[test]
fn the_census_counts_launches_in_flight_once() {
    let members = vec![
        member("a", BillingMode::Spot, true, 0),
        member("b", BillingMode::PayAsYouGo, false, 0),
        fallback(member("c", BillingMode::PayAsYouGo, true, 0)),
        Member {
            deleting: true,
            ..member("d", BillingMode::Spot, true, 0)
        },
    ];
    let launches = vec![
        record(LaunchPhase::Pending, 5, &[]),
        // ins-a has its child already: only ins-x is in flight.
        record(LaunchPhase::Issued, 2, &["ins-a", "ins-x"]),
        // ins-d's child is being deleted: counted by nobody.
        record(LaunchPhase::Issued, 1, &["ins-d"]),
    ];
    let c = census(&members, &launches);
    assert_eq!(
        c,
        Census {
            live: 3 + 5 + 1,
            ready: 2,
            spot: 1 + 5 + 1,
            on_demand: 1,
            fallback: 1,
            in_flight: 6,
            ready_not_fallback: 1,
            // b, and the 6 in flight.
            unready_current: 7,
            ..Census::default()
        }
    );
}

#[test]
fn a_surge_rollout_replaces_out_of_date_machines_without_dropping_below_the_replicas() {
    let surge = |max: i32| {
        spec(
            3,
            serde_json::json!({"rollout": {"strategy": "Surge", "maxSurge": max}}),
        )
    };
    let old: Vec<Member> = (0..3)
        .map(|i| outdated(member(&format!("old{i}"), BillingMode::Spot, true, i)))
        .collect();
    let s = surge(1);
    // Three out of date: one replacement launched on top of the replicas, nothing removed.
    let c = census(&old, &[]);
    assert_eq!(c.outdated(), 3);
    assert_eq!(
        need(&s, &c, false),
        Need {
            on_demand: 0,
            spot: 1
        }
    );
    assert_eq!(surplus(&s, &c, false), 0);
    // The replacement boots: still nothing removed, nothing more launched.
    let mut members = old.clone();
    members.push(member("new0", BillingMode::Spot, false, 100));
    let c = census(&members, &[]);
    assert_eq!(need(&s, &c, false), Need::default());
    assert_eq!(surplus(&s, &c, false), 0);
    // Ready: one out-of-date machine goes (not the newest, whatever the order says).
    members.last_mut().unwrap().ready = true;
    let c = census(&members, &[]);
    assert_eq!(surplus(&s, &c, false), 1);
    assert_eq!(victims(&s, &members, 1, false), ["old2"]);

    // maxSurge 2: two at once; one Ready and one booting remove one out-of-date machine, and
    // the booting replacement is not taken for a never-Ready machine to drop.
    let s = surge(2);
    assert_eq!(need(&s, &census(&old, &[]), false).spot, 2);
    let mut members = old.clone();
    members.push(member("new0", BillingMode::Spot, true, 100));
    members.push(member("new1", BillingMode::Spot, false, 101));
    let c = census(&members, &[]);
    assert_eq!(surplus(&s, &c, false), 1);
    assert_eq!(victims(&s, &members, 1, false), ["old2"]);

    // Pay-as-you-go machines are replaced in their own share.
    let od = spec(
        2,
        serde_json::json!({"capacity": {"onDemandBase": 2}, "rollout": {"strategy": "Surge", "maxSurge": 2}}),
    );
    let paid: Vec<Member> = (0..2)
        .map(|i| outdated(member(&format!("p{i}"), BillingMode::PayAsYouGo, true, i)))
        .collect();
    assert_eq!(
        need(&od, &census(&paid, &[]), false),
        Need {
            on_demand: 2,
            spot: 0
        }
    );

    // Manual (the default): out-of-date machines stay; no surge, no surplus.
    let manual = spec(3, serde_json::json!({}));
    let c = census(&old, &[]);
    assert_eq!(need(&manual, &c, false), Need::default());
    assert_eq!(surplus(&manual, &c, false), 0);
    // While reverting to spot, the rollout waits.
    assert_eq!(rollout_surge(&s, &c, true), 0);
}

#[test]
fn need_fills_the_base_first_and_never_exceeds_the_replicas() {
    let s = spec(5, serde_json::json!({"capacity": {"onDemandBase": 1}}));
    let empty = Census::default();
    assert_eq!(
        need(&s, &empty, false),
        Need {
            on_demand: 1,
            spot: 4
        }
    );
    let fallback_in_place = Census {
        live: 5,
        on_demand: 1,
        spot: 2,
        fallback: 2,
        ..Census::default()
    };
    assert_eq!(need(&s, &fallback_in_place, false), Need::default());
    // Reverting: spot replacements on top, one per fallback machine.
    assert_eq!(
        need(&s, &fallback_in_place, true),
        Need {
            on_demand: 0,
            spot: 2
        }
    );
    let too_many = Census {
        live: 7,
        spot: 7,
        ..Census::default()
    };
    assert_eq!(need(&s, &too_many, false), Need::default());
}

#[test]
fn the_surplus_keeps_fallback_machines_until_their_replacements_are_ready() {
    let s = spec(3, serde_json::json!({}));
    let surging = Census {
        live: 5,
        spot: 3,
        fallback: 2,
        ready: 3,
        ready_not_fallback: 1,
        ..Census::default()
    };
    assert_eq!(surplus(&s, &surging, true), 0);
    let replaced = Census {
        ready_not_fallback: 3,
        ..surging
    };
    assert_eq!(surplus(&s, &replaced, true), 2);
    assert_eq!(surplus(&s, &surging, false), 2);
}

#[test]
fn victims_go_never_ready_then_marked_then_fallback_then_by_order() {
    let members = vec![
        member("old", BillingMode::Spot, true, 0),
        member("new", BillingMode::Spot, true, 100),
        fallback(member("fb", BillingMode::PayAsYouGo, true, 50)),
        Member {
            delete_priority: true,
            ..member("marked", BillingMode::Spot, true, 10)
        },
        member("booting", BillingMode::Spot, false, 20),
        Member {
            deleting: true,
            ..member("going", BillingMode::Spot, false, 30)
        },
    ];
    let newest = spec(1, serde_json::json!({}));
    assert_eq!(
        victims(&newest, &members, 5, false),
        ["booting", "marked", "fb", "new", "old"]
    );
    let oldest = spec(1, serde_json::json!({"scaleDown": {"order": "Oldest"}}));
    assert_eq!(victims(&oldest, &members, 5, false)[3..], ["old", "new"]);
    let cost = spec(1, serde_json::json!({"scaleDown": {"order": "Cost"}}));
    let priced = vec![
        Member {
            hourly_price: Some(0.1),
            ..member("cheap", BillingMode::Spot, true, 100)
        },
        Member {
            hourly_price: Some(0.9),
            ..member("dear", BillingMode::Spot, true, 0)
        },
    ];
    assert_eq!(victims(&cost, &priced, 1, false), ["dear"]);
}

fn outdated(mut m: Member) -> Member {
    m.up_to_date = false;
    m
}

#[test]
fn out_of_date_machines_go_after_never_ready_and_marked_ones_and_before_fallback() {
    let members = vec![
        member("new", BillingMode::Spot, true, 100),
        outdated(member("old-tmpl", BillingMode::Spot, true, 0)),
        fallback(member("fb", BillingMode::PayAsYouGo, true, 50)),
        outdated(fallback(member(
            "fb-old",
            BillingMode::PayAsYouGo,
            true,
            60,
        ))),
        Member {
            delete_priority: true,
            ..member("marked", BillingMode::Spot, true, 10)
        },
        outdated(member("booting-old", BillingMode::Spot, false, 20)),
        member("booting", BillingMode::Spot, false, 30),
    ];
    let newest = spec(1, serde_json::json!({}));
    // Never Ready first (out of date among them first), then marked, then out of date
    // (fallback among them first), then fallback, then by order.
    let rows: [(bool, [&str; 7]); 2] = [
        (
            false,
            [
                "booting-old",
                "booting",
                "marked",
                "fb-old",
                "old-tmpl",
                "fb",
                "new",
            ],
        ),
        // Reverting to spot: the fallback machines are the surplus, out of date or not.
        (
            true,
            [
                "booting-old",
                "booting",
                "marked",
                "fb-old",
                "fb",
                "old-tmpl",
                "new",
            ],
        ),
    ];
    for (reverting, order) in rows {
        assert_eq!(
            victims(&newest, &members, 7, reverting),
            order,
            "reverting: {reverting}"
        );
    }
    // One to remove: an out-of-date machine, not the newest up-to-date one.
    let ready: Vec<Member> = members
        .iter()
        .filter(|m| m.ready && !m.delete_priority && !m.fallback)
        .cloned()
        .collect();
    assert_eq!(victims(&newest, &ready, 1, false), ["old-tmpl"]);
    let oldest = spec(1, serde_json::json!({"scaleDown": {"order": "Oldest"}}));
    let all_current = vec![
        member("a", BillingMode::Spot, true, 0),
        member("b", BillingMode::Spot, true, 10),
    ];
    assert_eq!(victims(&oldest, &all_current, 1, false), ["a"]);
}

#[test]
fn candidates_go_type_first_skip_marked_offerings_and_sort_by_price_when_asked() {
    let s = two_types_two_zones("Priority");
    let none = Markets::new();
    assert_eq!(
        names(candidates(&s, BillingMode::Spot, &[], &none, t(0))),
        [
            "S5.MEDIUM2/ap-guangzhou-3",
            "S5.MEDIUM2/ap-guangzhou-4",
            "SA2.MEDIUM2/ap-guangzhou-3",
            "SA2.MEDIUM2/ap-guangzhou-4"
        ]
    );
    let marked = vec![
        OfferingStatus {
            zone: "ap-guangzhou-3".into(),
            instance_type: "S5.MEDIUM2".into(),
            billing: BillingMode::Spot,
            replicas: 0,
            ready: 0,
            hourly_price: None,
            unavailable_until: Some(Time(t(180))),
            last_error: Some("ResourceInsufficient.SpecifiedInstanceType".into()),
        },
        OfferingStatus {
            zone: "*".into(),
            instance_type: "*".into(),
            billing: BillingMode::PayAsYouGo,
            replicas: 0,
            ready: 0,
            hourly_price: None,
            unavailable_until: Some(Time(t(60))),
            last_error: Some("LimitExceeded.InstanceQuota".into()),
        },
    ];
    assert_eq!(
        names(candidates(&s, BillingMode::Spot, &marked, &none, t(10)))[0],
        "S5.MEDIUM2/ap-guangzhou-4"
    );
    // The mark expires.
    assert_eq!(
        candidates(&s, BillingMode::Spot, &marked, &none, t(200)).len(),
        4
    );
    assert!(candidates(&s, BillingMode::PayAsYouGo, &marked, &none, t(10)).is_empty());

    let lowest = spec(
        1,
        serde_json::json!({"offerings": {
            "instanceTypes": ["S5.MEDIUM2", "SA2.MEDIUM2"],
            "allocationStrategy": "LowestPrice"
        }}),
    );
    let mut markets = Markets::new();
    let z = "ap-guangzhou-3".to_string();
    markets.insert(
        (z.clone(), "S5.MEDIUM2".into(), BillingMode::Spot),
        Market {
            available: true,
            hourly_price: Some(0.3),
            stock_rank: 0,
        },
    );
    markets.insert(
        (z.clone(), "SA2.MEDIUM2".into(), BillingMode::Spot),
        Market {
            available: true,
            hourly_price: Some(0.2),
            stock_rank: 0,
        },
    );
    assert_eq!(
        names(candidates(&lowest, BillingMode::Spot, &[], &markets, t(0))),
        ["SA2.MEDIUM2/ap-guangzhou-3", "S5.MEDIUM2/ap-guangzhou-3"]
    );
    // Without prices, the priority order; sold out per the market, left out.
    assert_eq!(
        names(candidates(&lowest, BillingMode::Spot, &[], &none, t(0)))[0],
        "S5.MEDIUM2/ap-guangzhou-3"
    );
    markets.insert(
        (z, "SA2.MEDIUM2".into(), BillingMode::Spot),
        Market {
            available: false,
            hourly_price: Some(0.2),
            stock_rank: 0,
        },
    );
    assert_eq!(
        names(candidates(&lowest, BillingMode::Spot, &[], &markets, t(0))),
        ["S5.MEDIUM2/ap-guangzhou-3"]
    );
}

#[test]
fn capacity_optimized_takes_the_deepest_stock_first_and_the_priority_among_equals() {
    let s = two_types_two_zones("CapacityOptimized");
    let mut markets = Markets::new();
    for (zone, instance_type, category) in [
        ("ap-guangzhou-3", "S5.MEDIUM2", "UnderStock"),
        ("ap-guangzhou-4", "S5.MEDIUM2", "NormalStock"),
        ("ap-guangzhou-3", "SA2.MEDIUM2", "EnoughStock"),
        // ap-guangzhou-4 SA2.MEDIUM2: not in the answer.
    ] {
        markets.insert(
            (zone.into(), instance_type.into(), BillingMode::Spot),
            Market {
                available: true,
                hourly_price: None,
                stock_rank: stock_rank(category),
            },
        );
    }
    assert_eq!(
        names(candidates(&s, BillingMode::Spot, &[], &markets, t(0))),
        [
            "SA2.MEDIUM2/ap-guangzhou-3",
            "S5.MEDIUM2/ap-guangzhou-4",
            "S5.MEDIUM2/ap-guangzhou-3",
            "SA2.MEDIUM2/ap-guangzhou-4",
        ]
    );
    // Without stock data, the priority order.
    assert_eq!(
        names(candidates(
            &s,
            BillingMode::Spot,
            &[],
            &Markets::new(),
            t(0)
        ))[0],
        "S5.MEDIUM2/ap-guangzhou-3"
    );
}

/// A set of 1 offered S5.MEDIUM2 then SA2.MEDIUM2, each in ap-guangzhou-3 then -4, picked
/// by `strategy`.
fn two_types_two_zones(strategy: &str) -> CvmInstanceSetSpec {
    spec(
        1,
        serde_json::json!({"offerings": {
            "instanceTypes": ["S5.MEDIUM2", "SA2.MEDIUM2"],
            "subnets": [
                {"zone": "ap-guangzhou-3", "subnetId": "subnet-aaaaaaaa"},
                {"zone": "ap-guangzhou-4", "subnetId": "subnet-bbbbbbbb"}
            ],
            "allocationStrategy": strategy
        }}),
    )
}

/// `type/zone` of each offering, in order.
fn names(offerings: Vec<LaunchOffering>) -> Vec<String> {
    offerings
        .iter()
        .map(|o| format!("{}/{}", o.instance_type, o.zone))
        .collect()
}

#[test]
fn launch_failures_are_classified_by_code() {
    let api = |code: &str| CloudError::Api {
        action: "RunInstances".into(),
        code: code.into(),
        message: "m".into(),
        request_id: "r".into(),
    };
    let rows = [
        (
            "ResourceInsufficient.SpecifiedInstanceType",
            LaunchFailure::OfferingSoldOut,
        ),
        (
            "ResourceInsufficient.ZoneSoldOutForSpecifiedInstance",
            LaunchFailure::OfferingSoldOut,
        ),
        (
            "ResourcesSoldOut.AvailableZone",
            LaunchFailure::OfferingSoldOut,
        ),
        (
            "InvalidParameterValue.InsufficientOffering",
            LaunchFailure::OfferingSoldOut,
        ),
        (
            "ResourceInsufficient.InsufficientOfferingMinimum",
            LaunchFailure::OfferingSoldOut,
        ),
        ("LimitExceeded.SpotQuota", LaunchFailure::NoSpot),
        ("LimitExceeded.UserSpotQuota", LaunchFailure::NoSpot),
        ("RequestLimitExceeded", LaunchFailure::Retry),
        ("InternalError", LaunchFailure::Retry),
        ("InvalidImageId.NotFound", LaunchFailure::Stall),
        ("InvalidAccount.InsufficientBalance", LaunchFailure::Stall),
    ];
    for (code, expected) in rows {
        assert_eq!(classify(&api(code)), expected, "{code}");
    }
    assert_eq!(
        classify(&CloudError::Decode {
            action: "RunInstances".into(),
            message: "html".into()
        }),
        LaunchFailure::Retry
    );
}

fn in_zone(mut m: Member, zone: &str) -> Member {
    m.zone = zone.into();
    m
}

fn offering(zone: &str, instance_type: &str) -> LaunchOffering {
    LaunchOffering {
        zone: zone.into(),
        subnet_id: None,
        instance_type: instance_type.into(),
        billing: BillingMode::Spot,
    }
}

#[test]
fn zone_counts_take_live_children_and_launches_without_a_child() {
    let mut gone = in_zone(member("c", BillingMode::Spot, true, 0), "z2");
    gone.deleting = true;
    let members = vec![
        in_zone(member("a", BillingMode::Spot, true, 0), "z1"),
        in_zone(member("b", BillingMode::Spot, true, 0), "z2"),
        gone,
    ];
    let mut issued = record(LaunchPhase::Issued, 3, &["ins-a", "ins-x", "ins-y"]);
    issued.offering.zone = "z1".into();
    let mut pending = record(LaunchPhase::Pending, 4, &[]);
    pending.offering.zone = "z3".into();
    let counts = zone_counts(&members, &[issued, pending]);
    // z1: a, plus the two of the issued launch without a child; z2: b (c is leaving).
    assert_eq!(counts.get("z1"), Some(&3));
    assert_eq!(counts.get("z2"), Some(&1));
    assert_eq!(counts.get("z3"), Some(&4));
}

#[test]
fn zone_shares_fill_the_emptiest_zone_first_and_break_ties_by_preference() {
    let two_types = [
        offering("z1", "S5.MEDIUM2"),
        offering("z2", "S5.MEDIUM2"),
        offering("z1", "SA2.MEDIUM4"),
        offering("z3", "SA2.MEDIUM4"),
    ];
    let counts = |pairs: &[(&str, i32)]| -> HashMap<String, i32> {
        pairs.iter().map(|(z, n)| (z.to_string(), *n)).collect()
    };
    // (machines per zone before, launches, shares)
    type Zones<'a> = &'a [(&'a str, i32)];
    let rows: [(Zones, i32, Zones); 6] = [
        (&[], 0, &[]),
        (&[], 1, &[("z1", 1)]),
        (&[], 1000, &[("z1", 334), ("z2", 333), ("z3", 333)]),
        // The emptiest first, until the zones are level; then round and round.
        (&[("z1", 5), ("z2", 1)], 3, &[("z2", 1), ("z3", 2)]),
        (
            &[("z1", 5), ("z2", 1)],
            12,
            &[("z1", 1), ("z2", 5), ("z3", 6)],
        ),
        // A zone far ahead gets nothing until the others catch up.
        (&[("z1", 100)], 10, &[("z2", 5), ("z3", 5)]),
    ];
    for (have, n, expected) in rows {
        let expected: Vec<(String, i32)> =
            expected.iter().map(|(z, k)| (z.to_string(), *k)).collect();
        assert_eq!(
            zone_shares(&two_types, &counts(have), n),
            expected,
            "{have:?} + {n}"
        );
    }
    assert!(zone_shares(&[], &HashMap::new(), 5).is_empty());
}

#[test]
fn a_balanced_scale_down_takes_from_the_most_crowded_zone_within_each_class() {
    let balanced = spec(
        2,
        serde_json::json!({"offerings": {"zoneBalance": "Balanced"}}),
    );
    let priority = spec(2, serde_json::json!({}));
    // z1 has three Ready machines, z2 one; the newest are in z2 (d) and z1 (c).
    let members = vec![
        in_zone(member("a", BillingMode::Spot, true, 1), "z1"),
        in_zone(member("b", BillingMode::Spot, true, 2), "z1"),
        in_zone(member("c", BillingMode::Spot, true, 3), "z1"),
        in_zone(member("d", BillingMode::Spot, true, 4), "z2"),
    ];
    // Newest first would take d and c and leave z2 empty; balanced takes from z1, newest
    // first within it.
    assert_eq!(victims(&priority, &members, 2, false), ["d", "c"]);
    assert_eq!(victims(&balanced, &members, 2, false), ["c", "b"]);
    // Then level: z1 and z2 one each, so the order decides (newest: d).
    assert_eq!(victims(&balanced, &members, 3, false), ["c", "b", "d"]);
    // The classes still come first: a never-Ready machine in the emptier zone goes first.
    let mut booting = members.clone();
    booting[3].ready = false;
    assert_eq!(victims(&balanced, &booting, 2, false), ["d", "c"]);
    // More than there are: every candidate once.
    assert_eq!(victims(&balanced, &members, 9, false).len(), 4);
}

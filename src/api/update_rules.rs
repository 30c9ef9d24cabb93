//! The CEL transition rules that say which spec fields may change after creation: the
//! admission half of the mutability table in docs/design.md ("Day 2: the plan"). What the
//! operator can change in place is absent here; what needs a new instance is refused unless
//! `updatePolicy.replace` is `Recreate`; what must never change is refused outright.
//!
//! The checks make one rule on the spec root ([`all`]): a transition rule on an optional
//! field itself runs only when both the old and the new object have it, so adding or
//! removing it would slip through.

use std::collections::BTreeMap;

use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::CvmInstanceSpec;

/// How a field's old and new values are compared.
#[derive(Clone, Copy, Debug)]
pub enum Compare {
    /// A required field, compared as a whole.
    Required,
    /// An optional field (a dotted path under spec), compared as a whole; absent on both
    /// sides counts as equal, absent on one does not.
    Optional,
    /// Only whether the optional field is present.
    Presence,
    /// An optional field compared as a whole only while its parent is there before and
    /// after: adding or removing the parent is the parent's rule's business.
    WhileParentKept,
    /// The data disks' number, and each one's type, snapshot and encryption (not its size,
    /// which may grow, nor deleteWithInstance, which may change).
    DiskLayout,
}

/// Fields that never change: a different region is a different resource altogether; the
/// public IP's charge type has no API and is not worth a replacement (but a public IP added
/// or removed, with its charge type, is `network.publicIp`'s replacement).
pub const ALWAYS_IMMUTABLE: &[(&str, Compare)] = &[
    ("region", Compare::Required),
    ("network.publicIp.chargeType", Compare::WhileParentKept),
];

/// Fields no Tencent API changes on an existing instance: editable only when the user opted
/// into replacement (`updatePolicy.replace: Recreate`).
pub const REPLACE_ONLY: &[(&str, Compare)] = &[
    ("zone", Compare::Required),
    ("billing", Compare::Required),
    ("userData", Compare::Optional),
    ("systemDisk.type", Compare::Optional),
    ("network.vpcId", Compare::Optional),
    ("network.subnetId", Compare::Optional),
    ("network.privateIpAddress", Compare::Optional),
    ("network.publicIp", Compare::Presence),
    ("dataDisks", Compare::DiskLayout),
];

/// A short digest of each [`REPLACE_ONLY`] field of `spec`, compared the way its rule compares
/// it (`status.createdWith`). No API shows most of these (userData, the spot bid, a disk's
/// snapshot), so the operator remembers what it created the instance with: a different
/// digest later is a change that needs a new instance. Digests, since userData may hold
/// secrets.
pub fn replace_only_digests(spec: &CvmInstanceSpec) -> BTreeMap<String, String> {
    let spec = serde_json::to_value(spec).expect("a spec serialises");
    REPLACE_ONLY
        .iter()
        .map(|(field, compare)| {
            let value = field
                .split('.')
                .try_fold(&spec, |v, part| v.get(part).filter(|v| !v.is_null()));
            let compared = match compare {
                Compare::Required | Compare::Optional | Compare::WhileParentKept => {
                    value.cloned().unwrap_or(Value::Null)
                }
                Compare::Presence => Value::Bool(value.is_some()),
                Compare::DiskLayout => json!(value.and_then(Value::as_array).map(|disks| {
                    disks
                        .iter()
                        .map(|d| {
                            json!([
                                d["type"],
                                d.get("snapshotId"),
                                d.get("encrypt") == Some(&json!(true))
                            ])
                        })
                        .collect::<Vec<_>>()
                })),
            };
            let digest = hex::encode(Sha256::digest(compared.to_string().as_bytes()));
            (field.to_string(), digest[..16].to_string())
        })
        .collect()
}

/// The cloud's system disk size when the spec omits it, so growing from "omitted" is judged
/// against what the instance really has.
const DEFAULT_SYSTEM_DISK_GIB: i32 = 50;
/// `spec.dataDisks` holds at most this many disks (its maxItems).
const MAX_DATA_DISKS: usize = 20;

/// One update check: CEL true when the update keeps to it, and what to say when it does not.
pub struct Check {
    pub cel: String,
    pub message: String,
}

/// Every update check, in the order their messages are listed.
pub fn checks() -> Vec<Check> {
    let mut checks: Vec<Check> = ALWAYS_IMMUTABLE
        .iter()
        .map(|(field, compare)| Check {
            cel: unchanged(field, *compare),
            message: format!("spec.{field} is immutable"),
        })
        .collect();
    checks.extend(REPLACE_ONLY.iter().map(|(field, compare)| Check {
        cel: format!(
            "(has(self.updatePolicy) && has(self.updatePolicy.replace) && self.updatePolicy.replace == 'Recreate') || {}",
            unchanged(field, *compare)
        ),
        message: format!(
            "spec.{field} cannot change in place; set updatePolicy.replace: Recreate to replace the instance"
        ),
    }));
    checks.push(Check {
        cel: unchanged("instanceId", Compare::Optional),
        message: "spec.instanceId is immutable: it can only be given when the resource is created"
            .to_string(),
    });
    checks.push(Check {
        cel: format!(
            "{} >= {}",
            value_or("self", "systemDisk.sizeGiB", DEFAULT_SYSTEM_DISK_GIB),
            value_or("oldSelf", "systemDisk.sizeGiB", DEFAULT_SYSTEM_DISK_GIB)
        ),
        message: "spec.systemDisk.sizeGiB can only grow".to_string(),
    });
    checks.push(Check {
        cel: data_disks_grow_only(),
        message: "spec.dataDisks[].sizeGiB can only grow".to_string(),
    });
    checks
}

/// The update checks as one rule for the spec root, its message naming every field the
/// update breaks. One rule, not one per field, and `self == oldSelf` first: the API server
/// evaluates every rule of an object on each of its writes, status writes and finalizer
/// removals included, where the spec is unchanged. Fourteen separate transition rules cut
/// a status write's throughput by about a sixth (docs/performance.md); the unchanged spec
/// now ends the evaluation at the first comparison.
pub fn all() -> Vec<Value> {
    let checks = checks();
    let every = checks
        .iter()
        .map(|c| format!("({})", c.cel))
        .collect::<Vec<_>>()
        .join(" && ");
    // Concatenated, one sentence per broken check: a list joined would be simpler to read,
    // but its estimated cost is over the API server's budget for a message.
    let broken = checks
        .iter()
        .map(|c| format!("(!({}) ? '{}. ' : '')", c.cel, c.message))
        .collect::<Vec<_>>()
        .join(" + ");
    vec![json!({
        "rule": format!("self == oldSelf || ({every})"),
        "messageExpression": broken,
        "reason": "FieldValueForbidden",
    })]
}

/// CEL that is true when `field` is the same in `self` and `oldSelf`.
fn unchanged(field: &str, compare: Compare) -> String {
    match compare {
        Compare::Required => format!("self.{field} == oldSelf.{field}"),
        Compare::Optional => format!(
            "{} == {} && (!{} || self.{field} == oldSelf.{field})",
            present("self", field),
            present("oldSelf", field),
            present("self", field)
        ),
        Compare::Presence => format!(
            "{} == {}",
            present("self", field),
            present("oldSelf", field)
        ),
        Compare::DiskLayout => disk_layout_unchanged(),
        Compare::WhileParentKept => {
            let parent = field.rsplit_once('.').map_or(field, |(parent, _)| parent);
            format!(
                "!{} || !{} || ({})",
                present("self", parent),
                present("oldSelf", parent),
                unchanged(field, Compare::Optional)
            )
        }
    }
}

/// `has()` of every step of a dotted path, so a missing parent reads as absent; in
/// parentheses, since `==` binds tighter than `&&` in CEL.
fn present(root: &str, field: &str) -> String {
    let mut path = root.to_string();
    let steps = field
        .split('.')
        .map(|part| {
            path = format!("{path}.{part}");
            format!("has({path})")
        })
        .collect::<Vec<_>>()
        .join(" && ");
    format!("({steps})")
}

fn value_or(root: &str, field: &str, default: i32) -> String {
    format!("({} ? {root}.{field} : {default})", present(root, field))
}

/// The number of disks, then each disk's type, snapshot and encryption, as separate list
/// comparisons: concatenating them into one string per disk exceeds the API server's CEL
/// cost budget.
fn disk_layout_unchanged() -> String {
    let lists = |root: &str| {
        [
            "d.type",
            "has(d.snapshotId) ? d.snapshotId : ''",
            "has(d.encrypt) && d.encrypt",
        ]
        .map(|attribute| format!("{root}.dataDisks.map(d, {attribute})"))
    };
    let same = lists("self")
        .iter()
        .zip(lists("oldSelf"))
        .map(|(new, old)| format!("{new} == {old}"))
        .collect::<Vec<_>>()
        .join(" && ");
    format!(
        "has(self.dataDisks) == has(oldSelf.dataDisks) && (!has(self.dataDisks) || (size(self.dataDisks) == size(oldSelf.dataDisks) && {same}))"
    )
}

/// Disk `i` of the new spec is at least disk `i` of the old one. CEL has no indexed loop over
/// two lists, so the comparison is unrolled up to the list's maxItems. A different number of
/// disks is the layout rule's business, not this one's.
fn data_disks_grow_only() -> String {
    let per_disk = (0..MAX_DATA_DISKS)
        .map(|i| {
            format!("(size(self.dataDisks) <= {i} || self.dataDisks[{i}].sizeGiB >= oldSelf.dataDisks[{i}].sizeGiB)")
        })
        .collect::<Vec<_>>()
        .join(" && ");
    format!(
        "!has(self.dataDisks) || !has(oldSelf.dataDisks) || size(self.dataDisks) != size(oldSelf.dataDisks) || ({per_disk})"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digests_change_only_with_what_the_rules_compare() {
        let spec = |extra: Value| crate::controller::step::table::spec(extra);
        let base = replace_only_digests(&spec(json!({
            "userData": "echo hi",
            "dataDisks": [{"type": "CLOUD_SSD", "sizeGiB": 100}],
            "network": {"publicIp": {"maxBandwidthOutMbps": 10}}
        })));
        assert_eq!(base.len(), REPLACE_ONLY.len());
        let changed = |extra: Value| {
            let mut s = json!({
                "userData": "echo hi",
                "dataDisks": [{"type": "CLOUD_SSD", "sizeGiB": 100}],
                "network": {"publicIp": {"maxBandwidthOutMbps": 10}}
            });
            json_patch::merge(&mut s, &extra);
            let now = replace_only_digests(&spec(s));
            let mut fields: Vec<String> = now
                .iter()
                .filter(|(k, v)| base.get(*k) != Some(*v))
                .map(|(k, _)| k.clone())
                .collect();
            fields.sort();
            fields
        };
        assert_eq!(changed(json!({"userData": "echo bye"})), ["userData"]);
        assert_eq!(
            changed(json!({"network": {"publicIp": {"maxBandwidthOutMbps": 20}}})),
            Vec::<String>::new(),
            "bandwidth changes in place"
        );
        assert_eq!(
            changed(json!({"network": {"publicIp": null}})),
            ["network.publicIp"]
        );
        assert_eq!(
            changed(json!({"dataDisks": [{"type": "CLOUD_SSD", "sizeGiB": 200}]})),
            Vec::<String>::new(),
            "a disk grows in place"
        );
        assert_eq!(
            changed(json!({"dataDisks": [{"type": "CLOUD_PREMIUM", "sizeGiB": 100}]})),
            ["dataDisks"]
        );
        assert_eq!(
            changed(json!({"billing": {"mode": "Spot", "spot": {"maxPrice": "0.08"}}})),
            ["billing"]
        );
    }

    #[test]
    fn optional_fields_compare_presence_through_every_parent() {
        assert_eq!(
            unchanged("network.vpcId", Compare::Presence),
            "(has(self.network) && has(self.network.vpcId)) == (has(oldSelf.network) && has(oldSelf.network.vpcId))"
        );
    }

    #[test]
    fn replace_only_rules_yield_to_recreate() {
        let checks = checks();
        let of = |field: &str| {
            checks
                .iter()
                .find(|c| c.message.starts_with(&format!("spec.{field} ")))
                .unwrap_or_else(|| panic!("a {field} check"))
        };
        let zone = of("zone");
        assert!(zone.cel.contains("'Recreate'"));
        let region = of("region");
        assert!(!region.cel.contains("Recreate"));
    }

    #[test]
    fn one_rule_holds_every_check_behind_an_unchanged_spec() {
        let rules = all();
        assert_eq!(rules.len(), 1);
        let rule = rules[0]["rule"].as_str().unwrap();
        assert!(rule.starts_with("self == oldSelf || ("), "{rule}");
        let message = rules[0]["messageExpression"].as_str().unwrap();
        for check in checks() {
            assert!(rule.contains(&check.cel), "{}", check.message);
            assert!(
                message.contains(&format!("(!({}) ? '{}. ' : '')", check.cel, check.message)),
                "{}",
                check.message
            );
            assert!(!check.message.contains('\''), "{}", check.message);
        }
    }
}

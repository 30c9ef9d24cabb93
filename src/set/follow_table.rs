//! Table tests of what a template change writes to an existing child: each row an edit of
//! the template and what the child's patch must (and must not) hold.

use serde_json::{Value, json};

use super::*;
use crate::set::launch::template_hash;

/// A set like the example's (spot, one subnet, a public IP, a data disk) with `extra`
/// merged into its template's spec.
fn set(extra: Value) -> CvmInstanceSet {
    let mut template = json!({
        "region": "ap-guangzhou",
        "zone": "ap-guangzhou-3",
        "instanceType": "SA2.MEDIUM4",
        "imageId": "img-eb30mz89",
        "billing": {"mode": "Spot"},
        "systemDisk": {"type": "CLOUD_PREMIUM", "sizeGiB": 50},
        "dataDisks": [{"type": "CLOUD_SSD", "sizeGiB": 100}],
        "network": {
            "vpcId": "vpc-2k3m4n5p",
            "subnetId": "subnet-7q8r9s0t",
            "securityGroupIds": ["sg-aaaaaaaa"],
            "publicIp": {"maxBandwidthOutMbps": 10}
        },
        "login": {"keyIds": ["skey-3x4y5z6a"]},
        "tags": {"team": "a"}
    });
    json_patch::merge(&mut template, &extra);
    serde_json::from_value(json!({
        "metadata": {"name": "w", "namespace": "n", "uid": "u-1"},
        "spec": {"replicas": 3, "template": {"metadata": {"labels": {"workload": "batch"}}, "spec": template}}
    }))
    .unwrap()
}

/// The child `set` makes for a machine on its template's own offering, as stored.
fn child_of(set: &CvmInstanceSet) -> CvmInstance {
    let template = &set.spec.template.spec;
    let offering = LaunchOffering {
        zone: template.zone.clone(),
        subnet_id: template.network.as_ref().and_then(|n| n.subnet_id.clone()),
        instance_type: template.instance_type.clone(),
        billing: template.billing.mode,
    };
    let mut c = child(set, &offering, "ins-abcd1234", false);
    c.metadata.resource_version = Some("42".into());
    c
}

/// The child after the API server applied `patch` to it.
fn patched(existing: &CvmInstance, patch: &Value) -> CvmInstance {
    let mut value = serde_json::to_value(existing).unwrap();
    json_patch::merge(&mut value, patch);
    serde_json::from_value(value).unwrap()
}

#[test]
fn an_unchanged_template_writes_nothing() {
    let s = set(json!({}));
    let f = follow(&s, &child_of(&s), &template_hash(&s));
    assert_eq!(f.patch, None);
    assert!(f.up_to_date && f.behind.is_empty());
}

#[test]
fn in_place_fields_reach_the_child_and_then_nothing_more_is_written() {
    // (template edit, the child's spec afterwards must contain)
    let rows = [
        (
            json!({"tags": {"team": "a", "env": "prod"}}),
            json!({"tags": {"team": "a", "env": "prod"}}),
        ),
        (json!({"tags": {"team": null}}), json!({})),
        (
            json!({"network": {"securityGroupIds": ["sg-aaaaaaaa", "sg-bbbbbbbb"]}}),
            json!({"network": {"securityGroupIds": ["sg-aaaaaaaa", "sg-bbbbbbbb"], "subnetId": "subnet-7q8r9s0t"}}),
        ),
        (
            json!({"network": {"publicIp": {"maxBandwidthOutMbps": 50}}}),
            json!({"network": {"publicIp": {"maxBandwidthOutMbps": 50}}}),
        ),
        (json!({"projectId": 7}), json!({"projectId": 7})),
        (
            json!({"updatePolicy": {"restart": "IfNeeded", "reimage": "Allow"}}),
            json!({"updatePolicy": {"restart": "IfNeeded", "reimage": "Allow"}}),
        ),
        (
            json!({"imageId": "img-22222222"}),
            json!({"imageId": "img-22222222"}),
        ),
        (
            json!({"login": {"keyIds": ["skey-3x4y5z6a", "skey-bbbbbbbb"]}}),
            json!({"login": {"keyIds": ["skey-3x4y5z6a", "skey-bbbbbbbb"]}}),
        ),
        (
            json!({"systemDisk": {"sizeGiB": 80}}),
            json!({"systemDisk": {"type": "CLOUD_PREMIUM", "sizeGiB": 80}}),
        ),
        (
            json!({"dataDisks": [{"type": "CLOUD_SSD", "sizeGiB": 200}]}),
            json!({"dataDisks": [{"type": "CLOUD_SSD", "sizeGiB": 200}]}),
        ),
    ];
    for (edit, expected) in rows {
        let before = set(json!({}));
        let existing = child_of(&before);
        let after = set(edit.clone());
        let hash = template_hash(&after);
        let f = follow(&after, &existing, &hash);
        assert!(f.up_to_date, "{edit}: {:?}", f.behind);
        let patch = f.patch.unwrap_or_else(|| panic!("{edit}: no patch"));
        assert_eq!(patch["metadata"]["resourceVersion"], "42", "{edit}");
        assert_eq!(
            patch["metadata"]["annotations"][TEMPLATE_HASH], hash,
            "{edit}"
        );
        let now = patched(&existing, &patch);
        let spec = serde_json::to_value(&now.spec).unwrap();
        let mut want = spec.clone();
        json_patch::merge(&mut want, &expected);
        assert_eq!(spec, want, "{edit}");
        if edit == json!({"tags": {"team": null}}) {
            let tags = now.spec.tags.clone().unwrap_or_default();
            assert!(
                !tags.contains_key("team"),
                "a removed tag is removed: {patch}"
            );
        }
        // The offering and the names stay the child's.
        assert_eq!(now.spec.instance_id.as_deref(), Some("ins-abcd1234"));
        assert_eq!(now.spec.instance_name, None);
        assert_eq!(now.spec.host_name, None);
        // Steady state: nothing more to write.
        assert_eq!(follow(&after, &now, &hash).patch, None, "{edit}");
    }
}

#[test]
fn what_a_running_machine_cannot_take_leaves_the_child_out_of_date_and_unpatched() {
    // (template edit, the field named as behind)
    let rows = [
        (
            json!({"dataDisks": [{"type": "CLOUD_SSD", "sizeGiB": 100}, {"type": "CLOUD_SSD", "sizeGiB": 50}]}),
            "dataDisks",
        ),
        (
            json!({"dataDisks": [{"type": "CLOUD_PREMIUM", "sizeGiB": 100}]}),
            "dataDisks",
        ),
        (
            json!({"dataDisks": [{"type": "CLOUD_SSD", "sizeGiB": 50}]}),
            "dataDisks",
        ),
        (
            json!({"dataDisks": [{"type": "CLOUD_SSD", "sizeGiB": 100, "deleteWithInstance": false}]}),
            "dataDisks",
        ),
        (json!({"systemDisk": {"type": "CLOUD_SSD"}}), "systemDisk"),
        (json!({"systemDisk": {"sizeGiB": 40}}), "systemDisk"),
        (json!({"network": {"publicIp": null}}), "network"),
        (json!({"userData": "#!/bin/sh\n"}), "userData"),
        (json!({"billing": {"spot": {"maxPrice": "0.5"}}}), "billing"),
        (
            json!({"login": {"keyIds": null, "keepImageLogin": true}}),
            "login",
        ),
        (json!({"powerState": "Stopped"}), "powerState"),
        (
            json!({"credentialsSecretRef": {"name": "other"}}),
            "credentialsSecretRef",
        ),
    ];
    for (edit, field) in rows {
        let before = set(json!({}));
        let existing = child_of(&before);
        let after = set(edit.clone());
        let f = follow(&after, &existing, &template_hash(&after));
        assert!(!f.up_to_date, "{edit}");
        assert_eq!(f.behind, [field], "{edit}");
        assert_eq!(f.patch, None, "{edit}: nothing the child can take changed");
    }
}

#[test]
fn an_out_of_date_child_still_takes_what_it_can_and_keeps_its_old_hash() {
    let before = set(json!({}));
    let existing = child_of(&before);
    let after = set(json!({
        "tags": {"env": "prod"},
        "dataDisks": [{"type": "CLOUD_SSD", "sizeGiB": 100}, {"type": "CLOUD_SSD", "sizeGiB": 50}]
    }));
    let f = follow(&after, &existing, &template_hash(&after));
    assert!(!f.up_to_date);
    let patch = f.patch.unwrap();
    assert_eq!(patch["spec"], json!({"tags": {"env": "prod"}}));
    assert!(patch["metadata"].get("annotations").is_none(), "{patch}");
    let now = patched(&existing, &patch);
    assert_eq!(
        now.annotations()[TEMPLATE_HASH],
        template_hash(&before),
        "the hash it was built from"
    );
    assert_eq!(follow(&after, &now, &template_hash(&after)).patch, None);
}

#[test]
fn names_and_offering_fields_are_never_written() {
    // Not the child's to govern: up to date, only the hash moves.
    for edit in [json!({"instanceName": "web"}), json!({"hostName": "web"})] {
        let before = set(json!({}));
        let existing = child_of(&before);
        let after = set(edit.clone());
        let f = follow(&after, &existing, &template_hash(&after));
        assert!(f.up_to_date, "{edit}");
        assert_eq!(
            f.patch.unwrap()["spec"],
            Value::Null,
            "{edit}: no spec write"
        );
    }
    // The set no longer launches on the child's offering: out of date, left alone.
    for edit in [
        json!({"instanceType": "S5.LARGE8"}),
        json!({"zone": "ap-guangzhou-4", "network": {"subnetId": "subnet-1a2b3c4d"}}),
        json!({"billing": {"mode": "PayAsYouGo"}}),
    ] {
        let before = set(json!({}));
        let existing = child_of(&before);
        let after = set(edit.clone());
        let f = follow(&after, &existing, &template_hash(&after));
        assert!(!f.up_to_date, "{edit}");
        assert_eq!(f.behind, ["offering"], "{edit}");
        assert_eq!(f.patch, None, "{edit}");
    }
}

#[test]
fn template_labels_are_added_to_children() {
    let before = set(json!({}));
    let existing = child_of(&before);
    let mut after = before.clone();
    after.spec.template.metadata.labels = Some([("tier".to_string(), "gpu".to_string())].into());
    let f = follow(&after, &existing, &template_hash(&after));
    let patch = f.patch.unwrap();
    assert_eq!(patch["metadata"]["labels"], json!({"tier": "gpu"}));
    let now = patched(&existing, &patch);
    // Added, and the earlier template's label is not taken away (it may be a person's).
    assert_eq!(now.labels()["tier"], "gpu");
    assert_eq!(now.labels()["workload"], "batch");
    assert_eq!(now.labels()[crate::api::SET_LABEL], "w");
}

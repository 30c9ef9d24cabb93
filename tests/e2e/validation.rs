//! Invalid manifests are rejected by the real API server, with messages naming the field.

use crate::env::{REPO, TestEnv, sim_config};

fn base() -> String {
    std::fs::read_to_string(format!("{REPO}/examples/pay-as-you-go.yaml")).unwrap()
}

fn replace(from: &str, to: &str) -> String {
    let yaml = base();
    assert!(
        yaml.contains(from),
        "test setup: {from:?} not in the example"
    );
    yaml.replace(from, to)
}

#[tokio::test]
async fn invalid_manifests_are_rejected_naming_the_field() {
    let env = TestEnv::without_operator("validation", sim_config(), false).await;
    let cases: Vec<(&str, String, &str)> = vec![
        (
            "missing imageId",
            replace("  imageId: img-eb30mz89\n", ""),
            "spec.imageId: Required value",
        ),
        (
            "bad image prefix",
            replace("img-eb30mz89", "ami-12345678"),
            "spec.imageId",
        ),
        (
            "unknown billing mode",
            replace("mode: PayAsYouGo", "mode: Prepaid"),
            "spec.billing.mode: Unsupported value",
        ),
        (
            "spot options without Spot",
            replace(
                "mode: PayAsYouGo",
                "mode: PayAsYouGo\n    spot: {maxPrice: \"0.1\"}",
            ),
            "spec.billing.spot is only allowed when spec.billing.mode is Spot",
        ),
        (
            "bad max price",
            replace(
                "mode: PayAsYouGo",
                "mode: Spot\n    spot: {maxPrice: \"cheap\"}",
            ),
            "spec.billing.spot.maxPrice",
        ),
        (
            "zone outside region",
            replace("zone: ap-guangzhou-3", "zone: ap-shanghai-2"),
            "spec.zone must be a zone of spec.region",
        ),
        (
            "key and password together",
            replace(
                "keyIds: [skey-3x4y5z6a]",
                "keyIds: [skey-3x4y5z6a]\n    passwordSecretRef: {name: pw}",
            ),
            "spec.login: keyIds, passwordSecretRef and keepImageLogin are mutually exclusive",
        ),
        (
            "vpc without subnet",
            replace("    subnetId: subnet-7q8r9s0t\n", ""),
            "spec.network.vpcId and spec.network.subnetId must be given together",
        ),
        (
            "six security groups",
            replace(
                "[sg-5t6u7v8w]",
                "[sg-00000001, sg-00000002, sg-00000003, sg-00000004, sg-00000005, sg-00000006]",
            ),
            "spec.network.securityGroupIds: Too many",
        ),
        (
            "bad security group id",
            replace("[sg-5t6u7v8w]", "[group-1]"),
            "spec.network.securityGroupIds[0]",
        ),
        (
            "data disk not in 10 GiB steps",
            replace("sizeGiB: 100", "sizeGiB: 105"),
            "spec.dataDisks[].sizeGiB must be a multiple of 10",
        ),
        (
            "system disk too small",
            replace("sizeGiB: 50", "sizeGiB: 10"),
            "spec.systemDisk.sizeGiB",
        ),
        (
            "unknown disk type",
            replace("type: CLOUD_SSD", "type: CLOUD_FLOPPY"),
            "spec.dataDisks[0].type: Unsupported value",
        ),
        (
            "reserved tag key",
            replace("team: web", "cvm-operator.io/uid: stolen"),
            "spec.tags: keys starting with cvm-operator.io/ are reserved",
        ),
        (
            "tag key reserved by Tencent Cloud",
            replace("team: web", "qcloud:owner: me"),
            "spec.tags: keys starting with qcloud, tencent or project (any case) are reserved by Tencent Cloud",
        ),
        (
            "tag key reserved by Tencent Cloud, other case and prefix",
            replace("team: web", "Tencent-team: web"),
            "spec.tags: keys starting with qcloud, tencent or project",
        ),
        (
            "tag key reserved by Tencent Cloud: project",
            replace("team: web", "projectName: web"),
            "spec.tags: keys starting with qcloud, tencent or project",
        ),
        (
            "bad host name",
            replace("hostName: web-1", "hostName: -web"),
            "spec.hostName",
        ),
        (
            "zero bandwidth",
            replace("maxBandwidthOutMbps: 10", "maxBandwidthOutMbps: 0"),
            "spec.network.publicIp.maxBandwidthOutMbps",
        ),
        (
            "unknown deletion policy",
            replace("deletionPolicy: Delete", "deletionPolicy: Keep"),
            "spec.deletionPolicy: Unsupported value",
        ),
        (
            "private IP without subnet... bad format",
            replace(
                "    securityGroupIds:",
                "    privateIpAddress: 10.0.0.300\n    securityGroupIds:",
            ),
            "spec.network.privateIpAddress",
        ),
    ];
    for (what, yaml, expected) in cases {
        let out = env.apply_yaml(&yaml);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            !out.status.success(),
            "{what}: accepted but must be rejected"
        );
        assert!(
            stderr.contains(expected),
            "{what}: message must contain {expected:?}, got: {stderr}"
        );
    }
    let left = crate::env::kubectl_ok(env.kubectl().args(["get", "cvm", "-o", "name"]));
    assert_eq!(left.trim(), "", "nothing invalid may be stored");
}

/// `base()` with `extra` spec lines added after `deletionPolicy` (the last spec field).
fn with_spec(extra: &str) -> String {
    replace(
        "  deletionPolicy: Delete\n",
        &format!("  deletionPolicy: Delete\n{extra}"),
    )
}

const REPLACE_HINT: &str =
    "cannot change in place; set updatePolicy.replace: Recreate to replace the instance";

/// The admission half of the mutability table (docs/design.md, "Day 2: the plan"): what the
/// operator can change in place is accepted on update, what needs a new instance is refused
/// unless the user opted into replacement, and what never changes is refused outright.
#[tokio::test]
async fn updates_follow_the_mutability_table() {
    let env = TestEnv::without_operator("immutable", sim_config(), false).await;
    let apply = |yaml: &str| env.apply_yaml(yaml);
    let created = apply(&base());
    assert!(
        created.status.success(),
        "{}",
        String::from_utf8_lossy(&created.stderr)
    );

    let mutable = [
        (
            "instance name",
            replace(
                "  hostName: web-1\n",
                "  hostName: web-1\n  instanceName: renamed\n",
            ),
        ),
        ("tags", replace("team: web", "team: api")),
        ("a tag removed", replace("  tags:\n    team: web\n", "")),
        (
            "security groups",
            replace("[sg-5t6u7v8w]", "[sg-00000001, sg-5t6u7v8w]"),
        ),
        (
            "bandwidth",
            replace("maxBandwidthOutMbps: 10", "maxBandwidthOutMbps: 20"),
        ),
        (
            "project",
            replace("  hostName: web-1\n", "  hostName: web-1\n  projectId: 3\n"),
        ),
        (
            "instance type",
            replace("instanceType: S5.MEDIUM2", "instanceType: S5.LARGE8"),
        ),
        ("host name", replace("hostName: web-1", "hostName: web-2")),
        (
            "key pairs",
            replace("keyIds: [skey-3x4y5z6a]", "keyIds: [skey-00000001]"),
        ),
        (
            "image (gated by updatePolicy.reimage when applied)",
            replace("img-eb30mz89", "img-00000001"),
        ),
        (
            "deleteWithInstance",
            replace("deleteWithInstance: true", "deleteWithInstance: false"),
        ),
        ("power state", with_spec("  powerState: Stopped\n")),
        (
            "update policy",
            with_spec("  updatePolicy: {drift: Correct, restart: IfNeeded, reimage: Allow}\n"),
        ),
        (
            "management policy",
            with_spec("  managementPolicy: ObserveOnly\n"),
        ),
        (
            "deletion policy",
            replace("deletionPolicy: Delete", "deletionPolicy: Orphan"),
        ),
        (
            "credentials",
            replace("name: tencentcloud", "name: other-credentials"),
        ),
        // Last, since a grown disk cannot shrink back.
        ("system disk grows", replace("sizeGiB: 50", "sizeGiB: 80")),
        (
            "data disk grows",
            replace("sizeGiB: 100", "sizeGiB: 200").replace("sizeGiB: 50", "sizeGiB: 80"),
        ),
    ];
    for (what, yaml) in &mutable {
        let out = apply(yaml);
        assert!(
            out.status.success(),
            "changing {what} must be accepted: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        // Back to the original, so each row changes one thing (and shrinking back a grown
        // disk is refused, which is the grow-only rule; so disks are checked last below).
        if !what.contains("grows") {
            let back = apply(&base());
            assert!(
                back.status.success(),
                "{what}, back: {}",
                String::from_utf8_lossy(&back.stderr)
            );
        }
    }
    // The disks grew above; from here on the base has the grown sizes.
    let grown = |yaml: String| {
        yaml.replace("sizeGiB: 50", "sizeGiB: 80")
            .replace("sizeGiB: 100", "sizeGiB: 200")
    };
    let refused = [
        (
            "region",
            grown(
                replace("region: ap-guangzhou", "region: ap-shanghai")
                    .replace("zone: ap-guangzhou-3", "zone: ap-shanghai-2"),
            ),
            "spec.region is immutable".to_string(),
        ),
        (
            "public IP charge type",
            grown(replace(
                "chargeType: TRAFFIC_POSTPAID_BY_HOUR",
                "chargeType: BANDWIDTH_POSTPAID_BY_HOUR",
            )),
            "spec.network.publicIp.chargeType is immutable".to_string(),
        ),
        (
            "zone",
            grown(replace("zone: ap-guangzhou-3", "zone: ap-guangzhou-4")),
            format!("spec.zone {REPLACE_HINT}"),
        ),
        (
            "billing",
            grown(replace("mode: PayAsYouGo", "mode: Spot")),
            format!("spec.billing {REPLACE_HINT}"),
        ),
        (
            "user data",
            grown(replace("echo hello", "echo bye")),
            format!("spec.userData {REPLACE_HINT}"),
        ),
        (
            "system disk type",
            grown(replace("type: CLOUD_PREMIUM", "type: CLOUD_SSD")),
            format!("spec.systemDisk.type {REPLACE_HINT}"),
        ),
        (
            "subnet",
            grown(replace("subnet-7q8r9s0t", "subnet-00000001")),
            format!("spec.network.subnetId {REPLACE_HINT}"),
        ),
        (
            "vpc",
            grown(replace("vpc-2k3m4n5p", "vpc-00000001")),
            format!("spec.network.vpcId {REPLACE_HINT}"),
        ),
        (
            "removing the public IP",
            grown(replace(
                "    publicIp:\n      maxBandwidthOutMbps: 10\n      chargeType: TRAFFIC_POSTPAID_BY_HOUR\n",
                "",
            )),
            format!("spec.network.publicIp {REPLACE_HINT}"),
        ),
        (
            "adding a data disk",
            grown(replace(
                "      deleteWithInstance: true\n",
                "      deleteWithInstance: true\n    - type: CLOUD_SSD\n      sizeGiB: 50\n",
            )),
            format!("spec.dataDisks {REPLACE_HINT}"),
        ),
        (
            "data disk type",
            grown(replace("type: CLOUD_SSD", "type: CLOUD_PREMIUM")),
            format!("spec.dataDisks {REPLACE_HINT}"),
        ),
        (
            "data disk encryption",
            grown(replace(
                "deleteWithInstance: true",
                "deleteWithInstance: true\n      encrypt: true",
            )),
            format!("spec.dataDisks {REPLACE_HINT}"),
        ),
        (
            "shrinking the system disk",
            base(),
            "spec.systemDisk.sizeGiB can only grow".to_string(),
        ),
        (
            "shrinking a data disk",
            grown(base()).replace("sizeGiB: 200", "sizeGiB: 150"),
            "spec.dataDisks[].sizeGiB can only grow".to_string(),
        ),
        (
            "setting instanceId later",
            grown(with_spec("  instanceId: ins-00000001\n")),
            "spec.instanceId is immutable".to_string(),
        ),
    ];
    for (what, yaml, expected) in &refused {
        let out = apply(yaml);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "changing {what} must be refused");
        assert!(
            stderr.contains(expected.as_str()),
            "{what}: message must contain {expected:?}, got: {stderr}"
        );
    }
    // With replacement opted into, the replace-only fields change; the immutable ones do not.
    let recreate = |yaml: String| {
        grown(yaml.replace(
            "  deletionPolicy: Delete\n",
            "  deletionPolicy: Delete\n  updatePolicy: {replace: Recreate}\n",
        ))
    };
    // Every edit refused above for want of the opt-in is accepted with it, and back again.
    let replace_only = refused
        .iter()
        .filter(|(_, _, expected)| expected.contains(REPLACE_HINT));
    let spot_bid = grown(replace(
        "mode: PayAsYouGo",
        "mode: Spot\n    spot: {maxPrice: \"0.08\"}",
    ));
    for (what, yaml) in replace_only
        .map(|(what, yaml, _)| (*what, yaml.clone()))
        .chain([("a spot bid", spot_bid)])
    {
        for (step, yaml) in [(what, recreate(yaml)), ("back", recreate(base()))] {
            let out = apply(&yaml);
            assert!(
                out.status.success(),
                "{what} with Recreate ({step}): {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
    let region = apply(&recreate(
        replace("region: ap-guangzhou", "region: ap-shanghai")
            .replace("zone: ap-guangzhou-3", "zone: ap-shanghai-2"),
    ));
    assert!(
        !region.status.success(),
        "region must stay immutable even with Recreate"
    );
}

#[tokio::test]
async fn instance_id_and_stopped_mode_rules() {
    let env = TestEnv::without_operator("adoption", sim_config(), false).await;
    // The example is valid (apply_file panics on a refusal).
    env.apply_file(&format!("{REPO}/examples/day2-update.yaml"));
    let adopted = with_spec("  instanceId: ins-abcd1234\n  managementPolicy: ObserveOnly\n");
    let out = env.apply_yaml(&adopted);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let cases = [
        (
            "another instance",
            adopted.replace("ins-abcd1234", "ins-efgh5678"),
            "spec.instanceId is immutable",
        ),
        (
            "no instance",
            adopted.replace("  instanceId: ins-abcd1234\n", ""),
            "spec.instanceId is immutable",
        ),
    ];
    for (what, yaml, expected) in cases {
        let out = env.apply_yaml(&yaml);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{what} must be refused");
        assert!(stderr.contains(expected), "{what}: {stderr}");
    }
    let invalid = [
        (
            "a malformed instance ID",
            with_spec("  instanceId: i-123\n"),
            "spec.instanceId",
        ),
        (
            "StopCharging with Spot",
            replace("mode: PayAsYouGo", "mode: Spot").replace(
                "  deletionPolicy: Delete\n",
                "  deletionPolicy: Delete\n  powerState: Stopped\n  stoppedMode: StopCharging\n",
            ),
            "spec.stoppedMode: StopCharging is only for billing.mode PayAsYouGo",
        ),
        (
            "StopCharging while running",
            with_spec("  stoppedMode: StopCharging\n"),
            "spec.stoppedMode: StopCharging needs powerState Stopped",
        ),
        (
            "StopCharging with a local disk",
            replace("type: CLOUD_SSD", "type: LOCAL_SSD").replace(
                "  deletionPolicy: Delete\n",
                "  deletionPolicy: Delete\n  powerState: Stopped\n  stoppedMode: StopCharging\n",
            ),
            "spec.stoppedMode: StopCharging is not possible with local disks",
        ),
        (
            "an unknown power state",
            with_spec("  powerState: Off\n"),
            "spec.powerState: Unsupported value",
        ),
        (
            "an unknown drift policy",
            with_spec("  updatePolicy: {drift: Ignore}\n"),
            "spec.updatePolicy.drift: Unsupported value",
        ),
        (
            "replacing an adopted instance",
            with_spec("  instanceId: ins-abcd1234\n  updatePolicy: {replace: Recreate}\n"),
            "spec.updatePolicy.replace: Recreate is not allowed with spec.instanceId",
        ),
    ];
    for (what, yaml, expected) in invalid {
        let yaml = yaml.replace("name: web-1\n", "name: web-2\n");
        let out = env.apply_yaml(&yaml);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{what} must be refused");
        assert!(
            stderr.contains(expected),
            "{what}: message must contain {expected:?}, got: {stderr}"
        );
    }
}

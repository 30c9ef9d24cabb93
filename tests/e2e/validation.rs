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

#[tokio::test]
async fn create_only_fields_are_immutable() {
    let env = TestEnv::without_operator("immutable", sim_config(), false).await;
    let out = env.apply_yaml(&base());
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let cases = [
        (
            "instance type",
            replace("instanceType: S5.MEDIUM2", "instanceType: S5.LARGE8"),
            "spec.instanceType is immutable",
        ),
        (
            "zone",
            replace("zone: ap-guangzhou-3", "zone: ap-guangzhou-4"),
            "spec.zone is immutable",
        ),
        (
            "billing",
            replace("mode: PayAsYouGo", "mode: Spot"),
            "spec.billing is immutable",
        ),
        (
            "removing the host name",
            replace("  hostName: web-1\n", ""),
            "spec.hostName is immutable",
        ),
        (
            "adding an instance name",
            replace(
                "  hostName: web-1\n",
                "  hostName: web-1\n  instanceName: renamed\n",
            ),
            "spec.instanceName is immutable",
        ),
        (
            "a data disk",
            replace("sizeGiB: 100", "sizeGiB: 200"),
            "spec.dataDisks is immutable",
        ),
        (
            "tags",
            replace("team: web", "team: api"),
            "spec.tags is immutable",
        ),
    ];
    for (what, yaml, expected) in cases {
        let out = env.apply_yaml(&yaml);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "changing {what} must be rejected");
        assert!(
            stderr.contains(expected),
            "{what}: message must contain {expected:?}, got: {stderr}"
        );
    }

    // Mutable fields stay mutable.
    let out = env.apply_yaml(&replace("deletionPolicy: Delete", "deletionPolicy: Orphan"));
    assert!(
        out.status.success(),
        "deletionPolicy must be mutable: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = env.apply_yaml(&replace("name: tencentcloud", "name: other-credentials"));
    assert!(
        out.status.success(),
        "credentialsSecretRef must be mutable: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

//! One version, from Cargo.toml: `cvm-operator --version`, the image labels, the chart's
//! version and appVersion, deploy/'s image tag, and the Dockerfile's pins.

use std::process::Command;

use crate::image;
use crate::support::{kubectl_ok, tools::REPO};

const VERSION: &str = env!("CARGO_PKG_VERSION");

fn read(path: &str) -> String {
    std::fs::read_to_string(format!("{REPO}/{path}")).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// The value of `key: value` on a line of its own (quotes removed).
fn yaml_scalar(text: &str, key: &str) -> String {
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{key}: ")))
        .unwrap_or_else(|| panic!("no {key} in\n{text}"))
        .trim()
        .trim_matches('"')
        .to_string()
}

#[test]
fn version_flag_chart_deploy_and_image_labels_agree_with_cargo_toml() {
    let version_output =
        kubectl_ok(Command::new(env!("CARGO_BIN_EXE_cvm-operator")).arg("--version"));
    assert_eq!(version_output.trim(), format!("cvm-operator {VERSION}"));

    let chart = read("charts/cvm-operator/Chart.yaml");
    assert_eq!(yaml_scalar(&chart, "version"), VERSION);
    assert_eq!(yaml_scalar(&chart, "appVersion"), VERSION);

    let kustomization = read("deploy/kustomization.yaml");
    let override_line = format!(
        "  - {{name: cvm-operator, newName: ghcr.io/cvm-operator/cvm-operator, newTag: \"{VERSION}\"}}"
    );
    assert!(
        kustomization.lines().any(|l| l == override_line),
        "deploy/'s one-line image override names {VERSION}:\n{kustomization}"
    );

    let (_, config) = image::manifest_and_config(&image::built().dir.join("oci"));
    let labels = &config["config"]["Labels"];
    assert_eq!(labels["org.opencontainers.image.version"], VERSION);
    assert_eq!(
        labels["org.opencontainers.image.source"],
        env!("CARGO_PKG_REPOSITORY")
    );
    let revision = labels["org.opencontainers.image.revision"]
        .as_str()
        .unwrap();
    assert!(
        revision == "unknown"
            || (revision.len() == 40 && revision.chars().all(|c| c.is_ascii_hexdigit())),
        "a git commit: {revision}"
    );
    let ca_env = read("tools/image/ca-certificates.env");
    assert_eq!(
        labels["io.cvm-operator.ca-certificates.version"],
        yaml_scalar(&ca_env.replace('=', ": "), "CA_CERTIFICATES_VERSION")
    );
}

#[test]
fn the_dockerfile_builds_the_same_image_as_the_script() {
    let dockerfile = read("Dockerfile");
    let ca_env = read("tools/image/ca-certificates.env").replace('=', ": ");
    for pin in ["CA_CERTIFICATES_VERSION", "CA_CERTIFICATES_SHA256"] {
        let value = yaml_scalar(&ca_env, pin);
        assert!(
            dockerfile.contains(&format!("ARG {pin}={value}")),
            "the Dockerfile pins {pin}={value} like tools/image/ca-certificates.env"
        );
    }
    let version_arg = format!("ARG VERSION={VERSION}");
    let source_label = format!(
        "org.opencontainers.image.source={}",
        env!("CARGO_PKG_REPOSITORY")
    );
    for line in [
        "FROM scratch",
        "COPY tools/image/rootfs.sh",
        "USER 65532:65532",
        "ENTRYPOINT [\"/cvm-operator\"]",
        "CMD [\"run\", \"--leader-election\"]",
        "ENV SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt",
        "-C target-feature=+crt-static",
        version_arg.as_str(),
        source_label.as_str(),
    ] {
        assert!(dockerfile.contains(line), "the Dockerfile has {line:?}");
    }
}

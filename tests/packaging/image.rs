//! The image tools/build-image.sh builds: reproducible, small, with the right config.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use serde_json::Value;

use crate::support::{kubectl_ok, tools::REPO, tools::script_result};

pub struct BuiltImage {
    pub dir: PathBuf,
    pub digest: String,
}

/// The cargo target directory this test binary was built in (the script shares it, so
/// that the static build's dependencies are compiled once).
pub fn target_dir() -> PathBuf {
    Path::new(env!("CARGO_BIN_EXE_cvm-operator"))
        .ancestors()
        .nth(2)
        .expect("target/<profile>/cvm-operator")
        .to_path_buf()
}

fn build_image(repo: &Path, out: &Path, revision: &str) -> String {
    script_result(
        Command::new(repo.join("tools/build-image.sh"))
            .arg(out)
            .current_dir(repo)
            .env("CARGO_TARGET_DIR", target_dir())
            .env("CVM_OPERATOR_REVISION", revision),
    )
}

fn revision() -> String {
    let out = Command::new("git")
        .args(["rev-parse", "HEAD"])
        .current_dir(REPO)
        .output();
    match out {
        Ok(out) if out.status.success() => String::from_utf8_lossy(&out.stdout).trim().to_string(),
        _ => "unknown".to_string(),
    }
}

/// The image of this checkout, built once per test binary (incremental: cargo and the
/// packing take seconds when nothing changed).
pub fn built() -> &'static BuiltImage {
    static IMAGE: OnceLock<BuiltImage> = OnceLock::new();
    IMAGE.get_or_init(|| {
        let dir = target_dir().join("image");
        let digest = build_image(Path::new(REPO), &dir, &revision());
        BuiltImage { dir, digest }
    })
}

/// A JSON blob of the OCI layout by digest.
fn blob(layout: &Path, digest: &str) -> Vec<u8> {
    let hex = digest.strip_prefix("sha256:").expect("sha256 digest");
    std::fs::read(layout.join("blobs/sha256").join(hex)).expect("blob in the OCI layout")
}

pub fn manifest_and_config(layout: &Path) -> (Value, Value) {
    let index: Value =
        serde_json::from_slice(&std::fs::read(layout.join("index.json")).unwrap()).unwrap();
    let manifest_digest = index["manifests"][0]["digest"].as_str().unwrap();
    let manifest: Value = serde_json::from_slice(&blob(layout, manifest_digest)).unwrap();
    let config: Value = serde_json::from_slice(&blob(
        layout,
        manifest["config"]["digest"].as_str().unwrap(),
    ))
    .unwrap();
    (manifest, config)
}

/// The output of `command` reading the image's one layer from a docker-archive on stdin.
fn from_layer(archive: &Path, command: &str) -> String {
    kubectl_ok(
        Command::new("sh")
            .arg("-c")
            .arg(format!(
                "tar -xOf \"$1\" \"$(tar -tf \"$1\" | grep '\\.tar\\.gz$')\" | {command}"
            ))
            .arg("sh")
            .arg(archive),
    )
}

#[test]
fn two_builds_in_different_directories_give_the_same_image() {
    let first = built();
    // A second checkout: the files git would check out, in another directory.
    let copy = tempfile::tempdir().unwrap();
    let files = kubectl_ok(
        Command::new("git")
            .args([
                "ls-files",
                "-z",
                "--cached",
                "--others",
                "--exclude-standard",
            ])
            .current_dir(REPO),
    );
    for file in files.split('\0').filter(|f| !f.is_empty()) {
        let from = Path::new(REPO).join(file);
        if !from.is_file() {
            continue; // deleted in the working tree
        }
        let to = copy.path().join(file);
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        std::fs::copy(&from, &to).unwrap();
    }
    let second_dir = copy.path().join("out");
    let second = build_image(copy.path(), &second_dir, &revision());
    assert_eq!(second, first.digest, "same sources, same digest");
    assert!(first.digest.starts_with("sha256:") && first.digest.len() == 71);
    for file in ["image.tar", "digest", "oci/index.json"] {
        assert!(
            std::fs::read(first.dir.join(file)).unwrap()
                == std::fs::read(second_dir.join(file)).unwrap(),
            "{file} differs between the two builds"
        );
    }
}

#[test]
fn the_image_is_small_static_non_root_and_carries_only_mozilla_roots() {
    let image = built();
    let (manifest, config) = manifest_and_config(&image.dir.join("oci"));
    let layers = manifest["layers"].as_array().unwrap();
    assert_eq!(layers.len(), 1, "one layer on an empty base: {manifest}");
    let size = layers[0]["size"].as_u64().unwrap();
    eprintln!("image layer: {size} bytes compressed");
    assert!(size < 20 * 1024 * 1024, "under 20 MB: {size}");
    assert_eq!(config["os"], "linux");
    assert_eq!(config["architecture"], "amd64");
    let c = &config["config"];
    assert_eq!(c["User"], "65532:65532");
    assert_eq!(c["Entrypoint"], serde_json::json!(["/cvm-operator"]));
    assert_eq!(c["Cmd"], serde_json::json!(["run", "--leader-election"]));

    // The layer's files: listed from the docker-archive with tar, as a user would.
    let listing = from_layer(&image.dir.join("image.tar"), "tar -tzvf -");
    // (mode owner, path) of the entries that matter.
    for (mode_owner, path) in [
        ("-rwxr-xr-x 0/0", "cvm-operator"),
        ("-rw-r--r-- 0/0", "etc/ssl/certs/ca-certificates.crt"),
        ("-rw-r--r-- 0/0", "etc/passwd"),
        ("-rw-r--r-- 0/0", "etc/group"),
        ("-rw-r--r-- 0/0", "etc/nsswitch.conf"),
        ("drwx------ 65532/65532", "home/nonroot/"),
        ("drwxrwxrwt 0/0", "tmp/"),
    ] {
        assert!(
            listing
                .lines()
                .any(|l| l.starts_with(mode_owner) && l.ends_with(&format!(" {path}"))),
            "{mode_owner} {path} in the layer:\n{listing}"
        );
    }
    assert!(listing.contains("1970-01-01"), "fixed mtimes:\n{listing}");
    // Mozilla's roots from the pinned package, not this machine's bundle.
    let bundle = from_layer(
        &image.dir.join("image.tar"),
        "tar -xzOf - etc/ssl/certs/ca-certificates.crt",
    );
    let certificates = bundle.matches("BEGIN CERTIFICATE").count();
    let in_package = kubectl_ok(
        Command::new("sh")
            .arg("-c")
            .arg(". tools/image/ca-certificates.env && dpkg-deb --fsys-tarfile \
                  \"${CVM_OPERATOR_CACHE:-$HOME/.cache/cvm-operator}/debs/ca-certificates_${CA_CERTIFICATES_VERSION}_all.deb\" \
                  | tar -t | grep -c 'usr/share/ca-certificates/mozilla/.*\\.crt$'")
            .current_dir(REPO),
    );
    assert_eq!(
        certificates.to_string(),
        in_package.trim(),
        "exactly the Mozilla roots of the pinned ca-certificates package"
    );
}

#[test]
fn the_docker_archive_carries_the_image_name() {
    let image = built();
    let manifest = kubectl_ok(
        Command::new("tar")
            .arg("-xOf")
            .arg(image.dir.join("image.tar"))
            .arg("manifest.json"),
    );
    let manifest: Value = serde_json::from_str(&manifest).unwrap();
    let version = env!("CARGO_PKG_VERSION");
    assert_eq!(
        manifest[0]["RepoTags"],
        serde_json::json!([format!("ghcr.io/cvm-operator/cvm-operator:{version}")])
    );
    // `ctr images import` of the archive is exercised by the containerd test.
}

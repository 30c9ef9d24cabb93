//! The operator's binary links no simulator code: cvm-sim is a dev-dependency only, so
//! `cargo build --bin cvm-operator` (the image build) never compiles it. Checked on cargo's
//! resolved graph rather than on Cargo.toml's text, so a normal dependency that pulls the
//! simulator in transitively fails too.

use std::collections::{BTreeSet, HashMap};
use std::process::Command;

use serde_json::Value;

/// The platform the image is built for (tools/build-image.sh).
const HOST_TARGET: &str = "x86_64-unknown-linux-gnu";

#[test]
fn the_operator_binary_does_not_depend_on_the_simulator() {
    let output = Command::new(env!("CARGO"))
        .args(["metadata", "--format-version", "1", "--locked", "--offline"])
        // Only this platform: the graph of others would need crates never downloaded here.
        .args(["--filter-platform", HOST_TARGET])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("cargo metadata runs");
    assert!(
        output.status.success(),
        "cargo metadata: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let metadata: Value = serde_json::from_slice(&output.stdout).unwrap();
    let names: HashMap<&str, &str> = metadata["packages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["id"].as_str().unwrap(), p["name"].as_str().unwrap()))
        .collect();
    let nodes: HashMap<&str, &Value> = metadata["resolve"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|node| (node["id"].as_str().unwrap(), node))
        .collect();
    let root = metadata["resolve"]["root"]
        .as_str()
        .expect("the root package");
    assert_eq!(names[root], "cvm-operator");

    // Everything reachable from the operator through normal (non-dev, non-build) edges.
    let mut linked = BTreeSet::new();
    let mut stack = vec![root];
    while let Some(id) = stack.pop() {
        for dep in nodes[id]["deps"].as_array().unwrap() {
            let normal = dep["dep_kinds"]
                .as_array()
                .unwrap()
                .iter()
                .any(|kind| kind["kind"].is_null());
            let dep_id = dep["pkg"].as_str().unwrap();
            if normal && linked.insert(names[dep_id]) {
                stack.push(dep_id);
            }
        }
    }
    assert!(linked.contains("tencent-cloud"), "{linked:?}");
    for simulator_only in ["cvm-sim", "rcgen"] {
        assert!(
            !linked.contains(simulator_only),
            "the operator links {simulator_only}: {linked:?}"
        );
    }
}

//! The custom resources (`cvm-operator.io/v1alpha1`): `CvmInstance` and `CvmInstanceSet`. A
//! new kind adds its types here and its CRD to [`crds`], which renders every one to `crds/`.

mod set;
mod spec;
mod status;
mod update_rules;

pub use set::*;
pub use spec::*;
pub use status::*;
pub use update_rules::{ALWAYS_IMMUTABLE, REPLACE_ONLY, replace_only_digests};

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::CustomResourceExt;
use serde_json::Value;

/// Finalizer that holds the resource until its instance is terminated.
pub const FINALIZER: &str = "cvm-operator.io/terminate-instance";
/// Finalizer that holds a credentials Secret while a CvmInstance that names it may still
/// need it to terminate its instance (like Kubernetes' pvc-protection).
pub const CREDENTIALS_IN_USE: &str = "cvm-operator.io/credentials-in-use";
/// Tags the operator puts on every instance it creates.
pub const TAG_UID: &str = "cvm-operator.io/uid";
pub const TAG_NAMESPACE: &str = "cvm-operator.io/namespace";
pub const TAG_NAME: &str = "cvm-operator.io/name";

/// The CRD as installed: the derived schema with the fixes the derive cannot express.
pub fn crd() -> CustomResourceDefinition {
    let mut crd = serde_json::to_value(CvmInstance::crd()).expect("the CRD serialises");
    let schema = &mut crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"];
    schema["description"] = Value::from(
        "CvmInstance is a Tencent Cloud CVM instance: the operator calls RunInstances once, \
         follows the instance until it runs, reports its ID, state and IPs, and terminates it \
         when the resource is deleted.",
    );
    // Optional spec fields must prune `null` rather than keep it: GitOps tools send explicit
    // nulls, and a kept null would trip the CEL immutability rules.
    strip_nullable(&mut schema["properties"]["spec"]);
    let spec_rules = schema["properties"]["spec"]["x-kubernetes-validations"]
        .as_array_mut()
        .expect("the spec carries its own rules");
    spec_rules.extend(update_rules::all());
    // The API server shows this status until the operator writes one (see awaiting_operator).
    schema["properties"]["status"]["default"] =
        serde_json::to_value(CvmInstanceStatus::awaiting_operator())
            .expect("the status serialises");
    let conditions = &mut schema["properties"]["status"]["properties"]["conditions"];
    conditions["x-kubernetes-list-type"] = Value::from("map");
    conditions["x-kubernetes-list-map-keys"] = Value::from(vec!["type"]);
    serde_json::from_value(crd).expect("the patched CRD is still a CRD")
}

fn strip_nullable(schema: &mut Value) {
    match schema {
        Value::Object(map) => {
            map.remove("nullable");
            if let Some(Value::Array(values)) = map.get_mut("enum") {
                values.retain(|v| !v.is_null());
            }
            map.values_mut().for_each(strip_nullable);
        }
        Value::Array(items) => items.iter_mut().for_each(strip_nullable),
        _ => {}
    }
}

/// The CvmInstanceSet CRD as installed: nulls pruned as in [`crd`], conditions a list map.
pub fn set_crd() -> CustomResourceDefinition {
    let mut crd = serde_json::to_value(CvmInstanceSet::crd()).expect("the CRD serialises");
    let schema = &mut crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"];
    schema["description"] = Value::from(
        "CvmInstanceSet runs `replicas` Tencent Cloud CVM instances of one template, launched \
         in batches across offerings (spot first, pay-as-you-go as fallback), each followed by \
         a CvmInstance it owns.",
    );
    strip_nullable(&mut schema["properties"]["spec"]);
    let conditions = &mut schema["properties"]["status"]["properties"]["conditions"];
    conditions["x-kubernetes-list-type"] = Value::from("map");
    conditions["x-kubernetes-list-map-keys"] = Value::from(vec!["type"]);
    serde_json::from_value(crd).expect("the patched CRD is still a CRD")
}

/// Every CRD the operator serves, as installed.
pub fn crds() -> Vec<CustomResourceDefinition> {
    vec![crd(), set_crd()]
}

/// `crd` as YAML, exactly as `crds/` holds it.
pub fn crd_yaml(crd: &CustomResourceDefinition) -> String {
    serde_saphyr::to_string(crd).expect("a CRD serialises to YAML")
}

/// The file under `crds/` that holds `crd`: its name (`<plural>.<group>`) and `.yaml`.
pub fn crd_file_name(crd: &CustomResourceDefinition) -> String {
    format!(
        "{}.yaml",
        crd.metadata.name.as_deref().expect("a CRD has a name")
    )
}

/// Every CRD as one YAML stream, what `cvm-operator crd` prints: documents separated by
/// `---` lines (with one CRD, exactly its file in `crds/`).
pub fn crds_yaml() -> String {
    crds()
        .iter()
        .map(crd_yaml)
        .collect::<Vec<_>>()
        .join("---\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec_schema() -> Value {
        serde_json::to_value(crd()).unwrap()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
            ["properties"]["spec"]
            .clone()
    }

    #[test]
    fn every_crd_renders_and_matches_its_committed_file() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/crds");
        let crds = crds();
        for crd in &crds {
            let file = crd_file_name(crd);
            let committed = std::fs::read_to_string(format!("{dir}/{file}"))
                .unwrap_or_else(|e| panic!("crds/{file}: {e}"));
            assert!(
                committed == crd_yaml(crd),
                "crds/{file} drifted from the code: run `cargo run -- crd --out-dir crds`"
            );
        }
        // Nothing in crds/ that the code no longer serves, and the kustomization installs
        // every one.
        let mut on_disk: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|name| name != "kustomization.yml")
            .collect();
        on_disk.sort();
        let mut expected: Vec<String> = crds.iter().map(crd_file_name).collect();
        expected.sort();
        assert_eq!(on_disk, expected);
        let kustomization = std::fs::read_to_string(format!("{dir}/kustomization.yml")).unwrap();
        for file in &expected {
            assert!(
                kustomization.contains(&format!("- {file}")),
                "crds/kustomization.yml does not install {file}"
            );
        }
    }

    #[test]
    fn the_printed_stream_is_the_files_joined() {
        let files: Vec<String> = crds().iter().map(crd_yaml).collect();
        assert_eq!(crds_yaml(), files.join("---\n"));
        assert_eq!(
            crds_yaml()
                .matches("kind: CustomResourceDefinition")
                .count(),
            crds().len()
        );
    }

    #[test]
    fn spec_has_no_nullable_and_no_unsigned_formats() {
        let text = spec_schema().to_string();
        assert!(!text.contains("nullable"), "nullable left in spec schema");
        assert!(
            !text.contains("uint"),
            "unsigned formats are not structural"
        );
    }

    #[test]
    fn every_update_rule_names_a_spec_field() {
        let spec = spec_schema();
        let rules = spec["x-kubernetes-validations"].to_string();
        for (field, _) in ALWAYS_IMMUTABLE.iter().chain(REPLACE_ONLY) {
            let top = field.split('.').next().unwrap();
            assert!(
                spec["properties"][top].is_object(),
                "{field} is not a spec field"
            );
            assert!(
                rules.contains(&format!("spec.{field} ")),
                "{field} has no rule: {rules}"
            );
        }
        for field in [
            "credentialsSecretRef",
            "deletionPolicy",
            "tags",
            "instanceName",
        ] {
            assert!(
                !rules.contains(&format!("spec.{field} cannot change")),
                "{field}"
            );
            assert!(
                !rules.contains(&format!("spec.{field} is immutable")),
                "{field}"
            );
        }
    }

    #[test]
    fn status_defaults_to_awaiting_the_operator() {
        let crd = serde_json::to_value(crd()).unwrap();
        let default = &crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["status"]
            ["default"];
        let status: CvmInstanceStatus = serde_json::from_value(default.clone()).unwrap();
        assert_eq!(status, CvmInstanceStatus::awaiting_operator());
        // Every field a structural default carries must be valid for the schema.
        let condition = &default["conditions"][0];
        for field in ["type", "status", "reason", "message", "lastTransitionTime"] {
            assert!(condition[field].is_string(), "{field} in {condition}");
        }
        assert_eq!(condition["lastTransitionTime"], "1970-01-01T00:00:00Z");
    }

    #[test]
    fn conditions_are_a_list_map() {
        let crd = serde_json::to_value(crd()).unwrap();
        let c = &crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["status"]["properties"]
            ["conditions"];
        assert_eq!(c["x-kubernetes-list-type"], "map");
        assert_eq!(c["x-kubernetes-list-map-keys"][0], "type");
    }
}

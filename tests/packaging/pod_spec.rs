//! What the kubelet would hand the CRI for a Deployment's Pod template: the sandbox and
//! container configs (crictl's JSON form of the CRI messages), with the downward-API env,
//! the Secret env, the ServiceAccount volume and the security context filled in.
//!
//! Two deliberate differences from a kubelet, both because this test has no kube-proxy and
//! no Pod network: the Pod uses the host network, so `--http-addr` (and the port the probes
//! use) becomes a free loopback port instead of 0.0.0.0:8080; and KUBERNETES_SERVICE_HOST/
//! PORT point at the API server itself, where a kubelet would give the `kubernetes`
//! Service's ClusterIP.

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::{Value, json};

/// Where the Pod runs, and what the kubelet would know about it.
pub struct PodContext<'a> {
    pub name: &'a str,
    pub namespace: &'a str,
    pub uid: &'a str,
    pub api_host: &'a str,
    pub api_port: u16,
    pub http_port: u16,
    /// Directory with `token`, `ca.crt`, `namespace` (the projected ServiceAccount volume).
    pub service_account_dir: &'a Path,
    pub etc_hosts: &'a Path,
    pub log_dir: &'a Path,
    pub cgroup_parent: &'a str,
    /// Secret data by (secret name, key), as the kubelet would read it.
    pub secrets: &'a BTreeMap<(String, String), String>,
    /// Arguments this test appends (the simulator's endpoint).
    pub extra_args: &'a [String],
}

const SERVICE_ACCOUNT_MOUNT: &str = "/var/run/secrets/kubernetes.io/serviceaccount";

/// CRI NamespaceMode NODE and CONTAINER, SecurityProfile RuntimeDefault.
const NODE: u8 = 2;
const CONTAINER: u8 = 1;
const POD: u8 = 0;
const RUNTIME_DEFAULT: u8 = 0;

pub fn sandbox_config(template: &Value, ctx: &PodContext) -> Value {
    let spec = &template["spec"];
    let pod_sc = &spec["securityContext"];
    json!({
        "metadata": {"name": ctx.name, "namespace": ctx.namespace, "uid": ctx.uid, "attempt": 0},
        "log_directory": ctx.log_dir,
        "labels": template["metadata"]["labels"],
        "annotations": template["metadata"]["annotations"],
        "linux": {
            "cgroup_parent": ctx.cgroup_parent,
            "security_context": {
                "namespace_options": {"network": NODE, "pid": CONTAINER, "ipc": POD},
                "run_as_user": pod_sc["runAsUser"].as_i64().map(|v| json!({"value": v})),
                "run_as_group": pod_sc["runAsGroup"].as_i64().map(|v| json!({"value": v})),
                "seccomp": seccomp(&pod_sc["seccompProfile"]),
            }
        }
    })
}

pub fn container_config(template: &Value, ctx: &PodContext) -> Value {
    let spec = &template["spec"];
    let containers = spec["containers"].as_array().expect("containers");
    assert_eq!(containers.len(), 1, "one container");
    let c = &containers[0];
    let pod_sc = &spec["securityContext"];
    let sc = &c["securityContext"];
    let pick = |field: &str| {
        if sc[field].is_null() {
            pod_sc[field].clone()
        } else {
            sc[field].clone()
        }
    };
    let run_as_user = pick("runAsUser").as_i64().expect("runAsUser is set");
    // The kubelet refuses runAsNonRoot with uid 0; so does this translation.
    if pick("runAsNonRoot") == json!(true) {
        assert_ne!(run_as_user, 0, "runAsNonRoot with runAsUser 0");
    }
    let seccomp_profile = if sc["seccompProfile"].is_null() {
        &pod_sc["seccompProfile"]
    } else {
        &sc["seccompProfile"]
    };
    let drop: Vec<Value> = sc["capabilities"]["drop"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    json!({
        "metadata": {"name": c["name"], "attempt": 0},
        "image": {"image": c["image"]},
        "command": c["command"].as_array().cloned().unwrap_or_default(),
        "args": args(c, ctx),
        "envs": env(c, ctx),
        "mounts": [
            {"container_path": SERVICE_ACCOUNT_MOUNT, "host_path": ctx.service_account_dir, "readonly": true},
            {"container_path": "/etc/hosts", "host_path": ctx.etc_hosts, "readonly": false},
        ],
        "log_path": format!("{}/0.log", c["name"].as_str().unwrap()),
        "labels": template["metadata"]["labels"],
        "linux": {
            "resources": resources(&c["resources"]),
            "security_context": {
                "run_as_user": {"value": run_as_user},
                "run_as_group": pick("runAsGroup").as_i64().map(|v| json!({"value": v})),
                "readonly_rootfs": sc["readOnlyRootFilesystem"] == json!(true),
                "no_new_privs": sc["allowPrivilegeEscalation"] == json!(false),
                "capabilities": {"drop_capabilities": drop},
                "seccomp": seccomp(seccomp_profile),
                "namespace_options": {"network": NODE, "pid": CONTAINER, "ipc": POD},
            }
        }
    })
}

fn seccomp(profile: &Value) -> Value {
    match profile["type"].as_str() {
        Some("RuntimeDefault") => json!({"profile_type": RUNTIME_DEFAULT}),
        other => panic!("this test expects seccompProfile RuntimeDefault, got {other:?}"),
    }
}

/// The declared args, with `--http-addr` moved to the free loopback port.
fn args(c: &Value, ctx: &PodContext) -> Vec<String> {
    let mut out: Vec<String> = c["args"]
        .as_array()
        .expect("args")
        .iter()
        .map(|a| a.as_str().unwrap().to_string())
        .collect();
    let at = out
        .iter()
        .position(|a| a == "--http-addr")
        .expect("--http-addr in args");
    assert_eq!(out[at + 1], format!("0.0.0.0:{}", http_container_port(c)));
    out[at + 1] = format!("127.0.0.1:{}", ctx.http_port);
    out.extend(ctx.extra_args.iter().cloned());
    out
}

/// The containerPort of the port named `http`, which the probes use.
pub fn http_container_port(c: &Value) -> u64 {
    c["ports"]
        .as_array()
        .expect("ports")
        .iter()
        .find(|p| p["name"] == "http")
        .and_then(|p| p["containerPort"].as_u64())
        .expect("a port named http")
}

fn env(c: &Value, ctx: &PodContext) -> Vec<Value> {
    let mut out = Vec::new();
    for var in c["env"].as_array().cloned().unwrap_or_default() {
        let name = var["name"].as_str().unwrap();
        let value = if let Some(value) = var["value"].as_str() {
            Some(value.to_string())
        } else if let Some(path) = var["valueFrom"]["fieldRef"]["fieldPath"].as_str() {
            Some(match path {
                "metadata.name" => ctx.name.to_string(),
                "metadata.namespace" => ctx.namespace.to_string(),
                other => panic!("fieldRef {other} is not filled in by this test"),
            })
        } else if var["valueFrom"]["secretKeyRef"].is_object() {
            let r = &var["valueFrom"]["secretKeyRef"];
            let key = (
                r["name"].as_str().unwrap().to_string(),
                r["key"].as_str().unwrap().to_string(),
            );
            let value = ctx.secrets.get(&key).cloned();
            assert!(
                value.is_some() || r["optional"] == json!(true),
                "Secret {key:?} is missing and not optional: the kubelet would not start the Pod"
            );
            value
        } else {
            panic!("env {name}: unsupported source {var}");
        };
        if let Some(value) = value {
            out.push(json!({"key": name, "value": value}));
        }
    }
    out.push(json!({"key": "KUBERNETES_SERVICE_HOST", "value": ctx.api_host}));
    out.push(json!({"key": "KUBERNETES_SERVICE_PORT", "value": ctx.api_port.to_string()}));
    out
}

fn resources(r: &Value) -> Value {
    let mut linux = serde_json::Map::new();
    if let Some(memory) = r["limits"]["memory"].as_str() {
        linux.insert(
            "memory_limit_in_bytes".into(),
            json!(quantity_bytes(memory)),
        );
    }
    if let Some(cpu) = r["requests"]["cpu"].as_str() {
        // The kubelet's shares: millicores * 1024 / 1000, at least 2.
        let millis: u64 = cpu.strip_suffix('m').map_or_else(
            || cpu.parse::<u64>().unwrap() * 1000,
            |m| m.parse().unwrap(),
        );
        linux.insert("cpu_shares".into(), json!((millis * 1024 / 1000).max(2)));
    }
    Value::Object(linux)
}

fn quantity_bytes(q: &str) -> u64 {
    for (suffix, factor) in [("Ki", 1u64 << 10), ("Mi", 1 << 20), ("Gi", 1 << 30)] {
        if let Some(n) = q.strip_suffix(suffix) {
            return n.parse::<u64>().unwrap() * factor;
        }
    }
    q.parse().unwrap_or_else(|_| panic!("memory quantity {q}"))
}

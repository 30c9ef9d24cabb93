//! Packaging tests: the image tools/build-image.sh builds (reproducible, labelled, small),
//! run under containerd + runc with the Pod spec of deploy/ and of the Helm chart, and the
//! chart itself (lint, schema, server dry run, install/upgrade/uninstall) against a real
//! kube-apiserver. See docs/operations.md "Installing".

#[path = "../support/mod.rs"]
mod support;

// The e2e helpers for cvm-sim; this binary uses only part of them.
#[allow(dead_code)]
#[path = "../e2e/env.rs"]
mod env;

mod cgroups;
mod chart;
mod containerd;
mod image;
mod linkage;
mod pod_spec;
mod runtime;
mod versions;

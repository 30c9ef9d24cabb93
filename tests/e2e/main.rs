//! End-to-end tests: the operator binary, running as its ServiceAccount under the RBAC from
//! deploy/, against a real kube-apiserver + etcd and cvm-sim over HTTP with real signatures.
//! One control plane serves the whole binary; every test has its own namespace, simulator
//! and operator.

#[path = "../support/mod.rs"]
mod support;

mod adoption;
mod cost;
mod day2;
mod day2_password;
mod day2_replace;
mod env;
mod failures;
mod gitops;
mod instance_set;
mod interrupted_update;
mod lifecycle;
mod operations;
mod ownership;
mod recovery;
mod secrets;
mod set_soak;
mod validation;

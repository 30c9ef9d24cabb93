//! cvm-operator: Tencent Cloud CVM instances as Kubernetes resources.
pub mod api;
pub mod cloud;
pub mod controller;
pub mod day2;
pub mod http;
pub mod leader;
pub mod metrics;
pub mod set;
pub mod telemetry;

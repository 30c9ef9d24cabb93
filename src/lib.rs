//! cvm-operator: Tencent Cloud CVM instances as Kubernetes resources.
pub mod api;
pub mod controller;
pub mod sim;
pub mod tencent;

//! cvm-operator: Tencent Cloud CVM instances as Kubernetes resources.
pub mod api;
pub mod sim;
pub mod tencent;

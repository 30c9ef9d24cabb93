//! Tencent Cloud APIs (CVM, Tag): signing, credentials, wire types, errors and the clients.
pub mod batch;
pub mod client;
pub mod config;
pub mod credentials;
pub mod error;
pub mod modify;
pub mod offerings;
pub mod pool;
pub mod ratelimit;
pub mod service;
pub mod sign;
pub mod tag;
pub mod types;

pub use client::CvmClient;
pub use config::{ApiObserver, ClientConfig, RateLimits};
pub use credentials::{Credentials, CredentialsError, SecretString};
pub use error::{CloudError, ErrorClass};
pub use pool::ClientPool;

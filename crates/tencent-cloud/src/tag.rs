//! The Tag service client for one (credentials, region). Tags on an instance that exists are
//! read and changed through this service, not CVM; it shares signing, rate limits, retries and
//! error handling with the CVM client through the same core.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::client::{ApiCore, Idempotency};
use super::config::ClientConfig;
use super::credentials::Credentials;
use super::error::CloudError;
use super::service::TAG;
use super::types::null_as_default;

const DESCRIBE_RESOURCE_TAGS: &str = "DescribeResourceTagsByResourceIds";
/// The most resource IDs DescribeResourceTagsByResourceIds takes per call.
pub const MAX_RESOURCE_IDS: usize = 50;
/// The largest page it returns.
const PAGE_SIZE: i64 = 50;

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
struct DescribeResourceTagsRequest<'a> {
    service_type: &'a str,
    resource_prefix: &'a str,
    resource_region: &'a str,
    resource_ids: &'a [String],
    offset: i64,
    limit: i64,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DescribeResourceTagsResponse {
    #[serde(default, deserialize_with = "null_as_default")]
    total_count: i64,
    #[serde(default, deserialize_with = "null_as_default")]
    tags: Vec<ResourceTag>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ResourceTag {
    tag_key: String,
    tag_value: String,
    resource_id: String,
}

pub struct TagClient {
    core: ApiCore,
}

impl std::fmt::Debug for TagClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TagClient").finish_non_exhaustive()
    }
}

impl TagClient {
    pub fn new(
        http: reqwest::Client,
        credentials: Credentials,
        region: impl Into<String>,
        config: ClientConfig,
    ) -> Self {
        Self {
            core: ApiCore::new(http, credentials, region.into(), TAG, config),
        }
    }

    /// The tags of CVM instances, by instance ID; an instance without tags (or unknown) is
    /// absent. 50 IDs per call, every page read.
    pub async fn instance_tags(
        &self,
        ids: &[String],
    ) -> Result<BTreeMap<String, BTreeMap<String, String>>, CloudError> {
        let mut tags: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
        for chunk in ids.chunks(MAX_RESOURCE_IDS) {
            let mut offset = 0;
            loop {
                let request = DescribeResourceTagsRequest {
                    service_type: "cvm",
                    resource_prefix: "instance",
                    resource_region: self.core.region(),
                    resource_ids: chunk,
                    offset,
                    limit: PAGE_SIZE,
                };
                let page: DescribeResourceTagsResponse = self
                    .core
                    .call(DESCRIBE_RESOURCE_TAGS, &request, Idempotency::Safe)
                    .await?;
                let count = page.tags.len() as i64;
                for tag in page.tags {
                    tags.entry(tag.resource_id)
                        .or_default()
                        .insert(tag.tag_key, tag.tag_value);
                }
                offset += count;
                if count == 0 || offset >= page.total_count {
                    break;
                }
            }
        }
        Ok(tags)
    }
}

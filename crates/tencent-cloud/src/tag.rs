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
const MODIFY_RESOURCE_TAGS: &str = "ModifyResourceTags";
const TAG_RESOURCES: &str = "TagResources";
const UNTAG_RESOURCES: &str = "UnTagResources";
/// The most resources TagResources and UnTagResources take per call.
pub const MAX_RESOURCES_PER_CALL: usize = 10;
/// The most tags ModifyResourceTags takes in each of ReplaceTags and DeleteTags.
pub const MAX_TAGS_PER_CALL: usize = 10;
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

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
struct ModifyResourceTagsRequest<'a> {
    resource: &'a str,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    replace_tags: Vec<TagPair<'a>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    delete_tags: Vec<TagKey<'a>>,
}

#[derive(Debug, Clone, Copy, Serialize)]
#[serde(rename_all = "PascalCase")]
struct TagPair<'a> {
    tag_key: &'a str,
    tag_value: &'a str,
}

#[derive(Debug, Clone, Copy, Serialize)]
#[serde(rename_all = "PascalCase")]
struct TagKey<'a> {
    tag_key: &'a str,
}

/// TagResources (with `tags`) or UnTagResources (with `tag_keys`).
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
struct ResourcesRequest<'a> {
    resource_list: &'a [String],
    #[serde(skip_serializing_if = "Option::is_none")]
    tags: Option<&'a [TagPair<'a>]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tag_keys: Option<&'a [String]>,
}

/// What a TagResources or UnTagResources call carries.
#[derive(Clone, Copy)]
enum ResourceChange<'a> {
    Tag(&'a [TagPair<'a>]),
    Untag(&'a [String]),
}

impl<'a> ResourceChange<'a> {
    /// The change in parts of at most 10 tags or keys, one call each.
    fn parts(self) -> Vec<ResourceChange<'a>> {
        match self {
            Self::Tag(tags) => tags.chunks(MAX_TAGS_PER_CALL).map(Self::Tag).collect(),
            Self::Untag(keys) => keys.chunks(MAX_TAGS_PER_CALL).map(Self::Untag).collect(),
        }
    }
}

/// The answer of the writes; TagResources and UnTagResources also list `FailedResources`,
/// which the operator does not need: a partial failure is an error code.
#[derive(Debug, Deserialize)]
struct EmptyAnswer {}

/// The six-part name of a CVM instance for the Tag service. The uin is left empty, which
/// the service reads as the caller's own account, so no account ID is needed.
pub fn instance_resource_name(region: &str, instance_id: &str) -> String {
    format!("qcs::cvm:{region}:uin/:instance/{instance_id}")
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

    /// Sets `replace` and removes `delete` on one instance, 10 of each per call (the API's
    /// limit), so a long change takes several calls. Each call is "set to", so retrying one
    /// is harmless, and `FailedOperation.ResourceTagProcessing` is retried as transient.
    pub async fn modify_instance_tags(
        &self,
        instance_id: &str,
        replace: &BTreeMap<String, String>,
        delete: &[String],
    ) -> Result<(), CloudError> {
        let resource = instance_resource_name(self.core.region(), instance_id);
        let replace: Vec<TagPair<'_>> = replace
            .iter()
            .map(|(key, value)| TagPair {
                tag_key: key,
                tag_value: value,
            })
            .collect();
        let delete: Vec<TagKey<'_>> = delete.iter().map(|key| TagKey { tag_key: key }).collect();
        let mut replace = replace.chunks(MAX_TAGS_PER_CALL);
        let mut delete = delete.chunks(MAX_TAGS_PER_CALL);
        loop {
            let (r, d) = (replace.next(), delete.next());
            if r.is_none() && d.is_none() {
                return Ok(());
            }
            let request = ModifyResourceTagsRequest {
                resource: &resource,
                replace_tags: r.map(<[_]>::to_vec).unwrap_or_default(),
                delete_tags: d.map(<[_]>::to_vec).unwrap_or_default(),
            };
            let _: EmptyAnswer = self
                .core
                .call(MODIFY_RESOURCE_TAGS, &request, Idempotency::Safe)
                .await?;
        }
    }

    /// Puts the same tags on many instances: 10 instances and 10 tags per call.
    pub async fn tag_instances(
        &self,
        instance_ids: &[String],
        tags: &BTreeMap<String, String>,
    ) -> Result<(), CloudError> {
        let pairs: Vec<TagPair<'_>> = tags
            .iter()
            .map(|(key, value)| TagPair {
                tag_key: key,
                tag_value: value,
            })
            .collect();
        self.change_resources(instance_ids, ResourceChange::Tag(&pairs))
            .await
    }

    /// Removes the keys from many instances: 10 instances and 10 keys per call.
    pub async fn untag_instances(
        &self,
        instance_ids: &[String],
        keys: &[String],
    ) -> Result<(), CloudError> {
        self.change_resources(instance_ids, ResourceChange::Untag(keys))
            .await
    }

    async fn change_resources(
        &self,
        instance_ids: &[String],
        change: ResourceChange<'_>,
    ) -> Result<(), CloudError> {
        let names: Vec<String> = instance_ids
            .iter()
            .map(|id| instance_resource_name(self.core.region(), id))
            .collect();
        for resource_list in names.chunks(MAX_RESOURCES_PER_CALL) {
            for part in change.parts() {
                let (action, request) = match part {
                    ResourceChange::Tag(tags) => (
                        TAG_RESOURCES,
                        ResourcesRequest {
                            resource_list,
                            tags: Some(tags),
                            tag_keys: None,
                        },
                    ),
                    ResourceChange::Untag(keys) => (
                        UNTAG_RESOURCES,
                        ResourcesRequest {
                            resource_list,
                            tags: None,
                            tag_keys: Some(keys),
                        },
                    ),
                };
                let _: EmptyAnswer = self.core.call(action, &request, Idempotency::Safe).await?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resource_names_have_six_parts_and_no_uin() {
        let name = instance_resource_name("ap-guangzhou", "ins-12345678");
        assert_eq!(name, "qcs::cvm:ap-guangzhou:uin/:instance/ins-12345678");
        assert_eq!(name.split(':').count(), 6);
    }
}

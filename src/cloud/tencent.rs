//! The production [`Cloud`]: the CVM client and the Tag service client of one (credentials,
//! region), handed out once per pair so rate limits, batches and the sweeper's grouping
//! (by client) are shared by every resource using them.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use futures::future::BoxFuture;
use tencent_cloud::client::CvmClient;
use tencent_cloud::credentials::Credentials;
use tencent_cloud::error::CloudError;
use tencent_cloud::pool::ClientPool;
use tencent_cloud::tag::TagClient;
use tencent_cloud::types::{Filter, Instance, RunInstancesRequest, ToTerminate};

use super::modification::Modification;
use super::offering::Offering;
use super::{Cloud, Clouds};

pub struct TencentCloud {
    cvm: Arc<CvmClient>,
    tags: Arc<TagClient>,
}

impl TencentCloud {
    async fn apply(&self, id: &str, change: &Modification) -> Result<Option<String>, CloudError> {
        let ids = [id.to_string()];
        let cvm = &self.cvm;
        let request_id = match change {
            Modification::Tags { set, delete } => {
                self.tags.modify_instance_tags(id, set, delete).await?;
                return Ok(None);
            }
            Modification::Attribute(attribute) => {
                cvm.modify_instances_attribute(&ids, attribute).await
            }
            Modification::Bandwidth { max_out_mbps } => {
                cvm.reset_instances_internet_max_bandwidth(&ids, *max_out_mbps)
                    .await
            }
            Modification::Project { project_id } => {
                cvm.modify_instances_project(&ids, *project_id).await
            }
            Modification::Start => cvm.start_instances(&ids).await,
            Modification::Stop { stop_type, mode } => {
                cvm.stop_instances(&ids, *stop_type, *mode).await
            }
            Modification::ResetType {
                instance_type,
                force_stop,
            } => {
                cvm.reset_instances_type(id, instance_type, *force_stop)
                    .await
            }
            Modification::AssociateKeys {
                key_ids,
                force_stop,
            } => {
                cvm.associate_instances_key_pairs(&ids, key_ids, *force_stop)
                    .await
            }
            Modification::DisassociateKeys {
                key_ids,
                force_stop,
            } => {
                cvm.disassociate_instances_key_pairs(&ids, key_ids, *force_stop)
                    .await
            }
            Modification::Password {
                password,
                force_stop,
            } => {
                cvm.reset_instances_password(&ids, password, None, *force_stop)
                    .await
            }
            Modification::ResizeDisks(request) => cvm.resize_instance_disks(request).await,
            Modification::Reimage(request) => cvm.reset_instance(request).await,
        }?;
        Ok(Some(request_id))
    }
}

impl Cloud for TencentCloud {
    fn run_instances<'a>(
        &'a self,
        request: &'a RunInstancesRequest,
    ) -> BoxFuture<'a, Result<Vec<String>, CloudError>> {
        Box::pin(self.cvm.run_instances(request))
    }

    fn describe_instance<'a>(
        &'a self,
        id: &'a str,
    ) -> BoxFuture<'a, Result<Option<Instance>, CloudError>> {
        Box::pin(self.cvm.describe_instance(id))
    }

    fn describe_instances<'a>(
        &'a self,
        ids: &'a [String],
    ) -> BoxFuture<'a, Result<Vec<Instance>, CloudError>> {
        Box::pin(self.cvm.describe_instances(ids))
    }

    fn find_instances_by_tag<'a>(
        &'a self,
        key: &'a str,
        value: &'a str,
    ) -> BoxFuture<'a, Result<Vec<Instance>, CloudError>> {
        Box::pin(self.cvm.find_instances_by_tag(key, value))
    }

    fn terminate_instances<'a>(
        &'a self,
        instances: &'a [ToTerminate],
    ) -> BoxFuture<'a, Result<(), CloudError>> {
        Box::pin(self.cvm.terminate_instances(instances))
    }

    fn change_instance<'a>(
        &'a self,
        id: &'a str,
        change: &'a Modification,
    ) -> BoxFuture<'a, Result<Option<String>, CloudError>> {
        Box::pin(self.apply(id, change))
    }

    fn zone_offerings<'a>(
        &'a self,
        charge_type: &'a str,
    ) -> BoxFuture<'a, Result<Vec<Offering>, CloudError>> {
        Box::pin(async move {
            let filter = Filter {
                name: "instance-charge-type".into(),
                values: vec![charge_type.to_string()],
            };
            let items = self
                .cvm
                .describe_zone_instance_config_infos(vec![filter])
                .await?;
            Ok(items.iter().map(Offering::from).collect())
        })
    }
}

/// [`Clouds`] over a [`ClientPool`]: one [`TencentCloud`] per (credentials, region).
pub struct TencentClouds {
    pool: ClientPool,
    clouds: Mutex<HashMap<(Credentials, String), Arc<TencentCloud>>>,
}

impl TencentClouds {
    pub fn new(pool: ClientPool) -> Self {
        Self {
            pool,
            clouds: Mutex::new(HashMap::new()),
        }
    }
}

impl Clouds for TencentClouds {
    fn get(&self, credentials: &Credentials, region: &str) -> Arc<dyn Cloud> {
        let mut clouds = self.clouds.lock().unwrap_or_else(|e| e.into_inner());
        let key = (credentials.clone(), region.to_string());
        let cloud = clouds.entry(key).or_insert_with(|| {
            Arc::new(TencentCloud {
                cvm: self.pool.get(credentials, region),
                tags: self.pool.tags(credentials, region),
            })
        });
        cloud.clone()
    }
}

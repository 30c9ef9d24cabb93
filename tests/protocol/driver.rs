//! The world of one protocol test (a namespace on the real API server, a fake cloud, a
//! manual clock) and operator "processes" that reconcile in it step by step, each with its
//! own context, sweeper and crash switch, as a restarted operator would have.

use std::sync::Arc;
use std::time::Duration;

use cvm_operator::api::CvmInstance;
use cvm_operator::cloud::ManualClock;
use cvm_operator::controller::events::EventPublisher;
use cvm_operator::controller::sweep::Sweeper;
use cvm_operator::controller::{self, Context, Settings};
use k8s_openapi::api::core::v1::Secret;
use kube::api::{DeleteParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Api, ResourceExt};
use serde_json::json;
use tencent_cloud::credentials::Credentials;

use crate::crash::{CrashLayer, CrashSwitch};
use crate::fake_cloud::{FakeCloud, FakeClouds, Timing};
use crate::support;

/// Fake time that passes between two reconciles of a driven resource.
pub const STEP: Duration = Duration::from_secs(2);
/// Reconciles a phase may take before the test gives up.
const MAX_STEPS: usize = 100;

pub struct World {
    pub clock: Arc<ManualClock>,
    pub cloud: Arc<FakeCloud>,
    pub api: Api<CvmInstance>,
    pub name: String,
    /// The namespace's Secrets, as an admin sees them.
    pub secrets: Api<Secret>,
}

/// The credentials Secret [`World::with_credentials_secret`] creates.
pub const SECRET: &str = "tencentcloud";

/// The process crashed; its reconciles stop here.
#[derive(Debug)]
pub struct Crashed;

/// The spec of the worlds' machines (pay-as-you-go, no public IP).
pub fn machine_spec() -> serde_json::Value {
    json!({
        "region": "ap-guangzhou",
        "zone": "ap-guangzhou-3",
        "instanceType": "S5.MEDIUM2",
        "imageId": "img-eb30mz89",
        "billing": {"mode": "PayAsYouGo"},
        "login": {"keyIds": ["skey-3x4y5z6a"]}
    })
}

impl World {
    /// A namespace with one CvmInstance `name` (pay-as-you-go, no public IP) in it.
    pub async fn new(prefix: &str, timing: Timing, spec_overrides: serde_json::Value) -> World {
        let world = World::bare(prefix, timing).await;
        let mut spec = machine_spec();
        json_patch::merge(&mut spec, &spec_overrides);
        let object: CvmInstance = serde_json::from_value(json!({
            "apiVersion": "cvm-operator.io/v1alpha1",
            "kind": "CvmInstance",
            "metadata": {"name": "machine"},
            "spec": spec
        }))
        .expect("a valid CvmInstance");
        world
            .api
            .create(&PostParams::default(), &object)
            .await
            .expect("create the CvmInstance");
        world
    }

    /// A namespace with nothing in it yet; `name` is `machine`.
    pub async fn bare(prefix: &str, timing: Timing) -> World {
        support::install_deploy();
        let admin = support::control_plane().admin_client().await;
        let namespace = support::new_namespace(&admin, prefix).await;
        let secrets: Api<Secret> = Api::namespaced(admin.clone(), &namespace);
        let api: Api<CvmInstance> = Api::namespaced(admin, &namespace);
        let clock = Arc::new(ManualClock::starting_now());
        World {
            cloud: FakeCloud::new(clock.clone(), timing),
            clock,
            api,
            name: "machine".into(),
            secrets,
        }
    }

    /// As [`World::new`], the CvmInstance naming credentials Secret [`SECRET`], which exists.
    pub async fn with_credentials_secret(prefix: &str, timing: Timing) -> World {
        let world = World::new(
            prefix,
            timing,
            json!({"credentialsSecretRef": {"name": SECRET}}),
        )
        .await;
        let secret: Secret = serde_json::from_value(json!({
            "metadata": {"name": SECRET},
            "stringData": {"secretId": "AKIDprotocolsecret", "secretKey": "protocol-secret-key"},
        }))
        .expect("a valid Secret");
        world
            .secrets
            .create(&PostParams::default(), &secret)
            .await
            .expect("create the credentials Secret");
        world
    }

    /// A new operator process; `switch` decides when (if ever) it crashes.
    pub async fn process(&self, switch: CrashSwitch) -> Process {
        let switch = Arc::new(switch);
        let kube = crashing_client(switch.clone()).await;
        self.cloud.attach(switch.clone());
        let sweeper = Sweeper::new();
        let settings = Settings {
            default_credentials: Some(Credentials::new("AKIDprotocoltest", "protocol-test-key")),
            ..Settings::default()
        };
        let events = EventPublisher::new(kube.clone(), "protocol-test".into());
        let ctx = Context::new(
            kube,
            events,
            Arc::new(FakeClouds(self.cloud.clone())),
            settings,
            sweeper,
        )
        .with_clock(self.clock.clone());
        Process {
            ctx: Arc::new(ctx),
            switch,
        }
    }

    /// The resource as the API server has it; `None` once it is gone.
    pub async fn get(&self) -> Option<CvmInstance> {
        self.api
            .get_opt(&self.name)
            .await
            .expect("read the CvmInstance")
    }

    /// `kubectl delete`, as a user would: the finalizer keeps it until the operator lets go.
    /// The instance ID the status records.
    pub async fn instance_id(&self) -> String {
        let status = self.get().await.and_then(|o| o.status);
        status
            .and_then(|s| s.instance_id)
            .expect("an instance ID in status")
    }

    pub async fn delete(&self) {
        self.api
            .delete(&self.name, &DeleteParams::default())
            .await
            .expect("delete the CvmInstance");
    }

    pub async fn patch_spec(&self, patch: serde_json::Value) {
        self.api
            .patch(
                &self.name,
                &kube::api::PatchParams::default(),
                &kube::api::Patch::Merge(json!({ "spec": patch })),
            )
            .await
            .expect("patch the spec");
    }
}

pub struct Process {
    ctx: Arc<Context>,
    switch: Arc<CrashSwitch>,
}

impl Process {
    /// Effects (CvmInstance writes, creating or destroying cloud calls) made so far.
    pub fn effects(&self) -> usize {
        self.switch.effects()
    }

    /// The effects made so far, named (`RunInstances`, `PATCH machine/status`, ...).
    pub fn effect_log(&self) -> Vec<String> {
        self.switch.log()
    }

    /// Its context, for driving other controllers than the CvmInstance one.
    pub fn context(&self) -> Arc<Context> {
        self.ctx.clone()
    }

    /// Whether it has crashed (every request it makes from then on fails).
    pub fn crashed(&self) -> bool {
        self.switch.crashed()
    }

    /// One pass of this process's sweeper over the Ready instances it follows.
    pub async fn sweep(&self) {
        self.ctx.sweeper.sweep().await;
    }

    /// One reconcile of the resource as the API server has it now. Ok(false) when the
    /// resource is gone.
    pub async fn step(&self, world: &World) -> Result<bool, Crashed> {
        let Some(object) = world.get().await else {
            return Ok(false);
        };
        let result = controller::reconcile(Arc::new(object), self.ctx.clone()).await;
        if self.switch.crashed() {
            return Err(Crashed);
        }
        if let Err(e) = result {
            panic!("reconcile failed without a crash: {e}");
        }
        Ok(true)
    }

    /// Reconciles, moving the clock on by [`STEP`] after each, until `done` holds for the
    /// resource (`None`: gone).
    pub async fn drive(
        &self,
        world: &World,
        what: &str,
        done: impl Fn(Option<&CvmInstance>) -> bool,
    ) -> Result<(), Crashed> {
        for _ in 0..MAX_STEPS {
            let current = world.get().await;
            if done(current.as_ref()) {
                return Ok(());
            }
            if !self.step(world).await? {
                continue;
            }
            world.clock.advance(STEP);
        }
        let last = world.get().await;
        panic!(
            "{what}: not reached after {MAX_STEPS} reconciles; status {:?}; cloud calls {:?}",
            last.and_then(|o| o.status),
            world.cloud.calls()
        );
    }

    /// Until the resource is Ready for its current generation, or being deleted.
    pub async fn until_ready(&self, world: &World) -> Result<(), Crashed> {
        self.drive(world, "Ready", |o| {
            o.is_none_or(|o| o.metadata.deletion_timestamp.is_some() || is_ready(o))
        })
        .await
    }

    /// Until the resource is Stalled with `reason`.
    pub async fn until_stalled(&self, world: &World, reason: &str) -> Result<(), Crashed> {
        self.drive(world, &format!("Stalled {reason}"), |o| {
            o.is_some_and(|o| condition_reason(o, "Stalled").as_deref() == Some(reason))
        })
        .await
    }

    /// Until the resource is gone.
    pub async fn until_gone(&self, world: &World) -> Result<(), Crashed> {
        self.drive(world, "gone", |o| o.is_none()).await
    }
}

pub fn is_ready(object: &CvmInstance) -> bool {
    object
        .status
        .as_ref()
        .is_some_and(|s| s.is_ready() && s.observed_generation == object.metadata.generation)
}

pub fn condition_reason(object: &CvmInstance, type_: &str) -> Option<String> {
    object
        .status
        .as_ref()
        .and_then(|s| s.condition(type_))
        .map(|c| c.reason.clone())
}

pub fn uid(object: &CvmInstance) -> String {
    object.uid().expect("a stored object has a UID")
}

/// An admin client whose requests pass through the crash switch.
async fn crashing_client(switch: Arc<CrashSwitch>) -> kube::Client {
    let path = support::control_plane().admin_kubeconfig();
    let kubeconfig = Kubeconfig::read_from(path).expect("read the admin kubeconfig");
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
        .await
        .expect("kubeconfig to client config");
    kube::client::ClientBuilder::try_from(config)
        .expect("client builder")
        .with_layer(&CrashLayer(switch))
        .build()
}

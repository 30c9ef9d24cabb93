//! Coalescing of concurrent per-key requests into batched API calls.
//!
//! The first caller of a batch opens it and starts a timer; later callers join it. The batch
//! is sent when the window ends or as soon as it holds `max_keys` distinct keys, whichever
//! comes first. The call runs in its own task, so a caller that gives up (a cancelled
//! reconcile) never strands the others.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::future::BoxFuture;
use tokio::sync::oneshot;

use super::error::CloudError;

/// What one batched call returns: an outcome per key. A key that is absent got no value
/// (for DescribeInstances: no such instance).
pub type BatchOutcome<K, V> = HashMap<K, Result<V, CloudError>>;

/// Sends one batch of distinct keys.
pub type BatchRunner<K, V> =
    Arc<dyn Fn(Vec<K>) -> BoxFuture<'static, BatchOutcome<K, V>> + Send + Sync>;

type Reply<V> = oneshot::Sender<Result<Option<V>, CloudError>>;

struct OpenBatch<K, V> {
    id: u64,
    keys: Vec<K>,
    waiters: Vec<(K, Reply<V>)>,
}

struct State<K, V> {
    open: Option<OpenBatch<K, V>>,
    next_id: u64,
}

/// Coalesces concurrent requests for single keys into calls of up to `max_keys` keys.
pub struct Batcher<K, V> {
    name: &'static str,
    max_keys: usize,
    window: Duration,
    runner: BatchRunner<K, V>,
    state: Arc<Mutex<State<K, V>>>,
}

impl<K, V> Batcher<K, V>
where
    K: Clone + Eq + Hash + Send + 'static,
    V: Clone + Send + 'static,
{
    /// `name` is the action, used in the error when a batch task dies.
    pub fn new(
        name: &'static str,
        max_keys: usize,
        window: Duration,
        runner: BatchRunner<K, V>,
    ) -> Self {
        Self {
            name,
            max_keys: max_keys.max(1),
            window,
            runner,
            state: Arc::new(Mutex::new(State {
                open: None,
                next_id: 0,
            })),
        }
    }

    /// Adds `key` to the open batch and waits for its outcome: `Ok(None)` when the call
    /// succeeded but returned nothing for the key.
    pub async fn submit(&self, key: K) -> Result<Option<V>, CloudError> {
        let (tx, rx) = oneshot::channel();
        let full = {
            let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
            if state.open.is_none() {
                let id = state.next_id;
                state.next_id += 1;
                state.open = Some(OpenBatch {
                    id,
                    keys: Vec::new(),
                    waiters: Vec::new(),
                });
                self.start_timer(id);
            }
            let batch = state.open.as_mut().expect("opened above");
            if !batch.keys.contains(&key) {
                batch.keys.push(key.clone());
            }
            batch.waiters.push((key, tx));
            if batch.keys.len() >= self.max_keys {
                state.open.take()
            } else {
                None
            }
        };
        if let Some(batch) = full {
            tokio::spawn(run_batch(self.runner.clone(), batch));
        }
        match rx.await {
            Ok(result) => result,
            Err(_) => Err(CloudError::Internal(format!(
                "the {} batch task ended without an answer",
                self.name
            ))),
        }
    }

    /// Sends batch `id` when the window ends, unless it filled up and was sent already.
    fn start_timer(&self, id: u64) {
        let state = Arc::clone(&self.state);
        let runner = Arc::clone(&self.runner);
        let window = self.window;
        tokio::spawn(async move {
            tokio::time::sleep(window).await;
            let batch = {
                let mut state = state.lock().unwrap_or_else(|e| e.into_inner());
                match &state.open {
                    Some(open) if open.id == id => state.open.take(),
                    _ => None,
                }
            };
            if let Some(batch) = batch {
                run_batch(runner, batch).await;
            }
        });
    }
}

async fn run_batch<K, V>(runner: BatchRunner<K, V>, batch: OpenBatch<K, V>)
where
    K: Eq + Hash,
    V: Clone,
{
    let outcome = runner(batch.keys).await;
    for (key, reply) in batch.waiters {
        let result = match outcome.get(&key) {
            None => Ok(None),
            Some(Ok(value)) => Ok(Some(value.clone())),
            Some(Err(e)) => Err(e.clone()),
        };
        // The waiter may have given up; that is fine.
        let _ = reply.send(result);
    }
}

/// Delivers one batch-wide error to every key of a batch.
pub fn fail_all<K: Clone + Eq + Hash, V>(keys: &[K], error: &CloudError) -> BatchOutcome<K, V> {
    keys.iter()
        .map(|k| (k.clone(), Err(error.clone())))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// A runner that answers `key * 10` for even keys, nothing for odd keys, and records the
    /// batches it was given.
    fn recording_runner(batches: Arc<Mutex<Vec<Vec<u32>>>>) -> BatchRunner<u32, u32> {
        Arc::new(move |keys: Vec<u32>| {
            batches.lock().unwrap().push(keys.clone());
            Box::pin(async move {
                keys.iter()
                    .filter(|k| *k % 2 == 0)
                    .map(|k| (*k, Ok(k * 10)))
                    .collect()
            })
        })
    }

    #[tokio::test(flavor = "current_thread")]
    async fn concurrent_callers_share_calls_of_at_most_max_keys() {
        let batches = Arc::new(Mutex::new(Vec::new()));
        let batcher = Batcher::new(
            "DescribeInstances",
            100,
            Duration::from_millis(50),
            recording_runner(batches.clone()),
        );
        let results = futures::future::join_all((0..250u32).map(|k| batcher.submit(k))).await;
        for (k, result) in (0..250u32).zip(results) {
            let want = if k % 2 == 0 { Some(k * 10) } else { None };
            assert_eq!(result.unwrap(), want, "key {k}");
        }
        let mut sizes: Vec<usize> = batches.lock().unwrap().iter().map(Vec::len).collect();
        sizes.sort();
        assert_eq!(sizes, vec![50, 100, 100]);
    }

    #[tokio::test(flavor = "current_thread")]
    async fn same_key_is_sent_once_and_answered_to_each_caller() {
        let batches = Arc::new(Mutex::new(Vec::new()));
        let batcher = Batcher::new(
            "DescribeInstances",
            100,
            Duration::from_millis(20),
            recording_runner(batches.clone()),
        );
        let results = futures::future::join_all([4u32, 4, 4, 7].map(|k| batcher.submit(k))).await;
        let results: Vec<Option<u32>> = results.into_iter().map(Result::unwrap).collect();
        assert_eq!(results, vec![Some(40), Some(40), Some(40), None]);
        assert_eq!(*batches.lock().unwrap(), vec![vec![4, 7]]);
    }

    #[tokio::test(flavor = "current_thread")]
    async fn batch_error_reaches_every_waiter() {
        let calls = Arc::new(AtomicUsize::new(0));
        let counted = calls.clone();
        let runner: BatchRunner<u32, u32> = Arc::new(move |keys: Vec<u32>| {
            counted.fetch_add(1, Ordering::SeqCst);
            let error = CloudError::Api {
                action: "DescribeInstances".into(),
                code: "InternalError".into(),
                message: "boom".into(),
                request_id: "r".into(),
            };
            Box::pin(async move { fail_all(&keys, &error) })
        });
        let batcher = Batcher::new("DescribeInstances", 100, Duration::from_millis(20), runner);
        let results = futures::future::join_all((0..5u32).map(|k| batcher.submit(k))).await;
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        for result in results {
            assert_eq!(result.unwrap_err().code(), "InternalError");
        }
    }

    #[tokio::test(flavor = "current_thread")]
    async fn later_callers_open_a_new_batch() {
        let batches = Arc::new(Mutex::new(Vec::new()));
        let batcher = Batcher::new(
            "DescribeInstances",
            100,
            Duration::from_millis(10),
            recording_runner(batches.clone()),
        );
        assert_eq!(batcher.submit(2).await.unwrap(), Some(20));
        assert_eq!(batcher.submit(6).await.unwrap(), Some(60));
        assert_eq!(*batches.lock().unwrap(), vec![vec![2], vec![6]]);
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_cancelled_caller_does_not_strand_the_batch() {
        let batches = Arc::new(Mutex::new(Vec::new()));
        let batcher = Batcher::new(
            "DescribeInstances",
            100,
            Duration::from_millis(10),
            recording_runner(batches.clone()),
        );
        // The first caller opens the batch and then gives up before it is sent.
        let mut first = Box::pin(batcher.submit(2));
        assert!(futures::poll!(first.as_mut()).is_pending());
        drop(first);
        assert_eq!(batcher.submit(4).await.unwrap(), Some(40));
        assert_eq!(*batches.lock().unwrap(), vec![vec![2, 4]]);
    }
}

//! Coalescing of concurrent per-key requests into batched API calls.
//!
//! The first caller of a batch opens it and starts a timer; later callers join it. The batch
//! is closed when the window ends or as soon as it holds `max_keys` distinct keys, whichever
//! comes first. With a gate (the action's turn under its rate limit), an unfilled batch keeps
//! taking keys until the gate opens, so a rate-limited action sends fuller batches rather
//! than more of them. Each batch is sent by its own task, so a caller that gives up (a
//! cancelled reconcile) never strands the others.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::future::BoxFuture;
use tokio::sync::{Notify, oneshot};

use super::error::CloudError;

/// What one batched call returns: an outcome per key. A key that is absent got no value
/// (for DescribeInstances: no such instance).
pub type BatchOutcome<K, V> = HashMap<K, Result<V, CloudError>>;

/// Sends one batch of distinct keys.
pub type BatchRunner<K, V> =
    Arc<dyn Fn(Vec<K>) -> BoxFuture<'static, BatchOutcome<K, V>> + Send + Sync>;

/// Waits until a closed batch may be sent, e.g. for the action's turn under its rate limit.
/// The runner is then called for a call whose turn is already taken.
pub type BatchGate = Arc<dyn Fn() -> BoxFuture<'static, ()> + Send + Sync>;

type Reply<V> = oneshot::Sender<Result<Option<V>, CloudError>>;

struct OpenBatch<K, V> {
    id: u64,
    keys: Vec<K>,
    waiters: Vec<(K, Reply<V>)>,
    /// Wakes the batch's task early when the batch is full.
    full: Arc<Notify>,
}

struct State<K, V> {
    /// The batch new keys join.
    open: Option<OpenBatch<K, V>>,
    /// Full batches waiting for their task to pass the gate.
    sealed: HashMap<u64, OpenBatch<K, V>>,
    next_id: u64,
}

/// Coalesces concurrent requests for single keys into calls of up to `max_keys` keys.
pub struct Batcher<K, V> {
    name: &'static str,
    max_keys: usize,
    window: Duration,
    runner: BatchRunner<K, V>,
    gate: Option<BatchGate>,
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
            gate: None,
            state: Arc::new(Mutex::new(State {
                open: None,
                sealed: HashMap::new(),
                next_id: 0,
            })),
        }
    }

    /// Sends each batch only once `gate` lets it; until then an unfilled batch takes keys.
    pub fn with_gate(mut self, gate: BatchGate) -> Self {
        self.gate = Some(gate);
        self
    }

    /// Adds `key` to the open batch and waits for its outcome: `Ok(None)` when the call
    /// succeeded but returned nothing for the key.
    pub async fn submit(&self, key: K) -> Result<Option<V>, CloudError> {
        let (tx, rx) = oneshot::channel();
        {
            let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
            if state.open.is_none() {
                let id = state.next_id;
                state.next_id += 1;
                let full = Arc::new(Notify::new());
                state.open = Some(OpenBatch {
                    id,
                    keys: Vec::new(),
                    waiters: Vec::new(),
                    full: Arc::clone(&full),
                });
                self.start_sender(id, full);
            }
            let batch = state.open.as_mut().expect("opened above");
            if !batch.keys.contains(&key) {
                batch.keys.push(key.clone());
            }
            batch.waiters.push((key, tx));
            if batch.keys.len() >= self.max_keys {
                let batch = state.open.take().expect("present above");
                batch.full.notify_one();
                state.sealed.insert(batch.id, batch);
            }
        }
        match rx.await {
            Ok(result) => result,
            Err(_) => Err(CloudError::Internal(format!(
                "the {} batch task ended without an answer",
                self.name
            ))),
        }
    }

    /// The task that sends batch `id`: once the window ends or the batch is full, and then
    /// once the gate opens; an unfilled batch takes keys until that moment.
    fn start_sender(&self, id: u64, full: Arc<Notify>) {
        let state = Arc::clone(&self.state);
        let runner = Arc::clone(&self.runner);
        let gate = self.gate.clone();
        let window = self.window;
        tokio::spawn(async move {
            tokio::select! {
                () = tokio::time::sleep(window) => {}
                () = full.notified() => {}
            }
            if let Some(gate) = gate {
                gate().await;
            }
            let batch = {
                let mut state = state.lock().unwrap_or_else(|e| e.into_inner());
                match &state.open {
                    Some(open) if open.id == id => state.open.take(),
                    _ => state.sealed.remove(&id),
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
    async fn a_batch_takes_keys_until_its_gate_opens() {
        let batches = Arc::new(Mutex::new(Vec::new()));
        let turn = Arc::new(Notify::new());
        let gate_turn = Arc::clone(&turn);
        let gate: BatchGate = Arc::new(move || {
            let turn = Arc::clone(&gate_turn);
            Box::pin(async move { turn.notified().await })
        });
        let batcher = Batcher::new(
            "TerminateInstances",
            100,
            Duration::from_millis(10),
            recording_runner(batches.clone()),
        )
        .with_gate(gate);
        let first = futures::future::join_all([2u32, 4].map(|k| batcher.submit(k)));
        let later = async {
            // Well past the window: the batch is closed for time but waits at the gate.
            tokio::time::sleep(Duration::from_millis(50)).await;
            let joined = futures::future::join_all([6u32, 8].map(|k| batcher.submit(k)));
            let open = async {
                tokio::time::sleep(Duration::from_millis(20)).await;
                turn.notify_one();
            };
            futures::join!(joined, open).0
        };
        let (first, later) = futures::join!(first, later);
        assert!(first.into_iter().chain(later).all(|r| r.unwrap().is_some()));
        assert_eq!(*batches.lock().unwrap(), vec![vec![2, 4, 6, 8]]);
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_full_batch_is_sent_without_waiting_for_its_window() {
        let batches = Arc::new(Mutex::new(Vec::new()));
        let batcher = Batcher::new(
            "TerminateInstances",
            2,
            Duration::from_secs(3600),
            recording_runner(batches.clone()),
        );
        let results = futures::future::join_all([2u32, 4].map(|k| batcher.submit(k))).await;
        assert!(results.into_iter().all(|r| r.unwrap().is_some()));
        assert_eq!(*batches.lock().unwrap(), vec![vec![2, 4]]);
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

//! Storing fresh results off the steps' path, with group commit.
//!
//! A step that succeeded packs its outputs into a [`NewResult`] on its own worker and hands it
//! to the [`Committer`], then finishes: its dependents need the published outputs, not the
//! cache entry. The committer stores results in batches: while one batch is being made
//! durable, the next accumulates, so the cost of durability (one filesystem sync per batch,
//! see `DiskStore::store_results`) is shared by every step that finished meanwhile instead of
//! paid by each; a batch also waits [`LINGER`] after its first result for more. The run
//! waits for the committer before it ends ([`Committer::finish`]), which flushes the store
//! once ([`Store::flush`]), so a finished run has stored everything it could, durably.
//!
//! A crash before a result is committed loses only that cache entry: the next run misses and
//! runs the step again. A store that cannot write never fails a step; each failed batch is one
//! warning that names its steps.

use std::sync::Arc;

use hermetic_cache::{CacheError, NewResult, Store};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::outbox::Outbox;
use crate::events::Event;

/// Results stored together at most; bounds the memory a batch holds.
const MAX_BATCH: usize = 256;

/// How long a batch gathers results after its first: long enough for several no-op steps to
/// finish, short next to anything a person waits for. A run's end does not wait for it.
const LINGER: std::time::Duration = std::time::Duration::from_millis(5);

/// A fresh result and the step it belongs to (for warnings).
#[derive(Debug)]
struct Pending {
    step: String,
    result: NewResult,
}

/// What the committer's queue carries.
#[derive(Debug)]
enum Message {
    Store(Box<Pending>),
    /// Sent by [`Committer::finish`] after every step ended: everything before it is stored,
    /// then the task ends.
    Close,
}

/// The background task that stores results; see the [module docs](self).
#[derive(Debug)]
pub(crate) struct Committer {
    /// To send [`Message::Close`].
    queue: CommitQueue,
    /// The task draining the queue, awaited by [`Committer::finish`].
    task: JoinHandle<()>,
}

/// Where steps hand their results to the [`Committer`]. Cheap to clone.
#[derive(Debug, Clone)]
pub(crate) struct CommitQueue(mpsc::UnboundedSender<Message>);

impl Committer {
    /// Starts committing to `store`; warnings go to `events`. Steps submit through the
    /// returned queue.
    pub(crate) fn start(store: Arc<dyn Store>, events: Arc<Outbox>) -> (Self, CommitQueue) {
        let (queue, mut messages) = mpsc::unbounded_channel::<Message>();
        let task = tokio::spawn(async move {
            let mut closing = false;
            while !closing {
                let mut batch = Vec::new();
                // Wait for the first result, then take whatever else is queued already.
                match messages.recv().await {
                    Some(Message::Store(p)) => batch.push(*p),
                    Some(Message::Close) | None => break,
                }
                // Then gather for a moment more: each batch costs a sync, and steps finish a
                // few hundred microseconds apart.
                let deadline = tokio::time::Instant::now() + LINGER;
                while batch.len() < MAX_BATCH {
                    match tokio::time::timeout_at(deadline, messages.recv()).await {
                        Ok(Some(Message::Store(p))) => batch.push(*p),
                        Ok(Some(Message::Close) | None) => {
                            closing = true;
                            break;
                        }
                        Err(_elapsed) => break,
                    }
                }
                if let Some(warning) = commit(store.clone(), batch).await {
                    events.send(warning);
                }
            }
            if let Some(warning) = flush(store).await {
                events.send(warning);
            }
        });
        let queue = CommitQueue(queue);
        (
            Self {
                queue: queue.clone(),
                task,
            },
            queue,
        )
    }

    /// Stores everything submitted so far and makes it durable ([`Store::flush`]), then
    /// returns. Call it once no step can submit any more.
    pub(crate) async fn finish(self) {
        let _ = self.queue.0.send(Message::Close);
        if let Err(e) = self.task.await {
            tracing::error!(error = %e, "the cache committer panicked");
        }
    }
}

impl CommitQueue {
    /// Queues `result` of `step` for storing.
    pub(crate) fn submit(&self, step: &str, result: NewResult) {
        // The task ends only on `Close`, sent by `finish` after every step ended.
        let _ = self.0.send(Message::Store(Box::new(Pending {
            step: step.to_string(),
            result,
        })));
    }
}

/// Runs `work` on a blocking thread, since the disk store does blocking I/O; `work` gets a
/// handle to block on the store's futures with. Its error as text; `what` names it if it
/// panics.
async fn on_blocking_thread(
    what: &str,
    work: impl FnOnce(&tokio::runtime::Handle) -> Result<(), CacheError> + Send + 'static,
) -> Result<(), String> {
    let handle = tokio::runtime::Handle::current();
    tokio::task::spawn_blocking(move || work(&handle).map_err(|e| e.to_string()))
        .await
        .unwrap_or_else(|e| Err(format!("{what} panicked: {e}")))
}

/// Stores one batch; a warning event if it failed.
async fn commit(store: Arc<dyn Store>, batch: Vec<Pending>) -> Option<Event> {
    let steps: Vec<String> = batch.iter().map(|p| p.step.clone()).collect();
    let results: Vec<NewResult> = batch.into_iter().map(|p| p.result).collect();
    let stored = on_blocking_thread("storing", move |handle| {
        handle.block_on(store.put_results(&results))
    })
    .await;
    let error = stored.err()?;
    let (step, message) = match steps.as_slice() {
        [one] => (
            Some(one.clone()),
            format!("cache write failed; the result is not cached: {error}"),
        ),
        many => (
            None,
            format!(
                "cache write failed; the results of {} steps ({}) are not cached: {error}",
                many.len(),
                name_some(many)
            ),
        ),
    };
    Some(Event::Warning { step, message })
}

/// Makes the stored results durable; a warning event if that failed.
async fn flush(store: Arc<dyn Store>) -> Option<Event> {
    let flushed =
        on_blocking_thread("flushing", move |handle| handle.block_on(store.flush())).await;
    let error = flushed.err()?;
    Some(Event::Warning {
        step: None,
        message: format!("the cache may lose this run's results on a power loss: {error}"),
    })
}

/// The first few of `steps`, for a message.
fn name_some(steps: &[String]) -> String {
    const SHOWN: usize = 5;
    let mut text = steps
        .iter()
        .take(SHOWN)
        .map(|s| format!("`{s}`"))
        .collect::<Vec<_>>()
        .join(", ");
    if steps.len() > SHOWN {
        text.push_str(&format!(" and {} more", steps.len() - SHOWN));
    }
    text
}

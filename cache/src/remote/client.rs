//! [`Client`]: the gRPC channel to one server, with per-call timeouts, retries with
//! exponential backoff, and down-detection.

use std::future::Future;
use std::sync::Mutex;
use std::time::Duration;

use tonic::transport::{Channel, Endpoint};
use tonic::{Code, Status};

use crate::CacheError;

/// The RPCs the store makes, named as in messages.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Rpc {
    GetCapabilities,
    FindMissingBlobs,
    BatchUpdateBlobs,
    BatchReadBlobs,
    ByteStreamRead,
    ByteStreamWrite,
    GetActionResult,
    UpdateActionResult,
}

impl Rpc {
    /// `Service.Method`, e.g. `ByteStream.Write`.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::GetCapabilities => "Capabilities.GetCapabilities",
            Self::FindMissingBlobs => "ContentAddressableStorage.FindMissingBlobs",
            Self::BatchUpdateBlobs => "ContentAddressableStorage.BatchUpdateBlobs",
            Self::BatchReadBlobs => "ContentAddressableStorage.BatchReadBlobs",
            Self::ByteStreamRead => "ByteStream.Read",
            Self::ByteStreamWrite => "ByteStream.Write",
            Self::GetActionResult => "ActionCache.GetActionResult",
            Self::UpdateActionResult => "ActionCache.UpdateActionResult",
        }
    }
}

/// How calls are timed and retried.
#[derive(Clone, Copy, Debug)]
pub(crate) struct CallPolicy {
    /// The deadline of one attempt of a unary call (streams get more; see
    /// [`Client::stream_deadline`]).
    pub(crate) timeout: Duration,
    /// Attempts after the first, for a retryable failure.
    pub(crate) retries: u32,
    /// The wait before the first retry; doubled before each further one.
    pub(crate) backoff: Duration,
}

/// The gRPC channel to one server. Once the server proved unreachable (connection refused,
/// timeouts after every retry) the client is **down**: every later call fails at once with
/// [`CacheError::Unavailable`], so a run against a dead server waits only once.
#[derive(Debug)]
pub(crate) struct Client {
    url: String,
    store: String,
    channel: Channel,
    policy: CallPolicy,
    /// Why the server was declared down, once it was.
    down: Mutex<Option<String>>,
    /// Hosts the channel's connection tasks (see [`Client::connect`]).
    _runtime: BackgroundRuntime,
}

impl Client {
    /// A client for `url` (`http://HOST:PORT`, already checked), described as `store` in
    /// errors. Connects lazily, at the first call.
    ///
    /// The channel's background tasks (its request buffer, the HTTP/2 connection) run on a
    /// one-thread runtime the client owns, not on the caller's: the store may then be used
    /// from any runtime, including short-lived `current_thread` ones and `block_on` inside
    /// `spawn_blocking`, without its connection dying with the runtime that created it. The
    /// calls themselves run in the caller's futures (which need tokio's timers).
    pub(crate) fn connect(url: &str, store: String, policy: CallPolicy) -> Result<Self, String> {
        let endpoint = Endpoint::from_shared(url.to_string())
            .map_err(|e| format!("not a valid URL: {}", chain(&e)))?
            .connect_timeout(policy.timeout)
            .tcp_nodelay(true)
            .http2_keep_alive_interval(Duration::from_secs(30))
            .keep_alive_timeout(policy.timeout);
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("hermetic-remote")
            .enable_all()
            .build()
            .map_err(|e| format!("cannot start the runtime for the gRPC connection: {e}"))?;
        let channel = {
            let _entered = runtime.enter();
            endpoint.connect_lazy()
        };
        Ok(Self {
            url: url.to_string(),
            store,
            channel,
            policy,
            down: Mutex::new(None),
            _runtime: BackgroundRuntime(Some(runtime)),
        })
    }

    /// The channel, for callers that speak other services on the same connection.
    pub(crate) fn channel(&self) -> Channel {
        self.channel.clone()
    }

    /// The per-attempt deadline of a unary call.
    pub(crate) fn timeout(&self) -> Duration {
        self.policy.timeout
    }

    /// The per-attempt deadline of a stream of `bytes`: the unary timeout plus one second
    /// per MiB, so a large blob on a slow link is not cut off while a dead one still is.
    pub(crate) fn stream_deadline(&self, bytes: u64) -> Duration {
        self.policy.timeout + Duration::from_secs(bytes >> 20)
    }

    /// Why the server is down, if it is.
    pub(crate) fn down_reason(&self) -> Option<String> {
        self.down.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Fails at once when the server is down.
    pub(crate) fn check_up(&self, rpc: Rpc) -> Result<(), CacheError> {
        match self.down_reason() {
            Some(reason) => Err(self.unavailable(format!(
                "{} not attempted: the server was marked unreachable after an earlier failure ({reason})",
                rpc.name()
            ))),
            None => Ok(()),
        }
    }

    /// Runs `attempt` on the channel until it succeeds, fails for good, or the retries for
    /// a retryable status (`UNAVAILABLE`, `DEADLINE_EXCEEDED`, `RESOURCE_EXHAUSTED`,
    /// `ABORTED`, or the deadline) are used up. `subject` names what the call is about
    /// (a digest, an action) in errors.
    ///
    /// A final `UNAVAILABLE` or deadline marks the server down.
    pub(crate) async fn call<T, F, Fut>(
        &self,
        rpc: Rpc,
        subject: &str,
        deadline: Duration,
        mut attempt: F,
    ) -> Result<T, CacheError>
    where
        F: FnMut(Channel) -> Fut,
        Fut: Future<Output = Result<T, Status>>,
    {
        let mut delay = self.policy.backoff;
        let mut attempts = 0u32;
        loop {
            self.check_up(rpc)?;
            attempts += 1;
            let failure = match tokio::time::timeout(deadline, attempt(self.channel.clone())).await
            {
                Ok(Ok(value)) => return Ok(value),
                Ok(Err(status)) => Failure::Status(status),
                Err(_) => Failure::Deadline(deadline),
            };
            if failure.is_retryable() && attempts <= self.policy.retries {
                tracing::debug!(
                    store = %self.store,
                    rpc = rpc.name(),
                    subject,
                    error = %failure,
                    "retrying in {delay:?}"
                );
                tokio::time::sleep(delay).await;
                delay = delay.saturating_mul(2);
                continue;
            }
            let message = format!(
                "{subject}: {failure} (after {attempts} attempt{})",
                if attempts == 1 { "" } else { "s" }
            );
            if failure.is_unreachable() {
                let reason = format!("{} {message}", rpc.name());
                self.down
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .get_or_insert(reason.clone());
                if matches!(rpc, Rpc::GetCapabilities) {
                    // Connecting: the caller reports the error it gets.
                    tracing::debug!(store = %self.store, "the remote cache is unreachable: {reason}");
                } else {
                    tracing::warn!(store = %self.store, "the remote cache is unreachable; it will not be asked again in this run: {reason}");
                }
                return Err(self.unavailable(reason));
            }
            return Err(self.remote(rpc, message));
        }
    }

    /// A [`CacheError::Remote`] for `rpc`.
    pub(crate) fn remote(&self, rpc: Rpc, message: String) -> CacheError {
        CacheError::Remote {
            url: self.url.clone(),
            rpc: rpc.name(),
            message,
        }
    }

    fn unavailable(&self, message: String) -> CacheError {
        CacheError::Unavailable {
            store: self.store.clone(),
            message,
        }
    }
}

/// Why one attempt failed.
enum Failure {
    Status(Status),
    Deadline(Duration),
}

impl Failure {
    fn is_retryable(&self) -> bool {
        match self {
            Self::Status(status) => matches!(
                status.code(),
                Code::Unavailable
                    | Code::DeadlineExceeded
                    | Code::ResourceExhausted
                    | Code::Aborted
            ),
            Self::Deadline(_) => true,
        }
    }

    /// Whether the failure says the server cannot be reached (rather than that it answered).
    fn is_unreachable(&self) -> bool {
        match self {
            Self::Status(status) => {
                matches!(status.code(), Code::Unavailable | Code::DeadlineExceeded)
                    // tonic reports a channel that never became ready as UNKNOWN.
                    || (status.code() == Code::Unknown
                        && status.message().starts_with("Service was not ready"))
            }
            Self::Deadline(_) => true,
        }
    }
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Status(status) => {
                write!(f, "{:?}: {}", status.code(), status.message())?;
                if let Some(source) = std::error::Error::source(status) {
                    write!(f, ": {}", chain(source))?;
                }
                Ok(())
            }
            Self::Deadline(deadline) => write!(f, "no answer within {deadline:?}"),
        }
    }
}

/// An error and its sources, joined with ": ".
fn chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(e) = source {
        let next = e.to_string();
        if !text.contains(&next) {
            text.push_str(": ");
            text.push_str(&next);
        }
        source = e.source();
    }
    text
}

/// A runtime that is shut down without blocking when dropped (dropping a runtime normally
/// waits for its tasks, which panics inside another runtime).
#[derive(Debug)]
struct BackgroundRuntime(Option<tokio::runtime::Runtime>);

impl Drop for BackgroundRuntime {
    fn drop(&mut self) {
        if let Some(runtime) = self.0.take() {
            runtime.shutdown_background();
        }
    }
}

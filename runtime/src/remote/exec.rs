//! `hermetic run --remote-exec URL`: a step's attempt runs as a REAPI action on the server's
//! bots (`hermetic worker`), in place of [`Sandbox::run`](crate::sandbox::Sandbox::run). What
//! the attempt stages locally (inputs, dependencies' outputs) goes up as the action's input
//! root; what the guest leaves in `/out` comes back into the attempt's output directory, where
//! the usual collection, checks, publication and caching take it.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bazel_remote_apis::build::bazel::remote::execution::v2 as re;
use bazel_remote_apis::google::longrunning::operation;
use hermetic_cache::{Digest, RemoteStore};
use prost::Message;

use super::cas::Cas;
use super::spec::{RemoteReport, SPEC_VERSION, SpecMount, StepSpec};
use super::tree::InputRoot;
use crate::sandbox::{Invocation, Report};

/// The input root's file with the invocation.
pub const SPEC_FILE: &str = "step.json";
/// The input root's module.
pub const MODULE_FILE: &str = "module.wasm";
/// The output file with the worker's [`RemoteReport`].
pub const REPORT_FILE: &str = "report.json";
/// The output directory: the guest's `/out`.
pub const OUT_DIR: &str = "out";
/// How often a step that a worker executes counts as alive while the server says nothing.
const HEARTBEAT: Duration = Duration::from_secs(5);
/// What the server may add to a step's own timeout before it gives up on the action: queueing
/// and transfers.
const ACTION_GRACE: Duration = Duration::from_secs(300);

/// A connection to a REAPI execution service.
#[derive(Debug, Clone)]
pub struct RemoteExec {
    store: Arc<RemoteStore>,
}

/// What one remote attempt runs.
#[derive(Debug)]
pub struct RemoteStep<'a> {
    pub step: &'a str,
    /// The module file and its blake3.
    pub module: &'a Path,
    pub module_digest: Digest,
    pub unknown_imports_trap: bool,
    pub invocation: &'a Invocation,
}

impl RemoteExec {
    /// Remote execution through `store`'s server and connection.
    pub fn new(store: Arc<RemoteStore>) -> Self {
        Self { store }
    }

    /// The server.
    pub fn url(&self) -> &str {
        self.store.url()
    }

    /// Runs one attempt on the server's bots and brings its outputs back into the invocation's
    /// `/out`. Errors are the host's (the server, the network), never the guest's.
    pub async fn run(&self, step: &RemoteStep<'_>) -> Result<Report, String> {
        let started = Instant::now();
        let cas: &dyn Cas = self.store.as_ref();
        let root = input_root(step)?;
        let tree = root.build(&|b| cas.digest_of(b));
        let command = re::Command {
            arguments: vec![
                "hermetic".into(),
                "worker".into(),
                "--run".into(),
                SPEC_FILE.into(),
            ],
            output_paths: vec![OUT_DIR.into(), REPORT_FILE.into()],
            ..Default::default()
        }
        .encode_to_vec();
        let command_digest = cas.digest_of(&command);
        let timeout = step.invocation.limits.timeout + ACTION_GRACE;
        let action = re::Action {
            command_digest: Some(command_digest.clone()),
            input_root_digest: Some(tree.root.clone()),
            timeout: Some(bazel_remote_apis::google::protobuf::Duration {
                seconds: i64::try_from(timeout.as_secs()).unwrap_or(i64::MAX),
                nanos: 0,
            }),
            // hermetic's own action cache, keyed by blake3 and verified, is the one cache.
            do_not_cache: true,
            ..Default::default()
        }
        .encode_to_vec();
        let action_digest = cas.digest_of(&action);
        let mut blobs = tree.blobs;
        blobs.push((command_digest, command));
        blobs.push((action_digest.clone(), action));
        cas.upload(blobs).await?;
        tracing::debug!(step = step.step, "executing remotely");

        let result = self
            .execute(action_digest, timeout, step.invocation.heartbeat.as_deref())
            .await?;
        let report = self.download(step, &result).await?;
        let outcome = report.outcome.outcome().ok_or_else(|| {
            "the worker reported an outcome this hermetic does not know".to_string()
        })?;
        let stream = |digest: &Option<re::Digest>, limit: u64| {
            let digest = digest.clone();
            async move {
                match digest {
                    Some(d) if d.size_bytes > 0 => {
                        if u64::try_from(d.size_bytes).unwrap_or(u64::MAX) > limit {
                            return Err(format!(
                                "the worker sent {} bytes of output",
                                d.size_bytes
                            ));
                        }
                        cas.fetch(&d).await
                    }
                    _ => Ok(Vec::new()),
                }
            }
        };
        let limits = step.invocation.limits;
        Ok(Report {
            outcome,
            fuel_used: report.fuel_used,
            peak_memory: report.peak_memory,
            duration: started.elapsed(),
            stdout: stream(&result.stdout_digest, limits.stdout).await?,
            stderr: stream(&result.stderr_digest, limits.stderr).await?,
            empty_mounts: Vec::new(),
            // The action's outputs are unpacked into the local `/out`: look at it again.
            mounted: true,
        })
    }

    /// `Execute`, followed to the end of its operation. While a worker executes the action,
    /// `heartbeat` beats; while it waits in the server's queue it does not, so a step that no
    /// worker takes (none is running) raises the usual stuck warning. The guest's own output
    /// and host calls stay on the worker.
    async fn execute(
        &self,
        action_digest: re::Digest,
        timeout: Duration,
        heartbeat: Option<&crate::sandbox::Heartbeat>,
    ) -> Result<re::ActionResult, String> {
        let mut client = re::execution_client::ExecutionClient::new(self.store.channel())
            .max_decoding_message_size(64 << 20);
        let request = re::ExecuteRequest {
            instance_name: self.store.instance_name().to_string(),
            skip_cache_lookup: true,
            action_digest: Some(action_digest),
            digest_function: self.store.digest_function_value(),
            ..Default::default()
        };
        let url = self.url().to_string();
        let run = async move {
            let mut stream = client
                .execute(request)
                .await
                .map_err(|e| format!("Execute at {url}: {}", e.message()))?
                .into_inner();
            let mut executing = false;
            loop {
                let beat = || {
                    if let Some(heartbeat) = heartbeat {
                        heartbeat.beat();
                    }
                };
                let Ok(next) = tokio::time::timeout(HEARTBEAT, stream.message()).await else {
                    if executing {
                        beat();
                    }
                    continue;
                };
                let op = next
                    .map_err(|e| format!("Execute at {url}: {}", e.message()))?
                    .ok_or_else(|| format!("Execute at {url}: the operation ended unfinished"))?;
                let stage = op
                    .metadata
                    .as_ref()
                    .and_then(|m| re::ExecuteOperationMetadata::decode(m.value.as_slice()).ok())
                    .map(|m| m.stage);
                executing = stage == Some(re::execution_stage::Value::Executing as i32);
                if executing || op.done {
                    beat();
                }
                if !op.done {
                    continue;
                }
                return match op.result {
                    Some(operation::Result::Response(any)) => {
                        let response = re::ExecuteResponse::decode(any.value.as_slice())
                            .map_err(|e| format!("Execute at {url}: a garbled response: {e}"))?;
                        if let Some(status) = response.status.filter(|s| s.code != 0) {
                            return Err(format!(
                                "Execute at {url}: the server failed the action: {} (code {})",
                                status.message, status.code
                            ));
                        }
                        response
                            .result
                            .ok_or_else(|| format!("Execute at {url}: a response without a result"))
                    }
                    Some(operation::Result::Error(status)) => Err(format!(
                        "Execute at {url}: {} (code {})",
                        status.message, status.code
                    )),
                    None => Err(format!(
                        "Execute at {url}: a finished operation without a result"
                    )),
                };
            }
        };
        tokio::time::timeout(timeout, run)
            .await
            .map_err(|_| format!("Execute at {}: no result within {timeout:?}", self.url()))?
    }

    /// Reads the worker's report, and writes the output files into `/out`.
    async fn download(
        &self,
        step: &RemoteStep<'_>,
        result: &re::ActionResult,
    ) -> Result<RemoteReport, String> {
        let cas: &dyn Cas = self.store.as_ref();
        let out = step
            .invocation
            .mounts
            .iter()
            .find(|m| m.guest == "/out")
            .map(|m| m.host.clone())
            .ok_or("the step has no /out")?;
        let mut report = None;
        let mut budget = step.invocation.limits.output;
        for file in &result.output_files {
            let digest = file
                .digest
                .as_ref()
                .ok_or_else(|| format!("output `{}` has no digest", file.path))?;
            if file.path == REPORT_FILE {
                let bytes = cas.fetch(digest).await?;
                let parsed: RemoteReport = serde_json::from_slice(&bytes)
                    .map_err(|e| format!("the worker's report is not valid: {e}"))?;
                if parsed.version != SPEC_VERSION {
                    return Err(format!(
                        "the worker's report has version {}, this hermetic reads {SPEC_VERSION}",
                        parsed.version
                    ));
                }
                report = Some(parsed);
                continue;
            }
            let rel = file
                .path
                .strip_prefix("out/")
                .ok_or_else(|| format!("the worker returned `{}`, outside `out/`", file.path))?;
            super::spec::check_relative(rel)?;
            let size = u64::try_from(digest.size_bytes).unwrap_or(u64::MAX);
            budget = budget
                .checked_sub(size)
                .ok_or("the worker returned more output than the step's limit")?;
            let bytes = cas.fetch(digest).await?;
            let path = out.join(rel);
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent)
                    .map_err(|e| format!("cannot create `{}`: {e}", parent.display()))?;
            }
            std::fs::write(&path, bytes)
                .map_err(|e| format!("cannot write `{}`: {e}", path.display()))?;
        }
        report.ok_or_else(|| format!("the worker returned no `{REPORT_FILE}`"))
    }
}

/// The input root of `step`: the module, the invocation, and each read-only mount's files.
fn input_root(step: &RemoteStep<'_>) -> Result<InputRoot, String> {
    let inv = step.invocation;
    let module = std::fs::read(step.module)
        .map_err(|e| format!("cannot read `{}`: {e}", step.module.display()))?;
    if Digest::of(&module) != step.module_digest {
        return Err(format!(
            "`{}` changed since it was loaded",
            step.module.display()
        ));
    }
    let mut root = InputRoot::default();
    root.add_file(MODULE_FILE, module);
    let mut mounts = Vec::with_capacity(inv.mounts.len());
    for m in &inv.mounts {
        let path = if m.guest == "/out" {
            root.add_dir(OUT_DIR);
            Some(OUT_DIR.to_string())
        } else if m.writable {
            None
        } else {
            let path = format!("mounts{}", m.guest);
            root.add_tree(&path, &m.host)?;
            Some(path)
        };
        mounts.push(SpecMount {
            guest: m.guest.clone(),
            path,
            writable: m.writable,
        });
    }
    let spec = StepSpec {
        version: SPEC_VERSION,
        step: step.step.to_string(),
        args: inv.args.clone(),
        env: inv.env.clone(),
        limits: inv.limits.into(),
        seed: hex(&inv.seed),
        clock_epoch_secs: inv.clock_epoch.as_secs(),
        module_digest: step.module_digest.to_hex(),
        unknown_imports_trap: step.unknown_imports_trap,
        mounts,
    };
    let json = serde_json::to_vec_pretty(&spec).map_err(|e| e.to_string())?;
    root.add_file(SPEC_FILE, json);
    Ok(root)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

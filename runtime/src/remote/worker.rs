//! `hermetic worker --server URL`: a bot of a REAPI server (BuildGrid), speaking the Remote
//! Workers API ([`super::bots`]). It takes the leases the scheduler offers, runs each action in
//! the same sandbox, with the same limits, as `hermetic run` does locally, and reports the
//! result.
//!
//! An action is one step attempt in hermetic's layout (see [`super::exec`]): the worker
//! materialises the input root in a fresh directory, checks `step.json` (every path relative
//! and inside the root, the module's blake3), runs the module with the mounts it names, and
//! uploads what the guest left in `out/`, `report.json`, stdout and stderr. An action that is
//! not in hermetic's layout fails with a status that says so; everything read from the server
//! is checked before use.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::task::{AbortHandle, JoinSet};

use bazel_remote_apis::build::bazel::remote::execution::v2 as re;
use bazel_remote_apis::google::protobuf::Any;
use bazel_remote_apis::google::rpc::Status;
use hermetic_cache::{Digest, RemoteStore};
use prost::Message;

use super::bots::{
    ACTION_RESULT_TYPE_URL, ACTION_TYPE_URL, BOT_STATUS_OK, BotSession, BotsClient,
    CreateBotSessionRequest, DIGEST_TYPE_URL, Device, Lease, Property, UpdateBotSessionRequest,
    Worker, lease_state,
};
use super::cas::{Cas, CasFetch};
use super::exec::{MODULE_FILE, OUT_DIR, REPORT_FILE, SPEC_FILE};
use super::spec::{OutcomeRecord, RemoteReport, SPEC_VERSION, StepSpec, check_relative};
use crate::sandbox::{CaptureTo, Invocation, Mount, Sandbox, UnknownImports};

/// `google.rpc.Code`s used in a lease's status.
const CODE_INVALID_ARGUMENT: i32 = 3;
const CODE_INTERNAL: i32 = 13;
/// How long to wait before opening a session again after the server failed a call.
const RECONNECT_DELAY: Duration = Duration::from_secs(1);
/// How often a bot running a lease tells the server it is alive (BuildGrid drops a silent
/// session after its keepalive, 60 s by default).
const HEARTBEAT: Duration = Duration::from_secs(5);
/// The deadline of an update that reports: short, so that the server answers at once.
const REPORT_DEADLINE: Duration = Duration::from_secs(3);
/// The deadline of an idle bot's update: the server holds it until work arrives, for up to
/// 0.8 of this.
const IDLE_DEADLINE: Duration = Duration::from_secs(20);

/// How a lease ended: its result, or a `google.rpc.Code` and why it could not run.
type LeaseEnd = Result<re::ActionResult, (i32, String)>;

/// Marks lease `id` of `session` completed with `end`.
fn complete(session: &mut BotSession, id: &str, end: LeaseEnd) {
    let Some(lease) = session.leases.iter_mut().find(|l| l.id == id) else {
        return;
    };
    let (status, result) = match end {
        Ok(result) => (Status::default(), Some(result)),
        Err((code, message)) => {
            tracing::warn!(lease = %id, error = %message, "lease failed");
            let status = Status {
                code,
                message,
                details: Vec::new(),
            };
            (status, None)
        }
    };
    lease.state = lease_state::COMPLETED;
    lease.status = Some(status);
    lease.result = result.map(|r| Any {
        type_url: ACTION_RESULT_TYPE_URL.into(),
        value: r.encode_to_vec(),
    });
}

/// A running bot.
#[derive(Debug)]
pub struct Bot {
    store: Arc<RemoteStore>,
    sandbox: Arc<Sandbox>,
    bot_id: String,
    /// Scratch space for materialised actions.
    work_dir: std::path::PathBuf,
    /// How many leases run at once.
    capacity: usize,
}

impl Bot {
    /// A bot called `bot_id` of `store`'s server, running up to `capacity` leases at once in
    /// `sandbox`, unpacking them under `work_dir`.
    pub fn new(
        store: Arc<RemoteStore>,
        sandbox: Arc<Sandbox>,
        bot_id: String,
        work_dir: std::path::PathBuf,
        capacity: usize,
    ) -> Self {
        Self {
            store,
            sandbox,
            bot_id,
            work_dir,
            capacity: capacity.max(1),
        }
    }

    /// Serves leases until `stop` resolves, reopening the session whenever the
    /// server forgets it. `on_event` hears of each session and lease as it starts and ends.
    pub async fn serve(
        self: Arc<Self>,
        stop: impl Future<Output = ()>,
        mut on_event: impl FnMut(&str),
    ) -> Result<(), String> {
        tokio::pin!(stop);
        let mut bots = BotsClient::new(self.store.channel());
        loop {
            let opened = tokio::select! {
                () = &mut stop => return Ok(()),
                s = self.open(&mut bots) => s,
            };
            let session = match opened {
                Ok(s) => s,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot open a bot session; retrying");
                    tokio::time::sleep(RECONNECT_DELAY).await;
                    continue;
                }
            };
            on_event(&format!("session {} open", session.name));
            tokio::select! {
                () = &mut stop => return Ok(()),
                lost = self.clone().keep(&mut bots, session, &mut on_event) => {
                    tracing::warn!(error = %lost, "the bot session was lost; reopening");
                    tokio::time::sleep(RECONNECT_DELAY).await;
                }
            }
        }
    }

    /// Keeps one session up: runs the leases the server gives (up to the bot's capacity at
    /// once), reports each as it ends, and heartbeats meanwhile. Returns why the session ended.
    async fn keep(
        self: Arc<Self>,
        bots: &mut BotsClient,
        mut session: BotSession,
        on_event: &mut impl FnMut(&str),
    ) -> String {
        let mut tasks: JoinSet<(String, LeaseEnd)> = JoinSet::new();
        let mut running: HashMap<String, AbortHandle> = HashMap::new();
        loop {
            // A lease the server no longer lists was cancelled.
            running.retain(|id, task| {
                let listed = session.leases.iter().any(|l| &l.id == id);
                if !listed {
                    task.abort();
                    on_event(&format!("lease {id} cancelled"));
                }
                listed
            });
            for lease in &mut session.leases {
                let open =
                    lease.state == lease_state::PENDING || lease.state == lease_state::ACTIVE;
                if !open || running.contains_key(&lease.id) || running.len() >= self.capacity {
                    continue;
                }
                on_event(&format!("lease {} started", lease.id));
                lease.state = lease_state::ACTIVE;
                let bot = self.clone();
                let taken = lease.clone();
                let task = tasks.spawn(async move {
                    let end = bot.run_lease(&taken).await;
                    (taken.id, end)
                });
                running.insert(lease.id.clone(), task);
            }
            // While leases run, report every few seconds (a heartbeat) or as soon as one ends.
            let deadline = if running.is_empty() {
                IDLE_DEADLINE
            } else {
                let mut ended = match tokio::time::timeout(HEARTBEAT, tasks.join_next()).await {
                    Ok(Some(joined)) => vec![joined],
                    _ => Vec::new(),
                };
                while let Some(joined) = tasks.try_join_next() {
                    ended.push(joined);
                }
                for joined in ended {
                    match joined {
                        Ok((id, end)) => {
                            running.remove(&id);
                            complete(&mut session, &id, end);
                            on_event(&format!("lease {id} completed"));
                        }
                        // Aborted (cancelled above): nothing to report.
                        Err(e) if e.is_cancelled() => {}
                        Err(e) => tracing::error!(error = %e, "a lease's task failed"),
                    }
                }
                REPORT_DEADLINE
            };
            let mut request = tonic::Request::new(UpdateBotSessionRequest {
                name: session.name.clone(),
                bot_session: Some(session.clone()),
                update_mask: None,
            });
            request.set_timeout(deadline);
            match bots.update(request).await {
                Ok(next) => session = next,
                Err(e) if e.code() == tonic::Code::DeadlineExceeded => {}
                Err(e) => {
                    tasks.abort_all();
                    return format!("UpdateBotSession at {}: {}", self.store.url(), e.message());
                }
            }
        }
    }

    async fn open(&self, bots: &mut BotsClient) -> Result<BotSession, String> {
        let mut request = tonic::Request::new(CreateBotSessionRequest {
            parent: self.store.instance_name().to_string(),
            bot_session: Some(BotSession {
                bot_id: self.bot_id.clone(),
                status: BOT_STATUS_OK,
                worker: Some(Worker {
                    devices: vec![Device {
                        handle: self.bot_id.clone(),
                        properties: Vec::new(),
                    }],
                    properties: Vec::new(),
                    // How many leases BuildGrid may give this bot at once.
                    configs: vec![Property {
                        key: "capacity".into(),
                        value: self.capacity.to_string(),
                    }],
                }),
                ..Default::default()
            }),
        });
        // Short enough that the server registers the bot without holding the call.
        request.set_timeout(REPORT_DEADLINE);
        bots.create(request)
            .await
            .map_err(|e| format!("CreateBotSession at {}: {}", self.store.url(), e.message()))
    }

    /// Runs the action of one lease; `Err((code, message))` for an action that could not run.
    async fn run_lease(&self, lease: &Lease) -> LeaseEnd {
        let invalid = |m: String| (CODE_INVALID_ARGUMENT, m);
        let payload = lease
            .payload
            .as_ref()
            .ok_or_else(|| invalid("the lease has no payload".into()))?;
        // BuildGrid sends the Action itself; the API also allows the action's digest.
        let action = match payload.type_url.as_str() {
            ACTION_TYPE_URL => re::Action::decode(payload.value.as_slice())
                .map_err(|e| invalid(format!("the lease's payload is not an Action: {e}")))?,
            DIGEST_TYPE_URL => {
                let digest = re::Digest::decode(payload.value.as_slice())
                    .map_err(|e| invalid(format!("the lease's payload is not a Digest: {e}")))?;
                let cas: &dyn Cas = self.store.as_ref();
                let bytes = cas.fetch(&digest).await.map_err(|e| (CODE_INTERNAL, e))?;
                re::Action::decode(bytes.as_slice())
                    .map_err(|e| invalid(format!("action {} is not an Action: {e}", digest.hash)))?
            }
            other => return Err(invalid(format!("the lease's payload is a `{other}`"))),
        };
        let dir = tempfile::Builder::new()
            .prefix("action-")
            .tempdir_in(&self.work_dir)
            .map_err(|e| {
                (
                    CODE_INTERNAL,
                    format!("cannot create a work directory: {e}"),
                )
            })?;
        self.run_action(action, dir.path())
            .await
            .map_err(|(code, m)| (code, format!("lease {}: {m}", lease.id)))
    }

    async fn run_action(&self, action: re::Action, dir: &std::path::Path) -> LeaseEnd {
        let invalid = |m: String| (CODE_INVALID_ARGUMENT, m);
        let internal = |m: String| (CODE_INTERNAL, m);
        let cas: &dyn Cas = self.store.as_ref();
        let root_digest = action
            .input_root_digest
            .ok_or_else(|| invalid("the action has no input root".into()))?;
        let root = dir.join("root");
        std::fs::create_dir(&root).map_err(|e| internal(e.to_string()))?;
        super::tree::materialise(&CasFetch(cas), &root_digest, &root)
            .await
            .map_err(invalid)?;
        let spec: StepSpec = serde_json::from_slice(
            &std::fs::read(root.join(SPEC_FILE))
                .map_err(|e| invalid(format!("no `{SPEC_FILE}`: {e}")))?,
        )
        .map_err(|e| invalid(format!("`{SPEC_FILE}` is not valid: {e}")))?;
        if spec.version != SPEC_VERSION {
            return Err(invalid(format!(
                "`{SPEC_FILE}` has version {}, this worker runs version {SPEC_VERSION}",
                spec.version
            )));
        }
        let module = std::fs::read(root.join(MODULE_FILE))
            .map_err(|e| invalid(format!("no `{MODULE_FILE}`: {e}")))?;
        if Digest::of(&module).to_hex() != spec.module_digest {
            return Err(invalid(format!("`{MODULE_FILE}` is not the module named")));
        }
        let unknown = if spec.unknown_imports_trap {
            UnknownImports::Trap
        } else {
            UnknownImports::Reject
        };
        let program = self
            .sandbox
            .load_bytes(&module, unknown)
            .map_err(|e| invalid(format!("cannot load the module: {e}")))?;
        let invocation = invocation(&spec, &root, dir).map_err(invalid)?;
        tracing::info!(step = %spec.step, "running");
        let report = self
            .sandbox
            .run(&program, &invocation)
            .await
            .map_err(|e| internal(e.to_string()))?;
        self.upload_result(&root.join(OUT_DIR), report)
            .await
            .map_err(internal)
    }

    /// Uploads the outputs, `report.json` and the streams, and builds the action's result.
    async fn upload_result(
        &self,
        out: &std::path::Path,
        report: crate::sandbox::Report,
    ) -> Result<re::ActionResult, String> {
        let remote = RemoteReport {
            version: SPEC_VERSION,
            outcome: OutcomeRecord::from(&report.outcome),
            fuel_used: report.fuel_used,
            peak_memory: report.peak_memory,
            duration_ms: u64::try_from(report.duration.as_millis()).unwrap_or(u64::MAX),
        };
        let (stdout, stderr) = (report.stdout, report.stderr);
        let cas: &dyn Cas = self.store.as_ref();
        let mut blobs = Vec::new();
        let mut output_files = Vec::new();
        for (rel, bytes) in files_under(out)? {
            let digest = cas.digest_of(&bytes);
            output_files.push(re::OutputFile {
                path: format!("{OUT_DIR}/{rel}"),
                digest: Some(digest.clone()),
                ..Default::default()
            });
            blobs.push((digest, bytes));
        }
        let json = serde_json::to_vec(&remote).map_err(|e| e.to_string())?;
        let digest = cas.digest_of(&json);
        output_files.push(re::OutputFile {
            path: REPORT_FILE.into(),
            digest: Some(digest.clone()),
            ..Default::default()
        });
        blobs.push((digest, json));
        let stdout_digest = cas.digest_of(&stdout);
        let stderr_digest = cas.digest_of(&stderr);
        blobs.push((stdout_digest.clone(), stdout));
        blobs.push((stderr_digest.clone(), stderr));
        cas.upload(blobs).await?;
        Ok(re::ActionResult {
            output_files,
            exit_code: report.outcome.exec_exit_code(),
            stdout_digest: Some(stdout_digest),
            stderr_digest: Some(stderr_digest),
            execution_metadata: Some(re::ExecutedActionMetadata {
                worker: self.bot_id.clone(),
                ..Default::default()
            }),
            ..Default::default()
        })
    }
}

/// The invocation a spec describes, its mounts under the materialised `root` (scratch mounts
/// under `dir`).
fn invocation(
    spec: &StepSpec,
    root: &std::path::Path,
    dir: &std::path::Path,
) -> Result<Invocation, String> {
    let mut seed = [0u8; 32];
    if spec.seed.len() != 64 {
        return Err("the seed is not 32 bytes of hex".into());
    }
    for (i, byte) in seed.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&spec.seed[2 * i..2 * i + 2], 16)
            .map_err(|_| "the seed is not hex".to_string())?;
    }
    let mut mounts = Vec::with_capacity(spec.mounts.len());
    for (n, m) in spec.mounts.iter().enumerate() {
        if !m.guest.starts_with('/') || m.guest.contains("..") {
            return Err(format!("mount point `{}` is not an absolute path", m.guest));
        }
        let host = match &m.path {
            Some(path) => {
                check_relative(path)?;
                if m.writable && path != OUT_DIR {
                    return Err(format!("only `{OUT_DIR}` may be writable, not `{path}`"));
                }
                let host = root.join(path);
                if !host.is_dir() {
                    return Err(format!(
                        "mount `{path}` is not a directory of the input root"
                    ));
                }
                host
            }
            None if m.writable => {
                let scratch = dir.join(format!("scratch-{n}"));
                std::fs::create_dir(&scratch).map_err(|e| e.to_string())?;
                scratch
            }
            None => return Err(format!("read-only mount `{}` has no path", m.guest)),
        };
        mounts.push(Mount {
            host,
            guest: m.guest.clone(),
            writable: m.writable,
        });
    }
    Ok(Invocation {
        args: spec.args.clone(),
        env: spec.env.clone(),
        mounts,
        limits: spec.limits.into(),
        seed,
        clock_epoch: Duration::from_secs(spec.clock_epoch_secs),
        clock_jump: None,
        stdout: CaptureTo::Memory,
        stderr: CaptureTo::Memory,
        heartbeat: None,
        host_calls: None,
        wasi_fault: None,
    })
}

/// Every regular file under `dir`, by `/`-separated relative path, sorted. Anything else (a
/// symbolic link the guest made) is refused, as local collection refuses it.
fn files_under(dir: &std::path::Path) -> Result<Vec<(String, Vec<u8>)>, String> {
    let mut out = Vec::new();
    let mut pending = vec![(dir.to_path_buf(), String::new())];
    while let Some((path, rel)) = pending.pop() {
        let mut entries: Vec<_> = std::fs::read_dir(&path)
            .map_err(|e| format!("cannot read `{}`: {e}", path.display()))?
            .collect::<Result<_, _>>()
            .map_err(|e| format!("cannot read `{}`: {e}", path.display()))?;
        entries.sort_by_key(std::fs::DirEntry::file_name);
        for entry in entries {
            let name = entry
                .file_name()
                .into_string()
                .map_err(|n| format!("output name {n:?} is not UTF-8"))?;
            let child_rel = if rel.is_empty() {
                name
            } else {
                format!("{rel}/{name}")
            };
            let kind = std::fs::symlink_metadata(entry.path())
                .map_err(|e| e.to_string())?
                .file_type();
            if kind.is_dir() {
                pending.push((entry.path(), child_rel));
            } else if kind.is_file() {
                let bytes = std::fs::read(entry.path()).map_err(|e| e.to_string())?;
                out.push((child_rel, bytes));
            } else {
                return Err(format!("output `{child_rel}` is not a regular file"));
            }
        }
    }
    out.sort();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::remote::spec::{SpecLimits, SpecMount};

    fn spec(mounts: Vec<SpecMount>) -> StepSpec {
        StepSpec {
            version: SPEC_VERSION,
            step: "s".into(),
            args: vec!["s".into()],
            env: Vec::new(),
            limits: crate::sandbox::Limits::default().into(),
            seed: "00".repeat(32),
            clock_epoch_secs: 0,
            module_digest: String::new(),
            unknown_imports_trap: false,
            mounts,
        }
    }

    fn mount(guest: &str, path: Option<&str>, writable: bool) -> SpecMount {
        SpecMount {
            guest: guest.into(),
            path: path.map(str::to_string),
            writable,
        }
    }

    #[test]
    fn a_spec_names_only_directories_inside_its_root() {
        let root = tempfile::tempdir().unwrap();
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(root.path().join("mounts/in")).unwrap();
        std::fs::create_dir_all(root.path().join("out")).unwrap();
        let good = spec(vec![
            mount("/in", Some("mounts/in"), false),
            mount("/out", Some("out"), true),
            mount("/tmp", None, true),
        ]);
        let inv = invocation(&good, root.path(), dir.path()).unwrap();
        assert_eq!(inv.mounts.len(), 3);
        assert!(inv.mounts[2].host.starts_with(dir.path()));
        let _: SpecLimits = inv.limits.into();

        let refused = |mounts, why: &str| {
            let err = invocation(&spec(mounts), root.path(), dir.path()).unwrap_err();
            assert!(err.contains(why), "{err}");
        };
        refused(vec![mount("/in", Some("../etc"), false)], "`../etc`");
        refused(vec![mount("/in", Some("/etc"), false)], "`/etc`");
        refused(
            vec![mount("in", Some("mounts/in"), false)],
            "not an absolute path",
        );
        refused(
            vec![mount("/in", Some("mounts/in"), true)],
            "only `out` may be writable",
        );
        refused(
            vec![mount("/x", Some("mounts/none"), false)],
            "is not a directory",
        );
        refused(vec![mount("/in", None, false)], "has no path");
        let mut bad_seed = good.clone();
        bad_seed.seed = "zz".repeat(32);
        assert_eq!(
            invocation(&bad_seed, root.path(), dir.path()).unwrap_err(),
            "the seed is not hex"
        );
    }

    #[test]
    fn outputs_are_regular_files_only() {
        let out = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(out.path().join("a/b")).unwrap();
        std::fs::write(out.path().join("a/b/c.txt"), "c").unwrap();
        std::fs::write(out.path().join("top.txt"), "t").unwrap();
        assert_eq!(
            files_under(out.path()).unwrap(),
            vec![
                ("a/b/c.txt".to_string(), b"c".to_vec()),
                ("top.txt".to_string(), b"t".to_vec())
            ]
        );
        std::os::unix::fs::symlink("/etc/passwd", out.path().join("leak")).unwrap();
        assert_eq!(
            files_under(out.path()).unwrap_err(),
            "output `leak` is not a regular file"
        );
    }
}

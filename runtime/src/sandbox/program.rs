//! Loading a `.wasm` file into a ready-to-instantiate program, with clear errors for files that
//! are not wasm, truncated modules, and imports the sandbox does not provide.

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::{Arc, OnceLock};

use wasmtime::component::Component;
use wasmtime::{ExternType, InstancePre, Module, ModuleExport};
use wasmtime_wasi::p2::bindings::CommandPre;

use super::module_cache::{ArtifactKind, Compiled};
use super::state::{P1State, P2State};
use super::{Lane, Sandbox, SandboxError};

/// A loaded program: compiled, linked against the sandbox, ready to instantiate many times.
#[derive(Clone)]
pub struct Program {
    /// Linked in lane 0.
    pub(crate) kind: ProgramKind,
    /// Linked in each other lane of the sandbox, by the first invocation there (see
    /// [`super::other_lane`]): a lane may run only a few of a workflow's programs, and loading one into an
    /// engine takes about as long as loading it from the compiled-module cache (1.8 ms for a
    /// 2.2 MiB module).
    others: Arc<[OnceLock<Result<ProgramKind, String>>]>,
    /// Lane 0's code, which the other lanes load.
    compiled: Compiled,
    unknown: UnknownImports,
    /// blake3 of the `.wasm` bytes.
    pub digest: hermetic_cache::Digest,
    /// Whether the compiled code came from the on-disk cache.
    pub cache_hit: bool,
    /// Whether the program can reach a mounted directory at all. One that cannot (see
    /// [`module_reaches_files`] and [`component_reaches_files`]) is run without its mounts:
    /// they are neither opened for it nor looked at afterwards, since nothing it does can tell
    /// them apart from none or change them.
    pub reaches_files: bool,
    /// Whether the program imports the host calls ([`super::host_calls`]): a core module that
    /// imports from `hermetic_v1`. Only such a program needs somewhere to send them.
    pub calls_host: bool,
}

#[derive(Clone)]
pub(crate) enum ProgramKind {
    /// A core module (`wasm32-wasip1`), entered through `_start`, found by index rather than
    /// by name on every run.
    Module(InstancePre<P1State>, ModuleExport),
    /// A component (`wasm32-wasip2`), entered through `wasi:cli/run`.
    Component(CommandPre<P2State>),
}

impl std::fmt::Debug for Program {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Program")
            .field("kind", &self.kind_name())
            .field("digest", &self.digest)
            .finish()
    }
}

impl Program {
    /// `"module"` or `"component"`.
    pub fn kind_name(&self) -> &'static str {
        match self.kind {
            ProgramKind::Module(..) => "module",
            ProgramKind::Component(_) => "component",
        }
    }
}

/// What to do with an import the sandbox does not provide.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum UnknownImports {
    /// Refuse to load the module, naming the import (the default).
    #[default]
    Reject,
    /// Link the import to a function that traps when called, as `wasmtime run
    /// -Sunknown-imports-trap` does.
    Trap,
}

/// Tells a core module from a component by the header (bytes 4..8 are the version/layer).
pub(crate) fn artifact_kind(bytes: &[u8]) -> Result<ArtifactKind, SandboxError> {
    if bytes.len() < 8 || &bytes[..4] != b"\0asm" {
        return Err(SandboxError::NotWasm);
    }
    match bytes[4..8] {
        [1, 0, 0, 0] => Ok(ArtifactKind::Module),
        [0x0d, 0x00, 0x01, 0x00] => Ok(ArtifactKind::Component),
        _ => Err(SandboxError::Invalid(format!(
            "unsupported WebAssembly version/layer {:02x?} (expected a core module or a component)",
            &bytes[4..8]
        ))),
    }
}

impl Sandbox {
    /// Loads the program in `path`. Errors name nothing but the problem; callers add the path.
    pub fn load_file(&self, path: &Path, unknown: UnknownImports) -> Result<Program, SandboxError> {
        let bytes = std::fs::read(path).map_err(SandboxError::Read)?;
        self.load_bytes(&bytes, unknown)
    }

    /// Loads a program from its bytes.
    pub fn load_bytes(
        &self,
        bytes: &[u8],
        unknown: UnknownImports,
    ) -> Result<Program, SandboxError> {
        let kind = artifact_kind(bytes)?;
        let digest = hermetic_cache::Digest::of(bytes);
        let (compiled, cache_hit) =
            self.modules
                .load_or_compile(self.engine(), kind, bytes, &digest.to_hex())?;
        let kind = self.link(&self.first, &compiled, unknown)?;
        let reaches_files = match &compiled {
            Compiled::Module(module) => module_reaches_files(module),
            Compiled::Component(component) => component_reaches_files(self.engine(), component),
        };
        let calls_host = match &compiled {
            Compiled::Module(module) => module
                .imports()
                .any(|i| i.module() == super::host_calls::MODULE),
            Compiled::Component(_) => false,
        };
        Ok(Program {
            kind,
            others: (1..self.lane_count()).map(|_| OnceLock::new()).collect(),
            compiled,
            unknown,
            digest,
            cache_hit,
            reaches_files,
            calls_host,
        })
    }

    /// Lane `lane` (see [`Sandbox::lane`]) and `program` linked in it.
    pub(crate) fn linked<'p>(
        &self,
        program: &'p Program,
        lane: usize,
    ) -> Result<(&Lane, &'p ProgramKind), SandboxError> {
        let (number, lane) = self.lane(lane);
        let Some(slot) = super::other_lane(&program.others, number) else {
            return Ok((lane, &program.kind));
        };
        let linked = slot.get_or_init(|| {
            let here = program
                .compiled
                .load_into(&lane.engine)
                .map_err(|e| format!("cannot load the program in a worker's engine: {e:#}"))?;
            self.link(lane, &here, program.unknown)
                .map_err(|e| e.to_string())
        });
        match linked {
            Ok(linked) => Ok((lane, linked)),
            Err(e) => Err(SandboxError::Link(e.clone())),
        }
    }

    /// `compiled` (code of `lane`'s engine) linked against `lane`'s imports.
    fn link(
        &self,
        lane: &Lane,
        compiled: &Compiled,
        unknown: UnknownImports,
    ) -> Result<ProgramKind, SandboxError> {
        Ok(match compiled {
            Compiled::Module(module) => {
                let (pre, start) = self.link_module(lane, module, unknown)?;
                ProgramKind::Module(pre, start)
            }
            Compiled::Component(component) => {
                ProgramKind::Component(self.link_component(lane, component, unknown)?)
            }
        })
    }

    fn link_module(
        &self,
        lane: &Lane,
        module: &Module,
        unknown: UnknownImports,
    ) -> Result<(InstancePre<P1State>, ModuleExport), SandboxError> {
        let Some(start) = module.get_export_index("_start") else {
            return Err(SandboxError::NoEntryPoint);
        };
        let mut missing = Vec::new();
        for import in module.imports() {
            let provided = self
                .p1_provided
                .contains(&(import.module().into(), import.name().into()));
            if !provided {
                let what = match import.ty() {
                    ExternType::Func(_) => "function",
                    ExternType::Memory(_) => "memory",
                    ExternType::Table(_) => "table",
                    ExternType::Global(_) => "global",
                    ExternType::Tag(_) => "tag",
                };
                missing.push(format!("{}::{} ({what})", import.module(), import.name()));
            }
        }
        let pre = if missing.is_empty() {
            lane.p1_linker.instantiate_pre(module)
        } else if unknown == UnknownImports::Trap {
            let mut linker = lane.p1_linker.clone();
            linker
                .define_unknown_imports_as_traps(module)
                .map_err(link_error)?;
            linker.instantiate_pre(module)
        } else {
            return Err(SandboxError::UnknownImports(missing));
        };
        Ok((pre.map_err(link_error)?, start))
    }

    fn link_component(
        &self,
        lane: &Lane,
        component: &Component,
        unknown: UnknownImports,
    ) -> Result<CommandPre<P2State>, SandboxError> {
        let p2_linker = lane.p2_linker()?;
        let pre = match p2_linker.instantiate_pre(component) {
            Ok(pre) => pre,
            Err(_) if unknown == UnknownImports::Trap => {
                let mut linker = p2_linker.clone();
                linker
                    .define_unknown_imports_as_traps(component)
                    .map_err(link_error)?;
                linker.instantiate_pre(component).map_err(link_error)?
            }
            Err(e) => {
                let message = format!("{e:#}");
                let ty = component.component_type();
                let imports: BTreeSet<String> = ty
                    .imports(&lane.engine)
                    .map(|(name, _)| name.to_string())
                    .collect();
                let missing: Vec<String> = imports
                    .into_iter()
                    .filter(|name| message.contains(name.as_str()))
                    .collect();
                if missing.is_empty() {
                    return Err(SandboxError::Link(message));
                }
                return Err(SandboxError::UnknownImports(missing));
            }
        };
        CommandPre::new(pre).map_err(|_| SandboxError::NoEntryPoint)
    }
}

/// The WASI preview 1 functions that cannot reach a directory. None of them takes a descriptor
/// but `fd_write`, which fails with `EBADF` on a directory exactly as on a descriptor that is
/// not open, so a guest cannot tell whether descriptors 3 and up are preopened directories.
/// (Everything else that takes a descriptor, `poll_oneoff` included, is left out.)
const P1_FILELESS: &[&str] = &[
    "args_get",
    "args_sizes_get",
    "environ_get",
    "environ_sizes_get",
    "clock_res_get",
    "clock_time_get",
    "random_get",
    "proc_exit",
    "proc_raise",
    "sched_yield",
    "fd_write",
];

/// Whether a core module can reach a preopened directory: whether it imports a
/// `wasi_snapshot_preview1` function outside [`P1_FILELESS`]. Its other imports are
/// `hermetic_v1` host calls, which take no descriptor, or unknown imports linked as traps.
/// Rust and C programs that only compute and print import nothing else (wasi-libc finds the
/// preopens only when a path function is linked in).
fn module_reaches_files(module: &Module) -> bool {
    module
        .imports()
        .any(|i| i.module() == "wasi_snapshot_preview1" && !P1_FILELESS.contains(&i.name()))
}

/// Whether a component can reach a preopened directory: whether it imports any
/// `wasi:filesystem` interface. A directory is a resource that only
/// `wasi:filesystem/preopens.get-directories` hands out, and resources cannot be forged.
fn component_reaches_files(engine: &wasmtime::Engine, component: &Component) -> bool {
    component
        .component_type()
        .imports(engine)
        .any(|(name, _)| name.starts_with("wasi:filesystem/"))
}

pub(crate) fn link_error(e: wasmtime::Error) -> SandboxError {
    SandboxError::Link(format!("{e:#}"))
}

#[cfg(test)]
mod tests {
    use wasm_encoder::{
        CodeSection, EntityType, ExportKind, ExportSection, Function, FunctionSection,
        ImportSection, Instruction, Module as Encoded, TypeSection, ValType,
    };

    use super::*;
    use crate::sandbox::{CaptureTo, Invocation, Limits, Mount, Outcome};

    /// A core module that imports each `(name, params, results)` from `wasi_snapshot_preview1`
    /// and exports a `_start` that does nothing.
    fn module_importing(imports: &[(&str, &[ValType], &[ValType])]) -> Vec<u8> {
        command_module(imports, &[], false)
    }

    /// A core module that imports each `(name, params, results)` from `wasi_snapshot_preview1`
    /// (function `k` is the `k`th import), exports a `_start` running `start`, and with
    /// `memory` exports the one-page memory WASI calls need.
    fn command_module(
        imports: &[(&str, &[ValType], &[ValType])],
        start: &[Instruction<'_>],
        memory: bool,
    ) -> Vec<u8> {
        let (mut types, mut import_section) = (TypeSection::new(), ImportSection::new());
        for (k, (name, params, results)) in imports.iter().enumerate() {
            types
                .ty()
                .function(params.iter().copied(), results.iter().copied());
            // `module.name` imports from that module, anything else from WASI.
            let (module, name) = name
                .split_once('.')
                .unwrap_or(("wasi_snapshot_preview1", name));
            import_section.import(module, name, EntityType::Function(k as u32));
        }
        types.ty().function([], []);
        let entry = imports.len() as u32;
        let mut functions = FunctionSection::new();
        functions.function(entry);
        let mut memories = wasm_encoder::MemorySection::new();
        let mut exports = ExportSection::new();
        exports.export("_start", ExportKind::Func, entry);
        if memory {
            memories.memory(wasm_encoder::MemoryType {
                minimum: 1,
                maximum: None,
                memory64: false,
                shared: false,
                page_size_log2: None,
            });
            exports.export("memory", ExportKind::Memory, 0);
        }
        let mut code = CodeSection::new();
        let mut body = Function::new([]);
        for instruction in start {
            body.instruction(instruction);
        }
        body.instruction(&Instruction::End);
        code.function(&body);
        let mut module = Encoded::new();
        module
            .section(&types)
            .section(&import_section)
            .section(&functions);
        if memory {
            module.section(&memories);
        }
        module.section(&exports).section(&code);
        module.finish()
    }

    const I32: ValType = ValType::I32;
    const I64: ValType = ValType::I64;
    const FD_WRITE: (&str, &[ValType], &[ValType]) = ("fd_write", &[I32; 4], &[I32]);
    const PROC_EXIT: (&str, &[ValType], &[ValType]) = ("proc_exit", &[I32], &[]);
    const ENVIRON_GET: (&str, &[ValType], &[ValType]) = ("environ_get", &[I32; 2], &[I32]);
    const CLOCK_TIME_GET: (&str, &[ValType], &[ValType]) =
        ("clock_time_get", &[I32, I64, I32], &[I32]);

    fn sandbox() -> Sandbox {
        Sandbox::new(1, None).unwrap()
    }

    fn reaches(imports: &[(&str, &[ValType], &[ValType])]) -> bool {
        sandbox()
            .load_bytes(&module_importing(imports), UnknownImports::Reject)
            .unwrap()
            .reaches_files
    }

    #[test]
    fn only_a_module_that_imports_hermetic_v1_calls_the_host() {
        let load = |imports: &[(&str, &[ValType], &[ValType])]| {
            sandbox()
                .load_bytes(&module_importing(imports), UnknownImports::Reject)
                .unwrap()
        };
        let heartbeat: (&str, &[ValType], &[ValType]) = ("hermetic_v1.heartbeat", &[], &[]);
        let calls = load(&[FD_WRITE, heartbeat]);
        assert!(calls.calls_host);
        assert!(!calls.reaches_files);
        assert!(!load(&[FD_WRITE, PROC_EXIT]).calls_host);
    }

    #[test]
    fn a_module_that_only_computes_and_prints_reaches_no_files() {
        assert!(!reaches(&[]));
        assert!(!reaches(&[
            FD_WRITE,
            PROC_EXIT,
            ENVIRON_GET,
            CLOCK_TIME_GET
        ]));
    }

    #[test]
    fn any_other_wasi_function_reaches_files() {
        let others: [(&str, &[ValType], &[ValType]); 6] = [
            ("fd_prestat_get", &[I32; 2], &[I32]),
            ("fd_read", &[I32; 4], &[I32]),
            ("fd_readdir", &[I32, I32, I32, I64, I32], &[I32]),
            ("fd_close", &[I32], &[I32]),
            ("poll_oneoff", &[I32; 4], &[I32]),
            (
                "path_open",
                &[I32, I32, I32, I32, I32, I64, I64, I32, I32],
                &[I32],
            ),
        ];
        for other in others {
            assert!(reaches(&[FD_WRITE, PROC_EXIT, other]), "{}", other.0);
        }
    }

    /// Mounts whose host directories do not exist: opening them would fail.
    fn invocation(missing: &Path) -> Invocation {
        Invocation {
            args: vec!["t".into()],
            env: Vec::new(),
            mounts: ["in", "out"]
                .map(|m| Mount {
                    host: missing.join(m),
                    guest: format!("/{m}"),
                    writable: m == "out",
                })
                .to_vec(),
            limits: Limits::default(),
            seed: [0; 32],
            clock_epoch: std::time::Duration::ZERO,
            clock_jump: None,
            stdout: CaptureTo::Memory,
            stderr: CaptureTo::Memory,
            heartbeat: None,
            host_calls: None,
            wasi_fault: None,
        }
    }

    #[tokio::test]
    async fn a_program_that_reaches_no_files_is_run_without_opening_its_mounts() {
        let t = tempfile::tempdir().unwrap();
        let inv = invocation(&t.path().join("missing"));
        let sandbox = sandbox();
        let blind = sandbox
            .load_bytes(&module_importing(&[FD_WRITE]), UnknownImports::Reject)
            .unwrap();
        let report = sandbox.run(&blind, &inv).await.unwrap();
        assert!(matches!(report.outcome, Outcome::Success), "{report:?}");
        assert!(!report.mounted && report.empty_mounts.is_empty());

        let seeing = sandbox
            .load_bytes(
                &module_importing(&[("fd_prestat_get", &[I32; 2], &[I32])]),
                UnknownImports::Reject,
            )
            .unwrap();
        let err = sandbox.run(&seeing, &inv).await.unwrap_err().to_string();
        assert!(err.starts_with("cannot mount `"), "{err}");
    }

    /// A core module whose `_start` calls `proc_exit(code)`.
    fn exiting_with(code: i32) -> Vec<u8> {
        command_module(
            &[PROC_EXIT],
            &[Instruction::I32Const(code), Instruction::Call(0)],
            true,
        )
    }

    #[tokio::test]
    async fn a_program_runs_alike_in_every_lane_of_a_pool_sandbox() {
        let t = tempfile::tempdir().unwrap();
        let inv = invocation(&t.path().join("missing"));
        let sandbox = Sandbox::for_workers(3, None, false).unwrap();
        let program = sandbox
            .load_bytes(&exiting_with(7), UnknownImports::Reject)
            .unwrap();
        assert!(
            sandbox.others.iter().all(|l| l.get().is_none()),
            "lanes are made by their first invocation"
        );
        let mut fuel = Vec::new();
        // Lane 9 does not exist: it is lane 0.
        for lane in [0, 1, 2, 1, 9] {
            let report = sandbox.run_in_lane(lane, &program, &inv).await.unwrap();
            assert!(matches!(report.outcome, Outcome::Exit(7)), "{report:?}");
            fuel.push(report.fuel_used);
        }
        assert!(fuel.iter().all(|&f| f == fuel[0] && f > 0), "{fuel:?}");
        assert!(
            sandbox
                .others
                .iter()
                .all(|l| l.get().is_some_and(Option::is_some))
        );
        assert!(
            program
                .others
                .iter()
                .all(|p| p.get().is_some_and(Result::is_ok))
        );
        assert_eq!(sandbox.lane(9).0, 0);
    }

    /// `make_lanes` makes the lanes below the count it is given, before any invocation, and
    /// the invocations then run in them.
    #[tokio::test]
    async fn lanes_can_be_made_before_their_first_invocation() {
        let t = tempfile::tempdir().unwrap();
        let inv = invocation(&t.path().join("missing"));
        let sandbox = Sandbox::for_workers(4, None, false).unwrap();
        sandbox.make_lanes(3);
        let made: Vec<bool> = sandbox
            .others
            .iter()
            .map(|l| l.get().is_some_and(Option::is_some))
            .collect();
        assert_eq!(made, [true, true, false]);
        let program = sandbox
            .load_bytes(&exiting_with(3), UnknownImports::Reject)
            .unwrap();
        for lane in [1, 2] {
            let report = sandbox.run_in_lane(lane, &program, &inv).await.unwrap();
            assert!(matches!(report.outcome, Outcome::Exit(3)), "{report:?}");
        }
        assert!(sandbox.others[2].get().is_none(), "lane 3 is still unmade");
    }

    /// Finished stores go to the reaper in batches: many more runs than an engine has pool
    /// slots all succeed, alike, in one lane and in lane 0.
    #[tokio::test]
    async fn runs_in_a_pool_sandbox_never_run_out_of_pool_slots() {
        let t = tempfile::tempdir().unwrap();
        let inv = invocation(&t.path().join("missing"));
        let sandbox = Sandbox::build(2, 2, None, false, true).unwrap();
        assert!(sandbox.reaper.is_some());
        let program = sandbox
            .load_bytes(&exiting_with(3), UnknownImports::Reject)
            .unwrap();
        let mut fuel = Vec::new();
        for i in 0..200 {
            let report = sandbox.run_in_lane(i % 2, &program, &inv).await.unwrap();
            assert!(
                matches!(report.outcome, Outcome::Exit(3)),
                "{i}: {report:?}"
            );
            fuel.push(report.fuel_used);
        }
        assert!(fuel.iter().all(|&f| f == fuel[0] && f > 0), "{fuel:?}");
    }

    /// A store waits in its lane's batch for the reaper only if its guest's memory stayed
    /// small: one that grew past `reaper::MAX_MEMORY` is dropped at once, dirty pages and all.
    #[tokio::test]
    async fn a_store_with_a_large_memory_is_not_kept_for_the_reaper() {
        let t = tempfile::tempdir().unwrap();
        let inv = invocation(&t.path().join("missing"));
        let sandbox = Sandbox::build(1, 1, None, false, true).unwrap();
        let waiting = || sandbox.first.finished.lock().unwrap().len();
        // 1 page, then `memory.grow` by enough 64 KiB pages to pass the bound.
        let pages = (super::super::reaper::MAX_MEMORY >> 16) as i32 + 1;
        let grows = command_module(
            &[],
            &[
                Instruction::I32Const(pages),
                Instruction::MemoryGrow(0),
                Instruction::Drop,
            ],
            true,
        );
        let small = command_module(&[], &[], true);
        for (bytes, waits) in [(&small, 1), (&grows, 1), (&small, 2)] {
            let program = sandbox.load_bytes(bytes, UnknownImports::Reject).unwrap();
            let report = sandbox.run(&program, &inv).await.unwrap();
            assert!(report.outcome.is_success(), "{report:?}");
            assert_eq!(waiting(), waits, "{report:?}");
        }
    }
}

//! Loading a `.wasm` file into a ready-to-instantiate program, with clear errors for files that
//! are not wasm, truncated modules, and imports the sandbox does not provide.

use std::collections::BTreeSet;
use std::path::Path;

use wasmtime::component::Component;
use wasmtime::{ExternType, InstancePre, Module};
use wasmtime_wasi::p2::bindings::CommandPre;

use super::module_cache::{ArtifactKind, Compiled};
use super::state::{P1State, P2State};
use super::{Sandbox, SandboxError};

/// A loaded program: compiled, linked against the sandbox, ready to instantiate many times.
#[derive(Clone)]
pub struct Program {
    pub(crate) kind: ProgramKind,
    /// blake3 of the `.wasm` bytes.
    pub digest: hermetic_cache::Digest,
    /// Whether the compiled code came from the on-disk cache.
    pub cache_hit: bool,
}

#[derive(Clone)]
pub(crate) enum ProgramKind {
    /// A core module (`wasm32-wasip1`), entered through `_start`.
    Module(InstancePre<P1State>),
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
            ProgramKind::Module(_) => "module",
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
                .load_or_compile(&self.engine, kind, bytes, &digest.to_hex())?;
        let kind = match compiled {
            Compiled::Module(module) => ProgramKind::Module(self.link_module(&module, unknown)?),
            Compiled::Component(component) => {
                ProgramKind::Component(self.link_component(&component, unknown)?)
            }
        };
        Ok(Program {
            kind,
            digest,
            cache_hit,
        })
    }

    fn link_module(
        &self,
        module: &Module,
        unknown: UnknownImports,
    ) -> Result<InstancePre<P1State>, SandboxError> {
        if module.get_export("_start").is_none() {
            return Err(SandboxError::NoEntryPoint);
        }
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
            self.p1_linker.instantiate_pre(module)
        } else if unknown == UnknownImports::Trap {
            let mut linker = self.p1_linker.clone();
            linker
                .define_unknown_imports_as_traps(module)
                .map_err(link_error)?;
            linker.instantiate_pre(module)
        } else {
            return Err(SandboxError::UnknownImports(missing));
        };
        pre.map_err(link_error)
    }

    fn link_component(
        &self,
        component: &Component,
        unknown: UnknownImports,
    ) -> Result<CommandPre<P2State>, SandboxError> {
        let pre = match self.p2_linker.instantiate_pre(component) {
            Ok(pre) => pre,
            Err(_) if unknown == UnknownImports::Trap => {
                let mut linker = self.p2_linker.clone();
                linker
                    .define_unknown_imports_as_traps(component)
                    .map_err(link_error)?;
                linker.instantiate_pre(component).map_err(link_error)?
            }
            Err(e) => {
                let message = format!("{e:#}");
                let ty = component.component_type();
                let imports: BTreeSet<String> = ty
                    .imports(&self.engine)
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

pub(crate) fn link_error(e: wasmtime::Error) -> SandboxError {
    SandboxError::Link(format!("{e:#}"))
}

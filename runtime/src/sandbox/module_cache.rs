//! Compiled modules cached on disk, so a second `hermetic` process deserializes instead of
//! recompiling.
//!
//! An entry lives at `<root>/compiled/<module digest>-<engine digest>.cwasm`. The module digest
//! is blake3 of the `.wasm` bytes; the engine digest covers wasmtime's version and settings (see
//! [`super::engine::compatibility_digest`]). A file holds the blake3 of its payload followed by
//! the payload that `Module::serialize` produced; the digest is checked before the payload is
//! handed to `deserialize`, so a truncated or corrupted file is recompiled, never loaded.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use wasmtime::Engine;
use wasmtime::component::Component;

use super::SandboxError;

/// The kind of artifact, which decides how it is deserialized.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ArtifactKind {
    Module,
    Component,
}

/// A compiled module or component.
#[derive(Clone)]
pub(crate) enum Compiled {
    Module(wasmtime::Module),
    Component(Component),
}

impl Compiled {
    /// The same code loaded into `engine`, which has the settings of the engine it was
    /// compiled or loaded for (another lane's).
    pub(crate) fn load_into(&self, engine: &Engine) -> wasmtime::Result<Compiled> {
        match self {
            Compiled::Module(m) => {
                deserialize_module(engine, &m.serialize()?).map(Compiled::Module)
            }
            Compiled::Component(c) => {
                deserialize_component(engine, &c.serialize()?).map(Compiled::Component)
            }
        }
    }
}

/// The on-disk cache of compiled artifacts.
#[derive(Debug, Clone)]
pub struct ModuleCache {
    dir: Option<PathBuf>,
    engine_digest: String,
}

impl ModuleCache {
    /// A cache under `root/compiled`, or no caching at all when `root` is `None`.
    pub fn new(root: Option<&Path>, engine: &Engine) -> Self {
        Self {
            dir: root.map(|r| r.join("compiled")),
            engine_digest: super::engine::compatibility_digest(engine),
        }
    }

    /// Loads `wasm` (whose blake3 hex digest is `digest`) from the cache, or compiles it and
    /// stores the result. Returns whether the cache was hit.
    pub(crate) fn load_or_compile(
        &self,
        engine: &Engine,
        kind: ArtifactKind,
        wasm: &[u8],
        digest: &str,
    ) -> Result<(Compiled, bool), SandboxError> {
        let Some(dir) = &self.dir else {
            return Ok((compile(engine, kind, wasm)?, false));
        };
        let path = dir.join(format!("{digest}-{}.cwasm", self.engine_digest));
        if let Some(compiled) = self.try_load(engine, kind, &path) {
            return Ok((compiled, true));
        }
        let compiled = compile(engine, kind, wasm)?;
        let bytes = match &compiled {
            Compiled::Module(m) => m.serialize(),
            Compiled::Component(c) => c.serialize(),
        };
        // Failing to write the cache only costs a recompile next time; it must not fail the run.
        if let Ok(bytes) = bytes
            && let Err(e) = write_entry(dir, &path, &bytes)
        {
            tracing::warn!(path = %path.display(), error = %e, "could not cache compiled module");
        }
        Ok((compiled, false))
    }

    fn try_load(&self, engine: &Engine, kind: ArtifactKind, path: &Path) -> Option<Compiled> {
        let bytes = fs::read(path).ok()?;
        if bytes.len() < 32 || blake3::hash(&bytes[32..]).as_bytes()[..] != bytes[..32] {
            tracing::warn!(path = %path.display(), "discarding corrupt compiled module");
            let _ = fs::remove_file(path);
            return None;
        }
        let payload = &bytes[32..];
        let loaded = match kind {
            ArtifactKind::Module => deserialize_module(engine, payload).map(Compiled::Module),
            ArtifactKind::Component => {
                deserialize_component(engine, payload).map(Compiled::Component)
            }
        };
        match loaded {
            Ok(c) => Some(c),
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "discarding unloadable compiled module");
                let _ = fs::remove_file(path);
                None
            }
        }
    }
}

fn compile(engine: &Engine, kind: ArtifactKind, wasm: &[u8]) -> Result<Compiled, SandboxError> {
    let result = match kind {
        ArtifactKind::Module => wasmtime::Module::new(engine, wasm).map(Compiled::Module),
        ArtifactKind::Component => Component::new(engine, wasm).map(Compiled::Component),
    };
    result.map_err(|e| SandboxError::Invalid(format!("{e:#}")))
}

/// Loads a module this process's cache wrote, or that `Module::serialize` gave in this process
/// (to load lane 0's code into another lane's engine, which has the same settings).
#[allow(unsafe_code)] // reason: deserializing is wasmtime's only way to skip compilation.
fn deserialize_module(engine: &Engine, payload: &[u8]) -> wasmtime::Result<wasmtime::Module> {
    // SAFETY: `Module::deserialize` requires bytes produced by `Module::serialize` of a
    // compatible engine, because they are machine code that is not validated again. `payload`
    // is exactly what `serialize` wrote: `try_load` checked its blake3 digest, stored ahead of it
    // when it was written, and the file name carries the engine's compatibility digest (wasmtime
    // checks compatibility once more itself). The cache directory belongs to the user running
    // hermetic; anyone who can write it can already run code as that user. Bytes that
    // `serialize` gave in this process need no check at all.
    unsafe { wasmtime::Module::deserialize(engine, payload) }
}

/// Loads a component this process's cache wrote, or that `Component::serialize` gave in this
/// process.
#[allow(unsafe_code)] // reason: deserializing is wasmtime's only way to skip compilation.
fn deserialize_component(engine: &Engine, payload: &[u8]) -> wasmtime::Result<Component> {
    // SAFETY: as for `deserialize_module`: the bytes are verified output of
    // `Component::serialize` for a compatible engine.
    unsafe { Component::deserialize(engine, payload) }
}

/// Writes `digest ++ payload` to `path` atomically: a temporary file, fsync, rename.
fn write_entry(dir: &Path, path: &Path, payload: &[u8]) -> std::io::Result<()> {
    fs::create_dir_all(dir)?;
    let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
    tmp.write_all(blake3::hash(payload).as_bytes())?;
    tmp.write_all(payload)?;
    tmp.as_file().sync_all()?;
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}

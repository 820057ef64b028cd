//! The action key: the one digest that names a step's result in the cache.
//!
//! A step is a pure function of its [`KeyComponents`]. Two runs with equal components give the
//! same output bytes, because the sandbox leaves nothing else for a guest to observe. So the
//! blake3 digest of the components names the result, and a cache hit is the same as a re-run.
//!
//! # Every input to the key
//!
//! | field             | what                                                    | why |
//! |-------------------|---------------------------------------------------------|-----|
//! | `format`          | [`KEY_FORMAT`], bumped when a key or a result changes meaning | old entries stop matching |
//! | `wasmtime`        | the wasmtime version                                    | code generation and WASI behaviour |
//! | `engine`          | the engine's compatibility hash (target, settings, NaN canonicalisation, relaxed SIMD) | float and SIMD results |
//! | `module`          | blake3 of the `.wasm` bytes                             | the program |
//! | `unknown_imports` | `reject` or `trap`                                      | whether a call to a missing import traps |
//! | `args`            | argv, including `argv[0]` (the step name)               | the guest reads it |
//! | `env`             | the declared environment, sorted                        | the guest reads it |
//! | `inputs`          | Merkle root over the sorted `(relative path, blake3, size)` of the inputs | what `/in` holds |
//! | `deps`            | each dependency's name and the Merkle root of its outputs | what `/deps/<name>` holds |
//! | `outputs`         | the declared outputs                                    | what is published |
//! | `clock_epoch_secs`| the fixed wall clock                                    | the guest reads the time |
//! | `seed`            | the seed of the guest's randomness                      | the guest reads random bytes |
//!
//! Nothing else goes in: no absolute path, no host environment variable, no timestamp, no user
//! or host name. Limits are not in the key either, because they do not change what a successful
//! step produces; instead a hit is served only if the recorded fuel and peak memory fit within
//! the step's current limits, because a re-run under a tighter limit would fail.
//!
//! The digest is blake3 over a domain-separation prefix and a canonical binary encoding of the
//! components (fields in declaration order, maps sorted, every variable-length item prefixed
//! with its length; see `KeyHasher`), with the per-file input list left out because its Merkle
//! root stands for it. The list is kept beside the key so that
//! `hermetic why` can name the file that changed.

use std::collections::BTreeMap;

use hermetic_cache::{Digest, FileEntry};
use serde::{Deserialize, Serialize};

/// Bumped whenever the meaning of an action key or of a cached result changes.
///
/// 2: the components are hashed in a binary encoding instead of JSON.
pub const KEY_FORMAT: u32 = 2;

/// Everything a step's result depends on; see the [module docs](self) for each field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyComponents {
    pub format: u32,
    pub wasmtime: String,
    pub engine: String,
    pub module: Digest,
    pub unknown_imports: String,
    pub args: Vec<String>,
    pub env: BTreeMap<String, String>,
    pub inputs: Digest,
    pub deps: BTreeMap<String, Digest>,
    pub outputs: Vec<String>,
    pub clock_epoch_secs: u64,
    pub seed: Digest,
    /// The input files behind `inputs`, sorted by path. Not hashed: `inputs` stands for them.
    pub input_files: Vec<FileEntry>,
}

/// Feeds the key's canonical encoding to blake3: integers as 8 little-endian bytes, strings
/// as their byte length then their bytes, digests as their 32 bytes, and lists and maps as
/// their length then their items. Every field has a fixed width or a length in front, so no
/// two different sets of components encode to the same bytes.
///
/// The encoding is written out whole, then hashed at once: the same digest as feeding blake3
/// piece by piece, without the cost of some thirty small updates (which was most of the cost
/// of a key). `journal::keys::run_digest` encodes a run the same way.
pub(crate) struct KeyHasher(pub(crate) Vec<u8>);

impl KeyHasher {
    pub(crate) fn u64(&mut self, n: u64) {
        self.0.extend_from_slice(&n.to_le_bytes());
    }

    pub(crate) fn str(&mut self, s: &str) {
        self.u64(s.len() as u64);
        self.0.extend_from_slice(s.as_bytes());
    }

    pub(crate) fn digest(&mut self, d: &Digest) {
        self.0.extend_from_slice(d.as_bytes());
    }

    /// The digest of everything written.
    pub(crate) fn finish(&self) -> Digest {
        Digest::of(&self.0)
    }
}

/// A key's components, borrowed: what [`KeyComponents::key`] and `Plan::action_key` both
/// hash, so that a key computed for a run and one rebuilt for `hermetic why` cannot differ.
/// `args` and `deps` are given to [`KeyFields::key`], because a run has them in other shapes.
pub(crate) struct KeyFields<'a> {
    pub format: u32,
    pub wasmtime: &'a str,
    pub engine: &'a str,
    pub module: Digest,
    pub unknown_imports: &'a str,
    pub env: &'a BTreeMap<String, String>,
    pub inputs: Digest,
    pub outputs: &'a [String],
    pub clock_epoch_secs: u64,
    pub seed: Digest,
}

impl KeyFields<'_> {
    /// The action key of these fields, with the guest's argv (`argv0`, if given, then `args`)
    /// and `deps`, each dependency's name and output root, sorted by name.
    pub(crate) fn key<'d>(
        &self,
        argv0: Option<&str>,
        args: &[String],
        deps: impl ExactSizeIterator<Item = (&'d str, Digest)>,
    ) -> Digest {
        let mut h = KeyHasher(Vec::with_capacity(512));
        h.0.extend_from_slice(b"hermetic action key\0");
        h.u64(u64::from(self.format));
        h.str(self.wasmtime);
        h.str(self.engine);
        h.digest(&self.module);
        h.str(self.unknown_imports);
        h.u64((usize::from(argv0.is_some()) + args.len()) as u64);
        for arg in argv0.into_iter().chain(args.iter().map(String::as_str)) {
            h.str(arg);
        }
        h.u64(self.env.len() as u64);
        for (name, value) in self.env {
            h.str(name);
            h.str(value);
        }
        h.digest(&self.inputs);
        h.u64(deps.len() as u64);
        for (name, digest) in deps {
            h.str(name);
            h.digest(&digest);
        }
        h.u64(self.outputs.len() as u64);
        for output in self.outputs {
            h.str(output);
        }
        h.u64(self.clock_epoch_secs);
        h.digest(&self.seed);
        h.finish()
    }
}

impl KeyComponents {
    /// The action key.
    pub fn key(&self) -> Digest {
        KeyFields {
            format: self.format,
            wasmtime: &self.wasmtime,
            engine: &self.engine,
            module: self.module,
            unknown_imports: &self.unknown_imports,
            env: &self.env,
            inputs: self.inputs,
            outputs: &self.outputs,
            clock_epoch_secs: self.clock_epoch_secs,
            seed: self.seed,
        }
        .key(
            None,
            &self.args,
            self.deps.iter().map(|(n, d)| (n.as_str(), *d)),
        )
    }

    /// Each difference from `old`, as a sentence naming exactly what changed, for
    /// `hermetic why`. Empty when the keys are equal.
    pub fn changes_since(&self, old: &KeyComponents) -> Vec<String> {
        let mut out = Vec::new();
        fn field(out: &mut Vec<String>, name: &str, changed: bool, what: String) {
            if changed {
                out.push(format!("{name}: {what}"));
            }
        }
        field(
            &mut out,
            "cache format",
            self.format != old.format,
            format!("{} → {}", old.format, self.format),
        );
        field(
            &mut out,
            "wasmtime",
            self.wasmtime != old.wasmtime,
            format!("{} → {}", old.wasmtime, self.wasmtime),
        );
        field(
            &mut out,
            "engine settings",
            self.engine != old.engine,
            format!("{} → {}", old.engine, self.engine),
        );
        field(
            &mut out,
            "module",
            self.module != old.module,
            format!("{} → {}", old.module.short(), self.module.short()),
        );
        field(
            &mut out,
            "unknown imports",
            self.unknown_imports != old.unknown_imports,
            format!("{} → {}", old.unknown_imports, self.unknown_imports),
        );
        if self.args != old.args {
            out.extend(list_changes("argument", &old.args, &self.args));
        }
        out.extend(map_changes("env var", &old.env, &self.env, |v| {
            format!("`{v}`")
        }));
        if self.inputs != old.inputs {
            let changes = hermetic_cache::diff_trees(&old.input_files, &self.input_files);
            if changes.is_empty() {
                out.push("inputs: changed".into());
            }
            for c in changes {
                out.push(match c {
                    hermetic_cache::TreeChange::Added(p) => format!("input `{p}`: added"),
                    hermetic_cache::TreeChange::Removed(p) => format!("input `{p}`: removed"),
                    hermetic_cache::TreeChange::Modified(p) => format!("input `{p}`: modified"),
                });
            }
        }
        out.extend(map_changes(
            "output of dependency",
            &old.deps,
            &self.deps,
            |d| d.short(),
        ));
        if self.outputs != old.outputs {
            out.push(format!(
                "declared outputs: {:?} → {:?}",
                old.outputs, self.outputs
            ));
        }
        field(
            &mut out,
            "clock",
            self.clock_epoch_secs != old.clock_epoch_secs,
            format!("{} → {}", old.clock_epoch_secs, self.clock_epoch_secs),
        );
        field(
            &mut out,
            "random seed",
            self.seed != old.seed,
            format!("{} → {}", old.seed.short(), self.seed.short()),
        );
        out
    }
}

/// The changes between two argument lists, by position.
fn list_changes(what: &str, old: &[String], new: &[String]) -> Vec<String> {
    let mut out = Vec::new();
    for i in 0..old.len().max(new.len()) {
        match (old.get(i), new.get(i)) {
            (Some(a), Some(b)) if a != b => {
                out.push(format!("{what} {i}: `{a}` → `{b}`"));
            }
            (Some(a), None) => out.push(format!("{what} {i}: `{a}` removed")),
            (None, Some(b)) => out.push(format!("{what} {i}: `{b}` added")),
            _ => {}
        }
    }
    out
}

/// The changes between two maps, by key.
fn map_changes<V: PartialEq>(
    what: &str,
    old: &BTreeMap<String, V>,
    new: &BTreeMap<String, V>,
    show: impl Fn(&V) -> String,
) -> Vec<String> {
    let mut out = Vec::new();
    for (k, v) in new {
        match old.get(k) {
            None => out.push(format!("{what} `{k}`: added ({})", show(v))),
            Some(o) if o != v => {
                out.push(format!("{what} `{k}`: {} → {}", show(o), show(v)));
            }
            _ => {}
        }
    }
    for (k, o) in old {
        if !new.contains_key(k) {
            out.push(format!("{what} `{k}`: removed (was {})", show(o)));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn components() -> KeyComponents {
        let files = vec![FileEntry {
            path: "src/a.txt".into(),
            digest: Digest::of(b"a"),
            size: 1,
        }];
        KeyComponents {
            format: KEY_FORMAT,
            wasmtime: "48.0.8".into(),
            engine: "e".into(),
            module: Digest::of(b"module"),
            unknown_imports: "reject".into(),
            args: vec!["step".into(), "x".into()],
            env: BTreeMap::from([("K".into(), "v".into())]),
            inputs: hermetic_cache::tree_digest(&files),
            deps: BTreeMap::from([("dep".into(), Digest::of(b"out"))]),
            outputs: vec!["o.txt".into()],
            clock_epoch_secs: 1,
            seed: Digest::of(b"seed"),
            input_files: files,
        }
    }

    /// The key of fixed components, as computed when `KEY_FORMAT` 2 was set: any change to the
    /// encoding or the hashing must come with a new format.
    #[test]
    fn the_key_of_known_components_is_stable() {
        assert_eq!(
            components().key().to_hex(),
            "7c005ef705348bd4ef678b76e154a97b28772c7d0984db641eb3a42c25a5be0c"
        );
    }

    #[test]
    fn every_hashed_field_changes_the_key() {
        let base = components();
        let k = base.key();
        let mut variants: Vec<KeyComponents> = Vec::new();
        let mut v = base.clone();
        v.format += 1;
        variants.push(v);
        let mut v = base.clone();
        v.wasmtime = "49".into();
        variants.push(v);
        let mut v = base.clone();
        v.engine = "f".into();
        variants.push(v);
        let mut v = base.clone();
        v.module = Digest::of(b"other");
        variants.push(v);
        let mut v = base.clone();
        v.unknown_imports = "trap".into();
        variants.push(v);
        let mut v = base.clone();
        v.args.push("y".into());
        variants.push(v);
        let mut v = base.clone();
        v.env.insert("L".into(), "w".into());
        variants.push(v);
        let mut v = base.clone();
        v.inputs = Digest::of(b"i");
        variants.push(v);
        let mut v = base.clone();
        v.deps.insert("dep".into(), Digest::of(b"other"));
        variants.push(v);
        let mut v = base.clone();
        v.outputs.push("p".into());
        variants.push(v);
        let mut v = base.clone();
        v.clock_epoch_secs = 2;
        variants.push(v);
        let mut v = base.clone();
        v.seed = Digest::of(b"s");
        variants.push(v);
        for v in &variants {
            assert_ne!(v.key(), k, "{v:?}");
        }
        // The file list is not hashed: its Merkle root is.
        let mut v = base.clone();
        v.input_files.clear();
        assert_eq!(v.key(), k);
    }

    #[test]
    fn the_key_is_stable() {
        // A change to this value means every cached result is invalidated: bump KEY_FORMAT.
        assert_eq!(components().key(), components().key());
        assert_eq!(
            components().key().to_string(),
            "7c005ef705348bd4ef678b76e154a97b28772c7d0984db641eb3a42c25a5be0c"
        );
    }

    #[test]
    fn lengths_keep_neighbouring_fields_apart() {
        let base = components();
        let mut joined = base.clone();
        joined.args = vec!["stepx".into()];
        let mut split = base.clone();
        split.args = vec!["step".into(), "x".into()];
        assert_ne!(joined.key(), split.key());
        let mut in_name = base.clone();
        in_name.env = BTreeMap::from([("Kv".into(), String::new())]);
        let mut in_value = base.clone();
        in_value.env = BTreeMap::from([("K".into(), "v".into())]);
        assert_ne!(in_name.key(), in_value.key());
        let mut as_arg = base.clone();
        as_arg.args.push("o.txt".into());
        as_arg.outputs.clear();
        assert_ne!(as_arg.key(), base.key());
    }

    #[test]
    fn changes_name_exactly_what_changed() {
        let old = components();
        let mut new = old.clone();
        new.args[1] = "z".into();
        new.env.insert("K".into(), "w".into());
        new.input_files[0].digest = Digest::of(b"b");
        new.input_files.push(FileEntry {
            path: "src/b.txt".into(),
            digest: Digest::of(b"b"),
            size: 1,
        });
        new.inputs = hermetic_cache::tree_digest(&new.input_files);
        new.deps.insert("dep".into(), Digest::of(b"out2"));
        assert_eq!(
            new.changes_since(&old),
            vec![
                "argument 1: `x` → `z`".to_string(),
                "env var `K`: `v` → `w`".into(),
                "input `src/a.txt`: modified".into(),
                "input `src/b.txt`: added".into(),
                format!(
                    "output of dependency `dep`: {} → {}",
                    Digest::of(b"out").short(),
                    Digest::of(b"out2").short()
                ),
            ]
        );
        assert!(old.changes_since(&old).is_empty());
    }
}

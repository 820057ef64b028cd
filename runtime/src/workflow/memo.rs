//! A memo of the YAML parse, so that a run of an unchanged workflow skips it.
//!
//! Parsing YAML is most of what a run does before its first step: about 3 µs per step of a
//! flat workflow, 60 ms for 20,000 steps. The parse ([`node::parse`]) is a pure function of
//! the source text, so its located tree can be kept and reused while the text and the parser
//! are unchanged. Everything after it (decoding, validation, planning, which read the
//! environment and the filesystem) runs every time.
//!
//! The memo of `DIR/NAME` is `DIR/.hermetic/parsed/NAME.tree`:
//!
//! ```text
//! magic        8 bytes   "hrmtree\0"
//! parser      32 bytes   blake3 of the codec version and PARSER_FINGERPRINT (build.rs: the
//!                        parser's and codec's sources, and Cargo.lock, which pins serde-saphyr)
//! source      32 bytes   blake3 of the workflow text
//! payload     32 bytes   blake3 of the bytes that follow
//! tree        …          the tree, in tree_codec's form
//! ```
//!
//! A memo is used only when every digest matches and the tree decodes exactly; anything
//! else (missing, stale, truncated, corrupt, forged nesting) counts as a miss and the source
//! is parsed again. Only a successful parse is remembered, through a temporary file and a
//! rename, so a reader never sees half a memo. A memo that cannot be written (read-only
//! checkout, full disk) costs nothing but the next run's parse; it is logged at debug level.

use std::path::{Path, PathBuf};

use super::node::{self, Node, YamlError};
use super::tree_codec;

const MAGIC: &[u8; 8] = b"hrmtree\0";

/// Bump when the file layout or the codec changes in a way the fingerprint would not see.
const FORMAT: u32 = 1;

const HEADER: usize = MAGIC.len() + 3 * blake3::OUT_LEN;

/// Largest memo read: a tree of the largest accepted source is a few times its size.
const MAX_MEMO_BYTES: u64 = 16 * node::MAX_SOURCE_BYTES as u64;

/// Where the memo of the workflow file `workflow` lives, given its project's state directory.
pub(crate) fn memo_path(state_dir: &Path, workflow: &Path) -> PathBuf {
    let mut name = workflow.file_name().unwrap_or_default().to_os_string();
    name.push(".tree");
    state_dir.join("parsed").join(name)
}

/// [`node::parse`] of `source`, from the memo at `memo` when it holds this source's tree;
/// otherwise parsed, and remembered there if the parse succeeds.
pub(crate) fn parse(memo: &Path, source: &str) -> Result<Node, YamlError> {
    let source_digest = blake3::hash(source.as_bytes());
    match read(memo, &source_digest) {
        Ok(tree) => {
            tracing::debug!(memo = %memo.display(), "workflow parse: memo hit");
            return Ok(tree);
        }
        Err(why) => tracing::debug!(memo = %memo.display(), "workflow parse: memo miss ({why})"),
    }
    let tree = node::parse(source)?;
    if let Err(e) = write(memo, &source_digest, &tree) {
        tracing::debug!(memo = %memo.display(), "workflow parse: memo not written: {e}");
    }
    Ok(tree)
}

/// The digest that ties a memo to this build's parser and codec.
fn parser_digest() -> blake3::Hash {
    let mut h = blake3::Hasher::new();
    h.update(b"hermetic parse memo\0");
    h.update(&FORMAT.to_le_bytes());
    h.update(env!("HERMETIC_PARSER_FINGERPRINT").as_bytes());
    h.finalize()
}

fn read(memo: &Path, source_digest: &blake3::Hash) -> Result<Node, String> {
    let file = std::fs::File::open(memo).map_err(|e| e.to_string())?;
    let len = file.metadata().map_err(|e| e.to_string())?.len();
    if len > MAX_MEMO_BYTES {
        return Err(format!("{len} bytes is larger than any memo"));
    }
    let mut bytes = Vec::with_capacity(len as usize);
    std::io::Read::read_to_end(&mut std::io::Read::take(file, MAX_MEMO_BYTES), &mut bytes)
        .map_err(|e| e.to_string())?;
    if bytes.len() < HEADER || &bytes[..MAGIC.len()] != MAGIC {
        return Err("not a memo".to_owned());
    }
    let (digests, tree) = bytes[MAGIC.len()..].split_at(HEADER - MAGIC.len());
    let field = |i: usize| &digests[i * blake3::OUT_LEN..(i + 1) * blake3::OUT_LEN];
    if field(0) != parser_digest().as_bytes() {
        return Err("written by another parser".to_owned());
    }
    if field(1) != source_digest.as_bytes() {
        return Err("the workflow changed".to_owned());
    }
    if field(2) != blake3::hash(tree).as_bytes() {
        return Err("corrupt: the tree does not match its digest".to_owned());
    }
    tree_codec::decode(tree).ok_or_else(|| "corrupt: the tree does not decode".to_owned())
}

fn write(memo: &Path, source_digest: &blake3::Hash, tree: &Node) -> std::io::Result<()> {
    let mut bytes = Vec::with_capacity(HEADER + 4096);
    bytes.extend_from_slice(MAGIC);
    bytes.extend_from_slice(parser_digest().as_bytes());
    bytes.extend_from_slice(source_digest.as_bytes());
    bytes.extend_from_slice(&[0; blake3::OUT_LEN]);
    tree_codec::encode(tree, &mut bytes);
    let payload = blake3::hash(&bytes[HEADER..]);
    bytes[HEADER - blake3::OUT_LEN..HEADER].copy_from_slice(payload.as_bytes());
    if let Some(dir) = memo.parent() {
        std::fs::create_dir_all(dir)?;
    }
    crate::journal::write_atomic(memo, &bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SOURCE: &str = "name: m\nsteps:\n  a: {task: a.wasm, args: [x]}\n";

    #[test]
    fn a_memo_is_written_after_a_parse_and_read_back_the_same() {
        let dir = tempfile::tempdir().expect("tempdir");
        let memo = memo_path(dir.path(), Path::new("w/hermetic.yaml"));
        assert!(memo.ends_with("parsed/hermetic.yaml.tree"));
        let parsed = parse(&memo, SOURCE).expect("parses");
        assert_eq!(parsed, node::parse(SOURCE).expect("parses"));
        let digest = blake3::hash(SOURCE.as_bytes());
        assert_eq!(read(&memo, &digest), Ok(parsed));
    }

    #[test]
    fn a_changed_source_misses() {
        let dir = tempfile::tempdir().expect("tempdir");
        let memo = memo_path(dir.path(), Path::new("hermetic.yaml"));
        parse(&memo, SOURCE).expect("parses");
        let other = SOURCE.replace("[x]", "[y]");
        let digest = blake3::hash(other.as_bytes());
        assert_eq!(read(&memo, &digest), Err("the workflow changed".to_owned()));
        let tree = parse(&memo, &other).expect("parses");
        assert_eq!(tree, node::parse(&other).expect("parses"));
        assert_eq!(
            read(&memo, &digest),
            Ok(tree),
            "the memo now holds the new source"
        );
    }

    #[test]
    fn a_damaged_memo_misses_and_is_replaced() {
        let dir = tempfile::tempdir().expect("tempdir");
        let memo = memo_path(dir.path(), Path::new("hermetic.yaml"));
        parse(&memo, SOURCE).expect("parses");
        let digest = blake3::hash(SOURCE.as_bytes());
        let good = std::fs::read(&memo).expect("memo");

        let mut flipped = good.clone();
        *flipped.last_mut().expect("bytes") ^= 1;
        std::fs::write(&memo, &flipped).expect("write");
        assert_eq!(
            read(&memo, &digest),
            Err("corrupt: the tree does not match its digest".to_owned())
        );

        std::fs::write(&memo, &good[..HEADER - 1]).expect("write");
        assert_eq!(read(&memo, &digest), Err("not a memo".to_owned()));

        let mut other_parser = good.clone();
        other_parser[MAGIC.len()] ^= 1;
        std::fs::write(&memo, &other_parser).expect("write");
        assert_eq!(
            read(&memo, &digest),
            Err("written by another parser".to_owned())
        );

        assert_eq!(
            parse(&memo, SOURCE),
            node::parse(SOURCE),
            "a miss parses again"
        );
        assert_eq!(std::fs::read(&memo).expect("memo"), good, "and rewrites it");
    }

    #[test]
    fn a_failed_parse_is_not_remembered() {
        let dir = tempfile::tempdir().expect("tempdir");
        let memo = memo_path(dir.path(), Path::new("hermetic.yaml"));
        assert!(parse(&memo, "steps: [unclosed\n").is_err());
        assert!(!memo.exists());
    }

    #[test]
    fn a_memo_that_cannot_be_written_only_costs_the_next_parse() {
        let dir = tempfile::tempdir().expect("tempdir");
        // `parsed` is a file, so the memo's directory cannot be created.
        std::fs::write(dir.path().join("parsed"), b"").expect("write");
        let memo = memo_path(dir.path(), Path::new("hermetic.yaml"));
        assert_eq!(parse(&memo, SOURCE), node::parse(SOURCE));
    }
}

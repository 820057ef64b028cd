//! The REAPI `Action` that stands for a hermetic action key, and its digest.
//!
//! REAPI keys its action cache by the digest of an `Action` message, and servers may read
//! that message from the CAS (BuildGrid does, to refresh the blobs it names, and fails the
//! lookup when the blob at the action digest is not an `Action`). So a hermetic key `K`
//! stands for a real, deterministic `Action`:
//!
//! ```text
//! Action {
//!   command_digest:    digest of Command { arguments: ["hermetic"],
//!                                          output_paths: ["hermetic/entry.json",
//!                                                         "hermetic/outputs.tar.zst"] }
//!   input_root_digest: digest of the empty Directory (the empty blob)
//!   salt:              "hermetic-action-v1\0" followed by the 32 raw bytes of K
//! }
//! ```
//!
//! The salt (the REAPI field for putting actions "into a separate cache namespace")
//! carries the key and separates hermetic's entries from every real build action. The
//! `Command` and the `Action` are uploaded to the CAS with each entry, so the action digest
//! names bytes any REAPI tool can fetch and decode. Protobuf encoding of these messages
//! (fields in tag order, no unknown fields, no maps) is deterministic, and the tests pin the
//! exact bytes.

use bazel_remote_apis::build::bazel::remote::execution::v2 as re;
use prost::Message;

use super::digests::{DigestFunction, ServerDigest};
use super::results::{ARCHIVE_PATH, ENTRY_PATH};
use crate::Digest;

/// What comes before the action key in the `Action`'s salt.
pub(crate) const ACTION_DOMAIN: &[u8] = b"hermetic-action-v1\0";

/// The encoded `Command` every hermetic `Action` names.
pub(crate) fn command_bytes() -> Vec<u8> {
    re::Command {
        arguments: vec!["hermetic".to_string()],
        output_paths: vec![ENTRY_PATH.to_string(), ARCHIVE_PATH.to_string()],
        ..Default::default()
    }
    .encode_to_vec()
}

/// The encoded `Action` that stands for `key` on a server speaking `function`.
pub(crate) fn action_bytes(function: DigestFunction, key: &Digest) -> Vec<u8> {
    let mut salt = Vec::with_capacity(ACTION_DOMAIN.len() + 32);
    salt.extend_from_slice(ACTION_DOMAIN);
    salt.extend_from_slice(key.as_bytes());
    re::Action {
        command_digest: Some(ServerDigest::of(function, &command_bytes()).to_proto()),
        input_root_digest: Some(ServerDigest::of(function, b"").to_proto()),
        salt,
        ..Default::default()
    }
    .encode_to_vec()
}

/// The action digest under which the result for `key` is stored: the digest of
/// [`action_bytes`].
pub(crate) fn action_digest(function: DigestFunction, key: &Digest) -> ServerDigest {
    ServerDigest::of(function, &action_bytes(function, key))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_action_is_deterministic_decodable_and_pinned() {
        let key = Digest::from_bytes([7; 32]);
        let bytes = action_bytes(DigestFunction::Sha256, &key);
        assert_eq!(bytes, action_bytes(DigestFunction::Sha256, &key));
        let action = re::Action::decode(&bytes[..]).unwrap();
        assert_eq!(&action.salt[..ACTION_DOMAIN.len()], ACTION_DOMAIN);
        assert_eq!(&action.salt[ACTION_DOMAIN.len()..], key.as_bytes());
        let command = re::Command::decode(&command_bytes()[..]).unwrap();
        assert_eq!(command.output_paths, [ENTRY_PATH, ARCHIVE_PATH]);
        assert_eq!(
            action.command_digest,
            Some(ServerDigest::of(DigestFunction::Sha256, &command_bytes()).to_proto())
        );
        // The exact bytes are the format: a change here orphans every stored entry. The
        // value was checked against Python's protobuf (`SerializeToString(deterministic=True)`
        // of the same messages) and hashlib.
        assert_eq!(
            action_digest(DigestFunction::Sha256, &key).to_string(),
            "96c17c01783ce8a3794813b0e347db55c1a66c7ac730d3bdf1d6c54ccb8efdec/191"
        );
    }

    #[test]
    fn keys_and_functions_give_distinct_digests() {
        let key = Digest::of(b"some action");
        let sha = action_digest(DigestFunction::Sha256, &key);
        assert_ne!(
            sha,
            action_digest(DigestFunction::Sha256, &Digest::of(b"other"))
        );
        assert_ne!(sha.hash, action_digest(DigestFunction::Blake3, &key).hash);
        // Not the key itself, nor the digest of its bytes.
        assert_ne!(&sha.hash, key.as_bytes());
        assert_ne!(
            sha,
            ServerDigest::of(DigestFunction::Sha256, key.as_bytes())
        );
    }
}

//! Digests in the server's function: [`DigestFunction`] negotiation and [`ServerDigest`].

use std::fmt;

use bazel_remote_apis::build::bazel::remote::execution::v2 as re;
use re::digest_function::Value as ProtoFunction;
use sha2::Digest as _;

use crate::Digest;

/// The digest function a [`RemoteStore`](super::RemoteStore) and its server agreed on.
///
/// hermetic's own digests are BLAKE3; a server that offers BLAKE3 gets them as they are, any
/// other server (BuildGrid, for one) gets SHA-256, and the store keeps a map from each
/// blob's BLAKE3 to its SHA-256 (see the [module documentation](super)).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DigestFunction {
    /// SHA-256, the REAPI default every server supports.
    Sha256,
    /// BLAKE3, hermetic's own digest function.
    Blake3,
}

impl DigestFunction {
    /// The REAPI name: `SHA256` or `BLAKE3`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Sha256 => "SHA256",
            Self::Blake3 => "BLAKE3",
        }
    }

    /// The value of the REAPI `DigestFunction.Value` enum.
    pub(crate) fn proto(self) -> i32 {
        match self {
            Self::Sha256 => ProtoFunction::Sha256 as i32,
            Self::Blake3 => ProtoFunction::Blake3 as i32,
        }
    }

    /// What ByteStream resource names put before the hash: nothing for SHA-256 (the
    /// function is implied by the hash length) and `blake3/` for BLAKE3, whose hashes have
    /// the same length as SHA-256's.
    pub(crate) fn resource_segment(self) -> &'static str {
        match self {
            Self::Sha256 => "",
            Self::Blake3 => "blake3/",
        }
    }

    /// Picks the function from a server's `CacheCapabilities.digest_functions`: BLAKE3 when
    /// offered, else SHA-256 when offered or when the list is empty (servers older than the
    /// field speak SHA-256). `None` when the server offers neither.
    pub(crate) fn negotiate(offered: &[i32]) -> Option<Self> {
        if offered.contains(&(ProtoFunction::Blake3 as i32)) {
            Some(Self::Blake3)
        } else if offered.is_empty() || offered.contains(&(ProtoFunction::Sha256 as i32)) {
            Some(Self::Sha256)
        } else {
            None
        }
    }

    /// Names of the digest functions in `offered`, for messages.
    pub(crate) fn names(offered: &[i32]) -> String {
        let names: Vec<String> = offered
            .iter()
            .map(|&v| match ProtoFunction::try_from(v) {
                Ok(f) => f.as_str_name().to_string(),
                Err(_) => format!("unknown({v})"),
            })
            .collect();
        names.join(", ")
    }

    /// The hash of `bytes` in this function.
    pub(crate) fn hash(self, bytes: &[u8]) -> [u8; 32] {
        match self {
            Self::Sha256 => sha2::Sha256::digest(bytes).into(),
            Self::Blake3 => *blake3::hash(bytes).as_bytes(),
        }
    }
}

impl fmt::Display for DigestFunction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A digest in the server's function: the hash and the size in bytes, as REAPI names blobs.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub(crate) struct ServerDigest {
    /// The hash (SHA-256 and BLAKE3 are both 32 bytes).
    pub(crate) hash: [u8; 32],
    /// The size in bytes.
    pub(crate) size: u64,
}

impl ServerDigest {
    /// The digest of `bytes` in `function`.
    pub(crate) fn of(function: DigestFunction, bytes: &[u8]) -> Self {
        Self {
            hash: function.hash(bytes),
            size: bytes.len() as u64,
        }
    }

    /// The digest of `bytes`, whose BLAKE3 `blake3` the caller already verified (saves the
    /// second hash when the server speaks BLAKE3).
    pub(crate) fn of_verified(function: DigestFunction, bytes: &[u8], blake3: &Digest) -> Self {
        match function {
            DigestFunction::Blake3 => Self {
                hash: *blake3.as_bytes(),
                size: bytes.len() as u64,
            },
            DigestFunction::Sha256 => Self::of(function, bytes),
        }
    }

    /// Whether `bytes` are exactly the content this digest names.
    pub(crate) fn matches(&self, function: DigestFunction, bytes: &[u8]) -> bool {
        bytes.len() as u64 == self.size && function.hash(bytes) == self.hash
    }

    /// The hash as 64 lowercase hex digits.
    pub(crate) fn hex(&self) -> String {
        Digest::from_bytes(self.hash).to_hex()
    }

    /// The REAPI message.
    pub(crate) fn to_proto(self) -> re::Digest {
        re::Digest {
            hash: self.hex(),
            size_bytes: i64::try_from(self.size).unwrap_or(i64::MAX),
        }
    }

    /// Reads a REAPI digest sent by the server (untrusted): 64 hex digits and a size that is
    /// not negative.
    pub(crate) fn from_proto(digest: &re::Digest) -> Result<Self, String> {
        let hash: Digest = digest
            .hash
            .parse()
            .map_err(|e| format!("the digest hash {:?} is malformed: {e}", digest.hash))?;
        let size = u64::try_from(digest.size_bytes)
            .map_err(|_| format!("the digest size {} is negative", digest.size_bytes))?;
        Ok(Self {
            hash: *hash.as_bytes(),
            size,
        })
    }
}

impl fmt::Display for ServerDigest {
    /// `HASH/SIZE`, as in ByteStream resource names.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.hex(), self.size)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha256_matches_a_known_vector() {
        let d = ServerDigest::of(DigestFunction::Sha256, b"abc");
        assert_eq!(
            d.hex(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(d.size, 3);
        assert!(d.matches(DigestFunction::Sha256, b"abc"));
        assert!(!d.matches(DigestFunction::Sha256, b"abd"));
        assert!(!d.matches(DigestFunction::Blake3, b"abc"));
    }

    #[test]
    fn negotiation_prefers_blake3_and_defaults_to_sha256() {
        let sha = ProtoFunction::Sha256 as i32;
        let b3 = ProtoFunction::Blake3 as i32;
        let md5 = ProtoFunction::Md5 as i32;
        assert_eq!(
            DigestFunction::negotiate(&[sha, b3]),
            Some(DigestFunction::Blake3)
        );
        assert_eq!(
            DigestFunction::negotiate(&[sha]),
            Some(DigestFunction::Sha256)
        );
        assert_eq!(DigestFunction::negotiate(&[]), Some(DigestFunction::Sha256));
        assert_eq!(DigestFunction::negotiate(&[md5]), None);
        assert_eq!(DigestFunction::names(&[md5, 99]), "MD5, unknown(99)");
    }

    #[test]
    fn server_digests_from_the_wire_are_checked() {
        let good = ServerDigest::of(DigestFunction::Sha256, b"x");
        assert_eq!(ServerDigest::from_proto(&good.to_proto()), Ok(good));
        let short = re::Digest {
            hash: "abc".into(),
            size_bytes: 1,
        };
        assert!(
            ServerDigest::from_proto(&short)
                .unwrap_err()
                .contains("abc")
        );
        let negative = re::Digest {
            hash: good.hex(),
            size_bytes: -1,
        };
        assert!(
            ServerDigest::from_proto(&negative)
                .unwrap_err()
                .contains("negative")
        );
        assert_eq!(good.to_string(), format!("{}/1", good.hex()));
    }
}

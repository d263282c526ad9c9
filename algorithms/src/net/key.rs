//! The cluster key: a secret every node of a cluster shares, read from `--cluster-key-file`.

use super::Nonce;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use std::fmt;
use std::path::{Path, PathBuf};

type HmacSha256 = Hmac<Sha256>;

/// The shortest cluster key accepted, in bytes.
pub const MIN_KEY_LEN: usize = 16;

/// Why a cluster key could not be had.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("cannot read the cluster key file {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the cluster key file {} is empty", path.display())]
    Empty { path: PathBuf },
    #[error(
        "the cluster key file {} holds {len} bytes; a cluster key needs at least {min}",
        path.display()
    )]
    FileTooShort {
        path: PathBuf,
        len: usize,
        min: usize,
    },
    #[error("a cluster key of {len} bytes is too short; it needs at least {min}")]
    TooShort { len: usize, min: usize },
}

/// A secret shared by the nodes of a cluster; every frame is tagged with an HMAC-SHA256
/// under it. Its `Debug` shows the length only.
#[derive(Clone)]
pub struct ClusterKey {
    /// HMAC-SHA256 with the key absorbed, cloned for every tag.
    mac: HmacSha256,
    len: usize,
}

impl ClusterKey {
    /// A key of these bytes, at least [`MIN_KEY_LEN`] of them.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, KeyError> {
        let too_short = KeyError::TooShort {
            len: bytes.len(),
            min: MIN_KEY_LEN,
        };
        if bytes.len() < MIN_KEY_LEN {
            return Err(too_short);
        }
        // HMAC takes a key of any length, so this never fails.
        let mac = HmacSha256::new_from_slice(bytes).map_err(|_| too_short)?;
        Ok(ClusterKey {
            mac,
            len: bytes.len(),
        })
    }

    /// The key in the file at `path`: its bytes, less one trailing `\n` or `\r\n`. An empty
    /// file, or one shorter than [`MIN_KEY_LEN`] bytes, is an error naming the file.
    pub fn load(path: impl AsRef<Path>) -> Result<Self, KeyError> {
        let path = path.as_ref();
        let content = std::fs::read(path).map_err(|source| KeyError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let key = strip_newline(&content);
        if key.is_empty() {
            return Err(KeyError::Empty {
                path: path.to_path_buf(),
            });
        }
        if key.len() < MIN_KEY_LEN {
            return Err(KeyError::FileTooShort {
                path: path.to_path_buf(),
                len: key.len(),
                min: MIN_KEY_LEN,
            });
        }
        ClusterKey::from_bytes(key)
    }

    /// The key's length in bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Always false: a key has at least [`MIN_KEY_LEN`] bytes.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The tag of frame number `seq` bound to `nonce`; `signed` is the frame before its tag.
    pub(crate) fn tag(&self, nonce: &Nonce, seq: u64, signed: &[u8]) -> [u8; 32] {
        self.mac(nonce, seq, signed).finalize().into_bytes().into()
    }

    /// Whether `tag` is the tag of frame number `seq` bound to `nonce`, compared in constant
    /// time.
    pub(crate) fn verify(&self, nonce: &Nonce, seq: u64, signed: &[u8], tag: &[u8]) -> bool {
        self.mac(nonce, seq, signed).verify_slice(tag).is_ok()
    }

    fn mac(&self, nonce: &Nonce, seq: u64, signed: &[u8]) -> HmacSha256 {
        let mut mac = self.mac.clone();
        mac.update(nonce);
        mac.update(&seq.to_be_bytes());
        mac.update(signed);
        mac
    }
}

impl fmt::Debug for ClusterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ClusterKey(<{} bytes>)", self.len)
    }
}

/// `content` less one trailing `\n` or `\r\n`.
fn strip_newline(content: &[u8]) -> &[u8] {
    match content.strip_suffix(b"\n") {
        Some(line) => line.strip_suffix(b"\r").unwrap_or(line),
        None => content,
    }
}

//! How adapters are addressed: by the SHA-256 of their file, or by the file's stem.

use std::path::Path;

use sha2::{Digest, Sha256};

use crate::{Error, Result};

/// The extension of adapter files in an adapter directory.
pub const FILE_EXTENSION: &str = "safetensors";

/// An adapter's content id: the lowercase hex SHA-256 of its file bytes (64 characters).
pub fn content_id(file: &[u8]) -> String {
    Sha256::digest(file)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Whether `path` names an adapter file (its extension is [`FILE_EXTENSION`]).
pub fn is_adapter_file(path: &Path) -> bool {
    path.extension().is_some_and(|e| e == FILE_EXTENSION)
}

/// An adapter's human name: the stem of its file (`style.safetensors` → `style`).
pub fn name_from_path(path: &Path) -> Result<&str> {
    path.file_stem()
        .and_then(|s| s.to_str())
        .filter(|s| !s.is_empty())
        .ok_or_else(|| Error::BadName {
            path: path.to_path_buf(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reference values from the SHA-256 specification (FIPS 180-2, "abc") and of the empty
    /// input.
    #[test]
    fn content_id_is_lowercase_hex_sha256() {
        assert_eq!(
            content_id(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(
            content_id(b""),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }

    #[test]
    fn names_are_file_stems() {
        assert_eq!(
            name_from_path(Path::new("/a/style.safetensors")).unwrap(),
            "style"
        );
        assert!(is_adapter_file(Path::new("/a/style.safetensors")));
        assert!(!is_adapter_file(Path::new("/a/style.json")));
        assert!(matches!(
            name_from_path(Path::new("/")),
            Err(Error::BadName { .. })
        ));
    }

    #[cfg(unix)]
    #[test]
    fn a_stem_that_is_not_utf8_is_refused() {
        use std::os::unix::ffi::OsStrExt;
        let p = Path::new(std::ffi::OsStr::from_bytes(b"/a/\xff.safetensors"));
        assert!(matches!(name_from_path(p), Err(Error::BadName { .. })));
    }
}

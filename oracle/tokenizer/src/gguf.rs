//! A minimal reader of GGUF metadata (the key/value section at the start of the file).
//!
//! Reads the header and every metadata key/value (GGUF versions 2 and 3, little-endian) and
//! stops before the tensor descriptions: nothing else of the model is loaded. Lengths read
//! from the file are bounded before anything is allocated, so a corrupt file yields
//! [`Error::Malformed`] instead of a huge allocation.

use std::{
    collections::BTreeMap,
    fs::File,
    io::{BufReader, Read},
    path::Path,
};

use crate::{Error, Result};

const MAGIC: &[u8; 4] = b"GGUF";
/// Upper bound on any string (a chat template is a few KB; 16 MiB is generous).
const MAX_STRING: u64 = 16 << 20;
/// Upper bound on any array length (vocabularies are at most a few hundred thousand).
const MAX_ARRAY: u64 = 1 << 24;
/// Upper bound on the number of metadata keys.
const MAX_KEYS: u64 = 1 << 16;

/// A metadata value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// Any of the integer types (u8 … i64), widened; u64 values above `i64::MAX` are refused.
    Int(i64),
    /// `f32` or `f64`, widened.
    Float(f64),
    /// A boolean.
    Bool(bool),
    /// A UTF-8 string.
    String(String),
    /// An array of values (all of one type).
    Array(Vec<Value>),
}

impl Value {
    /// The integer value, if this is an integer.
    pub fn as_i64(&self) -> Option<i64> {
        match self {
            Value::Int(v) => Some(*v),
            _ => None,
        }
    }

    /// The string, if this is a string.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(s) => Some(s),
            _ => None,
        }
    }
}

/// The metadata of a GGUF file: version and key/value pairs.
#[derive(Debug, Clone, Default)]
pub struct Metadata {
    /// GGUF format version (2 or 3).
    pub version: u32,
    /// Number of tensors the file declares (their descriptions are not read).
    pub tensor_count: u64,
    /// All metadata key/value pairs.
    pub values: BTreeMap<String, Value>,
}

impl Metadata {
    /// Reads the metadata section of the GGUF file at `path`.
    pub fn read_file(path: &Path) -> Result<Self> {
        let shown = path.display().to_string();
        let file = File::open(path).map_err(|source| Error::Io {
            path: shown.clone(),
            source,
        })?;
        Self::read(&mut BufReader::with_capacity(1 << 20, file)).map_err(|e| match e {
            ReadError::Io(source) if source.kind() != std::io::ErrorKind::UnexpectedEof => {
                Error::Io {
                    path: shown,
                    source,
                }
            }
            ReadError::Io(_) => Error::Malformed {
                path: shown,
                reason: "file ends inside the metadata (truncated?)".into(),
            },
            ReadError::Bad(reason) => Error::Malformed {
                path: shown,
                reason,
            },
        })
    }

    fn read(r: &mut impl Read) -> Result<Self, ReadError> {
        let mut magic = [0u8; 4];
        r.read_exact(&mut magic)?;
        if &magic != MAGIC {
            return Err(ReadError::Bad(format!(
                "bad magic {magic:?}, expected \"GGUF\""
            )));
        }
        let version = read_u32(r)?;
        if !(2..=3).contains(&version) {
            return Err(ReadError::Bad(format!(
                "unsupported GGUF version {version}"
            )));
        }
        let tensor_count = read_u64(r)?;
        let kv_count = read_u64(r)?;
        if kv_count > MAX_KEYS {
            return Err(ReadError::Bad(format!("{kv_count} metadata keys")));
        }
        let mut values = BTreeMap::new();
        for _ in 0..kv_count {
            let key = read_string(r)?;
            let ty = read_u32(r)?;
            let value = read_value(r, ty, 0)
                .map_err(|e| e.context(&format!("reading value of key `{key}`")))?;
            values.insert(key, value);
        }
        Ok(Self {
            version,
            tensor_count,
            values,
        })
    }

    /// The value of `key`, if present.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.values.get(key)
    }

    /// The string value of `key`.
    pub fn string(&self, key: &'static str) -> Result<&str> {
        self.get(key)
            .and_then(Value::as_str)
            .ok_or(Error::MissingKey {
                key,
                expected: "a string",
            })
    }

    /// The string-array value of `key`.
    pub fn string_array(&self, key: &'static str) -> Result<Vec<&str>> {
        match self.get(key) {
            Some(Value::Array(items)) => items.iter().map(Value::as_str).collect(),
            _ => None,
        }
        .ok_or(Error::MissingKey {
            key,
            expected: "a string array",
        })
    }
}

enum ReadError {
    Io(std::io::Error),
    Bad(String),
}

impl ReadError {
    fn context(self, what: &str) -> Self {
        match self {
            ReadError::Bad(reason) => ReadError::Bad(format!("{what}: {reason}")),
            io => io,
        }
    }
}

impl From<std::io::Error> for ReadError {
    fn from(e: std::io::Error) -> Self {
        ReadError::Io(e)
    }
}

fn read_array<const N: usize>(r: &mut impl Read) -> Result<[u8; N], ReadError> {
    let mut b = [0u8; N];
    r.read_exact(&mut b)?;
    Ok(b)
}

fn read_u32(r: &mut impl Read) -> Result<u32, ReadError> {
    Ok(u32::from_le_bytes(read_array(r)?))
}

fn read_u64(r: &mut impl Read) -> Result<u64, ReadError> {
    Ok(u64::from_le_bytes(read_array(r)?))
}

fn read_string(r: &mut impl Read) -> Result<String, ReadError> {
    let len = read_u64(r)?;
    if len > MAX_STRING {
        return Err(ReadError::Bad(format!("string of {len} bytes")));
    }
    let mut buf = vec![0u8; len as usize];
    r.read_exact(&mut buf)?;
    String::from_utf8(buf).map_err(|_| ReadError::Bad("string is not UTF-8".into()))
}

fn read_value(r: &mut impl Read, ty: u32, depth: u32) -> Result<Value, ReadError> {
    Ok(match ty {
        0 => Value::Int(u8::from_le_bytes(read_array(r)?).into()),
        1 => Value::Int(i8::from_le_bytes(read_array(r)?).into()),
        2 => Value::Int(u16::from_le_bytes(read_array(r)?).into()),
        3 => Value::Int(i16::from_le_bytes(read_array(r)?).into()),
        4 => Value::Int(read_u32(r)?.into()),
        5 => Value::Int(i32::from_le_bytes(read_array(r)?).into()),
        6 => Value::Float(f32::from_le_bytes(read_array(r)?).into()),
        7 => match read_array::<1>(r)?[0] {
            0 => Value::Bool(false),
            1 => Value::Bool(true),
            b => return Err(ReadError::Bad(format!("bool byte {b}"))),
        },
        8 => Value::String(read_string(r)?),
        9 => {
            if depth > 0 {
                return Err(ReadError::Bad("nested arrays are not supported".into()));
            }
            let item_ty = read_u32(r)?;
            let len = read_u64(r)?;
            if len > MAX_ARRAY {
                return Err(ReadError::Bad(format!("array of {len} items")));
            }
            let mut items = Vec::with_capacity(len as usize);
            for _ in 0..len {
                items.push(read_value(r, item_ty, depth + 1)?);
            }
            Value::Array(items)
        }
        10 => {
            let v = read_u64(r)?;
            Value::Int(
                i64::try_from(v).map_err(|_| ReadError::Bad(format!("u64 {v} out of range")))?,
            )
        }
        11 => Value::Int(i64::from_le_bytes(read_array(r)?)),
        12 => Value::Float(f64::from_le_bytes(read_array(r)?)),
        other => return Err(ReadError::Bad(format!("unknown value type {other}"))),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn string(s: &str) -> Vec<u8> {
        let mut v = (s.len() as u64).to_le_bytes().to_vec();
        v.extend_from_slice(s.as_bytes());
        v
    }

    fn sample() -> Vec<u8> {
        let mut f = b"GGUF".to_vec();
        f.extend(3u32.to_le_bytes());
        f.extend(0u64.to_le_bytes()); // tensors
        f.extend(3u64.to_le_bytes()); // keys
        f.extend(string("a.name"));
        f.extend(8u32.to_le_bytes());
        f.extend(string("smol"));
        f.extend(string("a.count"));
        f.extend(4u32.to_le_bytes());
        f.extend(49152u32.to_le_bytes());
        f.extend(string("a.list"));
        f.extend(9u32.to_le_bytes());
        f.extend(8u32.to_le_bytes());
        f.extend(2u64.to_le_bytes());
        f.extend(string("x"));
        f.extend(string("y z"));
        f
    }

    #[test]
    fn reads_keys_of_every_kind_used_by_tokenizers() {
        let meta = Metadata::read(&mut sample().as_slice()).ok().unwrap();
        assert_eq!(meta.version, 3);
        assert_eq!(meta.string("a.name").unwrap(), "smol");
        assert_eq!(meta.get("a.count").and_then(Value::as_i64), Some(49152));
        assert_eq!(meta.string_array("a.list").unwrap(), vec!["x", "y z"]);
        assert!(matches!(
            meta.string("a.count"),
            Err(Error::MissingKey { key: "a.count", .. })
        ));
    }

    #[test]
    fn truncated_or_bad_files_are_refused() {
        let full = sample();
        for cut in 0..full.len() {
            assert!(Metadata::read(&mut &full[..cut]).is_err(), "cut at {cut}");
        }
        let mut bad = full.clone();
        bad[0] = b'X';
        assert!(matches!(
            Metadata::read(&mut bad.as_slice()),
            Err(ReadError::Bad(_))
        ));
        let mut huge = full;
        // Length of the first key set to 2^40: refused before allocating.
        huge[24..32].copy_from_slice(&(1u64 << 40).to_le_bytes());
        assert!(matches!(
            Metadata::read(&mut huge.as_slice()),
            Err(ReadError::Bad(_))
        ));
    }
}

use std::path::PathBuf;

/// Errors of loading the configuration.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The config file could not be read (a path given with `--config` must exist).
    #[error(
        "cannot read config file {path}: {source}; fix the path given with --config or OPENLEDGER_CONFIG"
    )]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The config file is not valid TOML, has an unknown table or key, or a value of the wrong
    /// type; the message names the key and its line.
    #[error("config file {path}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// The TOML parser's message, naming the key.
        message: String,
    },
    /// A setting parsed but its value is refused.
    #[error("invalid setting `{key}`: {reason}")]
    Invalid {
        /// The setting, as `table.key`.
        key: &'static str,
        /// Why it is refused.
        reason: String,
    },
    /// The settings cannot be written as TOML (a path that is not UTF-8).
    #[error("cannot print the settings as TOML: {reason}")]
    Print {
        /// The TOML serializer's message.
        reason: String,
    },
}

/// Result with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

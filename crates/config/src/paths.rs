//! Process-wide paths, read from the environment once by the binary.

use std::path::PathBuf;

use openledger_engine::DEFAULT_MODEL_FILE;

/// Where this machine keeps shared files. Library defaults never read the environment; the
/// binary reads these with [`Paths::from_env`] and the loader passes them in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Paths {
    /// Directory of model files: `$OPENLEDGER_MODEL_DIR`, else `$OPENLEDGER_HOME/models`, else
    /// `~/.cache/openledger/models` (where `scripts/fetch-model.sh` puts the model).
    pub model_dir: PathBuf,
}

impl Paths {
    /// The paths from `OPENLEDGER_MODEL_DIR`, `OPENLEDGER_HOME` and `HOME`.
    pub fn from_env() -> Self {
        Self {
            model_dir: openledger_engine::default_model_dir(),
        }
    }

    /// The oracle's default model: [`DEFAULT_MODEL_FILE`] in [`Paths::model_dir`].
    pub fn default_model_path(&self) -> PathBuf {
        self.model_dir.join(DEFAULT_MODEL_FILE)
    }
}

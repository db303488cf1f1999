//! Configuration of `earshotd serve`: command-line flags, then `EARSHOT_*`
//! environment variables, then an optional TOML file, then defaults.
//!
//! ```toml
//! # earshot.toml
//! data_dir = "/var/lib/earshot"
//! http = "0.0.0.0:8080"
//! database_url = "postgres://earshot:secret@localhost/earshot"   # default: SQLite in data_dir
//! session_hours = 12
//! ```

use anyhow::Context as _;
use serde::Deserialize;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// The `--config` file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigFile {
    /// Where the embedded database and the recordings live.
    pub data_dir: Option<PathBuf>,
    /// Address of the HTTP API.
    pub http: Option<SocketAddr>,
    /// `postgres://…` to use PostgreSQL instead of the embedded SQLite.
    pub database_url: Option<String>,
    /// How long a log-in lasts, in hours.
    pub session_hours: Option<u32>,
}

impl ConfigFile {
    /// Reads `path`.
    pub fn read(path: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        toml::from_str(&text).with_context(|| format!("reading {}", path.display()))
    }
}

//! Configuration of `earshotd serve`: command-line flags, then `EARSHOT_*`
//! environment variables, then an optional TOML file, then defaults.
//!
//! ```toml
//! # earshot.toml
//! data_dir = "/var/lib/earshot"
//! http = "0.0.0.0:8080"
//! database_url = "postgres://earshot:secret@localhost/earshot"   # default: SQLite in data_dir
//! session_hours = 12
//! sip = "0.0.0.0:5060"          # SIP over UDP and TCP; off when absent
//! rtp_ports = "20000-20999"      # RTP for the media relay
//! sip_public = "203.0.113.5:5060"  # where phones register, when not `sip` (Kamailio in front)
//! sip_trusted_proxies = ["10.0.0.5"]  # Kamailio's address as the instance sees it: not limited itself
//! sip_tls = "0.0.0.0:5061"      # SIP over TLS too, its calls' media SRTP; off when absent
//! sip_tls_cert = "/etc/earshot/sip.crt"   # PEM chain, read again when it changes
//! sip_tls_key = "/etc/earshot/sip.key"
//!
//! [trunk]
//! uri = "sip:carrier.example.net:5060"   # where calls to outside numbers go, and whose calls come in
//!
//! [recordings]                   # default: on the local disk, under data_dir/recordings
//! store = "s3"                   # credentials: AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY
//! endpoint = "https://s3.eu-west-1.amazonaws.com"
//! bucket = "acme-recordings"
//! region = "eu-west-1"
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
    /// Where to serve SIP (UDP and TCP).
    pub sip: Option<SocketAddr>,
    /// RTP ports, `LOW-HIGH`.
    pub rtp_ports: Option<String>,
    /// The SIP address phones register at, when not `sip` (an edge proxy).
    pub sip_public: Option<SocketAddr>,
    /// The SIP proxies in front, by IP (never limited or blocked; the
    /// client behind them the address they name in `X-Earshot-Client`).
    pub sip_trusted_proxies: Option<Vec<std::net::IpAddr>>,
    /// Where to serve SIP over TLS too.
    pub sip_tls: Option<SocketAddr>,
    /// Its certificate chain (PEM).
    pub sip_tls_cert: Option<PathBuf>,
    /// Its private key (PEM).
    pub sip_tls_key: Option<PathBuf>,
    /// The carrier.
    pub trunk: Option<Trunk>,
    /// Where recordings are kept.
    pub recordings: Option<crate::store::StoreConfig>,
}

/// The `[trunk]` section: the carrier for external numbers.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Trunk {
    /// The carrier's SIP URI, e.g. `sip:carrier.example.net:5060`.
    pub uri: String,
}

/// Parses `LOW-HIGH` (an even number of ports at least 4 apart, above 1023).
pub fn parse_port_range(text: &str) -> anyhow::Result<std::ops::RangeInclusive<u16>> {
    let (low, high) = text.split_once('-').context("RTP ports are written LOW-HIGH, e.g. 20000-20999")?;
    let low: u16 = low.trim().parse().context("the low RTP port is not a port number")?;
    let high: u16 = high.trim().parse().context("the high RTP port is not a port number")?;
    anyhow::ensure!(
        low >= 1024 && high >= low + 3,
        "RTP ports {low}-{high}: need at least 4 ports above 1023"
    );
    Ok(low..=high)
}

impl ConfigFile {
    /// Reads `path`.
    pub fn read(path: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        toml::from_str(&text).with_context(|| format!("reading {}", path.display()))
    }
}

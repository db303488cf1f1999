//! `earshot-client`: everything the Earshot desktop app does, with no
//! dependency on Tauri (STYLE.md: the Tauri crate is a thin shell over this).
//!
//! - [`app`]: the app as the ui sees it, one method per request; the Tauri
//!   shell only calls these.
//! - [`view`]: what the ui shows, as plain data (types generated for TypeScript).
//! - [`session`]: log in to a server; the token lives only in the OS keyring;
//!   an ended session sends the user back to log-in with the service's words.
//! - [`api`]: the REST API, every refusal a [`ClientError`] with a stable code.
//! - [`history`]: the call history with rights enforced locally by
//!   `earshot-policy` from the synced snapshot, re-decided at once when a
//!   settings change arrives (SPEC §7).
//! - [`events`]: the push feed, reconnecting with back-off.
//! - [`cache`]: the last snapshot and the history seen, in SQLite, for an
//!   instant start and read-only work offline.
//! - [`player`]: a recording played over HTTP ranges through `cpal`.
//! - [`download`]: a recording to a file, all or nothing.
//!
//! ```no_run
//! # async fn demo() -> earshot_client::Result<()> {
//! use earshot_client::{History, Keyring, KeyringBackend, SignedIn};
//! use earshot_policy::AppContext;
//!
//! KeyringBackend::SecretService.install();
//! let keyring = Keyring::new("earshot");
//! let me = SignedIn::log_in(&keyring, "127.0.0.1:8080", "ada@acme.example", "password").await?;
//! let snapshot = me.sync().await?;
//! let mut history = History::new(&snapshot, AppContext::Calling);
//! history.extend(me.api().calls(&Default::default()).await?);
//! # Ok(()) }
//! ```
//!
//! **Invariant**: no rule is decided here; every right comes from
//! `earshot-policy`, the same code the service runs.

pub mod api;
pub mod app;
pub mod audio;
pub mod cache;
pub mod call_audio;
pub mod deep_link;
pub mod device_test;
pub mod download;
pub mod error;
pub mod events;
pub mod history;
pub mod player;
pub mod ringer;
pub mod session;
pub mod softphone;
pub mod stretch;
pub mod view;

pub use api::Api;
pub use audio::AudioDevice;
pub use cache::{Account, Cache};
pub use error::{ClientError, Result};
pub use events::Feed;
pub use history::{History, Refiltered};
pub use player::Player;
pub use session::{Keyring, KeyringBackend, SignedIn};

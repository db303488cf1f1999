//! Signing in: the token lives only in the OS keyring (`keyring` 3), never
//! in a file. Logging out, or the service saying the session ended (expired,
//! revoked, the user disabled), removes it, and the app goes back to log-in
//! with the service's explanation.

use crate::api::Api;
use crate::error::{ClientError, Result};
use earshot_api::SyncSnapshot;
use earshot_policy::User;

/// Which OS keyring holds tokens.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyringBackend {
    /// The desktop's Secret Service (GNOME Keyring, KWallet) over D-Bus: kept across log-ins.
    SecretService,
    /// The kernel's keyring (keyutils): kept for the login session.
    Kernel,
}

impl KeyringBackend {
    /// The Secret Service when one answers on D-Bus, else the kernel keyring;
    /// installed. A desktop session has the first; a bare X server or a
    /// server-side session only the second.
    pub fn detect_and_install() -> Self {
        if std::env::var_os("DBUS_SESSION_BUS_ADDRESS").is_some() {
            Self::SecretService.install();
            let answer = keyring::Entry::new("earshot-probe", "probe").and_then(|entry| entry.get_password());
            if matches!(answer, Ok(_) | Err(keyring::Error::NoEntry)) {
                return Self::SecretService;
            }
            tracing::info!("no Secret Service on D-Bus: tokens go to the kernel keyring");
        }
        Self::Kernel.install();
        Self::Kernel
    }

    /// Makes this backend the one every [`Keyring`] uses, for the whole process.
    pub fn install(self) {
        match self {
            Self::SecretService => {
                keyring::set_default_credential_builder(keyring::secret_service::default_credential_builder());
            }
            Self::Kernel => {
                keyring::set_default_credential_builder(keyring::keyutils::default_credential_builder());
            }
        }
    }
}

/// The tokens of one app installation in the OS keyring, one per server and user.
#[derive(Clone, Debug)]
pub struct Keyring {
    service: String,
}

impl Keyring {
    /// Tokens under the keyring service name `service` (the app uses `earshot`).
    #[must_use]
    pub fn new(service: impl Into<String>) -> Self {
        Self { service: service.into() }
    }

    /// Where this device's SIP credentials are kept, beside the tokens.
    #[must_use]
    pub fn sip(&self) -> Self {
        Self { service: format!("{}-sip", self.service) }
    }

    fn entry(&self, server: &str, email: &str) -> Result<keyring::Entry> {
        Ok(keyring::Entry::new(&self.service, &format!("{} on {server}", email.trim().to_lowercase()))?)
    }

    /// Keeps `token`.
    pub fn save(&self, server: &str, email: &str, token: &str) -> Result<()> {
        match self.entry(server, email)?.set_password(token) {
            // The kernel keyring of a session that has none of its own takes
            // the key but cannot find it again to link it.
            Err(keyring::Error::NoEntry) => Err(ClientError::Keyring(
                "this session's keyring cannot keep the sign-in. Start Earshot from a desktop session \
                 (with GNOME Keyring or KWallet), or under `keyctl session -`"
                    .into(),
            )),
            result => Ok(result?),
        }
    }

    /// The token kept for this server and user, if any.
    pub fn load(&self, server: &str, email: &str) -> Result<Option<String>> {
        match self.entry(server, email)?.get_password() {
            Ok(token) => Ok(Some(token)),
            Err(keyring::Error::NoEntry) => Ok(None),
            Err(error) => Err(error.into()),
        }
    }

    /// Removes the token (nothing to remove is fine).
    pub fn forget(&self, server: &str, email: &str) -> Result<()> {
        match self.entry(server, email)?.delete_credential() {
            Ok(()) | Err(keyring::Error::NoEntry) => Ok(()),
            Err(error) => Err(error.into()),
        }
    }
}

/// A signed-in user: the connection, and where their token is kept.
#[derive(Clone, Debug)]
pub struct SignedIn {
    api: Api,
    email: String,
    keyring: Keyring,
    /// Who is signed in, as the service said at log-in.
    pub user: User,
}

impl SignedIn {
    /// Logs in and keeps the token in the keyring.
    pub async fn log_in(keyring: &Keyring, server: &str, email: &str, password: &str) -> Result<Self> {
        let (api, session) = Api::log_in(server, email, password).await?;
        keyring.save(api.server(), email, &session.token)?;
        Ok(Self { api, email: email.trim().to_lowercase(), keyring: keyring.clone(), user: session.user })
    }

    /// Signs in again with the token kept at the last log-in, checking it
    /// with the service; `None` when there is none. A token the service no
    /// longer takes is removed and reported as [`ClientError::SessionEnded`].
    pub async fn resume(
        keyring: &Keyring,
        server: &str,
        email: &str,
    ) -> Result<Option<(Self, SyncSnapshot)>> {
        let Some(token) = keyring.load(&crate::api::normalize_server(server)?, email)? else {
            return Ok(None);
        };
        let api = Api::with_token(server, token)?;
        let snapshot = match api.sync().await {
            Err(ended @ ClientError::SessionEnded { .. }) => {
                keyring.forget(api.server(), email)?;
                return Err(ended);
            }
            other => other?,
        };
        let user = snapshot.me.clone();
        Ok(Some((Self { api, email: email.trim().to_lowercase(), keyring: keyring.clone(), user }, snapshot)))
    }

    /// Signs in with the kept token without asking the service (it may be
    /// unreachable): the app opens from its cache at once, and the push
    /// feed finds out soon whether the token still holds. `user` is who the
    /// cached snapshot says is signed in.
    pub fn from_keyring(keyring: &Keyring, server: &str, email: &str, user: User) -> Result<Option<Self>> {
        let Some(token) = keyring.load(&crate::api::normalize_server(server)?, email)? else {
            return Ok(None);
        };
        let api = Api::with_token(server, token)?;
        Ok(Some(Self { api, email: email.trim().to_lowercase(), keyring: keyring.clone(), user }))
    }

    /// The connection, for calls this type does not wrap.
    #[must_use]
    pub const fn api(&self) -> &Api {
        &self.api
    }

    /// `GET /sync`; a refused token is forgotten.
    pub async fn sync(&self) -> Result<SyncSnapshot> {
        self.forget_if_ended(self.api.sync().await)
    }

    /// Removes the token when `result` says the session ended, and passes it on.
    pub fn forget_if_ended<T>(&self, result: Result<T>) -> Result<T> {
        if let Err(ClientError::SessionEnded { .. }) = &result {
            let _ = self.keyring.forget(self.api.server(), &self.email);
        }
        result
    }

    /// Logs out: the service ends the session and the token leaves the
    /// keyring, even when the service can't be reached.
    pub async fn log_out(self) -> Result<()> {
        let ended = self.api.log_out().await;
        self.keyring.forget(self.api.server(), &self.email)?;
        match ended {
            Ok(()) | Err(ClientError::SessionEnded { .. } | ClientError::Offline { .. }) => Ok(()),
            Err(error) => Err(error),
        }
    }
}

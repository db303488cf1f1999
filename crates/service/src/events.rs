//! Change notifications: what changed in which company, at which version.
//! Handlers publish after their transaction commits; `GET /api/v1/events`
//! forwards each one to the company's connected apps that may see it.

use earshot_policy::{CallId, CodeRefusal, CompanyId, RecordingState, UserId};
use serde::Serialize;
use tokio::sync::broadcast;

/// What changed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Change {
    /// Company settings.
    Settings,
    /// Users (including their own settings and groups).
    Users,
    /// Groups.
    Groups,
    /// Numbers or their call flows.
    Numbers,
    /// Contacts.
    Contacts,
    /// A call was added or changed.
    Call {
        /// Which call.
        call: CallId,
    },
    /// A live call's recording changed state (SPEC §6.2); sent to its parties.
    RecordingState {
        /// Who gets it.
        #[serde(skip)]
        to: Vec<UserId>,
        /// The live call's key (it has no id until it is stored).
        call: String,
        /// Recording, paused or off.
        state: RecordingState,
    },
    /// A keypad code was refused (SPEC §6.2); sent to the user who keyed it.
    RecordingRefused {
        /// Who gets it.
        #[serde(skip)]
        to: Vec<UserId>,
        /// The live call's key.
        call: String,
        /// Why.
        reason: CodeRefusal,
        /// Why, in a sentence for the app.
        detail: String,
    },
}

impl Change {
    /// The users this change is for, when it is not for the whole company.
    #[must_use]
    pub fn recipients(&self) -> Option<&[UserId]> {
        match self {
            Self::RecordingState { to, .. } | Self::RecordingRefused { to, .. } => Some(to),
            _ => None,
        }
    }
}

/// One change of one company.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ChangeEvent {
    /// The company.
    #[serde(skip)]
    pub company: CompanyId,
    /// The company's version after the change.
    pub version: i64,
    /// What changed.
    #[serde(flatten)]
    pub change: Change,
}

/// The service's change feed.
#[derive(Clone, Debug)]
pub struct Events {
    sender: broadcast::Sender<ChangeEvent>,
}

impl Events {
    /// A feed that keeps up to 4,096 changes for slow listeners.
    #[must_use]
    pub fn new() -> Self {
        Self { sender: broadcast::channel(4_096).0 }
    }

    /// Tells every listener.
    pub fn publish(&self, event: ChangeEvent) {
        // No listener is not an error: nobody is connected.
        let _ = self.sender.send(event);
    }

    /// A new listener.
    #[must_use]
    pub fn subscribe(&self) -> broadcast::Receiver<ChangeEvent> {
        self.sender.subscribe()
    }
}

impl Default for Events {
    fn default() -> Self {
        Self::new()
    }
}

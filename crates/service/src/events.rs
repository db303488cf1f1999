//! Change notifications: what changed in which company, at which version.
//! Handlers publish after their transaction commits; `GET /api/v1/events`
//! forwards each one to the company's connected apps that may see it.

use earshot_policy::CompanyId;
use serde::Serialize;
use tokio::sync::broadcast;

pub use earshot_api::Change;

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

//! The call history an app shows, with rights enforced locally (SPEC §7).
//!
//! Every call kept here was checked by `earshot-policy` against the synced
//! snapshot, in the app context it is shown in, and carries the rights
//! `policy` gave it ([`CallOut::stamp`]), not only the service's. When a
//! settings change arrives, [`History::apply`] re-decides every cached call at
//! once: a call that is no longer visible disappears, and a call whose
//! recording may no longer be played loses its player. The service enforces
//! again on every request; this is so the app never shows what it would
//! refuse.

use crate::error::{ClientError, Result};
use earshot_api::{CallOut, CallPage, SyncSnapshot};
use earshot_policy::{AppContext, Call, CallId, Direction, Recording, RecordingKind, Viewer};
use std::collections::HashMap;

/// What re-deciding the cache changed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Refiltered {
    /// Calls that are no longer visible, gone from the history.
    pub removed: Vec<CallId>,
    /// Calls still visible whose play or download right changed.
    pub rights_changed: Vec<CallId>,
}

/// One app context's cached history, newest first.
#[derive(Clone, Debug)]
pub struct History {
    app: AppContext,
    viewer: Viewer,
    calls: Vec<CallOut>,
    /// Where each call is in `calls`: a history holds 100,000 calls, and
    /// pages are merged and calls looked up by id all the time.
    index: HashMap<CallId, usize>,
    next_cursor: Option<String>,
    complete: bool,
}

impl History {
    /// An empty history of `app`, deciding from `snapshot`.
    #[must_use]
    pub fn new(snapshot: &SyncSnapshot, app: AppContext) -> Self {
        Self {
            app,
            viewer: snapshot.viewer(app),
            calls: Vec::new(),
            index: HashMap::new(),
            next_cursor: None,
            complete: false,
        }
    }

    /// The app context.
    #[must_use]
    pub const fn app(&self) -> AppContext {
        self.app
    }

    /// The calls, newest first.
    #[must_use]
    pub fn calls(&self) -> &[CallOut] {
        &self.calls
    }

    /// One cached call.
    #[must_use]
    pub fn call(&self, id: CallId) -> Option<&CallOut> {
        self.index.get(&id).map(|at| &self.calls[*at])
    }

    /// Where the next page starts; `None` before the first page and after the last.
    #[must_use]
    pub fn next_cursor(&self) -> Option<&str> {
        self.next_cursor.as_deref()
    }

    /// Whether every page has been fetched.
    #[must_use]
    pub const fn is_complete(&self) -> bool {
        self.complete
    }

    /// Adds a page the service sent. Each call is decided again locally:
    /// one the local rules would hide (the service was ahead of our snapshot,
    /// say) is left out, and the rights shown are `policy`'s.
    pub fn extend(&mut self, page: CallPage) {
        for call in page.calls {
            if self.viewer.can_see(&call.call) && !self.index.contains_key(&call.call.id) {
                self.index.insert(call.call.id, self.calls.len());
                self.calls.push(CallOut::stamp(&self.viewer, call.call));
            }
        }
        self.complete = page.next_cursor.is_none();
        self.next_cursor = page.next_cursor;
    }

    /// Adds or replaces one call the service pushed, in its place (newest
    /// first), decided locally like a page's. Returns whether it is shown.
    pub fn upsert(&mut self, call: CallOut) -> bool {
        if !self.viewer.can_see(&call.call) {
            return false;
        }
        let stamped = CallOut::stamp(&self.viewer, call.call);
        if let Some(at) = self.index.get(&stamped.call.id) {
            self.calls[*at] = stamped;
            return true;
        }
        let key = |c: &CallOut| std::cmp::Reverse((c.call.started_at, c.call.id));
        let at = self.calls.partition_point(|c| key(c) < key(&stamped));
        self.calls.insert(at, stamped);
        self.index = self.calls.iter().enumerate().map(|(at, call)| (call.call.id, at)).collect();
        true
    }

    /// Re-decides every cached call from a new snapshot (SPEC §7).
    ///
    /// Rights that widened can show calls the cache never had: the app then
    /// fetches the history again from the first page.
    pub fn apply(&mut self, snapshot: &SyncSnapshot) -> Refiltered {
        self.viewer = snapshot.viewer(self.app);
        let mut outcome = Refiltered::default();
        let viewer = &self.viewer;
        self.calls.retain_mut(|call| {
            if !viewer.can_see(&call.call) {
                outcome.removed.push(call.call.id);
                return false;
            }
            let stamped = CallOut::stamp(viewer, call.call.clone());
            if stamped.access != call.access {
                outcome.rights_changed.push(call.call.id);
                *call = stamped;
            }
            true
        });
        if !outcome.removed.is_empty() {
            self.index = self.calls.iter().enumerate().map(|(at, call)| (call.call.id, at)).collect();
        }
        outcome
    }

    /// The `kind` recording of a cached call.
    pub fn recording(&self, id: CallId, kind: RecordingKind) -> Result<&Recording> {
        self.call(id)
            .and_then(|out| out.call.recording_of(kind))
            .ok_or_else(|| ClientError::NotFound { detail: "This call has no such recording.".into() })
    }

    /// Whether the user may play this call's recording of `kind` now.
    #[must_use]
    pub fn may_play(&self, id: CallId, kind: RecordingKind) -> bool {
        self.call(id).is_some_and(|call| self.viewer.may_play(&call.call, kind))
    }

    /// Whether the user may download this call's recording of `kind` now.
    #[must_use]
    pub fn may_download(&self, id: CallId, kind: RecordingKind) -> bool {
        self.call(id).is_some_and(|call| self.viewer.may_download(&call.call, kind))
    }
}

/// Who the call was with, as a user would name them: the external number,
/// or for an internal call the other user's name.
#[must_use]
pub fn other_party(call: &Call, snapshot: &SyncSnapshot) -> Option<String> {
    match call.direction {
        Direction::Internal => call
            .parties
            .iter()
            .filter(|party| **party != snapshot.me.id)
            .find_map(|party| snapshot.users.iter().find(|user| user.id == *party))
            .map(|user| user.name.clone()),
        Direction::Inbound | Direction::Outbound => call.external_number.clone(),
    }
}

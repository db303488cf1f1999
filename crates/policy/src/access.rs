//! Who sees, plays and downloads which call (SPEC §4, §5, D3, D6–D8).
//!
//! [`Routing`] reads, once, which numbers are routed to which users and groups
//! (D6, D7). A [`Viewer`] is one user in one app context with everything a
//! decision needs already resolved, so deciding a call costs a few compares.

use crate::filter::{VisibilityFilter, VisibilityScope};
use crate::ids::{CompanyId, GroupId, NumberId, UserId};
use crate::model::{Call, Group, Number, RecordingKind, Role, User};
use crate::settings::{
    AppContext, CallVisibility, CompanySettings, EffectiveSettings, RecordingPlayback, effective_settings,
};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Which numbers are routed to which users and groups, read from the flows as
/// they are configured now (D6, D7).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Routing {
    by_user: BTreeMap<UserId, Vec<NumberId>>,
    by_group: BTreeMap<GroupId, Vec<NumberId>>,
}

impl Routing {
    /// Routing read from `numbers`' flows.
    #[must_use]
    pub fn from_numbers<'a>(numbers: impl IntoIterator<Item = &'a Number>) -> Self {
        let mut routing = Self::default();
        for number in numbers {
            for user in number.flow.routed_users() {
                routing.by_user.entry(user).or_default().push(number.id);
            }
            for group in number.flow.routed_groups() {
                routing.by_group.entry(group).or_default().push(number.id);
            }
        }
        for list in routing.by_user.values_mut().chain(routing.by_group.values_mut()) {
            list.sort_unstable();
            list.dedup();
        }
        routing
    }

    /// Numbers routed to `user` (*my numbers*), sorted.
    #[must_use]
    pub fn numbers_of_user(&self, user: UserId) -> &[NumberId] {
        self.by_user.get(&user).map_or(&[], Vec::as_slice)
    }

    /// Numbers routed to `group`, sorted.
    #[must_use]
    pub fn numbers_of_group(&self, group: GroupId) -> &[NumberId] {
        self.by_group.get(&group).map_or(&[], Vec::as_slice)
    }

    /// Numbers routed to any of `groups` (*group numbers*), sorted, without repeats.
    #[must_use]
    pub fn numbers_of_groups(&self, groups: &[GroupId]) -> Vec<NumberId> {
        let mut numbers: Vec<NumberId> =
            groups.iter().flat_map(|group| self.numbers_of_group(*group)).copied().collect();
        numbers.sort_unstable();
        numbers.dedup();
        numbers
    }
}

/// A company as the rules see it: settings, users, groups, numbers, and the
/// routing read from the numbers. What the service holds and the app syncs.
///
/// Built only through [`Company::new`], which refuses records of another
/// company (D8), and changed only through methods that keep the routing in
/// step with the flows (D7).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Company {
    id: CompanyId,
    settings: CompanySettings,
    users: Vec<User>,
    groups: Vec<Group>,
    numbers: Vec<Number>,
    routing: Routing,
}

/// A record handed to [`Company::new`] belongs to another company (D8).
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{record} belongs to company {belongs_to}, not to company {company}")]
pub struct ForeignRecord {
    /// The company being built.
    pub company: CompanyId,
    /// The company the record belongs to.
    pub belongs_to: CompanyId,
    /// Which record, e.g. "user 7".
    pub record: &'static str,
}

impl Company {
    /// A company of these parts; routing is read from `numbers`. Fails when
    /// any user, group or number belongs to another company.
    pub fn new(
        id: CompanyId,
        settings: CompanySettings,
        users: Vec<User>,
        groups: Vec<Group>,
        numbers: Vec<Number>,
    ) -> Result<Self, ForeignRecord> {
        let foreign = |belongs_to: CompanyId, record| {
            if belongs_to == id { Ok(()) } else { Err(ForeignRecord { company: id, belongs_to, record }) }
        };
        users.iter().try_for_each(|user| foreign(user.company, "a user"))?;
        groups.iter().try_for_each(|group| foreign(group.company, "a group"))?;
        numbers.iter().try_for_each(|number| foreign(number.company, "a number"))?;
        let routing = Routing::from_numbers(&numbers);
        Ok(Self { id, settings, users, groups, numbers, routing })
    }

    /// The company's id.
    #[must_use]
    pub const fn id(&self) -> CompanyId {
        self.id
    }

    /// Its settings.
    #[must_use]
    pub const fn settings(&self) -> &CompanySettings {
        &self.settings
    }

    /// Its users.
    #[must_use]
    pub fn users(&self) -> &[User] {
        &self.users
    }

    /// Its groups.
    #[must_use]
    pub fn groups(&self) -> &[Group] {
        &self.groups
    }

    /// Its numbers, with their flows.
    #[must_use]
    pub fn numbers(&self) -> &[Number] {
        &self.numbers
    }

    /// The routing read from the numbers' flows.
    #[must_use]
    pub const fn routing(&self) -> &Routing {
        &self.routing
    }

    /// Replaces the company's settings.
    pub fn set_settings(&mut self, settings: CompanySettings) {
        self.settings = settings;
    }

    /// The user with `id`, if the company has one.
    #[must_use]
    pub fn user(&self, id: UserId) -> Option<&User> {
        self.users.iter().find(|user| user.id == id)
    }

    /// User `id` of this company as a viewer in `app`; `None` if the company has no such user.
    #[must_use]
    pub fn viewer(&self, id: UserId, app: AppContext) -> Option<Viewer> {
        self.user(id).map(|user| Viewer::new(user, &self.settings, &self.routing, app))
    }
}

/// May a user play and download one recording of a call.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordingAccess {
    /// May play it (and the UI shows a player).
    pub play: bool,
    /// May download it as a `.wav`.
    pub download: bool,
}

/// Everything a user may do with a call.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallAccess {
    /// The call is in the user's history.
    pub visible: bool,
    /// The call's recording.
    pub recording: RecordingAccess,
    /// The call's voicemail.
    pub voicemail: RecordingAccess,
}

/// One user in one app context, ready to decide calls.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Viewer {
    company: CompanyId,
    user: UserId,
    role: Role,
    app: AppContext,
    settings: EffectiveSettings,
    /// Sorted: `can_see` searches it.
    my_numbers: Vec<NumberId>,
    /// Sorted: `can_see` searches it.
    group_numbers: Vec<NumberId>,
}

impl Viewer {
    /// `user` as a viewer in `app`, with their company's settings and routing.
    #[must_use]
    pub fn new(user: &User, company: &CompanySettings, routing: &Routing, app: AppContext) -> Self {
        Self {
            company: user.company,
            user: user.id,
            role: user.role,
            app,
            settings: effective_settings(user.role, &user.settings, company, app),
            my_numbers: routing.numbers_of_user(user.id).to_vec(),
            group_numbers: routing.numbers_of_groups(&user.groups),
        }
    }

    /// The user's company: calls of any other company are never visible (D8).
    #[must_use]
    pub const fn company(&self) -> CompanyId {
        self.company
    }

    /// The user.
    #[must_use]
    pub const fn user(&self) -> UserId {
        self.user
    }

    /// The user's role.
    #[must_use]
    pub const fn role(&self) -> Role {
        self.role
    }

    /// The app context.
    #[must_use]
    pub const fn app(&self) -> AppContext {
        self.app
    }

    /// The user's effective settings in this app context.
    #[must_use]
    pub const fn settings(&self) -> &EffectiveSettings {
        &self.settings
    }

    /// Numbers routed to the user (*my numbers*), sorted.
    #[must_use]
    pub fn my_numbers(&self) -> &[NumberId] {
        &self.my_numbers
    }

    /// Numbers routed to the user's groups (*group numbers*), sorted.
    #[must_use]
    pub fn group_numbers(&self) -> &[NumberId] {
        &self.group_numbers
    }

    /// The user is one of the call's parties (*own*, §4.1).
    #[must_use]
    pub fn is_own(&self, call: &Call) -> bool {
        call.parties.contains(&self.user)
    }

    /// The user is in the call's rang list (*rang*, §4.1).
    #[must_use]
    pub fn was_rung(&self, call: &Call) -> bool {
        call.rang.contains(&self.user)
    }

    /// Whether `call` is visible to the user (SPEC §4.2, D8). Admins see every call of their company.
    #[must_use]
    pub fn can_see(&self, call: &Call) -> bool {
        if call.company != self.company {
            return false;
        }
        let level = self.settings.call_visibility.value;
        if level == CallVisibility::All || self.is_own(call) {
            return true;
        }
        let Some(number) = call.number else {
            return false;
        };
        let mine = self.my_numbers.binary_search(&number).is_ok();
        let of_my_groups = self.group_numbers.binary_search(&number).is_ok();
        if call.status.is_missed_or_voicemail() && (mine || of_my_groups) {
            return true;
        }
        match level {
            CallVisibility::OwnAndMissed => false,
            CallVisibility::ViaGroups => of_my_groups,
            CallVisibility::GroupsAndNumbers | CallVisibility::All => mine || of_my_groups,
        }
    }

    /// Whether the user may play the call's recording of `kind` (SPEC §5, D3).
    /// False when the call has no such recording.
    #[must_use]
    pub fn may_play(&self, call: &Call, kind: RecordingKind) -> bool {
        call.audio_of(kind).is_some() && self.can_see(call) && self.playback_allows(call, kind)
    }

    /// Whether the user may download the call's recording of `kind` (SPEC §5):
    /// they may play it and their effective `can_download` is on.
    #[must_use]
    pub fn may_download(&self, call: &Call, kind: RecordingKind) -> bool {
        self.settings.can_download.value && self.may_play(call, kind)
    }

    /// Everything the user may do with `call`, decided at once.
    #[must_use]
    pub fn access(&self, call: &Call) -> CallAccess {
        if !self.can_see(call) {
            return CallAccess::default();
        }
        let rights = |kind| {
            let play = call.audio_of(kind).is_some() && self.playback_allows(call, kind);
            RecordingAccess { play, download: play && self.settings.can_download.value }
        };
        CallAccess {
            visible: true,
            recording: rights(RecordingKind::Call),
            voicemail: rights(RecordingKind::Voicemail),
        }
    }

    /// The visibility rule as a filter a database can run (see [`VisibilityFilter`]).
    #[must_use]
    pub fn visibility_filter(&self) -> VisibilityFilter {
        let scope = match self.settings.call_visibility.value {
            CallVisibility::All => VisibilityScope::Everything,
            level => {
                let mut routed: Vec<NumberId> =
                    self.my_numbers.iter().chain(&self.group_numbers).copied().collect();
                routed.sort_unstable();
                routed.dedup();
                let any_status = match level {
                    CallVisibility::OwnAndMissed => Vec::new(),
                    CallVisibility::ViaGroups => self.group_numbers.clone(),
                    CallVisibility::GroupsAndNumbers | CallVisibility::All => routed.clone(),
                };
                let missed_only =
                    routed.into_iter().filter(|number| any_status.binary_search(number).is_err()).collect();
                VisibilityScope::Restricted {
                    party: self.user,
                    numbers_any_status: any_status,
                    numbers_missed_or_voicemail: missed_only,
                }
            }
        };
        VisibilityFilter { company: self.company, scope }
    }

    fn playback_allows(&self, call: &Call, kind: RecordingKind) -> bool {
        match self.settings.recording_playback.value {
            RecordingPlayback::None => false,
            RecordingPlayback::OwnOnly => {
                self.is_own(call) || (kind == RecordingKind::Voicemail && self.was_rung(call))
            }
            RecordingPlayback::AllAvailable => true,
        }
    }
}

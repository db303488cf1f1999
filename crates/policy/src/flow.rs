//! Call flows: the step tree of a company number (SPEC §2), routing read from
//! it (D6), the walk an inbound call takes through it, and its validation.

use crate::ids::{GroupId, UserId};
use crate::keypad::Key;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

/// How deep menus may nest. Deeper trees are refused by [`Flow::validate`]
/// so that every walk and every recursive visit stays shallow.
pub const MAX_MENU_DEPTH: usize = 16;

/// The steps an inbound call to a number goes through, in order.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[cfg_attr(feature = "ts", ts(as = "Vec<Step>"))]
#[serde(transparent)]
pub struct Flow {
    /// The top-level steps.
    pub steps: Vec<Step>,
}

/// On the wire a flow is its list of steps (`serde(transparent)`, which
/// utoipa's derive does not read): an array of at least one step.
#[cfg(feature = "openapi")]
impl utoipa::PartialSchema for Flow {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::schema::ArrayBuilder::new()
            .items(utoipa::openapi::Ref::from_schema_name("Step"))
            .min_items(Some(1))
            .description(Some("The steps an inbound call to the number goes through, in order."))
            .into()
    }
}

#[cfg(feature = "openapi")]
impl utoipa::ToSchema for Flow {
    fn schemas(schemas: &mut Vec<(String, utoipa::openapi::RefOr<utoipa::openapi::schema::Schema>)>) {
        schemas.push(("Step".into(), <Step as utoipa::PartialSchema>::schema()));
        <Step as utoipa::ToSchema>::schemas(schemas);
    }
}

/// A menu's options: at least one key, each with its branch of steps.
#[cfg(feature = "openapi")]
fn menu_options() -> utoipa::openapi::schema::Object {
    use utoipa::openapi::schema::{ArrayBuilder, ObjectBuilder, Type};
    ObjectBuilder::new()
        .schema_type(Type::Object)
        .property_names(Some(<Key as utoipa::PartialSchema>::schema()))
        .additional_properties(Some(
            ArrayBuilder::new().items(utoipa::openapi::Ref::from_schema_name("Step")),
        ))
        .min_properties(Some(1))
        .description(Some("The branch for each key: at least one."))
        .build()
}

/// What a menu or announcement plays.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "snake_case")]
pub enum Prompt {
    /// Text spoken by the service's voice.
    Text(String),
    /// A named audio prompt.
    Audio(String),
}

/// How a ring group rings its members.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "snake_case")]
pub enum RingStrategy {
    /// Every member at once.
    #[default]
    Simultaneous,
    /// One member after another.
    RoundRobin,
}

const fn default_ring_timeout_s() -> u32 {
    20
}

const fn default_menu_timeout_s() -> u32 {
    5
}

/// One step of a call flow.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Step {
    /// Record the rest of this call (or not). Final for the call (D5).
    Record {
        /// Whether the call is recorded.
        enabled: bool,
    },
    /// Play a prompt.
    Announce {
        /// What to play.
        prompt: Prompt,
    },
    /// Play a prompt, collect one key and take that key's branch.
    Menu {
        /// What to play.
        prompt: Prompt,
        /// The branch for each key.
        #[cfg_attr(feature = "openapi", schema(schema_with = menu_options))]
        options: BTreeMap<Key, Vec<Step>>,
        /// The branch taken when no key (or a key with no branch) arrives in time.
        #[serde(default)]
        #[cfg_attr(feature = "openapi", schema(no_recursion))]
        timeout: Vec<Step>,
        /// Seconds to wait for a key.
        #[serde(default = "default_menu_timeout_s")]
        #[cfg_attr(feature = "openapi", schema(minimum = 1, maximum = 3600))]
        timeout_s: u32,
    },
    /// Ring every registered device of a user.
    RingUser {
        /// The user to ring.
        user: UserId,
        /// Seconds to ring before the flow goes on.
        #[serde(default = "default_ring_timeout_s")]
        #[cfg_attr(feature = "openapi", schema(minimum = 1, maximum = 3600))]
        timeout_s: u32,
    },
    /// Ring a group's members.
    RingGroup {
        /// The group to ring.
        group: GroupId,
        /// All at once, or one after another.
        #[serde(default)]
        strategy: RingStrategy,
        /// Seconds to ring before the flow goes on.
        #[serde(default = "default_ring_timeout_s")]
        #[cfg_attr(feature = "openapi", schema(minimum = 1, maximum = 3600))]
        timeout_s: u32,
    },
    /// Take a message. The call leaves the flow here.
    Voicemail {},
}

/// What a caller did at a menu.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MenuChoice {
    /// Pressed this key.
    Key(Key),
    /// Pressed nothing in time.
    Timeout,
}

impl fmt::Display for MenuChoice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Key(key) => write!(f, "key {key}"),
            Self::Timeout => f.write_str("no key"),
        }
    }
}

/// One part of a [`StepAddress`].
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AddressPart {
    /// The step at this index (from 0) of the current list.
    Step(usize),
    /// The branch of the menu just named, taken for this choice.
    Branch(MenuChoice),
}

/// Where a step sits in a flow: indexes into step lists, and the menu
/// branches between them. Shown to users 1-based: "step 2 › key 1 › step 1".
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct StepAddress(pub Vec<AddressPart>);

impl StepAddress {
    fn child(&self, part: AddressPart) -> Self {
        let mut parts = self.0.clone();
        parts.push(part);
        Self(parts)
    }
}

impl fmt::Display for StepAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, part) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(" › ")?;
            }
            match part {
                AddressPart::Step(index) => write!(f, "step {}", index + 1)?,
                AddressPart::Branch(choice) => write!(f, "{choice}")?,
            }
        }
        Ok(())
    }
}

impl Flow {
    /// A flow of these top-level steps.
    #[must_use]
    pub const fn new(steps: Vec<Step>) -> Self {
        Self { steps }
    }

    /// The step at `address`, if there is one.
    #[must_use]
    pub fn step_at(&self, address: &StepAddress) -> Option<&Step> {
        let (last, list) = address.0.split_last()?;
        let AddressPart::Step(index) = last else { return None };
        self.list_at(&StepAddress(list.to_vec()))?.get(*index)
    }

    /// The list of steps at `address`: the top level for the empty address,
    /// else a menu's branch (`… › step N › key K`).
    #[must_use]
    pub fn list_at(&self, address: &StepAddress) -> Option<&[Step]> {
        let mut steps: &[Step] = &self.steps;
        let mut parts = address.0.iter();
        while let Some(part) = parts.next() {
            let AddressPart::Step(index) = part else { return None };
            let Some(Step::Menu { options, timeout, .. }) = steps.get(*index) else { return None };
            steps = match parts.next()? {
                AddressPart::Branch(MenuChoice::Key(key)) => options.get(key)?,
                AddressPart::Branch(MenuChoice::Timeout) => timeout,
                AddressPart::Step(_) => return None,
            };
        }
        Some(steps)
    }

    /// Calls `visit` for every step of the tree, every branch included, parents before children.
    pub fn visit<'f>(&'f self, mut visit: impl FnMut(&StepAddress, &'f Step)) {
        fn walk<'f>(steps: &'f [Step], prefix: &StepAddress, visit: &mut impl FnMut(&StepAddress, &'f Step)) {
            for (index, step) in steps.iter().enumerate() {
                let address = prefix.child(AddressPart::Step(index));
                visit(&address, step);
                if let Step::Menu { options, timeout, .. } = step {
                    for (key, branch) in options {
                        walk(branch, &address.child(AddressPart::Branch(MenuChoice::Key(*key))), visit);
                    }
                    walk(timeout, &address.child(AddressPart::Branch(MenuChoice::Timeout)), visit);
                }
            }
        }
        walk(&self.steps, &StepAddress::default(), &mut visit);
    }

    /// Users this flow routes to: every `ring_user` anywhere in the tree, whichever branch (D6).
    #[must_use]
    pub fn routed_users(&self) -> BTreeSet<UserId> {
        let mut users = BTreeSet::new();
        self.visit(|_, step| {
            if let Step::RingUser { user, .. } = step {
                users.insert(*user);
            }
        });
        users
    }

    /// Groups this flow routes to: every `ring_group` anywhere in the tree, whichever branch (D6).
    #[must_use]
    pub fn routed_groups(&self) -> BTreeSet<GroupId> {
        let mut groups = BTreeSet::new();
        self.visit(|_, step| {
            if let Step::RingGroup { group, .. } = step {
                groups.insert(*group);
            }
        });
        groups
    }

    /// Checks the flow before it is saved: every user and group it names
    /// exists (`user_exists`, `group_exists`), menus have options, nothing
    /// sits after a voicemail, rings last a while, menus nest at most
    /// [`MAX_MENU_DEPTH`] deep. Returns every problem found, not just the first.
    pub fn validate(
        &self,
        user_exists: impl Fn(UserId) -> bool,
        group_exists: impl Fn(GroupId) -> bool,
    ) -> Result<(), Vec<FlowProblem>> {
        let mut problems = Vec::new();
        let mut problem = |at: &StepAddress, kind| problems.push(FlowProblem { at: at.clone(), kind });
        if self.steps.is_empty() {
            problem(&StepAddress::default(), FlowProblemKind::Empty);
        }
        self.visit(|address, step| {
            let depth = address.0.iter().filter(|part| matches!(part, AddressPart::Branch(_))).count();
            if depth > MAX_MENU_DEPTH {
                problem(address, FlowProblemKind::TooDeep);
            }
            match step {
                Step::RingUser { user, timeout_s } => {
                    if !user_exists(*user) {
                        problem(address, FlowProblemKind::UnknownUser(*user));
                    }
                    if *timeout_s == 0 {
                        problem(address, FlowProblemKind::ZeroTimeout);
                    }
                }
                Step::RingGroup { group, timeout_s, .. } => {
                    if !group_exists(*group) {
                        problem(address, FlowProblemKind::UnknownGroup(*group));
                    }
                    if *timeout_s == 0 {
                        problem(address, FlowProblemKind::ZeroTimeout);
                    }
                }
                Step::Menu { options, timeout_s, .. } => {
                    if options.is_empty() {
                        problem(address, FlowProblemKind::EmptyMenu);
                    }
                    if *timeout_s == 0 {
                        problem(address, FlowProblemKind::ZeroTimeout);
                    }
                }
                Step::Record { .. } | Step::Announce { .. } | Step::Voicemail {} => {}
            }
        });
        // Steps after a voicemail in the same list are never reached.
        self.visit_lists(&mut |prefix, steps| {
            if let Some(position) = steps.iter().position(|step| matches!(step, Step::Voicemail {}))
                && position + 1 < steps.len()
            {
                problem(&prefix.child(AddressPart::Step(position + 1)), FlowProblemKind::AfterVoicemail);
            }
        });
        if problems.is_empty() { Ok(()) } else { Err(problems) }
    }

    fn visit_lists<'f>(&'f self, visit: &mut impl FnMut(&StepAddress, &'f [Step])) {
        visit(&StepAddress::default(), &self.steps);
        self.visit(|address, step| {
            if let Step::Menu { options, timeout, .. } = step {
                for (key, branch) in options {
                    visit(&address.child(AddressPart::Branch(MenuChoice::Key(*key))), branch);
                }
                visit(&address.child(AddressPart::Branch(MenuChoice::Timeout)), timeout);
            }
        });
    }
}

/// A problem that makes a flow unfit to save.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FlowProblem {
    /// Where the problem is.
    pub at: StepAddress,
    /// What the problem is.
    pub kind: FlowProblemKind,
}

/// What is wrong with a flow.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[serde(tag = "problem", rename_all = "snake_case")]
#[non_exhaustive]
pub enum FlowProblemKind {
    /// The flow has no steps.
    #[error("the flow has no steps")]
    Empty,
    /// A `ring_user` names a user the company does not have.
    #[error("user {0} does not exist")]
    UnknownUser(UserId),
    /// A `ring_group` names a group the company does not have.
    #[error("group {0} does not exist")]
    UnknownGroup(GroupId),
    /// A menu has no options.
    #[error("the menu has no options")]
    EmptyMenu,
    /// A ring or menu waits zero seconds.
    #[error("the timeout must be at least one second")]
    ZeroTimeout,
    /// A step follows a voicemail in the same list; it can never run.
    #[error("this step comes after a voicemail and can never be reached")]
    AfterVoicemail,
    /// Menus nest deeper than [`MAX_MENU_DEPTH`].
    #[error("menus nest more than {MAX_MENU_DEPTH} deep")]
    TooDeep,
}

impl fmt::Display for FlowProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.at.0.is_empty() {
            write!(f, "{}", self.kind)
        } else {
            write!(f, "{}: {}", self.at, self.kind)
        }
    }
}

/// The way one inbound call went through a flow: the choice made at each
/// menu it reached, in order, and how many steps it ran (the last one is
/// where it left the flow: answered, voicemail, or the end).
///
/// Storing this with the call is enough to replay its path with
/// [`FlowPath::steps`].
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FlowPath {
    /// The choice at each menu reached, in order.
    pub choices: Vec<MenuChoice>,
    /// How many steps the call ran, menus included.
    pub steps_taken: usize,
}

/// Why a walk through a flow could not go on.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum WalkError {
    /// The walk reached a menu and needs [`FlowWalk::choose`] before the next step.
    #[error("the menu at {0} needs a choice first")]
    ChoiceNeeded(StepAddress),
    /// A choice was given where no menu was waiting for one.
    #[error("no menu is waiting for a choice")]
    NoMenu,
    /// The menu has no branch for the key pressed.
    #[error("the menu at {at} has no option for key {key}")]
    NoSuchOption {
        /// The menu.
        at: StepAddress,
        /// The key.
        key: Key,
    },
    /// A stored path does not fit the flow (the flow changed since).
    #[error("the stored path does not fit this flow")]
    PathDoesNotFit,
}

/// A walk through a flow, step by step, as an inbound call takes it.
///
/// Sans-IO: the caller plays prompts, rings phones and waits; the walk only
/// says which step comes next and keeps the [`FlowPath`]. After a menu's
/// branch runs out, the walk goes on with the steps after the menu.
///
/// The walk owns no part of the flow: each call passes the flow in, so a
/// call's state machine can keep the walk next to its own copy of the flow.
/// Pass the same flow every time.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FlowWalk {
    /// For each list being walked: where the list is, and the index of its next step.
    frames: Vec<(StepAddress, usize)>,
    /// The menu waiting for a choice.
    waiting_menu: Option<StepAddress>,
    path: FlowPath,
}

impl FlowWalk {
    /// A walk from the first step of a flow.
    #[must_use]
    pub fn new() -> Self {
        Self { frames: vec![(StepAddress::default(), 0)], waiting_menu: None, path: FlowPath::default() }
    }

    /// The next step of `flow` to run, or `None` when the flow has run out.
    pub fn next_step<'f>(&mut self, flow: &'f Flow) -> Result<Option<(StepAddress, &'f Step)>, WalkError> {
        if let Some(address) = &self.waiting_menu {
            return Err(WalkError::ChoiceNeeded(address.clone()));
        }
        while let Some((list, next)) = self.frames.last_mut() {
            let steps = flow.list_at(list).ok_or(WalkError::PathDoesNotFit)?;
            let Some(step) = steps.get(*next) else {
                self.frames.pop();
                continue;
            };
            let address = list.child(AddressPart::Step(*next));
            *next += 1;
            self.path.steps_taken += 1;
            if matches!(step, Step::Menu { .. }) {
                self.waiting_menu = Some(address.clone());
            }
            return Ok(Some((address, step)));
        }
        Ok(None)
    }

    /// Takes the branch for `choice` of the menu just returned by [`Self::next_step`].
    pub fn choose(&mut self, flow: &Flow, choice: MenuChoice) -> Result<(), WalkError> {
        let Some(address) = &self.waiting_menu else {
            return Err(WalkError::NoMenu);
        };
        let Some(Step::Menu { options, .. }) = flow.step_at(address) else {
            return Err(WalkError::PathDoesNotFit);
        };
        if let MenuChoice::Key(key) = choice
            && !options.contains_key(&key)
        {
            return Err(WalkError::NoSuchOption { at: address.clone(), key });
        }
        self.frames.push((address.child(AddressPart::Branch(choice)), 0));
        self.path.choices.push(choice);
        self.waiting_menu = None;
        Ok(())
    }

    /// The path walked so far.
    #[must_use]
    pub const fn path(&self) -> &FlowPath {
        &self.path
    }
}

impl FlowPath {
    /// The steps this path ran through `flow`, in order.
    pub fn steps<'f>(&self, flow: &'f Flow) -> Result<Vec<(StepAddress, &'f Step)>, WalkError> {
        let mut walk = FlowWalk::new();
        let mut choices = self.choices.iter();
        let mut steps = Vec::with_capacity(self.steps_taken);
        while steps.len() < self.steps_taken {
            match walk.next_step(flow) {
                Ok(Some(step)) => steps.push(step),
                Ok(None) => return Err(WalkError::PathDoesNotFit),
                Err(WalkError::ChoiceNeeded(_)) => {
                    let choice = choices.next().ok_or(WalkError::PathDoesNotFit)?;
                    walk.choose(flow, *choice).map_err(|_| WalkError::PathDoesNotFit)?;
                }
                Err(other) => return Err(other),
            }
        }
        Ok(steps)
    }
}

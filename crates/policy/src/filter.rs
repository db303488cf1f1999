//! The visibility rule as data a database can execute (SPEC §4.2), so the
//! service can page through millions of calls in SQL while `policy` stays the
//! one source of truth. Produced by [`crate::Viewer::visibility_filter`].

use crate::ids::{CompanyId, NumberId, UserId};
use crate::model::Call;
use serde::{Deserialize, Serialize};

/// Which calls a viewer sees, as sets a query can test.
///
/// A call is visible exactly when, in SQL terms:
///
/// ```sql
/// call.company_id = :company
/// AND ( :scope = 'everything'
///       OR :party IN (SELECT user_id FROM call_parties WHERE call_id = call.id)
///       OR call.number_id IN (:numbers_any_status)
///       OR (call.status IN ('missed', 'voicemail')   -- CallStatus::MISSED_OR_VOICEMAIL
///           AND call.number_id IN (:numbers_missed_or_voicemail)) )
/// ```
///
/// [`VisibilityFilter::matches`] is that same predicate in Rust; property tests
/// prove it equals [`crate::Viewer::can_see`], and the service's differential
/// tests prove its SQL equals this.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VisibilityFilter {
    /// Only calls of this company, ever (D8).
    pub company: CompanyId,
    /// Which of them.
    pub scope: VisibilityScope,
}

/// Which of the company's calls a viewer sees.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "scope", rename_all = "snake_case")]
pub enum VisibilityScope {
    /// Every call of the company.
    Everything,
    /// Calls matching any of these.
    Restricted {
        /// Calls this user is a party of.
        party: UserId,
        /// Calls to or from these numbers, whatever their status. Sorted.
        numbers_any_status: Vec<NumberId>,
        /// Missed or voicemail calls to these numbers. Sorted; disjoint from `numbers_any_status`.
        numbers_missed_or_voicemail: Vec<NumberId>,
    },
}

impl VisibilityFilter {
    /// Whether `call` passes the filter.
    #[must_use]
    pub fn matches(&self, call: &Call) -> bool {
        if call.company != self.company {
            return false;
        }
        match &self.scope {
            VisibilityScope::Everything => true,
            VisibilityScope::Restricted { party, numbers_any_status, numbers_missed_or_voicemail } => {
                // `contains`, not a binary search: a filter may come from anywhere (it is
                // Deserialize), and this is the reference meaning, not a hot path.
                call.parties.contains(party)
                    || call.number.is_some_and(|number| {
                        numbers_any_status.contains(&number)
                            || (call.status.is_missed_or_voicemail()
                                && numbers_missed_or_voicemail.contains(&number))
                    })
            }
        }
    }
}

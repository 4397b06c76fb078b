//! Counting what was masked, so exporters can say so (`redaction.masked.count`).

use super::policy::Rule;

/// How many values each rule masked. Cheap to create (`Default`) and reuse.
///
/// ```
/// use instrument_core::redact::{Kind, Redactor, RedactionSummary, Rule};
///
/// let redactor = Redactor::default();
/// let mut summary = RedactionSummary::default();
/// redactor.redact(Kind::Attribute, "note", "mail bob@example.com", &mut summary);
/// assert_eq!(summary.count(Rule::Email), 1);
/// assert_eq!(summary.total(), 1);
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RedactionSummary {
    counts: [u32; Rule::ALL.len()],
}

impl RedactionSummary {
    /// Masks made by `rule`.
    pub fn count(&self, rule: Rule) -> u32 {
        self.counts[rule.index()]
    }

    /// Masks made by all rules.
    pub fn total(&self) -> u32 {
        self.counts.iter().sum()
    }

    /// Whether nothing was masked.
    pub fn is_empty(&self) -> bool {
        self.counts.iter().all(|c| *c == 0)
    }

    /// The rules that masked something, with their counts.
    pub fn iter(&self) -> impl Iterator<Item = (Rule, u32)> + '_ {
        Rule::ALL
            .iter()
            .zip(self.counts.iter())
            .filter(|(_, c)| **c > 0)
            .map(|(r, c)| (*r, *c))
    }

    /// Adds `other`'s counts to these.
    pub fn merge(&mut self, other: &RedactionSummary) {
        for (a, b) in self.counts.iter_mut().zip(other.counts.iter()) {
            *a = a.saturating_add(*b);
        }
    }

    /// Clears all counts.
    pub fn clear(&mut self) {
        self.counts = [0; Rule::ALL.len()];
    }

    /// Counts one mask made by `rule` (for masks applied outside the [`Redactor`](super::Redactor),
    /// such as a numeric attribute under a sensitive key replaced whole).
    pub fn record(&mut self, rule: Rule) {
        let c = &mut self.counts[rule.index()];
        *c = c.saturating_add(1);
    }
}

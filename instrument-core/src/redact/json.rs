//! Structural sanitising of JSON found in a value: sensitive members masked by key,
//! every string scanned by the value rules, nesting bounded.

use serde_json::Value;

use super::policy::Rule;
use super::summary::RedactionSummary;
use super::Redactor;

impl Redactor {
    /// Sanitises `value` in place; returns whether anything changed.
    pub(super) fn sanitize_json(
        &self,
        value: &mut Value,
        depth: usize,
        summary: &mut RedactionSummary,
    ) -> bool {
        let det = &self.inner.detectors;
        if depth > self.inner.max_json_depth {
            // Too deep to walk: fail closed.
            *value = Value::String(det.replacement().to_owned());
            summary.record(Rule::JsonStructure);
            return true;
        }
        match value {
            Value::Object(members) => {
                let mut changed = false;
                for (key, member) in members.iter_mut() {
                    if det.on(Rule::SensitiveKey) && self.inner.keys.is_sensitive(key) {
                        changed |= self.mask_member(member, summary);
                    } else {
                        changed |= self.sanitize_json(member, depth + 1, summary);
                    }
                }
                changed
            }
            Value::Array(items) => items.iter_mut().fold(false, |changed, item| {
                self.sanitize_json(item, depth + 1, summary) | changed
            }),
            Value::String(s) => match self.scan_text(s, depth + 1, summary) {
                std::borrow::Cow::Borrowed(_) => false,
                std::borrow::Cow::Owned(clean) => {
                    *s = clean;
                    true
                }
            },
            Value::Number(n) => {
                // A card number written as a JSON number.
                let digits = n.to_string();
                if det.on(Rule::PaymentCard)
                    && n.is_u64()
                    && super::text::is_card_number(digits.as_bytes())
                {
                    *value = Value::String(super::text::mask_card(&digits));
                    summary.record(Rule::PaymentCard);
                    true
                } else {
                    false
                }
            }
            Value::Bool(_) | Value::Null => false,
        }
    }

    /// Masks a member held under a sensitive key, whatever its type. `null` and `""`
    /// reveal nothing and stay.
    fn mask_member(&self, member: &mut Value, summary: &mut RedactionSummary) -> bool {
        let masked = match member {
            Value::Null => return false,
            Value::String(s) if s.is_empty() => return false,
            Value::String(s) if self.inner.detectors.is_allowed_value(s) => return false,
            Value::String(s) => self.inner.detectors.mask_whole(s),
            Value::Number(n) => self.inner.detectors.mask_whole(&n.to_string()),
            _ => self.inner.detectors.replacement().to_owned(),
        };
        *member = Value::String(masked);
        summary.record(Rule::SensitiveKey);
        true
    }
}

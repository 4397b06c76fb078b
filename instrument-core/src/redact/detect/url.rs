//! URLs: credentials and sensitive query parameters masked, the rest kept as it was;
//! and a value under a sensitive key masked whole (or partly, when it is one thing a
//! rule masks partly).

use super::*;

impl Detectors {
    /// The masked form of a value held under a sensitive key: a partial mask when the
    /// whole value is one thing a value rule knows how to mask partially (an API key
    /// keeps its prefix, a card its last four digits, a credential its scheme), else the
    /// replacement.
    pub(crate) fn mask_whole(&self, value: &str) -> String {
        // Cheap tests guard each anchored regex: most secrets are none of these
        // (`redact/sensitive_key`).
        let bytes = value.as_bytes();
        let api_key = self.on(Rule::ApiKey)
            && self
                .api_prefixes
                .as_ref()
                .is_some_and(|ix| ix.is_match(bytes, true));
        if api_key {
            // A prefix that also begins ordinary words is kept only before its
            // vendor's exact shape: a password that starts like one (`key-...`)
            // shows nothing of itself.
            if let Some(caps) = self
                .api_key_whole
                .as_ref()
                .and_then(|re| re.captures(value))
                .filter(|caps| {
                    self.own_prefixes.iter().any(|p| **p == caps[1])
                        || rules::fits_exact_tail(&caps[1], &caps[2]).unwrap_or(true)
                })
            {
                return format!("{}{}", &caps[1], self.replacement);
            }
        }
        let digits = bytes.iter().filter(|b| b.is_ascii_digit()).count();
        if self.on(Rule::PaymentCard) && digits >= 13 && self.card_whole.is_match(value) {
            let digits: Vec<u8> = bytes.iter().copied().filter(u8::is_ascii_digit).collect();
            if is_card_number(&digits) {
                return mask_card(value.trim());
            }
        }
        // `Bearer x`, `Basic x`, ...: keep the scheme.
        if let Some((scheme, rest)) = value.trim_start().split_once([' ', '\t']) {
            let known = ["bearer", "basic", "digest", "token", "negotiate"]
                .iter()
                .any(|s| s.eq_ignore_ascii_case(scheme));
            if known && !rest.trim().is_empty() {
                return format!("{scheme} {}", self.replacement);
            }
        }
        self.replacement.to_string()
    }

    /// Masks credentials and sensitive parameters of one URL (absolute or relative).
    /// `None` when nothing changed.
    pub(crate) fn sanitize_url(
        &self,
        url: &str,
        keys: &KeyMatcher,
        summary: &mut RedactionSummary,
    ) -> Option<String> {
        let mut out = String::with_capacity(url.len());
        let mut changed = false;
        let mut host = "";
        let rest = match url.find("://") {
            Some(i) => {
                let after = i + 3;
                let auth_end = url[after..]
                    .find(['/', '?', '#'])
                    .map_or(url.len(), |j| after + j);
                let authority = &url[after..auth_end];
                out.push_str(&url[..after]);
                host = authority.rsplit('@').next().unwrap_or_default();
                host = host.split(':').next().unwrap_or_default();
                match authority.rfind('@') {
                    Some(at)
                        if self.on(Rule::UrlCredentials)
                            && &authority[..at] != self.replacement() =>
                    {
                        out.push_str(&self.replacement);
                        out.push_str(&authority[at..]);
                        summary.record(Rule::UrlCredentials);
                        changed = true;
                    }
                    _ => out.push_str(authority),
                }
                &url[auth_end..]
            }
            None => url,
        };
        let path_end = rest.find(['?', '#']).unwrap_or(rest.len());
        let rest = match secret_path_start(host, &rest[..path_end]) {
            Some(cut) if self.on(Rule::UrlCredentials) && !rest[cut..path_end].is_empty() => {
                out.push_str(&rest[..cut]);
                out.push_str(&self.replacement);
                summary.record(Rule::UrlCredentials);
                changed = true;
                &rest[path_end..]
            }
            _ => rest,
        };
        // Path, then `?query`, then `#fragment`; parameters in both can carry secrets
        // (OAuth implicit flow puts `access_token` in the fragment).
        let query_start = rest.find(['?', '#']).unwrap_or(rest.len());
        out.push_str(&rest[..query_start]);
        let mut tail = &rest[query_start..];
        while let Some(sep) = tail.chars().next() {
            out.push(sep);
            tail = &tail[1..];
            let end = if sep == '?' {
                tail.find('#').unwrap_or(tail.len())
            } else {
                tail.len()
            };
            let (params, next) = tail.split_at(end);
            changed |= self.sanitize_params(params, keys, summary, &mut out);
            tail = next;
        }
        changed.then_some(out)
    }

    pub(super) fn sanitize_params(
        &self,
        params: &str,
        keys: &KeyMatcher,
        summary: &mut RedactionSummary,
        out: &mut String,
    ) -> bool {
        let mut changed = false;
        for (i, param) in params.split('&').enumerate() {
            if i > 0 {
                out.push('&');
            }
            let Some((name, value)) = param.split_once('=') else {
                out.push_str(param);
                continue;
            };
            let decoded_name = percent_decode(name, true);
            let sensitive = self.on(Rule::SensitiveQuery) && keys.is_sensitive(&decoded_name);
            let dirty = !sensitive && !value.is_empty() && {
                let decoded = percent_decode(value, true);
                let mut inner = RedactionSummary::default();
                let scanned = self.scan(&decoded, keys, &mut inner);
                let dirty = matches!(scanned, Cow::Owned(_));
                if dirty {
                    summary.merge(&inner);
                }
                dirty
            };
            if (sensitive && !value.is_empty() && value != self.replacement()) || dirty {
                out.push_str(name);
                out.push('=');
                // One policy for a value wherever it is: a card keeps its last four, an
                // API key its prefix (as under a sensitive key elsewhere).
                let decoded = percent_decode(value, true);
                let masked = if sensitive {
                    self.mask_whole(&decoded)
                } else {
                    self.scan(&decoded, keys, &mut RedactionSummary::default())
                        .into_owned()
                };
                push_query_value(out, &masked);
                if sensitive {
                    summary.record(Rule::SensitiveQuery);
                }
                changed = true;
            } else {
                out.push_str(param);
            }
        }
        changed
    }
}

/// `value` into a query string, the characters that would end or change it
/// percent-encoded (`&`, `#`, `%`, `+`, `=`, spaces and controls).
fn push_query_value(out: &mut String, value: &str) {
    for c in value.chars() {
        match c {
            '&' | '#' | '%' | '+' | '=' | ' ' => out.push_str(&format!("%{:02X}", c as u32)),
            c if c.is_control() => {
                let mut buf = [0u8; 4];
                for b in c.encode_utf8(&mut buf).bytes() {
                    out.push_str(&format!("%{b:02X}"));
                }
            }
            c => out.push(c),
        }
    }
}

use std::borrow::Cow;

use super::*;

fn r() -> Redactor {
    Redactor::default()
}

fn attr(key: &str, value: &str) -> String {
    r().redact_attribute(key, value).into_owned()
}

#[test]
fn default_policy_builds() {
    let _ = Redactor::new(&RedactionPolicy::default()).unwrap();
}

/// The default policy's matchers are built when it first redacts (a process holds one
/// from its start), once for all its clones; a policy of one's own is built, and
/// checked, at once.
#[test]
fn the_default_redactor_builds_its_matchers_on_first_use() {
    let lazy = Redactor::default();
    assert!(lazy.inner.built.get().is_none());
    assert!(format!("{lazy:?}").contains("detectors: None"));
    let clone = lazy.clone();
    assert_eq!(clone.redact_attribute("password", "hunter2"), "[REDACTED]");
    assert!(
        lazy.inner.built.get().is_some(),
        "built once for every clone"
    );
    let own = Redactor::new(&RedactionPolicy::default()).unwrap();
    assert!(own.inner.built.get().is_some());
}

#[test]
fn clean_values_come_back_borrowed() {
    let r = r();
    for v in [
        "",
        "order-fulfilment",
        "The quick brown fox jumps over the lazy dog near the river bank",
        "GET /api/v1/sessions/{id}",
        "duration=12ms status=ok",
        "12:30:45",
        "basic information about the bearer of this note",
        "{\"kind\":\"email\",\"n\":42}",
        "task-1234567",
    ] {
        assert!(
            matches!(r.redact_attribute("note", v), Cow::Borrowed(_)),
            "{v:?}"
        );
    }
}

#[test]
fn sensitive_keys_mask_the_whole_value() {
    for key in [
        "password",
        "db_password",
        "user.password_hash",
        "X-Api-Key",
        "stripeSecretKey",
        "hmac_secret",
        "oidc_token",
        "bearer_token",
        "private_key",
        "Set-Cookie",
    ] {
        assert_eq!(attr(key, "hunter2"), REDACTED, "{key}");
    }
    assert_eq!(attr("password", ""), "", "an empty value reveals nothing");
}

#[test]
fn allow_list_wins_over_deny_words_but_values_are_still_scanned() {
    let r = Redactor::new(&RedactionPolicy::default().allow_key("token_hint")).unwrap();
    assert_eq!(r.redact_attribute("token_hint", "1234"), "1234");
    assert_eq!(
        r.redact_attribute("token_hint", "bob@example.com"),
        REDACTED
    );
    assert_eq!(r.redact_attribute("token", "1234"), REDACTED);
}

#[test]
fn sensitive_key_keeps_partial_masks_of_known_values() {
    assert_eq!(attr("api_key", "sk_live_abcd1234"), "sk_live_[REDACTED]");
    // A prefix that also begins ordinary words shows only before its vendor's shape.
    assert_eq!(
        attr("api_key", "key-3ac6a0f929d76fd54c373e8b9d7e0e10"),
        "key-[REDACTED]"
    );
    assert_eq!(attr("password", "key-lime-pie-2024"), REDACTED);
    assert_eq!(attr("password", "api-Hunter2Hunter2"), REDACTED);
    assert_eq!(
        attr("credit_card", "4111-1111-1111-1111"),
        "****-****-****-1111"
    );
    assert_eq!(attr("authorization", "Bearer abc"), "Bearer [REDACTED]");
    assert_eq!(
        attr("Authorization", "Basic dXNlcjpwYXNz"),
        "Basic [REDACTED]"
    );
    assert_eq!(
        attr("credit_card", "4111-1111-1111-1112"),
        REDACTED,
        "not Luhn: whole mask"
    );
}

#[test]
fn emails_are_masked_under_any_key() {
    assert_eq!(attr("user", "bob.smith+tag@mail.example.co.uk"), REDACTED);
    assert_eq!(
        attr("msg", "contact <alice@example.com> now"),
        "contact <[REDACTED]> now"
    );
    assert_eq!(attr("msg", "not@an-email"), "not@an-email");
}

#[test]
fn payment_cards_are_luhn_checked_and_keep_last_four() {
    assert_eq!(
        attr("msg", "paid with 4111 1111 1111 1111."),
        "paid with **** **** **** 1111."
    );
    assert_eq!(
        attr("msg", "card=5500005555555559"),
        "card=************5559"
    );
    assert_eq!(
        attr("msg", "amex 3782-822463-10005"),
        "amex ****-******-*0005"
    );
    assert_eq!(
        attr("msg", "order 4111111111111112"),
        "order 4111111111111112",
        "fails Luhn"
    );
    assert_eq!(
        attr("msg", "id 41111111111111110000"),
        "id 41111111111111110000",
        "too long"
    );
    assert_eq!(
        attr("msg", "ts 1700000000000"),
        "ts 1700000000000",
        "epoch millis"
    );
}

#[test]
fn api_keys_keep_their_prefix() {
    for (input, expected) in [
        (
            "key sk_live_4eC39HqLyjWDarjtT1zdp7dc",
            "key sk_live_[REDACTED]",
        ),
        ("ghp_16C7e42F292c6912E7710c838347Ae178B4a", "ghp_[REDACTED]"),
        (
            "token xoxb-123456789012-abcdefghij",
            "token xoxb-[REDACTED]",
        ),
        ("AKIAIOSFODNN7EXAMPLE", "AKIA[REDACTED]"),
        (
            "github_pat_11ABCDEFG0123456789_abcdefghij",
            "github_pat_[REDACTED]",
        ),
    ] {
        assert_eq!(r().redact_value(input), expected, "{input}");
    }
    assert_eq!(
        r().redact_value("ghp_short"),
        "ghp_short",
        "too short to be a key"
    );
    let custom = Redactor::new(&RedactionPolicy::default().api_key_prefix("acme_")).unwrap();
    assert_eq!(
        custom.redact_value("acme_0123456789abcdef"),
        "acme_[REDACTED]"
    );
}

#[test]
fn bearer_and_basic_credentials_keep_the_scheme() {
    assert_eq!(
        r().redact_value("auth: Bearer eyJhbGciOi.abc.def-ghij"),
        "auth: Bearer [REDACTED]"
    );
    assert_eq!(
        r().redact_value("Authorization: Bearer abc"),
        "Authorization: [REDACTED]",
        "short token under a sensitive key"
    );
    assert_eq!(
        r().redact_value("sent Bearer abcDEF123456"),
        "sent Bearer [REDACTED]"
    );
    assert_eq!(
        r().redact_value("with basic dXNlcjpwYXNzd29yZA=="),
        "with basic [REDACTED]"
    );
}

#[test]
fn jwts_are_masked() {
    let jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U";
    assert_eq!(
        r().redact_value(&format!("jwt {jwt} end")),
        "jwt [REDACTED] end"
    );
}

#[test]
fn private_key_blocks_are_masked_even_without_end() {
    let pem =
        "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA\nabc\n-----END RSA PRIVATE KEY-----";
    assert_eq!(
        r().redact_value(&format!("key: {pem} tail")),
        "key: [REDACTED] tail"
    );
    assert_eq!(
        r().redact_value("x -----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBg"),
        "x [REDACTED]"
    );
}

#[test]
fn url_credentials_and_sensitive_parameters_are_masked() {
    let r = r();
    assert_eq!(
        r.redact_url("https://user:pass@db.example.com:5432/app?sslmode=require"),
        "https://[REDACTED]@db.example.com:5432/app?sslmode=require"
    );
    assert_eq!(
        r.redact_url("https://api.example.com/cb?code=1&token=abc&password=p%40ss&x=y"),
        "https://api.example.com/cb?code=1&token=[REDACTED]&password=[REDACTED]&x=y"
    );
    assert_eq!(
        r.redact_url("/callback?api%5Fkey=abc#access_token=xyz&state=1"),
        "/callback?api%5Fkey=[REDACTED]#access_token=[REDACTED]&state=1"
    );
    assert_eq!(
        r.redact_url("/invite?to=bob%40example.com"),
        "/invite?to=[REDACTED]",
        "encoded values are scanned too"
    );
    assert_eq!(
        r.redact_value("fetching https://u:p@host/x?session=s1 failed"),
        "fetching https://[REDACTED]@host/x?session=[REDACTED] failed"
    );
    assert!(matches!(
        r.redact_url("https://example.com/a?b=c"),
        Cow::Borrowed(_)
    ));
}

#[test]
fn ssns_are_masked_when_plausible() {
    assert_eq!(r().redact_value("ssn 123-45-6789"), "ssn [REDACTED]");
    assert_eq!(
        r().redact_value("ssn 000-45-6789 or 666-12-3456"),
        "ssn 000-45-6789 or 666-12-3456"
    );
}

#[test]
fn ips_are_masked_only_when_enabled() {
    let text = "from 192.168.1.20 and 2001:db8::8a2e:370:7334 at 12:30:45 v1.2.3";
    assert_eq!(r().redact_value(text), text);
    let on = Redactor::new(&RedactionPolicy::default().enable(Rule::Ip)).unwrap();
    assert_eq!(
        on.redact_value(text),
        "from [REDACTED] and [REDACTED] at 12:30:45 v1.2.3"
    );
    assert_eq!(on.redact_value("999.1.1.1"), "999.1.1.1");
}

#[test]
fn inline_secrets_in_free_text_are_masked() {
    assert_eq!(
        r().redact_value("login failed password=hunter2 user=bob"),
        "login failed password=[REDACTED] user=bob"
    );
    assert_eq!(
        r().redact_value(r#"broken {"password": "hunter2", "user": "bob""#),
        r#"broken {"password": "[REDACTED]", "user": "bob""#
    );
    assert_eq!(
        r().redact_value("client_secret: 's3cr3t'"),
        "client_secret: '[REDACTED]'"
    );
    assert_eq!(
        r().redact_value("login failed for bob@example.com: password=hunter2"),
        "login failed for [REDACTED]: password=[REDACTED]",
        "a pair inside the value of a harmless pair"
    );
    assert_eq!(
        r().redact_value("host: db token=abc"),
        "host: db token=[REDACTED]"
    );
    assert_eq!(
        r().redact_value("x: password=hunter2"),
        "x: password=[REDACTED]"
    );
}

#[test]
fn json_in_strings_is_sanitised_structurally_at_any_depth() {
    let input = r#"{"user":{"email":"bob@example.com","profile":{"apiKey":"sk_live_abcdefgh1234","card":4111111111111111,"pin":1234}},"items":[{"token":"t1"},"ok"],"note":"{\"password\":\"x\"}"}"#;
    let out = attr("body", input);
    assert_eq!(
        out,
        r#"{"user":{"email":"[REDACTED]","profile":{"apiKey":"sk_live_[REDACTED]","card":"************1111","pin":"[REDACTED]"}},"items":[{"token":"[REDACTED]"},"ok"],"note":"{\"password\":\"[REDACTED]\"}"}"#
    );
    let mut summary = RedactionSummary::default();
    r().redact(Kind::Attribute, "body", input, &mut summary);
    assert_eq!(summary.count(Rule::SensitiveKey), 4);
    assert_eq!(summary.count(Rule::Email), 1);
    assert_eq!(summary.count(Rule::PaymentCard), 1);
}

#[test]
fn json_keeps_member_order_and_clean_json_is_untouched() {
    let clean = r#"{ "z": 1, "a": [true, null] }"#;
    assert!(matches!(r().redact_value(clean), Cow::Borrowed(_)));
    assert_eq!(
        attr("b", r#"{"z":1,"secret":"s","a":2}"#),
        r#"{"z":1,"secret":"[REDACTED]","a":2}"#
    );
}

#[test]
fn json_deeper_than_the_limit_fails_closed() {
    let policy = RedactionPolicy {
        max_json_depth: 3,
        ..RedactionPolicy::default()
    };
    let r = Redactor::new(&policy).unwrap();
    let deep = r#"{"a":{"b":{"c":{"d":{"e":"anything"}}}}}"#;
    let out = r.redact_value(deep);
    assert!(!out.contains("anything"), "{out}");
}

#[test]
fn oversized_values_are_cut_before_scanning() {
    let policy = RedactionPolicy {
        max_scan_bytes: 1024,
        ..RedactionPolicy::default()
    };
    let r = Redactor::new(&policy).unwrap();
    let jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U";
    let value = format!("{} bob@example.com {}", "word ".repeat(150), jwt.repeat(10));
    let mut summary = RedactionSummary::default();
    let out = r.redact(Kind::Attribute, "log", &value, &mut summary);
    assert!(out.len() <= 1024 + TRUNCATED_MARKER.len(), "{}", out.len());
    assert!(out.ends_with(TRUNCATED_MARKER));
    assert!(!out.contains("bob@example.com"));
    assert!(!out.contains("eyJzdWIi"), "a token cut in half is dropped");
    assert_eq!(summary.count(Rule::Oversized), 1);
    let multibyte = "é".repeat(2000);
    assert!(r.redact_value(&multibyte).ends_with(TRUNCATED_MARKER));
}

#[test]
fn disabled_rules_do_not_mask() {
    let r = Redactor::new(&RedactionPolicy::default().disable(Rule::Email)).unwrap();
    assert_eq!(r.redact_value("bob@example.com"), "bob@example.com");
    let r = Redactor::new(&RedactionPolicy::default().disable(Rule::SensitiveKey)).unwrap();
    assert_eq!(r.redact_attribute("password", "hunter2"), "hunter2");
}

#[test]
fn allowed_values_pass() {
    let r = Redactor::new(&RedactionPolicy::default().allow_value("4111-1111-1111-1111")).unwrap();
    assert_eq!(
        r.redact_value("test card 4111-1111-1111-1111"),
        "test card 4111-1111-1111-1111"
    );
    assert_eq!(
        r.redact_attribute("password", "4111-1111-1111-1111"),
        "4111-1111-1111-1111"
    );
}

#[test]
fn custom_patterns_and_replacement() {
    let policy = RedactionPolicy {
        replacement: "***".into(),
        ..RedactionPolicy::default().pattern("order", "ORD-[0-9]{6}")
    };
    let r = Redactor::new(&policy).unwrap();
    assert_eq!(
        r.redact_value("order ORD-123456 for bob@example.com"),
        "order *** for ***"
    );
    let bad = RedactionPolicy::default().pattern("broken", "(");
    assert!(
        matches!(Redactor::new(&bad), Err(PolicyError::Pattern { name, .. }) if name == "broken")
    );
}

#[test]
fn custom_patterns_that_match_empty_text_mask_nothing_extra() {
    let r = Redactor::new(&RedactionPolicy::default().pattern("stars", "x*")).unwrap();
    assert_eq!(r.redact_value("abcdef xx é"), "abcdef [REDACTED] é");
    let short = Redactor::new(&RedactionPolicy::default().pattern("pin", "^[0-9]{4}$")).unwrap();
    assert_eq!(
        short.redact_value("1234"),
        REDACTED,
        "custom patterns see short values too"
    );
}

#[test]
fn empty_policy_parts_are_errors() {
    let policy = RedactionPolicy {
        replacement: String::new(),
        ..RedactionPolicy::default()
    };
    assert_eq!(
        Redactor::new(&policy).unwrap_err(),
        PolicyError::Empty("replacement")
    );
    assert!(Redactor::new(&RedactionPolicy::default().deny_key("__")).is_err());
}

#[test]
fn kinds_route_to_the_right_reader() {
    let r = r();
    let mut s = RedactionSummary::default();
    assert_eq!(
        r.redact(Kind::Sql, "", "SELECT * FROM t WHERE pw = 'x'", &mut s),
        "SELECT * FROM t WHERE pw = ?"
    );
    assert_eq!(r.redact(Kind::Header, "cookie", "a=b", &mut s), REDACTED);
    assert_eq!(
        r.redact(Kind::Url, "", "https://a:b@h/", &mut s),
        "https://[REDACTED]@h/"
    );
    assert_eq!("json_body".parse::<Kind>(), Ok(Kind::JsonBody));
    assert!("nope".parse::<Kind>().is_err());
}

#[test]
fn summary_counts_per_rule() {
    let mut s = RedactionSummary::default();
    r().redact(
        Kind::Attribute,
        "m",
        "a@b.io c@d.io 4111111111111111",
        &mut s,
    );
    assert_eq!(s.count(Rule::Email), 2);
    assert_eq!(s.count(Rule::PaymentCard), 1);
    assert_eq!(s.total(), 3);
    assert_eq!(
        s.iter().collect::<Vec<_>>(),
        [(Rule::Email, 2), (Rule::PaymentCard, 1)]
    );
    s.clear();
    assert!(s.is_empty());
}

#[test]
fn hostile_inputs_do_not_panic() {
    let r = r();
    for v in [
        "\u{0}\u{ffff}",
        "{",
        "[[[[[[[[",
        "%",
        "%%%",
        "://",
        "@@@",
        "a@",
        "-----BEGIN PRIVATE KEY-----",
        "eyJ.eyJ.",
        "Bearer",
        "?&=&=",
        "https://@",
        "https://a@b@c",
        "password=",
        "password=\"",
        "\"password\":\"\\",
        "9999999999999999999999999999",
        "::::::::",
        "ss\u{301}n=1",
    ] {
        let _ = r.redact_attribute("k", v);
        let _ = r.redact_url(v);
        let _ = r.redact_value(v);
        let _ = sanitize_sql(v);
    }
}

#[test]
fn a_value_found_clean_by_one_policy_is_still_masked_by_another() {
    // The first redactor remembers the address as clean (IPs are off by default); the
    // second, with IPs on, must not take that verdict.
    let lenient = Redactor::default();
    let strict = Redactor::new(&RedactionPolicy {
        enable: vec![Rule::Ip],
        ..RedactionPolicy::default()
    })
    .unwrap();
    for _ in 0..2 {
        assert!(matches!(
            lenient.redact_value("peer 10.1.2.3"),
            Cow::Borrowed(_)
        ));
    }
    for _ in 0..2 {
        assert_eq!(strict.redact_value("peer 10.1.2.3"), "peer [REDACTED]");
    }
    // A clone is the same policy and shares the verdicts.
    assert!(matches!(
        lenient.clone().redact_value("peer 10.1.2.3"),
        Cow::Borrowed(_)
    ));
}

#[test]
fn remembered_key_answers_are_each_redactors_own() {
    let plain = Redactor::default();
    let allowing = Redactor::new(&RedactionPolicy {
        allowed_keys: vec!["token_hint".into()],
        ..RedactionPolicy::default()
    })
    .unwrap();
    let keys = [
        "token_hint",
        "http.route",
        "db_password",
        "TokenHint",
        "note",
    ];
    // Twice each, then alternating: the later rounds answer from the memo.
    for order in [
        [&plain, &plain, &allowing, &allowing],
        [&plain, &allowing, &plain, &allowing],
    ] {
        for r in order {
            for key in keys {
                assert_eq!(
                    r.is_sensitive_key(key),
                    r.inner.keys().is_sensitive(key),
                    "{key}"
                );
            }
        }
    }
    assert!(plain.is_sensitive_key("token_hint"));
    assert!(!allowing.is_sensitive_key("token_hint"));
    // More keys than the memo holds, and keys too long to keep: answers stay right.
    for i in 0..300 {
        let key = format!("field_{i}");
        assert!(!plain.is_sensitive_key(&key));
        assert!(plain.is_sensitive_key(&format!("{key}_secret")));
    }
    assert!(plain.is_sensitive_key("db_password"));
    assert!(plain.is_sensitive_key(&format!("{}password", "x".repeat(64))));
    assert!(!plain.is_sensitive_key(&"x".repeat(65)));
}

#[test]
fn remembered_values_are_still_masked_under_sensitive_keys() {
    let r = Redactor::default();
    assert!(matches!(
        r.redact_attribute("note", "hunter2"),
        Cow::Borrowed(_)
    ));
    assert_eq!(r.redact_attribute("password", "hunter2"), "[REDACTED]");
    // Nested JSON is judged with its depth, not from the memo.
    let deep = Redactor::new(&RedactionPolicy {
        max_json_depth: 1,
        ..RedactionPolicy::default()
    })
    .unwrap();
    assert!(matches!(deep.redact_value("[1]"), Cow::Borrowed(_)));
    assert_eq!(deep.redact_value(r#"{"a":"[1]"}"#), r#"{"a":"[REDACTED]"}"#);
}

#[test]
fn secrets_after_a_key_word_in_prose_are_masked() {
    let r = r();
    for (text, masked) in [
        (
            "login failed: password is hunter2!",
            "login failed: password is [REDACTED]",
        ),
        (
            "connecting with secret s3cr3tV4lue to vault",
            "connecting with secret [REDACTED] to vault",
        ),
        (
            "user reset password to Winter2024! now",
            "user reset password to [REDACTED] now",
        ),
        (
            "the api key is 7f9a2b4c6d8e0f1a3b5c7d9e.",
            "the api key is [REDACTED].",
        ),
        (
            "retrying with password 'hunter'",
            "retrying with password '[REDACTED]'",
        ),
        (
            "your one-time PIN is 482913",
            "your one-time PIN is [REDACTED]",
        ),
        ("OTP code 771204 sent", "OTP code [REDACTED] sent"),
        (
            "psql --password S3cretPg99 -h db",
            "psql --password [REDACTED] -h db",
        ),
        (
            "the secret was set to Qz8-Lp3-Vv1",
            "the secret was set to [REDACTED]",
        ),
    ] {
        assert_eq!(r.redact_value(text), masked, "{text}");
    }
}

#[test]
fn prose_around_key_words_is_kept() {
    let r = r();
    for text in [
        "password must be at least 12 characters",
        "The token is invalid",
        "token expired",
        "secret rotation is scheduled for Friday",
        "password reset email sent to user 1234",
        "tokenizer loaded with 50257 tokens",
        "private key loaded from /etc/app/tls.key",
        "token 1532 of 4096 used",
        "GPIO pin 17 set high",
        "retry token in 250ms",
        "the token-based flow",
        "secret not found: prod/db",
    ] {
        assert!(matches!(r.redact_value(text), Cow::Borrowed(_)), "{text}");
    }
}

#[test]
fn pairs_in_other_languages_and_markup_are_masked() {
    let r = r();
    for (text, masked) in [
        (
            r#"{:token => "abcd1234secret", :retries => 3}"#,
            r#"{:token => "[REDACTED]", :retries => 3}"#,
        ),
        (
            "['api_key' => 'k_live_99887766', 'debug' => false]",
            "['api_key' => '[REDACTED]', 'debug' => false]",
        ),
        (
            "{'password': 'hunter22', 'user': 'bob'}",
            "{'password': '[REDACTED]', 'user': 'bob'}",
        ),
        ("password := 'x9'", "password := '[REDACTED]'"),
        (
            "<user><name>bob</name><password>hunter2</password></user>",
            "<user><name>bob</name><password>[REDACTED]</password></user>",
        ),
        (
            "<ns1:ApiKey>9a8b7c6d5e</ns1:ApiKey>",
            "<ns1:ApiKey>[REDACTED]</ns1:ApiKey>",
        ),
        (
            r#"<add key="DbPassword" value="p4ss" />"#,
            r#"<add key="DbPassword" value="[REDACTED]" />"#,
        ),
        (
            r#"env: "name": "DB_PASSWORD", "value": "s3cr3t""#,
            r#"env: "name": "DB_PASSWORD", "value": "[REDACTED]""#,
        ),
        (
            "private_key: |\n  MIIEvQIBADANBgkqhkiG9w0\n",
            "private_key: [REDACTED]",
        ),
        (
            "curl -u admin:Adm1nPass https://x",
            "curl -u admin:[REDACTED] https://x",
        ),
        (
            "docker login -u ci -p D0ckerPass reg",
            "docker login -u ci -p [REDACTED] reg",
        ),
        ("mysql -u root -pR00t! db", "mysql -u root -p[REDACTED] db"),
        (
            "Authorization: Token 9944b09199c62bcf",
            "Authorization: [REDACTED]",
        ),
        ("DB_PASS=\"hunter2hunter\"", "DB_PASS=\"[REDACTED]\""),
        (
            "ALTER USER admin IDENTIFIED BY 'OraPass#1'",
            "ALTER USER admin IDENTIFIED BY '[REDACTED]'",
        ),
        (
            "webhook signature sha256=9f86d0818",
            "webhook signature [REDACTED]",
        ),
        (
            "password for bob is hunter2",
            "password for bob is [REDACTED]",
        ),
        (
            "password=Tr0ub4dor&3 host=db1",
            "password=[REDACTED] host=db1",
        ),
        ("a=1&password=x&b=2", "a=1&password=[REDACTED]&b=2"),
    ] {
        assert_eq!(r.redact_value(text), masked, "{text}");
    }
    // Markup whose element is not a secret keeps its content, scanned.
    assert_eq!(
        r.redact_value("<note>mail bob@example.com</note>"),
        "<note>mail [REDACTED]</note>"
    );
    assert_eq!(
        r.redact_value("<type>password</type>"),
        "<type>password</type>"
    );
}

#[test]
fn placeholders_booleans_and_references_are_not_secrets() {
    let r = r();
    for text in [
        "password=${DB_PASSWORD}",
        "token: {{ .Values.token }}",
        "api_key=<your-api-key>",
        "password=******",
        "password=[REDACTED]",
        "secret: null",
        "token=",
        "has_token=false",
        "SELECT * FROM users WHERE password_hash = $1",
        "UPDATE users SET password = ? WHERE id = ?",
        "password = :password",
    ] {
        assert!(matches!(r.redact_value(text), Cow::Borrowed(_)), "{text}");
    }
    for (key, value) in [
        ("password", "${DB_PASSWORD}"),
        ("has_token", "true"),
        ("secret", "null"),
    ] {
        assert_eq!(attr(key, value), value, "{key}");
    }
}

#[test]
fn keys_that_describe_secrets_or_count_them_keep_their_values() {
    for (key, value) in [
        ("auth.method", "password"),
        ("token_type", "Bearer"),
        ("token.expires_in", "3600"),
        ("password_min_length", "12"),
        ("secret.name", "prod/db/credentials"),
        ("api_key_id", "key_01HQXZ"),
        ("signature_algorithm", "1.2.840.113549.1.1.11"),
        ("gen_ai.usage.input_tokens", "1532"),
        ("tokens", "1532"),
        ("next_page_token", "CiAKGjBpNDd2"),
    ] {
        assert_eq!(attr(key, value), value, "{key}");
    }
    // A plural key holds secrets unless its value is a count.
    assert_eq!(attr("tokens", "t0k3n-a"), REDACTED);
    // A description still has its value scanned.
    assert_eq!(attr("auth.method", "bob@example.com"), REDACTED);
    // In text too.
    let r = r();
    for text in [
        "auth.method=password",
        "gen_ai.usage.input_tokens=1532",
        "token_type=bearer expires_in=3600",
    ] {
        assert!(matches!(r.redact_value(text), Cow::Borrowed(_)), "{text}");
    }
}

#[test]
fn code_paths_file_positions_and_oids_are_not_pairs() {
    let r = r();
    for text in [
        "auth::token::verify_signature",
        "calling crate::auth::password::hash now",
        "src/auth/token_store.rs:142",
        "at app/secrets.py:88 in load",
        "1.2.840.113549.1.1.11",
        "OID 2.5.4.3 is commonName",
        "git clone git@github.com:acme/instrument.git",
        "at com.example.auth.PasswordEncoder.matches(PasswordEncoder.java:42)",
        "auth: method=oidc provider=okta result=success",
        "(using password: YES)",
        "session=new",
        "Secret 'prod/db' rotated successfully",
    ] {
        assert!(matches!(r.redact_value(text), Cow::Borrowed(_)), "{text}");
    }
    assert_eq!(
        attr("code.function", "auth::token::verify"),
        "auth::token::verify"
    );
}

#[test]
fn percent_encoded_credentials_in_text_are_masked_where_they_are() {
    let r = r();
    assert_eq!(
        r.redact_value("header Authorization%3A%20Bearer%20abcdef123456ghijkl logged"),
        "header Authorization%3A%20Bearer%20[REDACTED] logged"
    );
    assert_eq!(
        r.redact_value("GET /login?user=bob&password%3Dhunter2 was rejected"),
        "GET /login?user=bob&password%3D[REDACTED] was rejected"
    );
    assert_eq!(
        r.redact_value("to=bob%2540example.com"),
        "to=[REDACTED]",
        "encoded twice"
    );
    for clean in ["100%25 done", "path%2Fto%2Ffile", "50% off", "%E2%9C%93 ok"] {
        assert!(matches!(r.redact_value(clean), Cow::Borrowed(_)), "{clean}");
    }
}

#[test]
fn telephone_numbers_are_masked_and_can_be_switched_off() {
    let r = r();
    for text in [
        "+1 (415) 555-2671",
        "+44 20 7946 0958",
        "+49 151 23456789",
        "+33 1 23 45 67 89",
        "+14155552671",
        "(212) 555-0147",
        "415-555-2671",
        "415.555.2671",
        "1-800-555-0199",
        "020 7946 0958",
        "07700 900123",
        "+81-3-1234-5678",
    ] {
        assert_eq!(
            r.redact_value(&format!("call {text} now")),
            "call [REDACTED] now",
            "{text}"
        );
    }
    for clean in [
        "2024-01-15 10:30:45",
        "01-15-2024 10:30",
        "epoch 1700000000",
        "ISBN 978-3-16-148410-0",
        "tracking 1Z999AA10123456784",
        "Version 10.0.19045.3803",
        "order 20240115-000123",
        "+1.5% week over week",
        "UTC+01:00",
        "coordinates 48.8566, 2.3522",
    ] {
        assert!(matches!(r.redact_value(clean), Cow::Borrowed(_)), "{clean}");
    }
    let off = Redactor::new(&RedactionPolicy::default().disable(Rule::Phone)).unwrap();
    assert_eq!(
        off.redact_value("call +44 20 7946 0958"),
        "call +44 20 7946 0958"
    );
}

#[test]
fn names_that_start_like_an_api_key_are_not_keys() {
    for clean in [
        "npm_package_version",
        "npm_config_user_agent",
        "hf_hub_download failed",
        "hf_transfer_enabled",
        "ASIA_PACIFIC_REGION",
        "ASIAN_MARKETS_OPEN",
        "AKIA_TEST_ACCOUNT_NAME",
        "region=ASIA-SOUTHEAST1",
        "sk-learn-estimator-pipeline",
        "sk-test-fixture-name",
        "whsec_placeholder_here",
        "pypi-simple-mirror",
        "glc_settings_file",
        "SG.settings.json",
        "figd_export_pipeline",
        "rubygems_mirror_url",
        "lin_api_client_version",
        "sq0atp-placeholder",
        "ATATTACHMENT_UPLOADED",
        "AIzaServicesDisabled",
    ] {
        assert_eq!(r().redact_value(clean), clean);
    }
    // The keys themselves, test fixtures' shapes included (digit runs, the alphabet).
    for (key, prefix) in [
        (
            "xoxb-123456789012-1234567890123-abcdefghijklmnopqrstuvwx",
            "xoxb-",
        ),
        ("xoxb-123456789012-abcdefghij", "xoxb-"),
        ("AKIAIOSFODNN7EXAMPLE", "AKIA"),
        ("ASIAY34FZKBOKMUTVV7A", "ASIA"),
        ("dp.pt.abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMN", "dp.pt."),
        ("dckr_pat_AbCdEfGhIjKlMnOp", "dckr_pat_"),
        ("ghp_abcdefghijklmnopqrstuvwxyz0123456789", "ghp_"),
        ("AIzaSyDaGmWKa4JsXZ-HjGw7ISLn_3namBGewQe", "AIza"),
        ("npm_a1b2c3d4e5f6a7b8", "npm_"),
    ] {
        assert_eq!(
            r().redact_value(key),
            format!("{prefix}[REDACTED]"),
            "{key}"
        );
    }
    // A prefix the policy adds is trusted: what follows it is masked as it is.
    let own = Redactor::new(&RedactionPolicy::default().api_key_prefix("acme_")).unwrap();
    assert_eq!(own.redact_value("acme_staging_key"), "acme_[REDACTED]");
}

#[test]
fn more_vendor_tokens_keep_their_prefix() {
    for (input, expected) in [
        ("hf_AbCdEfGhIjKlMnOpQrStUvWxYz01234567", "hf_[REDACTED]"),
        ("sk-proj-AbCdEf0123456789GhIjKlMn", "sk-proj-[REDACTED]"),
        ("sk-AbCdEfGhIjKlMnOpQrStUvWxYz0123456789", "sk-[REDACTED]"),
        ("ya29.a0AfH6SMBx1234567890abcdef", "ya29.[REDACTED]"),
        (
            "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",
            "SG.[REDACTED]",
        ),
        ("glptt-0123456789abcdef0123", "glptt-[REDACTED]"),
        ("xoxe.xoxp-1-Mi0yLTEyMzQ1Njc4", "xoxe.[REDACTED]"),
        ("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", "shpss_[REDACTED]"),
        ("dckr_pat_AbCdEfGhIjKlMnOp", "dckr_pat_[REDACTED]"),
        (
            "AGE-SECRET-KEY-1QYQSZQGPQYQSZQGPQYQSZQGPQYQSZQGPQYQSZQGPQYQSZQGPQYQSZQG",
            "AGE-SECRET-KEY-1[REDACTED]",
        ),
        (
            "FLWSECK_TEST-abcdef0123456789abcdef0123456789-X",
            "FLWSECK_TEST-[REDACTED]",
        ),
        (
            "FLWSECK-abcdef0123456789abcdef0123456789-X",
            "FLWSECK-[REDACTED]",
        ),
        ("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", "GOCSPX-[REDACTED]"),
    ] {
        assert_eq!(r().redact_value(input), expected, "{input}");
    }
    assert!(matches!(
        r().redact_value("task-abcdefgh1234"),
        Cow::Borrowed(_)
    ));
}

#[test]
fn cloud_and_chat_vendor_secrets_are_masked() {
    let r = r();
    for (input, expected) in [
        ("LTAI5tQ9xW2mZ8kP3rV7nB4c", "LTAI[REDACTED]"),
        (
            "EAAAl7s9fPq2Xw4ZcV8bN1mK3jH6gD5sA0qW9eR2tY7uI4oP1aS8dF3gH6jK9lZ2xC5vB8nM0",
            "EAAA[REDACTED]",
        ),
        ("token EAACEdEose0cBAJ3kZ8q9W2xY4vB6nM1pL7o", "token EAAC[REDACTED]"),
        ("aio_Ab12Cd34Ef56Gh78Ij90Kl12Mn34", "aio_[REDACTED]"),
        (
            "dt0c01.ST2EY72KQINMH574WMNVI7YN.G3DFPBEJYMODIDAEX454M7YWBUVEFOWKPRVMWFASS64NFH52PX6BNDVFFM572RZM",
            "dt0c01.[REDACTED]",
        ),
        (
            "ntn_123456789012aBcDeFgHiJkLmNoPqRsTuVwXyZ0123456789",
            "ntn_[REDACTED]",
        ),
        (
            "secret_AbCdEfGhIjKlMnOpQrStUvWxYz0123456789aBcDeFg",
            "secret_[REDACTED]",
        ),
        ("(key-3ac6a0f929d76fd54c373e8b9d7e0e10)", "(key-[REDACTED])"),
        (
            "pul-0123456789abcdef0123456789abcdef01234567",
            "pul-[REDACTED]",
        ),
        (
            "twilio SK2b5f3c1e9a7d4b6c8e0f1a3b5c7d9e1f failed",
            "twilio SK[REDACTED] failed",
        ),
        (
            "token=xxxxxxxxxxxxxx.atlasv1.Ab3dEf6hIj9lMn2pQr5tUv8xYz1bCd4fGh7jKl0nOp3rSt6vWx9zAb2dEf5hIj8lMn1pQr4tU;",
            "token=[REDACTED];",
        ),
        (
            "login('MTA4NzY1NDMyMTA5ODc2NTQzMg.GhT5xQ.q9W2xY4vB6nM1pL7oK5iU3yT0rE9wQ2').",
            "login('[REDACTED]').",
        ),
        (
            "bot ODAzNTExMTAyMjQ2Nzg5MTI.YAbCdE.Zx9Yw8Vu7Ts6Rq5Po4Nm3Lk2Ji1Hg0Fe9Dc. done",
            "bot [REDACTED]. done",
        ),
        // Base64 padding is masked with the key.
        (
            "ops_eyJzaWduSW5BZGRyZXNzIjoiaHR0cHM6Ly9teS4x",
            "ops_[REDACTED]",
        ),
        (
            "CLOJARS_4boh55qaxtjm7kv25puzqm1mnyounii5wcerkh24rn0y75u2uecrcrwtbiz3",
            "CLOJARS_[REDACTED]",
        ),
        ("sl.BAbCdEfGhIjKlMnOpQrStUvWxYz0123456789", "sl.[REDACTED]"),
        ("EZAKhnl1ks7RgLdi8RDeWguzDBGwBnMx", "EZAK[REDACTED]"),
        (
            "api_org_k2FINMdB8FAsHzMtxHsEPrJ7sQTVsbaXpL",
            "api_org_[REDACTED]",
        ),
        (
            "pk.eyJ1IjoibXl1c2VyIiwiYSI6ImNrMU6Dj90pMThdNADhn3dwH.jhxCiQADMqOLRAxXVH0i8s",
            "pk.[REDACTED]",
        ),
        ("pnu_ZhCZ0N1XXnCBVqyZjxjP1MusJWV06lBPxLgD", "pnu_[REDACTED]"),
        (
            "xkeysib-a2043d77faecbaa4ff21db0c2e0b03dd475c5a6cd981f939451e0f1a365b67f7-Cl5rzl6",
            "xkeysib-[REDACTED]",
        ),
        (
            "access-production-56de14c3-c5a4-87a1-14cf-3fbdd9fedd33",
            "access-production-[REDACTED]",
        ),
        (
            "sdk key sdk-48546c97-50f4-88d8-cc41-53169b3ca0f5 loaded",
            "sdk key sdk-[REDACTED] loaded",
        ),
        (
            "duffel_test_AbCdEfGhIjKlMnOpQrStUvWxYz0123456789ab==",
            "duffel_test_[REDACTED]",
        ),
    ] {
        assert_eq!(r.redact_value(input), expected, "{input}");
    }
    // Long tokens found by a literal inside them, masked whole.
    for token in [
        "AAAAAAAAAAAAAAAAAAAAAMLheAAAAAAA0%2BuSeid%2BULvsea4JtiGRiSDSJSI%3DEUifiRBkKG5E2XzMDjRfl76ZC9Ub0wnz4XsNiRVBChTYbJcE3F",
        "eyJrIjoikASAOsE1nYEZ9GlGHpYaax7LBejYWo6oScBVX4ANCc9vIFShP88xbjV0fhZ7bDkJUvzFjlQc",
        "IQoJb3JpZ2luX2VjEJr8EjzAjp8XzRs0LU5XO/XIdlu+a/iCOoxvSQSNFnviw2VueE0ubS/WFFui409hKgHLe1FvYiRst9gGr9dBUtV2/9NrJrbWqdHPF1GZrrsmYmxd5sjpKqMPY+C==",
        "1//0vxxWzfhbX7iYwDGOfFXtNL-mhPNLyiPzTiO1njj5c48XZjCdg3fFJZ26EZXP-Dke9w-VB5HF9_XNWauOzNYslwkMW7nv3AQVyHk",
        "pat8buGq829j5RGmp.8c5cecde85c83661bb021cee704396eb0b54d196dc77e022d641fffa484b9902",
    ] {
        assert_eq!(
            r.redact_value(&format!("token {token} rejected")),
            "token [REDACTED] rejected"
        );
    }
    // PuTTY's key files, through their MAC (or to the end without one).
    assert_eq!(
        r.redact_value(
            "key file:\nPuTTY-User-Key-File-3: ssh-ed25519\nEncryption: none\n\
             Public-Lines: 1\nAAAAC3NzaC1lZDI1NTE5\nPrivate-Lines: 1\nAAAAIHc1b2Qx\n\
             Private-MAC: 8a4b7c2d9e1f0a3b\nend of dump"
        ),
        "key file:\n[REDACTED]\nend of dump"
    );
    assert_eq!(
        r.redact_value("PuTTY-User-Key-File-2: ssh-rsa\nPrivate-Lines: 14\nAAAB"),
        "[REDACTED]"
    );
    // Names that start like these keys, and dotted names shaped like a Discord token
    // whose first part is not a user's id in base64.
    for clean in [
        "key-value-store-01234567",
        "key-0123456789abcdef0123456789abcdeg",
        "secret_rotation_2024_policy",
        "k8s secret_8f3a2b1c mounted",
        "pul-request-merged-1234abcd",
        "EAACCESS_DENIED",
        "LTAILED_RESULTS_2024",
        "aio_max_nr",
        "dt0c01.config.yaml",
        "SKU 123456789 out of stock",
        "SK2b5f3c1e9a7d4b6c8e0f1a3b5c7d9e1f2a3b",
        "MyVeryLongPackageNameHere1.module.SomeVeryLongClassNameThatIsLongEnough",
        "Mu8jzPde0IgxLd6GncfBAepf.JBd0Kh.8oOOL8dKLzdocJ2isAjIhKtJ0Rl",
        "see docs.atlasv1.example.com for the atlasv1 api and much more text after it",
        "ops_runbook_2024",
        "sl.example.com",
        "ico-sphere-mesh-12",
        "select pk.a1b2c3d4 from t pk",
        "sk.learn.pipeline",
        "access-production-database",
        "tk-us-east-1",
        "api-gateway-7f3a9b2c",
        "sdk-version-20240101",
        "api-48546c97-50f4-88d8-cc41-53169b3ca0f5-extra",
        "pattern matching the patient records patch applied to pathname and more patterns",
        "see https://example.com/pat/path/to/a/long/url/that/has/1//0/in/it/and/more/text/ok",
        "cursor eyJrIjoiYWJj is short, though the value is long enough to reach the gate",
        "PuTTY-User-Key-File-2 is the header of a ppk file",
    ] {
        assert!(matches!(r.redact_value(clean), Cow::Borrowed(_)), "{clean}");
    }
    let off = Redactor::new(&RedactionPolicy::default().disable(Rule::ApiKey)).unwrap();
    assert!(matches!(
        off.redact_value("bot ODAzNTExMTAyMjQ2Nzg5MTI.YAbCdE.Zx9Yw8Vu7Ts6Rq5Po4Nm3Lk2Ji1Hg0Fe9Dc"),
        Cow::Borrowed(_)
    ));
}

#[test]
fn telegram_bot_tokens_keep_the_bot_id() {
    let r = r();
    for (input, expected) in [
        (
            "123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw",
            "123456789:[REDACTED]",
        ),
        (
            "bot token=1234567890:AAEhBP0av28hH_ZsVpgwOJRNtUd8w-XUWxM sent",
            "bot token=1234567890:[REDACTED] sent",
        ),
        (
            "https://api.telegram.org/bot12345678:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw/getMe",
            "https://api.telegram.org/bot[REDACTED]",
        ),
    ] {
        assert_eq!(r.redact_value(input), expected, "{input}");
    }
    // Too short a secret, no bot id, or a time: not a token.
    for clean in [
        "123456789:AAshort",
        "bot:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw",
        "12:30:AA",
        "ratio 12345678:AAA",
    ] {
        assert!(matches!(r.redact_value(clean), Cow::Borrowed(_)), "{clean}");
    }
    let off = Redactor::new(&RedactionPolicy::default().disable(Rule::ApiKey)).unwrap();
    assert_eq!(
        off.redact_value("123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw"),
        "123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw"
    );
}

#[test]
fn a_secret_named_in_two_words_is_masked() {
    let r = r();
    for (input, expected) in [
        ("api key: abc123def456ghi789", "api key: [REDACTED]"),
        (
            "Heroku API key: 01234567-89ab-cdef-0123-456789abcdef",
            "Heroku API key: [REDACTED]",
        ),
        ("session id: 9f8e7d6c5b4a3928", "session id: [REDACTED]"),
        ("(access key=AbCd1234EfGh5678)", "(access key=[REDACTED])"),
        ("encryption key: 3q2+7w==", "encryption key: [REDACTED]"),
        ("master key = Zx9Yw8Vu7Ts6", "master key = [REDACTED]"),
    ] {
        assert_eq!(r.redact_value(input), expected, "{input}");
    }
    for (key, value) in [
        ("encryption_key", "3q2+7w=="),
        ("signingKey", "abcdef123456"),
        ("X-Master-Key", "abcdef123456"),
    ] {
        assert_eq!(r.redact_attribute(key, value), "[REDACTED]", "{key}");
    }
    // A key a word before it does not make a secret's name, an id that names one, the
    // end of another token, a URL after a word.
    for clean in [
        "cache key: user-42-profile",
        "primary key: 5",
        "sort key: created_at",
        "idempotency key: 5b4a3928-9f8e",
        "user id: 42",
        "trace id: 4bf92f3577b34da6a3ce929d0e0e4736",
        "api key id: kid-42",
        "the master key rotation happens weekly",
        "docs https://example.com/x",
    ] {
        assert_eq!(r.redact_value(clean), clean);
    }
    assert_eq!(r.redact_attribute("encryption_key_id", "kms-42"), "kms-42");
}

#[test]
fn entra_id_client_secrets_databricks_tokens_and_mailchimp_keys() {
    let r = r();
    for (input, expected) in [
        ("abc8Q~AbCdEfGhIjKlMnOpQrStUvWxYz01234567", "[REDACTED]"),
        (
            "client_secret=\"Xy_7Q~a.b-c~dEfGhIjKlMnOpQrStUvWxYz0123456\"",
            "client_secret=\"[REDACTED]\"",
        ),
        (
            "two: abc8Q~AbCdEfGhIjKlMnOpQrStUvWxYz01234567 def9Q~AbCdEfGhIjKlMnOpQrStUvWxYz01234567",
            "two: [REDACTED] [REDACTED]",
        ),
        ("0123456789abcdef0123456789abcdef-us20", "[REDACTED]-us20"),
        ("dapi1234567890abcdef1234567890abcdef", "dapi[REDACTED]"),
        (
            "DATABRICKS_TOKEN=dapi1234567890abcdef1234567890abcdef-2 ok",
            "DATABRICKS_TOKEN=dapi[REDACTED] ok",
        ),
        (
            "mailchimp key 0123456789abcdef0123456789abcdef-us6 set",
            "mailchimp key [REDACTED]-us6 set",
        ),
    ] {
        assert_eq!(r.redact_value(input), expected, "{input}");
    }
    // Too short, no digit before `Q~`, inside a longer token, or no data centre.
    for clean in [
        "abc8Q~short",
        "abcdQ~AbCdEfGhIjKlMnOpQrStUvWxYz01234567",
        "xabc8Q~AbCdEfGhIjKlMnOpQrStUvWxYz01234567AbCdEfGhIjKlMnOpQrSt",
        "~/projects/Q~backup-2026",
        "0123456789abcdef0123456789abcdef-usa",
        "build 0123456789abcdef-us20",
        "eu-west-1 and us-east-1, -us3 suffix",
        "dapi_client 1234567890abcdef1234567890abcdef",
        "xdapi1234567890abcdef1234567890abcdef",
    ] {
        assert!(matches!(r.redact_value(clean), Cow::Borrowed(_)), "{clean}");
    }
    let off = Redactor::new(&RedactionPolicy::default().disable(Rule::ApiKey)).unwrap();
    let key = "0123456789abcdef0123456789abcdef-us20";
    assert_eq!(off.redact_value(key), key);
}

#[test]
fn webhook_urls_are_credentials() {
    let r = r();
    assert_eq!(
        r.redact_url("https://hooks.slack.com/services/T000/B000/XXXXXXXXXXXXXXXX"),
        "https://hooks.slack.com/services/[REDACTED]"
    );
    assert_eq!(
        r.redact_url("https://discord.com/api/webhooks/123456/abcDEF-token?wait=true"),
        "https://discord.com/api/webhooks/123456/[REDACTED]?wait=true"
    );
    assert_eq!(
        r.redact_url("https://api.telegram.org/bot123456:ABC-DEF/sendMessage"),
        "https://api.telegram.org/bot[REDACTED]"
    );
    assert!(matches!(
        r.redact_url("https://hooks.example.com/services/T000/B000/XXXX"),
        Cow::Borrowed(_)
    ));
}

#[test]
fn json_keeps_its_bytes_beside_what_is_masked() {
    let r = r();
    assert_eq!(
        r.redact_value(r#"{"jwt": "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.sig123", "ttl": 3600}"#),
        r#"{"jwt": "[REDACTED]", "ttl": 3600}"#
    );
    assert_eq!(
        r.redact_value("{\n  \"password\" : \"x\",\n  \"n\" : 1.50e3\n}"),
        "{\n  \"password\" : \"[REDACTED]\",\n  \"n\" : 1.50e3\n}"
    );
    // Escapes elsewhere stay as written.
    assert_eq!(
        r.redact_value(r#"{"a":"\u00e9\n","token":"t\"x"}"#),
        r#"{"a":"\u00e9\n","token":"[REDACTED]"}"#
    );
}

#[test]
fn json_objects_under_sensitive_keys_and_name_value_pairs() {
    let r = r();
    assert_eq!(
        r.redact_value(r#"{"credentials": {"user": "svc", "key": "k-1", "type": "basic"}}"#),
        r#"{"credentials": {"user": "[REDACTED]", "key": "[REDACTED]", "type": "basic"}}"#
    );
    assert_eq!(
        r.redact_value(r#"{"auth": {"method": "password", "mfa": true}}"#),
        r#"{"auth": {"method": "password", "mfa": true}}"#
    );
    assert_eq!(
        r.redact_value(r#"[{"name":"DB_PASSWORD","value":"s3"},{"name":"PORT","value":"8080"}]"#),
        r#"[{"name":"DB_PASSWORD","value":"[REDACTED]"},{"name":"PORT","value":"8080"}]"#
    );
    assert_eq!(
        r.redact_value(r#"{"Value":{"x":"s3"},"Key":"ApiSecret"}"#),
        r#"{"Value":{"x":"[REDACTED]"},"Key":"ApiSecret"}"#,
        "the name may come after the value"
    );
    assert_eq!(
        r.redact_value(r#"{"tokens": {"input": 1532, "output": 87}}"#),
        r#"{"tokens": {"input": 1532, "output": 87}}"#
    );
}

#[test]
fn values_up_to_the_default_limit_are_scanned_whole_and_kept_whole_when_clean() {
    let r = r();
    let clean = "step completed for queue default-eu-west; ".repeat(24_000);
    assert!(clean.len() > 1_000_000 && clean.len() <= DEFAULT_MAX_SCAN_BYTES);
    assert!(matches!(r.redact_value(&clean), Cow::Borrowed(_)));
    let dirty = format!("{clean}password=hunter2 and bob@example.com");
    let out = r.redact_value(&dirty);
    assert!(out.starts_with(&clean));
    assert!(
        out.ends_with("password=[REDACTED] and [REDACTED]"),
        "{}",
        &out[out.len() - 60..]
    );
    assert!(!out.contains(TRUNCATED_MARKER));
    // A JSON body of the same size, masked in place.
    let body = format!(
        "[{}{{\"token\":\"t\"}}]",
        r#"{"sku":"A-1234","qty":2},"#.repeat(40_000)
    );
    let out = r.redact_value(&body);
    assert_eq!(out.len(), body.len() + REDACTED.len() - 1);
    // Past the limit the value is cut.
    let over = "x ".repeat(DEFAULT_MAX_SCAN_BYTES);
    assert!(r.redact_value(&over).ends_with(TRUNCATED_MARKER));
}

/// A UUID whose leading groups are digits that pass the Luhn check (with the version
/// digit after them) is an id; so is a digit group glued to letters. Cards keep being
/// masked beside them.
#[test]
fn uuids_and_groups_glued_to_words_are_not_cards() {
    for id in [
        "29141777-6317-4ec1-a559-a4d393d0ae67",
        "44852791-1989-4ec1-a559-a4d393d0ae67",
    ] {
        assert_eq!(attr("request_id", id), id);
        let line = format!("request {id} failed");
        assert_eq!(attr("note", &line), line);
    }
    assert_eq!(
        attr("note", "ref 29141777-6317-4abc"),
        "ref 29141777-6317-4abc"
    );
    assert_eq!(
        attr(
            "note",
            "id 29141777-6317-4ec1-a559-a4d393d0ae67 card 4111 1111 1111 1111"
        ),
        "id 29141777-6317-4ec1-a559-a4d393d0ae67 card **** **** **** 1111"
    );
}

#[test]
fn a_card_beside_other_numbers_is_masked_keeping_its_last_four() {
    let r = r();
    for (text, masked) in [
        // After a year, before a CVV, an amount or a date: the digit pattern runs on.
        (
            "paid 2026 4111 1111 1111 1111 cvv",
            "paid 2026 **** **** **** 1111 cvv",
        ),
        (
            "card 4111 1111 1111 1111 123 ok",
            "card **** **** **** 1111 123 ok",
        ),
        ("4111111111111111 2026", "************1111 2026"),
        ("id-2026-4111-1111-1111-1111", "id-2026-****-****-****-1111"),
        (
            "amex 3782 822463 10005 12/26",
            "amex **** ****** *0005 12/26",
        ),
        (
            "two: 4111 1111 1111 1111 5555 5555 5555 4444",
            "two: **** **** **** 1111 **** **** **** 4444",
        ),
    ] {
        assert_eq!(r.redact_attribute("message", text), masked, "{text}");
    }
    // Numbers that only contain a Luhn-valid stretch in no card's layout stay.
    for clean in [
        "order 12345678901234567890 shipped",
        "1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6",
        "2026-12-06 10:11:12 took 4111 ms",
    ] {
        assert_eq!(r.redact_attribute("message", clean), clean, "{clean}");
    }
}

#[test]
fn descriptions_of_a_secret_keep_their_values_and_secrets_do_not() {
    let r = r();
    // An algorithm's OID under a key that describes a signature.
    assert_eq!(
        r.redact_attribute("x509.signature_algorithm.oid", "1.2.840.113549.1.1.11"),
        "1.2.840.113549.1.1.11"
    );
    assert_eq!(
        r.redact_attribute("signature.oid", "1.2.840.10045.4.3.2"),
        "1.2.840.10045.4.3.2"
    );
    // The same shape with a secret's name at the end, or an id a secret is, stays masked.
    for key in [
        "signature_algorithm.token",
        "session.id.value",
        "x509.signature",
        "client.secret",
    ] {
        assert_eq!(r.redact_attribute(key, "s3cr3t-value-1"), REDACTED, "{key}");
    }
}

#[test]
fn a_url_keeps_its_fragment_and_a_card_its_last_four_as_everywhere() {
    let r = r();
    assert_eq!(
        r.redact_attribute(
            "url.full",
            "https://docs.example.com/guide?token=abc123xyz#section-2"
        ),
        "https://docs.example.com/guide?token=[REDACTED]#section-2"
    );
    assert_eq!(
        r.redact_attribute(
            "message",
            "see https://example.com/a?api_key=k9f8e7d6c5b4#top then"
        ),
        "see https://example.com/a?api_key=[REDACTED]#top then"
    );
    // Under a sensitive parameter, and under any parameter: the last four stay.
    assert_eq!(
        r.redact_attribute(
            "url.full",
            "https://pay.example.com/charge?card=4111111111111111&amount=10"
        ),
        "https://pay.example.com/charge?card=************1111&amount=10"
    );
    assert_eq!(
        r.redact_attribute(
            "url.full",
            "https://pay.example.com/charge?n=4111111111111111"
        ),
        "https://pay.example.com/charge?n=************1111"
    );
    assert_eq!(
        r.redact_attribute("card", "4111111111111111"),
        "************1111"
    );
}

#[test]
fn a_bracket_around_a_pair_stays_outside_the_mask() {
    let r = r();
    assert_eq!(
        r.redact_attribute("message", "login failed (password=hunter2)"),
        "login failed (password=[REDACTED])"
    );
    assert_eq!(
        r.redact_attribute("message", "[token=abc123def] sent"),
        "[token=[REDACTED]] sent"
    );
    // A bracket the value opened is the value's.
    assert_eq!(
        r.redact_attribute("message", "password=hun(ter)2"),
        "password=[REDACTED]"
    );
}

#[test]
fn a_user_and_password_written_as_a_pair_in_prose() {
    let r = r();
    for (text, masked) in [
        (
            "Default credentials admin/Adm1n!2024 for the console",
            "Default credentials admin/[REDACTED] for the console",
        ),
        (
            "log in as root/toor99 to check",
            "log in as root/[REDACTED] to check",
        ),
        (
            "username/password: jdoe/Winter2024!",
            "username/password: jdoe/[REDACTED]",
        ),
        (
            "creds: svc_backup / s3cr3tP4ss.",
            "creds: svc_backup / [REDACTED].",
        ),
        ("the login is sa/Password123", "the login is sa/[REDACTED]"),
    ] {
        assert_eq!(r.redact_attribute("message", text), masked, "{text}");
    }
    for clean in [
        "credentials are in config/prod/db.yaml",
        "creds in secrets/db.yaml were rotated",
        "login page read/write access",
        "credentials with read/write scope",
        "see the login docs at /help/login",
    ] {
        assert_eq!(r.redact_attribute("message", clean), clean, "{clean}");
    }
}

#[test]
fn markup_naming_a_credential_type_masks_the_sibling_value() {
    let r = r();
    for (text, masked) in [
        (
            r#"<input type="password" name="pw" value="hunter2x">"#,
            r#"<input type="password" name="pw" value="[REDACTED]">"#,
        ),
        (
            r#"<credential type="api_key" value="k9f8e7d6c5b4a3"/>"#,
            r#"<credential type="api_key" value="[REDACTED]"/>"#,
        ),
        (
            r#"<input value="hunter2x" type="password">"#,
            r#"<input value="[REDACTED]" type="password">"#,
        ),
        (
            r#"<add key="DbPassword" value="s3cret!"/>"#,
            r#"<add key="DbPassword" value="[REDACTED]"/>"#,
        ),
    ] {
        assert_eq!(r.redact_attribute("body", text), masked, "{text}");
    }
    for clean in [
        r#"<input type="text" name="user" value="alice">"#,
        r#"<input type="password" name="pw" value="">"#,
        r#"<meta name="description" content="password reset help">"#,
    ] {
        assert_eq!(r.redact_attribute("body", clean), clean, "{clean}");
    }
}

#[test]
fn a_vendors_pair_with_its_secret_after_auth() {
    let r = r();
    assert_eq!(
        r.redact_attribute(
            "message",
            "twilio AC5f3c2a1b9d8e7f6a auth 9f8e7d6c5b4a39281706f5e4d3c2b1a0"
        ),
        "twilio AC5f3c2a1b9d8e7f6a auth [REDACTED]"
    );
    assert_eq!(
        r.redact_attribute("message", "sid: AC5f3c2a1b9d auth token: 9f8e7d6c5b4a3928"),
        "sid: AC5f3c2a1b9d auth token: [REDACTED]"
    );
    for clean in [
        "auth failed for alice",
        "auth service restarted",
        "oauth flow completed",
    ] {
        assert_eq!(r.redact_attribute("message", clean), clean, "{clean}");
    }
}

/// Every kind of secret the detectors know, at the start, in the middle and at the end
/// of values of 1 KiB, 100 KiB and 1 MiB of log-like text (numbers, dates, words):
/// scanned whole, in every case.
#[test]
fn every_detector_finds_its_secret_anywhere_in_long_values() {
    let r = r();
    let secrets = [
        ("4111 1111 1111 1111", "1111 1111 1111"),
        ("4111111111111111", "41111111111"),
        ("bob@example.com", "bob@example.com"),
        (
            "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U",
            "eyJzdWIi",
        ),
        ("Authorization: Bearer abcdef0123456789abcdef", "abcdef0123456789"),
        ("sk_live_abcdefghijklmnop1234", "abcdefghijklmnop"),
        (
            "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\n-----END PRIVATE KEY-----",
            "MIIEvQ",
        ),
        ("https://user:hunter2x@example.com/x", "hunter2x"),
        ("password=hunter2xyz", "hunter2xyz"),
        ("123-45-6789", "123-45-6789"),
        ("the password is hunter2xyz", "hunter2xyz"),
    ];
    let filler = "2026-12-06T10:11:12Z worker-7 processed order 1234 of 5000 in 35 ms; ";
    for size in [1024, 100 * 1024, 1024 * 1024 - 512] {
        let pad: String = filler.chars().cycle().take(size).collect();
        let half = pad.len() / 2;
        for (secret, needle) in secrets {
            for (at, text) in [
                ("start", format!("{secret} {pad}")),
                (
                    "middle",
                    format!("{} {secret} {}", &pad[..half], &pad[half..]),
                ),
                ("end", format!("{pad} {secret}")),
            ] {
                let out = r.redact_attribute("message", &text);
                assert!(
                    !out.contains(needle),
                    "{secret:?} at the {at} of {size} bytes"
                );
                assert!(
                    !out.contains(TRUNCATED_MARKER),
                    "{size} bytes scanned whole"
                );
            }
        }
    }
}

mod properties {
    use super::*;
    use proptest::prelude::*;
    use std::sync::OnceLock;

    /// One redactor per policy for every case (building one compiles every pattern).
    fn default_redactor() -> &'static Redactor {
        static R: OnceLock<Redactor> = OnceLock::new();
        R.get_or_init(Redactor::default)
    }

    fn ip_redactor() -> &'static Redactor {
        static R: OnceLock<Redactor> = OnceLock::new();
        R.get_or_init(|| Redactor::new(&RedactionPolicy::default().enable(Rule::Ip)).unwrap())
    }

    proptest! {
        #[test]
        fn redacting_never_panics(key in ".{0,20}", value in ".{0,300}") {
            let r = default_redactor();
            let _ = r.redact_attribute(&key, &value);
            let _ = r.redact_url(&value);
            let _ = sanitize_sql(&value);
        }

        #[test]
        fn remembering_clean_values_changes_no_answer(
            values in proptest::collection::vec(
                "(peer |id |GET /v1/)?([a-z0-9.@/ -]{0,12}|10\\.1\\.2\\.3|bob@example\\.com|4111 1111 1111 1111)",
                1..12,
            ),
            long in "[a-z ]{60,70}",
        ) {
            // Each value through two policies, each twice in a row, then alternating:
            // every answer is the one a scan without the memo gives.
            let (lenient, strict) = (default_redactor(), ip_redactor());
            let values: Vec<String> = values.into_iter().chain([long]).collect();
            for r in [lenient, lenient, strict, strict, lenient, strict, lenient] {
                for value in &values {
                    let mut summary = RedactionSummary::default();
                    let mut expected_summary = RedactionSummary::default();
                    let got = r.redact(Kind::Attribute, "note", value, &mut summary);
                    let expected = r.scan_unremembered(value, 0, &mut expected_summary);
                    prop_assert_eq!(&got, &expected);
                    prop_assert_eq!(matches!(got, Cow::Borrowed(_)), matches!(expected, Cow::Borrowed(_)));
                    prop_assert_eq!(summary.total(), expected_summary.total());
                }
            }
        }

        #[test]
        fn detected_emails_never_survive(
            prefix in "[a-z ]{0,20}",
            user in "[a-z][a-z0-9.]{0,10}[a-z0-9]",
            domain in "[a-z]{2,10}\\.(com|org|io)",
            suffix in "[a-z ]{0,20}",
        ) {
            let email = format!("{user}@{domain}");
            let out = default_redactor().redact_value(&format!("{prefix} {email} {suffix}")).into_owned();
            prop_assert!(!out.contains(&email), "{}", out);
        }

        #[test]
        fn card_and_ssn_shapes_are_never_skipped(text in "([0-9]{1,5}([ -]|[a-f]|--|  )?){0,10}") {
            // The digit-run prefilter must let through everything the patterns match.
            let card = regex::Regex::new(r"[0-9](?:[ \-]?[0-9]){12,18}").unwrap();
            let ssn = regex::Regex::new(r"\b([0-9]{3})-([0-9]{2})-([0-9]{4})\b").unwrap();
            if card.is_match(&text) || ssn.is_match(&text) {
                prop_assert!(detect::longest_digit_run(text.as_bytes()) >= 9, "{}", text);
            }
        }

        #[test]
        fn detected_cards_never_survive(body in "[0-9]{15}", sep in "[ -]?", noise in "[a-z ]{0,10}") {
            // Make a Visa-range number with a valid check digit.
            let mut digits: Vec<u8> = format!("4{}", &body[..14]).into_bytes();
            let check = (0..10u8).find(|d| { let mut t = digits.clone(); t.push(b'0' + d); text::luhn_valid(&t) }).unwrap();
            digits.push(b'0' + check);
            let plain = String::from_utf8(digits).unwrap();
            let grouped: Vec<&str> = (0..4).map(|i| &plain[i * 4..i * 4 + 4]).collect();
            let card = grouped.join(&sep);
            let out = default_redactor().redact_value(&format!("{noise} {card} {noise}")).into_owned();
            prop_assert!(!out.contains(&card), "{}", out);
            prop_assert!(out.contains(&plain[12..]));
        }

        #[test]
        fn secrets_under_sensitive_keys_never_survive(
            key in "(db_|user_|x-)?(password|secret|token|api_key|apiKey)(_hash|_value)?",
            secret in "[A-Za-z0-9]{6,40}",
        ) {
            let r = default_redactor();
            let out = r.redact_attribute(&key, &secret).into_owned();
            prop_assert!(!out.contains(&secret), "{} -> {}", key, out);
            let text = format!("{key}={secret} other=1");
            let out = r.redact_value(&text).into_owned();
            prop_assert!(!out.contains(&secret), "{} -> {}", text, out);
            let json = format!("{{\"{key}\":\"{secret}\"}}");
            let out = r.redact_value(&json).into_owned();
            prop_assert!(!out.contains(&secret), "{} -> {}", json, out);
        }

        #[test]
        fn sql_literals_never_survive(secret in "[A-Za-z0-9 @._-]{1,30}", n in 0u32..1_000_000) {
            let sql = format!("SELECT * FROM users WHERE name = '{secret}' AND id = {n}");
            let out = sanitize_sql(&sql).into_owned();
            prop_assert_eq!(out, "SELECT * FROM users WHERE name = ? AND id = ?");
        }

        #[test]
        fn sql_sanitising_is_idempotent_on_sql_like_text(sql in "[0-9a-z$'\"`#.\\ /*-]{0,40}") {
            let once = sanitize_sql(&sql).into_owned();
            let twice = sanitize_sql(&once).into_owned();
            prop_assert_eq!(once, twice);
        }

        #[test]
        fn sql_sanitising_is_idempotent(sql in ".{0,200}") {
            let once = sanitize_sql(&sql).into_owned();
            let twice = sanitize_sql(&once).into_owned();
            prop_assert_eq!(once, twice);
        }
    }
}

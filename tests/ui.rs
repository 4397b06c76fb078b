//! Compile-time behaviour of `#[workflow_span]` and the layers' builders: every
//! accepted shape builds (the builders' closures without annotations), every misuse of
//! the macro fails with a message pointing at the offending token.
#![cfg(not(feature = "disabled"))]

#[test]
fn ui() {
    let cases = trybuild::TestCases::new();
    cases.pass("tests/ui/pass/*.rs");
    cases.compile_fail("tests/ui/fail/*.rs");
}

//! `promtool check metrics` on an exposition: the real tool (Debian package
//! `prometheus`, installed by `.ci/run`).

use std::io::Write as _;
use std::process::{Command, Stdio};

/// Fails the test with promtool's complaints unless `exposition` passes its checks.
pub fn check_metrics(exposition: &str) {
    let mut promtool = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool is needed: apt-get install -y prometheus");
    promtool
        .stdin
        .take()
        .expect("piped stdin")
        .write_all(exposition.as_bytes())
        .expect("promtool reads its input");
    let checked = promtool.wait_with_output().expect("promtool runs");
    assert!(
        checked.status.success(),
        "promtool: {}{}",
        String::from_utf8_lossy(&checked.stdout),
        String::from_utf8_lossy(&checked.stderr)
    );
}

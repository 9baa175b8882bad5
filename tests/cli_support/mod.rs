//! Helpers shared by the tests that run the `strata` binary.

use std::process::Command;

/// Runs `strata` with `args`: exit code, standard output, standard error.
pub fn strata(args: &[&str]) -> (i32, String, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_strata"))
        .args(args)
        .output()
        .expect("run strata");
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// Asserts that each command is refused as a usage error (exit 2, nothing
/// on standard output, no panic) whose message contains its text.
pub fn assert_usage_errors(cases: &[(Vec<&str>, &str)]) {
    for (args, expected) in cases {
        let (code, out, err) = strata(args);
        assert_eq!(code, 2, "{args:?}: {out}{err}");
        assert!(out.is_empty(), "{args:?}: {out}");
        assert!(err.contains(expected), "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{args:?}: {err}");
    }
}

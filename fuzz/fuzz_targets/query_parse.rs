//! Arbitrary text as a PromQL expression.
//!
//! `parse_expr` never panics and never hangs (the tree is at most
//! `MAX_DEPTH` deep, the work linear in the input). When the text parses,
//! the canonical form (`Display`) parses back to the same tree and prints
//! the same text again, and the error of a text that does not parse points
//! inside it (or just past its end).
#![no_main]

use libfuzzer_sys::fuzz_target;
use strata::parse_expr;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    match parse_expr(&text) {
        Ok(expr) => {
            let shown = expr.to_string();
            let again = match parse_expr(&shown) {
                Ok(again) => again,
                Err(e) => panic!("{text:?} printed as {shown:?}, which fails: {e}"),
            };
            assert_eq!(again, expr, "{text:?} printed as {shown:?}");
            assert_eq!(again.to_string(), shown);
        }
        Err(e) => {
            assert!(e.position <= text.len(), "{text:?}: {e}");
            assert!(e.line >= 1 && e.column >= 1, "{text:?}: {e}");
        }
    }
});

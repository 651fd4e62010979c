//! Formatting for CI systems (no IO: binaries write the text where it belongs).

/// Format one `$GITHUB_OUTPUT` entry: `key=value` for a single-line value, otherwise the
/// `key<<DELIM` … `DELIM` form with a delimiter that does not occur in the value.
pub fn github_output(key: &str, value: &str) -> String {
    if !value.contains('\n') && !value.contains('\r') {
        return format!("{key}={value}\n");
    }
    let mut n = 0u32;
    let delim = loop {
        let d = format!("FERRY_EOF_{n}");
        if !value.lines().any(|l| l == d) {
            break d;
        }
        n += 1;
    };
    format!("{key}<<{delim}\n{value}\n{delim}\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn single_and_multi_line_values() {
        assert_eq!(github_output("any", "true"), "any=true\n");
        assert_eq!(
            github_output("m", "a\nb"),
            "m<<FERRY_EOF_0\na\nb\nFERRY_EOF_0\n"
        );
        assert_eq!(
            github_output("m", "FERRY_EOF_0\nx"),
            "m<<FERRY_EOF_1\nFERRY_EOF_0\nx\nFERRY_EOF_1\n"
        );
    }
}

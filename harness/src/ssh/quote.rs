//! Quoting for POSIX `sh`: every remote command is one string that the
//! remote user's shell parses, so every argument that comes from outside
//! (paths, addresses, node arguments) goes through [`sh_quote`].
//!
//! Guarantee: `sh -c "echo $(sh_quote(s))"` prints exactly `s`, for any
//! string without a NUL byte.

/// One argument, quoted so that `sh` reads it back as exactly `s`.
///
/// Plain words (letters, digits and `_@%+=:,./-`) stay as they are so that
/// commands in logs stay readable; anything else is wrapped in single
/// quotes, with each `'` written as `'\''`.
pub fn sh_quote(s: &str) -> String {
    let plain = !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "_@%+=:,./-".contains(c));
    if plain {
        return s.to_string();
    }
    let mut out = String::with_capacity(s.len() + 2);
    out.push('\'');
    for c in s.chars() {
        if c == '\'' {
            out.push_str("'\\''");
        } else {
            out.push(c);
        }
    }
    out.push('\'');
    out
}

/// A command line: each argument quoted, joined by spaces.
pub fn sh_join<S: AsRef<str>>(args: &[S]) -> String {
    args.iter()
        .map(|a| sh_quote(a.as_ref()))
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    #[test]
    fn plain_words_stay_readable_and_the_rest_is_single_quoted() {
        assert_eq!(
            sh_quote("/var/lib/faultline/node.log"),
            "/var/lib/faultline/node.log"
        );
        assert_eq!(sh_quote("10.77.0.11:7000"), "10.77.0.11:7000");
        assert_eq!(sh_quote(""), "''");
        assert_eq!(sh_quote("a b"), "'a b'");
        assert_eq!(sh_quote("it's"), "'it'\\''s'");
        assert_eq!(sh_quote("$(rm -rf /)"), "'$(rm -rf /)'");
        assert_eq!(sh_join(&["echo", "a b", "c"]), "echo 'a b' c");
    }

    #[test]
    fn sh_reads_back_exactly_what_was_quoted() {
        let nasty = [
            "plain",
            "with space",
            "it's",
            "''",
            "\"double\"",
            "$HOME `id` $(id) ; | & > < * ? [a] ~ #",
            "new\nline",
            "back\\slash",
            "-n",
            "",
            "é ü 漢字",
        ];
        for s in nasty {
            let out = Command::new("sh")
                .arg("-c")
                .arg(format!("printf %s {}", sh_quote(s)))
                .output()
                .expect("sh exists on every machine the harness runs on");
            assert!(out.status.success(), "sh failed for {s:?}");
            assert_eq!(
                String::from_utf8_lossy(&out.stdout),
                s,
                "round trip of {s:?}"
            );
        }
    }
}

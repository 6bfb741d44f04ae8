//! Building the one command line an SSH exec request carries. The scripts are
//! fixed text written here; everything that came from a user is a positional
//! parameter, single-quoted so the remote shell takes it literally, whatever
//! it holds (quotes, `$(...)`, backquotes, newlines, any byte but NUL).

/// `'...'` with every `'` written as `'\''`: inside single quotes a POSIX
/// shell interprets nothing at all.
pub fn quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}

/// `bash -c SCRIPT infra ARG...`, through `sudo -n` when asked: `-n` makes sudo
/// fail at once instead of waiting for a password nobody will type.
pub fn command(sudo: bool, script: &str, args: &[&str]) -> String {
    let mut words = Vec::with_capacity(args.len() + 5);
    if sudo {
        words.extend(["sudo", "-n", "--"].map(str::to_string));
    }
    words.extend(["bash".to_string(), "-c".to_string(), quote(script), "infra".to_string()]);
    words.extend(args.iter().map(|a| quote(a)));
    words.join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What `sh` makes of a quoted word, run locally: the same shell rules the
    /// server applies.
    fn through_sh(text: &str) -> String {
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(format!("printf %s {}", quote(text)))
            .output()
            .expect("sh runs");
        String::from_utf8(out.stdout).expect("utf-8")
    }

    #[test]
    fn hostile_text_stays_literal() {
        for text in ["'; rm -rf / #", "$(reboot)", "`id`", "a\nb", "it's", "\\", "$HOME", "", "'", "''"] {
            assert_eq!(through_sh(text), text);
        }
    }

    #[test]
    fn arguments_follow_the_script() {
        assert_eq!(command(false, "echo \"$1\"", &["x y"]), "bash -c 'echo \"$1\"' infra 'x y'");
        assert!(command(true, "true", &[]).starts_with("sudo -n -- bash -c"));
    }
}

//! Refresh in one round trip per server: a single script reads the server's
//! facts and the state of every path the planned resources name (paths sent on
//! stdin, NUL-separated) and answers in one NUL-separated stream.

use std::collections::HashMap;

use crate::connection::Connection;
use infra_core::ProviderError;

/// Prints `hostname`, `PRETTY_NAME`, then for each path on stdin: the path,
/// its type (`f` file, `d` directory, `o` other, `-` missing), octal mode,
/// owner, group and, for a file, its SHA-256.
const SCRIPT: &str = r#"
set -u
printf '%s\0' "$(hostname)"
( . /etc/os-release 2>/dev/null && printf '%s\0' "${PRETTY_NAME:-unknown}" ) || printf 'unknown\0'
while IFS= read -r -d '' p; do
  if [ -L "$p" ]; then t=o
  elif [ -f "$p" ]; then t=f
  elif [ -d "$p" ]; then t=d
  elif [ -e "$p" ]; then t=o
  else printf '%s\0-\0\0\0\0\0' "$p"; continue
  fi
  read -r mode owner group < <(stat -c '%a %U %G' -- "$p")
  sum=''
  if [ "$t" = f ]; then sum=$(sha256sum < "$p") && sum=${sum%% *}; fi
  printf '%s\0%s\0%s\0%s\0%s\0%s\0' "$p" "$t" "$mode" "$owner" "$group" "$sum"
done
"#;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Kind {
    File,
    Directory,
    Other,
}

/// What a path is on the server.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PathFacts {
    pub kind: Kind,
    /// Four octal digits, e.g. `0644`.
    pub mode: String,
    pub owner: String,
    pub group: String,
    pub sha256: Option<String>,
}

#[derive(Debug, Default)]
pub struct Facts {
    pub hostname: String,
    pub os: String,
    /// Path → what is there; a path missing from the map does not exist.
    pub paths: HashMap<String, PathFacts>,
}

pub async fn gather(connection: &Connection, paths: &[String]) -> Result<Facts, ProviderError> {
    let mut stdin = Vec::new();
    for path in paths {
        stdin.extend_from_slice(path.as_bytes());
        stdin.push(0);
    }
    let output = connection.run_ok("reading facts", SCRIPT, &[], &stdin).await?;
    parse(&output.stdout).ok_or_else(|| {
        ProviderError::failed(format!("{}: the facts script answered in an unexpected form", connection.target.name()))
    })
}

fn parse(stdout: &[u8]) -> Option<Facts> {
    let text = String::from_utf8_lossy(stdout);
    let mut fields = text.split('\0');
    let mut facts =
        Facts { hostname: fields.next()?.to_string(), os: fields.next()?.to_string(), paths: HashMap::new() };
    while let Some(path) = fields.next().filter(|p| !p.is_empty()) {
        let kind = fields.next()?;
        let (mode, owner, group, sum) = (fields.next()?, fields.next()?, fields.next()?, fields.next()?);
        let kind = match kind {
            "f" => Kind::File,
            "d" => Kind::Directory,
            "o" => Kind::Other,
            _ => continue,
        };
        facts.paths.insert(
            path.to_string(),
            PathFacts {
                kind,
                mode: normal_mode(mode).unwrap_or_default(),
                owner: owner.to_string(),
                group: group.to_string(),
                sha256: Some(sum.to_string()).filter(|s| !s.is_empty()),
            },
        );
    }
    Some(facts)
}

/// `644`, `0644` and `00644` all become `0644`; anything but octal digits is refused.
pub fn normal_mode(mode: &str) -> Option<String> {
    let digits = mode.trim_start_matches('0');
    if mode.is_empty() || !mode.chars().all(|c| ('0'..='7').contains(&c)) || digits.len() > 4 {
        return None;
    }
    Some(format!("{:0>4}", digits))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_answer_stream_parses() {
        let fields = [
            "web1",
            "Debian GNU/Linux 12 (bookworm)",
            "/etc/motd",
            "f",
            "644",
            "root",
            "root",
            "abc",
            "/srv",
            "d",
            "755",
            "app",
            "app",
            "",
            "/gone",
            "-",
            "",
            "",
            "",
            "",
            "",
        ];
        let stdout = fields.join("\0").into_bytes();
        let facts = parse(&stdout).expect("parses");
        assert_eq!(facts.hostname, "web1");
        assert_eq!(facts.paths["/etc/motd"].sha256.as_deref(), Some("abc"));
        assert_eq!(facts.paths["/srv"].kind, Kind::Directory);
        assert_eq!(facts.paths["/srv"].mode, "0755");
        assert!(!facts.paths.contains_key("/gone"));
    }

    #[test]
    fn modes() {
        assert_eq!(normal_mode("644").as_deref(), Some("0644"));
        assert_eq!(normal_mode("0600").as_deref(), Some("0600"));
        assert_eq!(normal_mode("4755").as_deref(), Some("4755"));
        assert_eq!(normal_mode("0"), Some("0000".into()));
        assert_eq!(normal_mode("rw-r--r--"), None);
        assert_eq!(normal_mode("888"), None);
    }
}

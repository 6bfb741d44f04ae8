//! Refresh in one round trip per server: a single script reads the server's
//! facts and the state of everything the resources on it name (paths, users,
//! groups, packages, authorized keys), asked on stdin and answered in one
//! stream. Questions are `TOPIC\0SUBJECT\0`; each answer is a record of
//! NUL-terminated fields ending in `\x1e`, starting with the topic and subject.

use std::collections::HashMap;

use infra_core::ProviderError;
use infra_ssh::Connection;

const SCRIPT: &str = r#"
set -u
# Every process started here costs a fork and an exec on each server of a fleet
# at once (most of a no-op's time): what bash can read itself, it reads.
host=''
read -r host < /proc/sys/kernel/hostname 2>/dev/null || host=$(hostname)
printf '%s\0' "$host"
pretty=unknown
if [ -r /etc/os-release ]; then
  while IFS='=' read -r key value; do
    if [ "$key" = PRETTY_NAME ]; then value=${value#[\"\']} pretty=${value%[\"\']}; fi
  done < /etc/os-release
fi
printf '%s\0' "$pretty"
printf '\036'
topics=() subjects=() services=() packages=() paths=() users=()
while IFS= read -r -d '' topic && IFS= read -r -d '' subject; do
  topics+=("$topic") subjects+=("$subject")
  case $topic in
    service) services+=("$subject") ;;
    package) packages+=("$subject") ;;
    user) users+=("$subject") ;;
    key) users+=("${subject%%$'\n'*}") ;;
    path) paths+=("$subject") ;;
    # A content question is the SHA-256 already known (64 characters), then the path.
    content) paths+=("${subject:64}") ;;
  esac
done
# Services and packages are looked up in one call each: a systemctl or dpkg-query
# per question is most of a refresh's time on a server with many of them.
declare -A unit_state active_state installed
if [ ${#services[@]} -gt 0 ]; then
  id='' unit='' active=''
  while IFS= read -r line || [ -n "$id" ]; do
    case $line in
      Id=*) id=${line#*=} ;;
      UnitFileState=*) unit=${line#*=} ;;
      ActiveState=*) active=${line#*=} ;;
      '') if [ -n "$id" ]; then unit_state[$id]=$unit active_state[$id]=$active; fi; id='' unit='' active='' ;;
    esac
  done < <(systemctl show --property=Id,UnitFileState,ActiveState -- "${services[@]}" 2>/dev/null; echo)
fi
if [ ${#packages[@]} -gt 0 ]; then
  while IFS='	' read -r name status version; do
    case $status in 'install ok installed') installed[$name]=$version ;; esac
  done < <(dpkg-query -W -f='${Package}\t${Status}\t${Version}\n' -- "${packages[@]}" 2>/dev/null)
fi
# Accounts likewise: one getent for every user asked about or owning a key.
declare -A passwd_of
if [ ${#users[@]} -gt 0 ]; then
  while IFS= read -r line; do passwd_of[${line%%:*}]=$line; done < <(getent passwd -- "${users[@]}" 2>/dev/null)
fi
# Paths likewise: one stat and one sha256sum for all of them (a process per
# path was most of the rest). The type is read with test, which starts none.
declare -A path_stat path_sum
if [ ${#paths[@]} -gt 0 ]; then
  present=() files=()
  for p in "${paths[@]}"; do
    if [ -e "$p" ] || [ -L "$p" ]; then present+=("$p"); fi
    if [ -f "$p" ] && [ ! -L "$p" ]; then files+=("$p"); fi
  done
  if [ ${#present[@]} -gt 0 ]; then
    while IFS= read -r -d '' p && IFS= read -r -d '' fields; do path_stat[$p]=$fields; done \
      < <(stat --printf '%n\0%a %U %G %s\0' -- "${present[@]}" 2>/dev/null)
  fi
  if [ ${#files[@]} -gt 0 ]; then
    # -z: records end in NUL and names are not escaped; a record is HASH, two spaces, NAME.
    while IFS= read -r -d '' record; do path_sum[${record:66}]=${record:0:64}; done \
      < <(sha256sum -z -- "${files[@]}" 2>/dev/null)
  fi
fi
for n in "${!topics[@]}"; do
  topic=${topics[$n]} subject=${subjects[$n]}
  printf '%s\0%s\0' "$topic" "$subject"
  case $topic in
  path)
    p=$subject
    if [ -L "$p" ]; then t=o
    elif [ -f "$p" ]; then t=f
    elif [ -d "$p" ]; then t=d
    elif [ -e "$p" ]; then t=o
    else t=-
    fi
    if [ "$t" != - ]; then
      read -r mode owner group _ <<< "${path_stat[$p]:-}"
      sum=''
      if [ "$t" = f ]; then sum=${path_sum[$p]:-}; fi
      printf '%s\0%s\0%s\0%s\0%s\0' "$t" "$mode" "$owner" "$group" "$sum"
    fi ;;
  user)
    entry=${passwd_of[$subject]:-}
    if [ -n "$entry" ]; then
      IFS=: read -r _ _ uid _ _ home shell <<< "$entry"
      # id lists the primary group first, then the supplementary ones
      # (comma-separated here; infra sorts them).
      read -r -a all <<< "$(id -nG -- "$subject" 2>/dev/null)"
      primary=${all[0]:-} groups=''
      for g in "${all[@]:1}"; do if [ "$g" != "$primary" ]; then groups+=${groups:+,}$g; fi; done
      printf '%s\0%s\0%s\0%s\0%s\0' "$uid" "$primary" "$home" "$shell" "$groups"
    fi ;;
  content)
    # Read only when it differs from what infra knows: the bytes are for a diff.
    known=${subject:0:64} p=${subject:64}
    read -r _ _ _ size <<< "${path_stat[$p]:-}"
    if [ -f "$p" ] && [ -n "$size" ] && [ "$size" -le 65536 ] && [ "${path_sum[$p]:-}" != "$known" ]; then
      printf '%s\0' "$(base64 -w0 < "$p")"
    fi ;;
  service)
    unit=$subject
    case $unit in *.*) ;; *) unit=$unit.service ;; esac
    enabled=${unit_state[$unit]:-}
    if [ -n "$enabled" ]; then printf '%s\0%s\0' "$enabled" "${active_state[$unit]:-}"; fi ;;
  sysctl)
    # Read from /proc/sys without a process; sysctl(8) for names that do not map there.
    value=''
    if ! { [ -f "/proc/sys/${subject//.//}" ] && read -r value < "/proc/sys/${subject//.//}"; }; then
      value=$(sysctl -n -- "$subject" 2>/dev/null) || value=$'\x01'
    fi
    if [ "$value" != $'\x01' ]; then
      persisted=0
      if [ -f "/etc/sysctl.d/60-infra-${subject//\//.}.conf" ]; then persisted=1; fi
      value=${value//$'\t'/ }
      printf '%s\0%s\0' "$value" "$persisted"
    fi ;;
  group)
    if entry=$(getent group -- "$subject"); then
      IFS=: read -r _ _ gid _ <<< "$entry"
      printf '%s\0' "$gid"
    fi ;;
  package)
    if [ -n "${installed[$subject]+set}" ]; then printf '%s\0' "${installed[$subject]}"; fi ;;
  candidate)
    # apt-cache is slow (tens of ms): asked only for packages kept at the latest version.
    candidate=$(apt-cache policy -- "$subject" 2>/dev/null | awk '/Candidate:/ { print $2; exit }')
    if [ -n "$candidate" ] && [ "$candidate" != '(none)' ]; then printf '%s\0' "$candidate"; fi ;;
  nft)
    # The listing is text: sent as it is (r) unless it holds the record
    # separator, then in base64 (b).
    if listing=$(nft list table inet "$subject" 2>/dev/null); then
      if [[ $listing == *$'\036'* ]]; then printf 'b%s\0' "$(printf '%s' "$listing" | base64 -w0)"
      else printf 'r%s\0' "$listing"
      fi
    fi ;;
  key)
    user=${subject%%$'\n'*} key=${subject#*$'\n'}
    home=''
    entry=${passwd_of[$user]:-}
    if [ -n "$entry" ]; then IFS=: read -r _ _ _ _ _ home _ <<< "$entry"; fi
    if [ -n "$home" ] && [ -f "$home/.ssh/authorized_keys" ]; then
      while IFS= read -r line || [ -n "$line" ]; do
        if [ "$line" = "$key" ]; then printf 'present\0'; break; fi
      done < "$home/.ssh/authorized_keys"
    fi ;;
  esac
  printf '\036'
done
"#;

/// One thing to look up on the server.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Question {
    Path(String),
    /// The bytes of a small file (64 KiB at most), for a line diff in the
    /// plan: not read (absent) when its SHA-256 is `known`, the sum infra
    /// recorded, for then there is nothing to show.
    Content {
        path: String,
        known: Option<String>,
    },
    User(String),
    Group(String),
    Package(String),
    /// The version apt would install now (from the package lists on the server).
    Candidate(String),
    Service(String),
    Sysctl(String),
    /// `nft list table inet NAME`.
    NftTable(String),
    /// Whether this key line is in this user's authorized_keys.
    Key {
        user: String,
        key: String,
    },
}

/// The sum sent with a content question when infra knows none (no file's sum).
const UNKNOWN_SUM: &str = "----------------------------------------------------------------";

impl Question {
    fn encode(&self, out: &mut Vec<u8>) {
        let (topic, subject) = match self {
            Question::Path(p) => ("path", p.clone()),
            Question::Content { path, known } => {
                let known = known.as_deref().filter(|k| k.len() == 64 && k.bytes().all(|b| b.is_ascii_hexdigit()));
                ("content", format!("{}{path}", known.unwrap_or(UNKNOWN_SUM)))
            }
            Question::User(u) => ("user", u.clone()),
            Question::Group(g) => ("group", g.clone()),
            Question::Package(p) => ("package", p.clone()),
            Question::Candidate(p) => ("candidate", p.clone()),
            Question::Service(s) => ("service", s.clone()),
            Question::Sysctl(s) => ("sysctl", s.clone()),
            Question::NftTable(t) => ("nft", t.clone()),
            Question::Key { user, key } => ("key", format!("{user}\n{key}")),
        };
        for field in [topic, subject.as_str()] {
            out.extend_from_slice(field.as_bytes());
            out.push(0);
        }
    }

    fn decode(topic: &str, subject: &str) -> Option<Question> {
        Some(match topic {
            "path" => Question::Path(subject.to_string()),
            "content" => {
                let (known, path) = (subject.get(..64)?, subject.get(64..)?);
                let known = (known != UNKNOWN_SUM).then(|| known.to_string());
                Question::Content { path: path.to_string(), known }
            }
            "user" => Question::User(subject.to_string()),
            "group" => Question::Group(subject.to_string()),
            "package" => Question::Package(subject.to_string()),
            "candidate" => Question::Candidate(subject.to_string()),
            "service" => Question::Service(subject.to_string()),
            "sysctl" => Question::Sysctl(subject.to_string()),
            "nft" => Question::NftTable(subject.to_string()),
            "key" => {
                let (user, key) = subject.split_once('\n')?;
                Question::Key { user: user.to_string(), key: key.to_string() }
            }
            _ => return None,
        })
    }
}

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

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UserFacts {
    pub uid: u32,
    pub group: String,
    pub home: String,
    pub shell: String,
    /// Supplementary groups, sorted.
    pub groups: Vec<String>,
}

/// The answer to one question; `Absent` when there is no such thing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Answer {
    Absent,
    Path(PathFacts),
    User(UserFacts),
    Group {
        gid: u32,
    },
    /// The installed version.
    Package(String),
    Candidate(String),
    KeyPresent,
    Content(Vec<u8>),
    /// `systemctl is-enabled` and `is-active` words.
    Service {
        enabled: String,
        active: String,
    },
    Sysctl {
        value: String,
        persisted: bool,
    },
}

#[derive(Debug, Default)]
pub struct Facts {
    pub hostname: String,
    pub os: String,
    answers: HashMap<Question, Answer>,
}

impl Facts {
    pub fn answer(&self, question: &Question) -> &Answer {
        self.answers.get(question).unwrap_or(&Answer::Absent)
    }
}

pub async fn gather(connection: &Connection, questions: &[Question]) -> Result<Facts, ProviderError> {
    let mut stdin = Vec::new();
    for question in questions {
        question.encode(&mut stdin);
    }
    let output = connection.run_ok("reading facts", SCRIPT, &[], &stdin).await?;
    parse(&output.stdout).ok_or_else(|| {
        ProviderError::failed(format!("{}: the facts script answered in an unexpected form", connection.target.name()))
    })
}

fn parse(stdout: &[u8]) -> Option<Facts> {
    let text = String::from_utf8_lossy(stdout);
    let mut records = text.split('\u{1e}');
    let mut head = records.next()?.split('\0');
    let mut facts = Facts { hostname: head.next()?.to_string(), os: head.next()?.to_string(), answers: HashMap::new() };
    for record in records.filter(|r| !r.is_empty()) {
        let fields: Vec<&str> = record.split('\0').collect();
        let (question, rest) = match fields.as_slice() {
            [topic, subject, rest @ ..] => (Question::decode(topic, subject)?, rest),
            _ => return None,
        };
        // Each record ends with a NUL, which leaves an empty last field.
        let rest = rest.strip_suffix(&[""]).unwrap_or(rest);
        let answer = if rest.is_empty() { Answer::Absent } else { answer(&question, rest)? };
        facts.answers.insert(question, answer);
    }
    Some(facts)
}

fn answer(question: &Question, fields: &[&str]) -> Option<Answer> {
    Some(match (question, fields) {
        (Question::Path(_), [kind, mode, owner, group, sum]) => Answer::Path(PathFacts {
            kind: match *kind {
                "f" => Kind::File,
                "d" => Kind::Directory,
                _ => Kind::Other,
            },
            mode: normal_mode(mode).unwrap_or_default(),
            owner: owner.to_string(),
            group: group.to_string(),
            sha256: Some(sum.to_string()).filter(|s| !s.is_empty()),
        }),
        (Question::User(_), [uid, group, home, shell, groups]) => Answer::User(UserFacts {
            uid: uid.parse().ok()?,
            group: group.to_string(),
            home: home.to_string(),
            shell: shell.to_string(),
            groups: {
                let mut groups: Vec<String> = groups.split(',').filter(|g| !g.is_empty()).map(str::to_string).collect();
                groups.sort();
                groups
            },
        }),
        (Question::Group(_), [gid]) => Answer::Group { gid: gid.parse().ok()? },
        (Question::Package(_), [version]) => Answer::Package(version.to_string()),
        (Question::Candidate(_), [candidate]) => Answer::Candidate(candidate.to_string()),
        (Question::Key { .. }, ["present"]) => Answer::KeyPresent,
        (Question::Service(_), [enabled, active]) => {
            Answer::Service { enabled: enabled.to_string(), active: active.to_string() }
        }
        (Question::Sysctl(_), [value, persisted]) => {
            Answer::Sysctl { value: value.to_string(), persisted: *persisted == "1" }
        }
        (Question::Content { .. }, [encoded]) => Answer::Content(decode_base64(encoded)?),
        (Question::NftTable(_), [listing]) => Answer::Content(match listing.split_at_checked(1)? {
            ("r", text) => text.as_bytes().to_vec(),
            ("b", encoded) => decode_base64(encoded)?,
            _ => return None,
        }),
        _ => return None,
    })
}

fn decode_base64(encoded: &str) -> Option<Vec<u8>> {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.decode(encoded).ok()
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

    fn record(fields: &[&str]) -> String {
        fields.iter().map(|f| format!("{f}\0")).collect::<String>() + "\u{1e}"
    }

    #[test]
    fn the_answer_stream_parses() {
        let stdout = [
            record(&["web1", "Debian GNU/Linux 12 (bookworm)"]),
            record(&["path", "/etc/motd", "f", "644", "root", "root", "abc"]),
            record(&["path", "/srv", "d", "755", "app", "app", ""]),
            record(&["path", "/gone"]),
            record(&["user", "alice", "1000", "alice", "/home/alice", "/bin/bash", "sudo,adm"]),
            record(&["group", "ops", "1001"]),
            record(&["package", "curl", "7.88.1-10"]),
            record(&["candidate", "curl", "7.88.1-10+deb12u5"]),
            record(&["key", "alice\nssh-ed25519 AAAA x", "present"]),
            record(&["user", "nobody-here"]),
            record(&["content", &format!("{UNKNOWN_SUM}/etc/motd"), "aGkK"]),
            record(&["nft", "infra", "rtable inet infra {\n}"]),
            record(&["nft", "other", "bdGFibGU="]),
        ]
        .concat();
        let facts = parse(stdout.as_bytes()).expect("parses");
        assert_eq!(facts.hostname, "web1");
        let Answer::Path(motd) = facts.answer(&Question::Path("/etc/motd".into())) else { panic!("a path") };
        assert_eq!((motd.mode.as_str(), motd.sha256.as_deref()), ("0644", Some("abc")));
        assert_eq!(facts.answer(&Question::Path("/gone".into())), &Answer::Absent);
        let Answer::User(alice) = facts.answer(&Question::User("alice".into())) else { panic!("a user") };
        assert_eq!(alice.groups, ["adm", "sudo"]);
        assert_eq!(facts.answer(&Question::Group("ops".into())), &Answer::Group { gid: 1001 });
        assert_eq!(facts.answer(&Question::User("nobody-here".into())), &Answer::Absent);
        let key = Question::Key { user: "alice".into(), key: "ssh-ed25519 AAAA x".into() };
        assert_eq!(facts.answer(&key), &Answer::KeyPresent);
        let motd = Question::Content { path: "/etc/motd".into(), known: None };
        assert_eq!(facts.answer(&motd), &Answer::Content(b"hi\n".to_vec()));
        let table = |name: &str| facts.answer(&Question::NftTable(name.into())).clone();
        assert_eq!(table("infra"), Answer::Content(b"table inet infra {\n}".to_vec()), "sent as text");
        assert_eq!(table("other"), Answer::Content(b"table".to_vec()), "sent in base64");
        assert!(parse(b"").is_none());
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

    /// The facts script run here with bash, on files of this machine: what
    /// refresh reads of paths (one `stat` and one `sha256sum` for all of them)
    /// matches each file, whatever its name holds.
    #[test]
    fn the_script_reads_every_path_whatever_its_name() {
        use sha2::{Digest, Sha256};
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("a temporary directory");
        let at = |name: &str| dir.path().join(name).to_string_lossy().into_owned();
        let write = |name: &str, bytes: &[u8], mode: u32| {
            std::fs::write(at(name), bytes).expect("write");
            std::fs::set_permissions(at(name), std::fs::Permissions::from_mode(mode)).expect("chmod");
        };
        write("plain", b"hello\n", 0o640);
        write("with space\nand newline", b"x", 0o600);
        write("back\\slash", b"y", 0o644);
        write("big", &vec![b'z'; 70_000], 0o644);
        std::os::unix::fs::symlink(at("plain"), at("link")).expect("symlink");
        std::fs::create_dir(at("sub")).expect("mkdir");
        std::fs::set_permissions(at("sub"), std::fs::Permissions::from_mode(0o750)).expect("chmod");
        let names = ["plain", "with space\nand newline", "back\\slash", "link", "sub", "missing"];
        let mut questions: Vec<Question> = names.iter().map(|n| Question::Path(at(n))).collect();
        let content = |name: &str, known: Option<&[u8]>| Question::Content {
            path: at(name),
            known: known.map(|bytes| hex::encode(Sha256::digest(bytes))),
        };
        questions.extend(["plain", "big", "missing"].map(|n| content(n, None)));
        questions.extend([content("with space\nand newline", Some(b"x")), content("back\\slash", Some(b"old"))]);
        let me = std::env::var("USER").ok().filter(|u| !u.is_empty()).unwrap_or_else(|| "root".into());
        questions.push(Question::User(me.clone()));
        questions.push(Question::User("no-such-user-here".into()));
        questions.push(Question::Key { user: me.clone(), key: "ssh-ed25519 AAAA not-a-key-anyone-has".into() });
        let mut stdin = Vec::new();
        questions.iter().for_each(|q| q.encode(&mut stdin));
        let mut child = std::process::Command::new("bash")
            .args(["-c", SCRIPT])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("bash runs");
        std::io::Write::write_all(&mut child.stdin.take().expect("stdin"), &stdin).expect("questions written");
        let facts = parse(&child.wait_with_output().expect("the script ends").stdout).expect("answers parse");
        let id = |flag: &str| {
            let out = std::process::Command::new("id").arg(flag).output().expect("id runs");
            String::from_utf8_lossy(&out.stdout).trim().to_string()
        };
        let (owner, group) = (id("-un"), id("-gn"));
        let path = |name: &str| match facts.answer(&Question::Path(at(name))) {
            Answer::Path(p) => {
                Some((p.kind.clone(), p.mode.clone(), p.owner.clone(), p.group.clone(), p.sha256.clone()))
            }
            _ => None,
        };
        let sum = |bytes: &[u8]| Some(hex::encode(Sha256::digest(bytes)));
        let file =
            |mode: &str, bytes: &[u8]| Some((Kind::File, mode.to_string(), owner.clone(), group.clone(), sum(bytes)));
        assert_eq!(path("plain"), file("0640", b"hello\n"));
        assert_eq!(path("with space\nand newline"), file("0600", b"x"));
        assert_eq!(path("back\\slash"), file("0644", b"y"));
        assert_eq!(path("link").map(|p| (p.0, p.4)), Some((Kind::Other, None)));
        assert_eq!(path("sub"), Some((Kind::Directory, "0750".to_string(), owner.clone(), group.clone(), None)));
        assert_eq!(path("missing"), None);
        assert!(matches!(facts.answer(&content("plain", None)), Answer::Content(c) if c == b"hello\n"));
        assert!(matches!(facts.answer(&content("big", None)), Answer::Absent), "over 64 KiB: not read");
        assert!(matches!(facts.answer(&content("missing", None)), Answer::Absent));
        let unchanged = content("with space\nand newline", Some(b"x"));
        assert_eq!(facts.answer(&unchanged), &Answer::Absent, "the known content is not sent again");
        assert!(matches!(facts.answer(&content("back\\slash", Some(b"old"))), Answer::Content(c) if c == b"y"));
        let Answer::User(user) = facts.answer(&Question::User(me.clone())) else { panic!("{me} is a user here") };
        assert_eq!(facts.answer(&Question::User("no-such-user-here".into())), &Answer::Absent);
        let unknown_key = Question::Key { user: me.clone(), key: "ssh-ed25519 AAAA not-a-key-anyone-has".into() };
        assert_eq!(facts.answer(&unknown_key), &Answer::Absent);
        let mut expected: Vec<String> =
            id("-Gn").split_whitespace().filter(|g| *g != user.group).map(str::to_string).collect();
        expected.sort();
        assert_eq!((user.group.as_str(), &user.groups), (id("-gn").as_str(), &expected));
        assert_eq!(facts.hostname, std::fs::read_to_string("/proc/sys/kernel/hostname").expect("hostname").trim());
        assert!(facts.os != "unknown" || !std::path::Path::new("/etc/os-release").exists(), "{}", facts.os);
        assert!(!facts.os.contains(['"', '\'']), "quotes stripped: {}", facts.os);
    }
}

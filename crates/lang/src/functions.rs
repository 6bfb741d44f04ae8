//! The function library. Arguments arrive without sensitive marks and fully
//! known; the evaluator restores marks on the result.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use infra_core::{Type, Value};
use sha2::Digest as _;

use crate::eval::Host;

pub(crate) struct Context<'a> {
    pub module_dir: &'a Path,
    pub host: &'a Host,
}

type Function = fn(&[Value], &Context) -> Result<Value, String>;

const FUNCTIONS: &[(&str, Function)] = &[
    ("abs", |a, _| Ok(Value::Number(num(a, 0)?.abs()))),
    ("abspath", |a, c| Ok(Value::string(resolve_path(&s(a, 0)?, c).display().to_string()))),
    ("alltrue", |a, _| Ok(Value::Bool(bools(a, 0)?.iter().all(|b| *b)))),
    ("anytrue", |a, _| Ok(Value::Bool(bools(a, 0)?.iter().any(|b| *b)))),
    ("base64decode", base64decode),
    ("base64encode", |a, _| Ok(Value::string(base64::engine::general_purpose::STANDARD.encode(s(a, 0)?)))),
    ("basename", |a, _| {
        Ok(Value::string(
            Path::new(&s(a, 0)?).file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default(),
        ))
    }),
    ("ceil", |a, _| Ok(Value::Number(num(a, 0)?.ceil()))),
    ("chomp", |a, _| Ok(Value::string(s(a, 0)?.trim_end_matches(['\n', '\r'])))),
    ("cidrhost", cidrhost),
    ("cidrnetmask", cidrnetmask),
    ("cidrsubnet", cidrsubnet),
    ("coalesce", |a, _| {
        a.iter()
            .find(|v| !v.is_null() && v.as_str() != Some(""))
            .cloned()
            .ok_or_else(|| "all arguments are null or empty".into())
    }),
    ("compact", |a, _| {
        Ok(Value::List(list(a, 0)?.iter().filter(|v| !v.is_null() && v.as_str() != Some("")).cloned().collect()))
    }),
    ("concat", |a, _| {
        let mut out = Vec::new();
        for i in 0..a.len() {
            out.extend(list(a, i)?.iter().cloned());
        }
        Ok(Value::List(out))
    }),
    ("contains", |a, _| Ok(Value::Bool(list(a, 0)?.contains(arg(a, 1)?)))),
    ("dirname", |a, _| {
        Ok(Value::string(Path::new(&s(a, 0)?).parent().map(|p| p.display().to_string()).unwrap_or_else(|| ".".into())))
    }),
    ("distinct", |a, _| {
        let mut out: Vec<Value> = Vec::new();
        for v in list(a, 0)? {
            if !out.contains(v) {
                out.push(v.clone());
            }
        }
        Ok(Value::List(out))
    }),
    ("element", |a, _| {
        let items = list(a, 0)?;
        if items.is_empty() {
            return Err("cannot take an element of an empty list".into());
        }
        Ok(items[index(a, 1)? % items.len()].clone())
    }),
    ("endswith", |a, _| Ok(Value::Bool(s(a, 0)?.ends_with(&s(a, 1)?)))),
    ("env", |a, c| {
        let name = s(a, 0)?;
        match (c.host.env.get(&name), a.get(1)) {
            (Some(v), _) => Ok(Value::string(v.clone())),
            (None, Some(default)) => Ok(default.clone()),
            (None, None) => Err(format!("environment variable {name} is not set")),
        }
    }),
    ("file", |a, c| read_file(&resolve_path(&s(a, 0)?, c)).map(Value::String)),
    ("fileexists", |a, c| Ok(Value::Bool(resolve_path(&s(a, 0)?, c).is_file()))),
    ("flatten", |a, _| {
        fn flat(items: &[Value], out: &mut Vec<Value>) {
            for v in items {
                match v {
                    Value::List(inner) => flat(inner, out),
                    other => out.push(other.clone()),
                }
            }
        }
        let mut out = Vec::new();
        flat(list(a, 0)?, &mut out);
        Ok(Value::List(out))
    }),
    ("floor", |a, _| Ok(Value::Number(num(a, 0)?.floor()))),
    ("format", format),
    ("indent", |a, _| {
        let pad = " ".repeat(index(a, 0)?);
        let text = s(a, 1)?;
        Ok(Value::string(
            text.lines()
                .enumerate()
                .map(|(i, l)| if i == 0 { l.to_string() } else { format!("{pad}{l}") })
                .collect::<Vec<_>>()
                .join("\n"),
        ))
    }),
    ("join", |a, _| {
        let sep = s(a, 0)?;
        let mut parts = Vec::new();
        for i in 1..a.len() {
            for v in list(a, i)? {
                parts.push(v.to_template_string().ok_or_else(|| format!("cannot join a {}", v.type_name()))?);
            }
        }
        Ok(Value::string(parts.join(&sep)))
    }),
    ("jsondecode", |a, _| {
        serde_json::from_str::<serde_json::Value>(&s(a, 0)?)
            .map(|j| Value::from_json(&j))
            .map_err(|e| format!("invalid JSON: {e}"))
    }),
    ("jsonencode", |a, _| Ok(Value::string(arg(a, 0)?.to_json().to_string()))),
    ("keys", |a, _| Ok(Value::List(map(a, 0)?.keys().map(|k| Value::string(k.clone())).collect()))),
    ("length", |a, _| {
        Ok(Value::Number(match arg(a, 0)? {
            Value::List(items) => items.len(),
            Value::Object(m) => m.len(),
            Value::String(text) => text.chars().count(),
            other => return Err(format!("cannot take the length of a {}", other.type_name())),
        } as f64))
    }),
    ("lookup", |a, _| {
        let key = s(a, 1)?;
        match (map(a, 0)?.get(&key), a.get(2)) {
            (Some(v), _) => Ok(v.clone()),
            (None, Some(default)) => Ok(default.clone()),
            (None, None) => Err(format!("the map has no key {key:?} and no default was given")),
        }
    }),
    ("lower", |a, _| Ok(Value::string(s(a, 0)?.to_lowercase()))),
    ("max", |a, _| numbers(a).map(|n| Value::Number(n.into_iter().fold(f64::NEG_INFINITY, f64::max)))),
    ("merge", |a, _| {
        let mut out = BTreeMap::new();
        for i in 0..a.len() {
            if a[i].is_null() {
                continue;
            }
            out.extend(map(a, i)?.iter().map(|(k, v)| (k.clone(), v.clone())));
        }
        Ok(Value::Object(out.into()))
    }),
    ("min", |a, _| numbers(a).map(|n| Value::Number(n.into_iter().fold(f64::INFINITY, f64::min)))),
    ("pathexpand", |a, c| Ok(Value::string(expand_home(&s(a, 0)?, c.host).display().to_string()))),
    ("pow", |a, _| Ok(Value::Number(num(a, 0)?.powf(num(a, 1)?)))),
    ("range", range),
    ("replace", |a, _| Ok(Value::string(s(a, 0)?.replace(&s(a, 1)?, &s(a, 2)?)))),
    ("reverse", |a, _| Ok(Value::List(list(a, 0)?.iter().rev().cloned().collect()))),
    // `sensitive(env("DB_PASSWORD"))`: a value that must never be shown.
    ("sensitive", |a, _| Ok(arg(a, 0)?.clone().sensitive())),
    ("sha256", |a, _| Ok(Value::string(hex::encode(sha2::Sha256::digest(s(a, 0)?.as_bytes()))))),
    ("slice", |a, _| {
        let items = list(a, 0)?;
        let (from, to) = (index(a, 1)?, index(a, 2)?);
        if from > to || to > items.len() {
            return Err(format!("slice {from}..{to} is out of range for a list of {}", items.len()));
        }
        Ok(Value::List(items[from..to].to_vec()))
    }),
    ("sort", |a, _| {
        let mut items = list(a, 0)?
            .iter()
            .map(|v| v.to_template_string().ok_or("sort needs strings or numbers"))
            .collect::<Result<Vec<_>, _>>()?;
        items.sort();
        Ok(Value::List(items.into_iter().map(Value::String).collect()))
    }),
    ("split", |a, _| Ok(Value::List(s(a, 1)?.split(&s(a, 0)?).map(Value::string).collect()))),
    ("startswith", |a, _| Ok(Value::Bool(s(a, 0)?.starts_with(&s(a, 1)?)))),
    ("substr", |a, _| {
        let text: Vec<char> = s(a, 0)?.chars().collect();
        let offset = index(a, 1)?.min(text.len());
        let length = num(a, 2)?;
        let end = if length < 0.0 { text.len() } else { (offset + length as usize).min(text.len()) };
        Ok(Value::string(text[offset..end].iter().collect::<String>()))
    }),
    ("sum", |a, _| {
        Ok(Value::Number(
            list(a, 0)?
                .iter()
                .map(|v| convert(&Type::Number, v).and_then(|v| v.as_number().ok_or_default()))
                .sum::<Result<f64, _>>()?,
        ))
    }),
    ("templatefile", templatefile),
    ("tobool", |a, _| convert(&Type::Bool, arg(a, 0)?)),
    ("tolist", |a, _| convert(&Type::list(Type::Any), arg(a, 0)?)),
    ("tomap", |a, _| convert(&Type::map(Type::Any), arg(a, 0)?)),
    ("tonumber", |a, _| convert(&Type::Number, arg(a, 0)?)),
    ("toset", |a, _| {
        let mut out: Vec<Value> = Vec::new();
        for v in list(a, 0)? {
            if !out.contains(v) {
                out.push(v.clone());
            }
        }
        Ok(Value::List(out))
    }),
    ("tostring", |a, _| convert(&Type::String, arg(a, 0)?)),
    ("trim", |a, _| {
        let chars: Vec<char> = s(a, 1)?.chars().collect();
        Ok(Value::string(s(a, 0)?.trim_matches(|c| chars.contains(&c))))
    }),
    ("trimprefix", |a, _| {
        let text = s(a, 0)?;
        Ok(Value::string(text.strip_prefix(s(a, 1)?.as_str()).unwrap_or(&text)))
    }),
    ("trimspace", |a, _| Ok(Value::string(s(a, 0)?.trim()))),
    ("trimsuffix", |a, _| {
        let text = s(a, 0)?;
        Ok(Value::string(text.strip_suffix(s(a, 1)?.as_str()).unwrap_or(&text)))
    }),
    ("upper", |a, _| Ok(Value::string(s(a, 0)?.to_uppercase()))),
    ("values", |a, _| Ok(Value::List(map(a, 0)?.values().cloned().collect()))),
    ("zipmap", |a, _| {
        let (ks, vs) = (list(a, 0)?, list(a, 1)?);
        if ks.len() != vs.len() {
            return Err(format!("zipmap needs lists of equal length, found {} and {}", ks.len(), vs.len()));
        }
        let mut out = BTreeMap::new();
        for (k, v) in ks.iter().zip(vs) {
            out.insert(k.to_template_string().ok_or("zipmap keys must be strings")?, v.clone());
        }
        Ok(Value::Object(out.into()))
    }),
];

/// Functions the evaluator handles itself, listed for suggestions.
const SPECIAL: &[&str] = &["can", "nonsensitive", "sensitive", "try"];

pub(crate) fn lookup(name: &str) -> Option<Function> {
    FUNCTIONS.binary_search_by(|(n, _)| n.cmp(&name)).ok().map(|i| FUNCTIONS[i].1)
}

pub(crate) fn names() -> impl Iterator<Item = &'static str> {
    FUNCTIONS.iter().map(|(n, _)| *n).chain(SPECIAL.iter().copied())
}

trait OrDefault<T> {
    fn ok_or_default(self) -> Result<T, String>;
}

impl OrDefault<f64> for Option<f64> {
    fn ok_or_default(self) -> Result<f64, String> {
        self.ok_or_else(|| "expected a number".into())
    }
}

fn arg(a: &[Value], i: usize) -> Result<&Value, String> {
    a.get(i).ok_or_else(|| format!("missing argument {}", i + 1))
}

fn s(a: &[Value], i: usize) -> Result<String, String> {
    let v = arg(a, i)?;
    v.to_template_string().ok_or_else(|| format!("argument {} must be a string, found a {}", i + 1, v.type_name()))
}

fn num(a: &[Value], i: usize) -> Result<f64, String> {
    convert(&Type::Number, arg(a, i)?)?.as_number().ok_or_else(|| format!("argument {} must be a number", i + 1))
}

fn index(a: &[Value], i: usize) -> Result<usize, String> {
    let n = num(a, i)?;
    if n < 0.0 || n.fract() != 0.0 {
        return Err(format!("argument {} must be a whole number ≥ 0, found {n}", i + 1));
    }
    Ok(n as usize)
}

fn list(a: &[Value], i: usize) -> Result<&[Value], String> {
    let v = arg(a, i)?;
    v.as_list().ok_or_else(|| format!("argument {} must be a list, found a {}", i + 1, v.type_name()))
}

/// A list of bools (`alltrue`, `anytrue`).
fn bools(a: &[Value], i: usize) -> Result<Vec<bool>, String> {
    list(a, i)?
        .iter()
        .map(|v| match v {
            Value::Bool(b) => Ok(*b),
            other => Err(format!("argument {} must be a list of bools, found a {} in it", i + 1, other.type_name())),
        })
        .collect()
}

fn map(a: &[Value], i: usize) -> Result<&BTreeMap<String, Value>, String> {
    let v = arg(a, i)?;
    v.as_object().ok_or_else(|| format!("argument {} must be a map, found a {}", i + 1, v.type_name()))
}

fn numbers(a: &[Value]) -> Result<Vec<f64>, String> {
    if a.is_empty() {
        return Err("needs at least one number".into());
    }
    (0..a.len()).map(|i| num(a, i)).collect()
}

fn convert(ty: &Type, v: &Value) -> Result<Value, String> {
    ty.convert(v.clone()).map_err(|found| format!("cannot convert {found} to {ty}"))
}

fn expand_home(path: &str, host: &Host) -> PathBuf {
    match (path.strip_prefix("~/"), &host.home) {
        (Some(rest), Some(home)) => home.join(rest),
        _ => PathBuf::from(path),
    }
}

/// A path given to `file()` and its kin. As in Terraform, a relative path is
/// relative to the working directory, the base `path.module` and `path.root`
/// are given in, so `file("${path.module}/x")` works in any module wherever
/// it is called from.
fn resolve_path(path: &str, c: &Context) -> PathBuf {
    let expanded = expand_home(path, c.host);
    if expanded.is_absolute() { expanded } else { c.host.cwd.join(expanded) }
}

fn base64decode(a: &[Value], _: &Context) -> Result<Value, String> {
    let bytes =
        base64::engine::general_purpose::STANDARD.decode(s(a, 0)?).map_err(|e| format!("invalid base64: {e}"))?;
    String::from_utf8(bytes).map(Value::String).map_err(|_| "the decoded bytes are not UTF-8 text".into())
}

fn range(a: &[Value], _: &Context) -> Result<Value, String> {
    let (start, end, step) = match a.len() {
        1 => (0.0, num(a, 0)?, 1.0),
        2 => (num(a, 0)?, num(a, 1)?, 1.0),
        3 => (num(a, 0)?, num(a, 1)?, num(a, 2)?),
        n => return Err(format!("range takes 1 to 3 arguments, found {n}")),
    };
    if step == 0.0 || (end - start) / step > 1_000_000.0 {
        return Err("the range is empty-stepped or larger than a million elements".into());
    }
    let mut out = Vec::new();
    let mut x = start;
    while (step > 0.0 && x < end) || (step < 0.0 && x > end) {
        out.push(Value::Number(x));
        x += step;
    }
    Ok(Value::List(out))
}

/// `format("%s-%d", a, b)`: `%s`, `%d`, `%v`, `%q` (quoted) and `%%`.
fn format(a: &[Value], _: &Context) -> Result<Value, String> {
    let spec = s(a, 0)?;
    let mut out = String::new();
    let mut next = 1;
    let mut chars = spec.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        let verb = chars.next().ok_or("format ends in a lone `%`")?;
        if verb == '%' {
            out.push('%');
            continue;
        }
        let v = arg(a, next).map_err(|_| format!("format needs more arguments than given ({})", a.len() - 1))?;
        next += 1;
        match verb {
            's' | 'v' => out.push_str(&v.to_template_string().unwrap_or_else(|| v.to_json().to_string())),
            'd' => out.push_str(&format!("{}", num(a, next - 1)?.trunc() as i64)),
            'q' => out.push_str(&format!("{:?}", v.to_template_string().unwrap_or_default())),
            other => return Err(format!("unsupported format verb `%{other}`")),
        }
    }
    Ok(Value::String(out))
}

/// The largest file `file()` and `templatefile()` read: configuration, keys
/// and templates, not disk images.
const READ_LIMIT: u64 = 16 * 1024 * 1024;

/// A regular file's text. Devices and pipes (`/dev/zero` never ends) and
/// files past [`READ_LIMIT`] are refused instead of read.
fn read_file(path: &std::path::Path) -> Result<String, String> {
    let shown = path.display();
    let meta = std::fs::metadata(path).map_err(|e| format!("cannot read {shown}: {e}"))?;
    if !meta.is_file() {
        return Err(format!("cannot read {shown}: not a regular file"));
    }
    if meta.len() > READ_LIMIT {
        return Err(format!(
            "cannot read {shown}: {} bytes, more than the {} MiB a file() may hold",
            meta.len(),
            READ_LIMIT >> 20
        ));
    }
    std::fs::read_to_string(path).map_err(|e| format!("cannot read {shown}: {e}"))
}

fn templatefile(a: &[Value], c: &Context) -> Result<Value, String> {
    let path = resolve_path(&s(a, 0)?, c);
    let text = read_file(&path)?;
    let vars = match a.get(1) {
        Some(v) => map(a, 1)
            .cloned()
            .map_err(|_| format!("templatefile's variables must be a map, found a {}", v.type_name()))?,
        None => BTreeMap::new(),
    };
    let expr = infra_syntax::parse_template(infra_syntax::FileId(u32::MAX), &text)
        .map_err(|d| format!("template {} does not parse: {}", path.display(), d[0].message))?;
    let scope = TemplateScope { dir: path.parent().unwrap_or(c.module_dir), host: c.host };
    let bindings = vars.into_iter().collect();
    crate::eval::eval_in(&expr, &scope, bindings).map_err(|d| format!("in template {}: {}", path.display(), d.message))
}

/// A template sees only the variables passed to it.
struct TemplateScope<'a> {
    dir: &'a Path,
    host: &'a Host,
}

impl crate::Scope for TemplateScope<'_> {
    fn resolve(&self, _: &crate::Reference) -> Option<Value> {
        None
    }
    fn module_dir(&self) -> &Path {
        self.dir
    }
    fn host(&self) -> &Host {
        self.host
    }
}

// ---- CIDR arithmetic on u128 so IPv4 and IPv6 share one implementation -----------------

struct Cidr {
    addr: u128,
    prefix: u32,
    bits: u32,
}

fn parse_cidr(text: &str) -> Result<Cidr, String> {
    let net: ipnet::IpNet = text.parse().map_err(|_| format!("{text:?} is not a CIDR block such as 10.0.0.0/16"))?;
    Ok(match net {
        ipnet::IpNet::V4(n) => Cidr { addr: u32::from(n.network()) as u128, prefix: n.prefix_len() as u32, bits: 32 },
        ipnet::IpNet::V6(n) => Cidr { addr: u128::from(n.network()), prefix: n.prefix_len() as u32, bits: 128 },
    })
}

fn render_ip(addr: u128, bits: u32) -> String {
    if bits == 32 {
        std::net::Ipv4Addr::from(addr as u32).to_string()
    } else {
        std::net::Ipv6Addr::from(addr).to_string()
    }
}

fn cidrsubnet(a: &[Value], _: &Context) -> Result<Value, String> {
    let cidr = parse_cidr(&s(a, 0)?)?;
    let newbits = index(a, 1)? as u32;
    let netnum = index(a, 2)? as u128;
    let prefix = cidr.prefix + newbits;
    if prefix > cidr.bits {
        return Err(format!(
            "cannot extend a /{} prefix by {newbits} bits: the address has only {} bits",
            cidr.prefix, cidr.bits
        ));
    }
    if newbits < 128 && netnum >> newbits != 0 {
        return Err(format!("network number {netnum} does not fit in {newbits} bits"));
    }
    let addr = cidr.addr | (netnum << (cidr.bits - prefix));
    Ok(Value::string(format!("{}/{prefix}", render_ip(addr, cidr.bits))))
}

fn cidrhost(a: &[Value], _: &Context) -> Result<Value, String> {
    let cidr = parse_cidr(&s(a, 0)?)?;
    let host = index(a, 1)? as u128;
    let host_bits = cidr.bits - cidr.prefix;
    if host_bits < 128 && host >> host_bits != 0 {
        return Err(format!("host number {host} does not fit in a /{} network", cidr.prefix));
    }
    Ok(Value::string(render_ip(cidr.addr | host, cidr.bits)))
}

fn cidrnetmask(a: &[Value], _: &Context) -> Result<Value, String> {
    let cidr = parse_cidr(&s(a, 0)?)?;
    if cidr.bits != 32 {
        return Err("cidrnetmask works on IPv4 blocks only".into());
    }
    let mask = if cidr.prefix == 0 { 0 } else { u32::MAX << (32 - cidr.prefix) };
    Ok(Value::string(std::net::Ipv4Addr::from(mask).to_string()))
}

#[cfg(test)]
mod tests {

    #[test]
    fn file_refuses_devices_instead_of_reading_forever() {
        let error = super::read_file(std::path::Path::new("/dev/zero")).expect_err("refused");
        assert_eq!(error, "cannot read /dev/zero: not a regular file");
    }

    use super::*;

    #[test]
    fn relative_paths_are_read_from_the_working_directory_like_path_module() {
        let cwd = std::env::temp_dir().join(format!("infra-file-{}", std::process::id()));
        let module = cwd.join("modules/m");
        std::fs::create_dir_all(&module).expect("module dir");
        std::fs::write(module.join("motd"), "from the module\n").expect("write");
        let host = Host { cwd: cwd.clone(), ..Host::default() };
        let ctx = Context { module_dir: &module, host: &host };
        // What `file("${path.module}/motd")` asks for in a module called as ./modules/m.
        let read = lookup("file").expect("exists")(&[Value::string("modules/m/motd")], &ctx);
        std::fs::remove_dir_all(&cwd).ok();
        assert_eq!(read, Ok(Value::string("from the module\n")));
    }

    #[test]
    fn table_is_sorted_for_binary_search() {
        assert!(FUNCTIONS.windows(2).all(|w| w[0].0 < w[1].0), "keep FUNCTIONS sorted by name");
    }

    fn call(name: &str, args: Vec<Value>) -> Result<Value, String> {
        let host = Host::default();
        let ctx = Context { module_dir: Path::new("."), host: &host };
        lookup(name).expect("exists")(&args, &ctx)
    }

    #[test]
    fn alltrue_and_anytrue_judge_lists_of_bools() {
        let list = |bs: &[bool]| Value::List(bs.iter().map(|b| Value::Bool(*b)).collect());
        assert_eq!(call("alltrue", vec![list(&[true, true])]), Ok(Value::Bool(true)));
        assert_eq!(call("alltrue", vec![list(&[true, false])]), Ok(Value::Bool(false)));
        assert_eq!(call("alltrue", vec![list(&[])]), Ok(Value::Bool(true)));
        assert_eq!(call("anytrue", vec![list(&[false, true])]), Ok(Value::Bool(true)));
        assert_eq!(call("anytrue", vec![list(&[])]), Ok(Value::Bool(false)));
        assert!(call("alltrue", vec![Value::List(vec![Value::string("yes")])]).is_err());
    }

    #[test]
    fn cidr_functions_match_terraform() {
        let v = |s: &str| Value::string(s);
        let n = |x: f64| Value::Number(x);
        assert_eq!(call("cidrsubnet", vec![v("10.42.0.0/16"), n(8.0), n(1.0)]), Ok(v("10.42.1.0/24")));
        assert_eq!(call("cidrsubnet", vec![v("fd00::/56"), n(8.0), n(3.0)]), Ok(v("fd00:0:0:3::/64")));
        assert_eq!(call("cidrhost", vec![v("10.0.1.0/24"), n(5.0)]), Ok(v("10.0.1.5")));
        assert_eq!(call("cidrnetmask", vec![v("10.0.0.0/12")]), Ok(v("255.240.0.0")));
        assert!(call("cidrsubnet", vec![v("10.0.0.0/30"), n(4.0), n(1.0)]).is_err());
    }

    #[test]
    fn encoding_and_collections() {
        let v = |s: &str| Value::string(s);
        assert_eq!(call("sha256", vec![v("")]).expect("ok").as_str().map(|s| &s[..8]), Some("e3b0c442"));
        assert_eq!(call("base64decode", vec![call("base64encode", vec![v("hé")]).expect("ok")]), Ok(v("hé")));
        assert_eq!(call("format", vec![v("%s-%d%%"), v("a"), Value::Number(7.0)]), Ok(v("a-7%")));
        assert_eq!(
            call("jsondecode", vec![v(r#"{"a":[1,true]}"#)]),
            Ok(Value::object([("a", Value::List(vec![Value::Number(1.0), Value::Bool(true)]))]))
        );
    }
}

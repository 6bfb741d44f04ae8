//! The values a converted file is written with, and how they are spelled in
//! `.infra` text: strings with compose's `${VAR}` interpolation turned into
//! variables, and everything else quoted so the text means what compose meant.

use std::collections::BTreeMap;

/// The widest list kept on one line.
const LONGEST_LINE: usize = 80;

/// A value to write after `name =`.
#[derive(Clone, Debug, PartialEq)]
pub enum Hcl {
    /// Text already in `.infra` template form (quotes added when written).
    Template(String),
    /// An expression written as is: `container.db`, `image.web.tag`.
    Expr(String),
    Number(f64),
    Bool(bool),
    List(Vec<Hcl>),
    Map(Vec<(String, Hcl)>),
}

impl Hcl {
    pub fn render(&self) -> String {
        match self {
            Hcl::Template(t) => format!("\"{t}\""),
            Hcl::Expr(e) => e.clone(),
            Hcl::Number(n) if n.fract() == 0.0 && n.abs() < 1e15 => format!("{}", *n as i64),
            Hcl::Number(n) => n.to_string(),
            Hcl::Bool(b) => b.to_string(),
            Hcl::List(items) => {
                let items: Vec<String> = items.iter().map(Hcl::render).collect();
                let one_line = format!("[{}]", items.join(", "));
                // A long list reads better one item a line, as people write them.
                if one_line.len() <= LONGEST_LINE || items.iter().any(|i| i.contains('\n')) {
                    one_line
                } else {
                    format!("[\n{}\n]", items.iter().map(|i| format!("  {i},")).collect::<Vec<_>>().join("\n"))
                }
            }
            Hcl::Map(entries) if entries.is_empty() => "{}".to_string(),
            Hcl::Map(entries) => {
                let lines: Vec<String> =
                    entries.iter().map(|(k, v)| format!("  {} = {}", key(k), v.render())).collect();
                format!("{{\n{}\n}}", lines.join("\n"))
            }
        }
    }
}

/// A map key: bare when it is a name, quoted otherwise (`"com.example.tier"`).
fn key(k: &str) -> String {
    if is_name(k) { k.to_string() } else { format!("\"{}\"", literal(k)) }
}

pub fn is_name(text: &str) -> bool {
    text.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
        && text.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        && !["true", "false", "null", "for", "in", "if"].contains(&text)
}

/// A block label or resource name made from a compose name: letters, digits,
/// `_` and `-`, starting with a letter or `_`.
pub fn name(text: &str) -> String {
    let mut out: String = text.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' { c } else { '_' }).collect();
    if !out.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_') {
        out.insert(0, '_');
    }
    out
}

/// Text as it appears inside quotes, with nothing interpolated.
pub fn literal(text: &str) -> String {
    let mut out = String::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '$' if chars.peek() == Some(&'{') => out.push_str("$$"),
            c => out.push(c),
        }
    }
    out
}

/// Compose's interpolation in a string: `${NAME}`, `${NAME:-default}`,
/// `${NAME-default}`, `${NAME:?message}`, `$NAME`, and `$$` for a dollar.
/// Each name becomes a variable of the configuration (`var.NAME`), with the
/// default compose would use.
#[derive(Debug, Default)]
pub struct Interpolation {
    /// Variable name → its default (compose substitutes an empty string for an unset one).
    pub variables: BTreeMap<String, Option<String>>,
}

impl Interpolation {
    /// A compose string as `.infra` template text.
    pub fn template(&mut self, text: &str) -> String {
        let mut out = String::new();
        let mut plain = String::new();
        let mut rest = text;
        while let Some(at) = rest.find('$') {
            plain.push_str(&rest[..at]);
            let after = &rest[at + 1..];
            if let Some(tail) = after.strip_prefix('$') {
                plain.push('$');
                rest = tail;
            } else if let Some((name, default, tail)) = braced(after).or_else(|| bare(after)) {
                out.push_str(&literal(&plain));
                plain.clear();
                let entry = self.variables.entry(name.to_string()).or_insert(None);
                if entry.is_none() {
                    *entry = default.map(str::to_string);
                }
                out.push_str(&format!("${{var.{name}}}"));
                rest = tail;
            } else {
                plain.push('$');
                rest = after;
            }
        }
        plain.push_str(rest);
        out.push_str(&literal(&plain));
        out
    }

    pub fn string(&mut self, text: &str) -> Hcl {
        Hcl::Template(self.template(text))
    }
}

/// `{NAME...}` after a `$`: the name, its default if one is given, and the rest.
fn braced(after: &str) -> Option<(&str, Option<&str>, &str)> {
    let inner = after.strip_prefix('{')?;
    let end = inner.find('}')?;
    let body = &inner[..end];
    let name_end = body.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).unwrap_or(body.len());
    let name = &body[..name_end];
    if name.is_empty() || name.starts_with(|c: char| c.is_ascii_digit()) {
        return None;
    }
    let modifier = &body[name_end..];
    let default = modifier.strip_prefix(":-").or_else(|| modifier.strip_prefix('-'));
    Some((name, default, &inner[end + 1..]))
}

fn bare(after: &str) -> Option<(&str, Option<&str>, &str)> {
    let end = after.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).unwrap_or(after.len());
    let name = &after[..end];
    (!name.is_empty() && !name.starts_with(|c: char| c.is_ascii_digit())).then_some((name, None, &after[end..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compose_interpolation_becomes_variables_and_text_stays_text() {
        let mut i = Interpolation::default();
        assert_eq!(i.template("postgres://${DB_USER:-app}@db/$DB"), "postgres://${var.DB_USER}@db/${var.DB}");
        assert_eq!(i.template("cost $$5, \"quoted\" ${"), "cost $5, \\\"quoted\\\" $${");
        assert_eq!(i.template("a$${literal}"), "a$${literal}");
        assert_eq!(i.variables.get("DB_USER"), Some(&Some("app".to_string())));
        assert_eq!(i.variables.get("DB"), Some(&None));
    }

    #[test]
    fn names_are_made_valid() {
        assert_eq!(name("web.api"), "web_api");
        assert_eq!(name("1st"), "_1st");
        assert_eq!(name("db-data"), "db-data");
    }
}

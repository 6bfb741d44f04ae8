//! Where a cursor stands in text that may not parse (it is being typed): the
//! blocks around it and whether it is at an attribute's name or in an
//! expression, with the dotted reference being written there.

use infra_syntax::surroundings;

/// A block header around the cursor: `file "motd" {` is kind `file`, labels `motd`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Header {
    pub kind: String,
    pub labels: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Spot {
    /// At the start of a line in a block body (or at the top level), where an
    /// attribute or a block begins: `partial` is the name typed so far.
    Name { partial: String },
    /// In an expression: `chain` is the complete steps of the reference being
    /// written (`module.web.` gives `["module", "web"]`), `partial` the step typed
    /// after the last dot or at the start.
    Expression { chain: Vec<String>, partial: String },
    /// In a string's text, a comment, or between a block's labels.
    Elsewhere,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Place {
    /// The blocks around the cursor, outermost first. Objects in expressions end it.
    pub blocks: Vec<Header>,
    pub spot: Spot,
}

/// The place at byte `offset` of `text`.
pub fn place(text: &str, offset: usize) -> Place {
    let before = &text[..floor_char_boundary(text, offset)];
    let around = surroundings(before);
    let mut blocks = Vec::new();
    let mut in_expression = false;
    for &open in &around.open {
        match header_before(before, open) {
            Some(header) if !in_expression => blocks.push(header),
            _ => in_expression = true,
        }
    }
    let spot = if !around.in_code {
        Spot::Elsewhere
    } else {
        let line = &before[before.rfind(['\n', '{']).map_or(0, |i| i + 1)..];
        let (chain, partial) = chain_before(before);
        if in_expression || line.contains('=') {
            Spot::Expression { chain, partial }
        } else if chain.is_empty() && line.trim_start() == partial {
            Spot::Name { partial }
        } else {
            Spot::Elsewhere
        }
    };
    Place { blocks, spot }
}

/// The dotted reference that ends at the end of `text`, split into its
/// complete steps and the step being typed; index brackets are skipped
/// (`module.web["a"].u` gives `["module", "web"]` and `u`).
pub fn chain_before(text: &str) -> (Vec<String>, String) {
    let bytes = text.as_bytes();
    let mut start = bytes.len();
    let mut depth = 0usize;
    while start > 0 {
        let c = bytes[start - 1];
        match c {
            b']' => depth += 1,
            b'[' if depth > 0 => depth -= 1,
            _ if depth > 0 => {}
            c if c.is_ascii_alphanumeric() || c == b'_' || c == b'-' || c == b'.' => {}
            _ => break,
        }
        start -= 1;
    }
    let written = strip_indexes(&text[start..]);
    let mut steps: Vec<String> = written.split('.').map(str::to_string).collect();
    let partial = steps.pop().unwrap_or_default();
    // A chain starts with a name, not a digit (`1.5` is a number).
    if steps.first().is_some_and(|s| s.is_empty() || s.starts_with(|c: char| c.is_ascii_digit())) {
        return (Vec::new(), String::new());
    }
    (steps, partial)
}

/// The whole dotted reference under the cursor (the step it is on and the ones
/// before it), for hover and navigation; `None` off a name.
pub fn chain_at(text: &str, offset: usize) -> Option<Vec<String>> {
    let offset = floor_char_boundary(text, offset);
    let rest = &text[offset..];
    let word_end =
        offset + rest.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '-')).unwrap_or(rest.len());
    let (mut chain, last) = chain_before(&text[..word_end]);
    if last.is_empty() || chain.is_empty() && last.starts_with(|c: char| c.is_ascii_digit()) {
        return None;
    }
    chain.push(last);
    Some(chain)
}

fn strip_indexes(text: &str) -> String {
    let mut out = String::new();
    let mut depth = 0usize;
    for c in text.chars() {
        match c {
            '[' => depth += 1,
            ']' => depth = depth.saturating_sub(1),
            c if depth == 0 => out.push(c),
            _ => {}
        }
    }
    out
}

/// The header of the block whose `{` is at `open`, if the text before it on
/// its line is a name and labels (strings or names), as a block header is.
fn header_before(text: &str, open: usize) -> Option<Header> {
    if text.as_bytes().get(open) != Some(&b'{') {
        return None;
    }
    let line_start = text[..open].rfind(['\n', '{', '}']).map_or(0, |i| i + 1);
    let mut words = split_words(&text[line_start..open])?.into_iter();
    let kind = words.next().filter(|w| is_name(w))?;
    let labels = words.map(|w| w.trim_matches('"').to_string()).collect();
    Some(Header { kind, labels })
}

/// Words separated by white space, a quoted word kept whole; `None` when
/// anything but names and quoted words appears (an `=`: an object value).
fn split_words(text: &str) -> Option<Vec<String>> {
    let mut words = Vec::new();
    let mut rest = text.trim();
    while !rest.is_empty() {
        let end = if let Some(quoted) = rest.strip_prefix('"') {
            quoted.find('"')? + 2
        } else {
            rest.find(char::is_whitespace).unwrap_or(rest.len())
        };
        let word = &rest[..end];
        if !(word.starts_with('"') || is_name(word)) {
            return None;
        }
        words.push(word.to_string());
        rest = rest[end..].trim_start();
    }
    Some(words)
}

fn is_name(word: &str) -> bool {
    word.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
        && word.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

fn floor_char_boundary(text: &str, mut offset: usize) -> usize {
    offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    offset
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at_end(text: &str) -> Place {
        place(text, text.len())
    }

    fn header(kind: &str, labels: &[&str]) -> Header {
        Header { kind: kind.to_string(), labels: labels.iter().map(|l| l.to_string()).collect() }
    }

    fn expression(chain: &[&str], partial: &str) -> Spot {
        Spot::Expression { chain: chain.iter().map(|s| s.to_string()).collect(), partial: partial.to_string() }
    }

    #[test]
    fn a_name_at_the_top_and_in_nested_blocks() {
        assert_eq!(at_end("fi"), Place { blocks: vec![], spot: Spot::Name { partial: "fi".into() } });
        let text = "firewall \"web\" {\n  rule \"ssh\" {\n    po";
        assert_eq!(at_end(text).blocks, vec![header("firewall", &["web"]), header("rule", &["ssh"])]);
        assert_eq!(at_end(text).spot, Spot::Name { partial: "po".into() });
        assert_eq!(at_end("file \"a\" {\n  mode = \"0644\"\n}\n").blocks, vec![]);
    }

    #[test]
    fn references_in_values_strings_and_calls() {
        assert_eq!(at_end("file \"a\" {\n  path = var.").spot, expression(&["var"], ""));
        assert_eq!(
            at_end("file \"a\" {\n  path = \"${module.web[\"x\"].ur").spot,
            expression(&["module", "web"], "ur")
        );
        assert_eq!(at_end("locals {\n  x = upper(lo").spot, expression(&[], "lo"));
        let object = at_end("container \"c\" {\n  env = {\n    A = local.");
        assert_eq!(object.blocks, vec![header("container", &["c"])]);
        assert_eq!(object.spot, expression(&["local"], ""));
        assert_eq!(at_end("x = 1.5").spot, expression(&[], ""));
    }

    #[test]
    fn nothing_inside_text_or_between_labels() {
        assert_eq!(at_end("file \"a\" {\n  path = \"var.").spot, Spot::Elsewhere);
        assert_eq!(at_end("# var.").spot, Spot::Elsewhere);
        assert_eq!(at_end("file \"a\" ").spot, Spot::Elsewhere);
    }

    #[test]
    fn the_chain_under_the_cursor_ends_at_its_word() {
        let text = "x = module.web.url + 1";
        let on_web = text.find("web").unwrap_or_default() + 1;
        assert_eq!(chain_at(text, on_web), Some(vec!["module".to_string(), "web".to_string()]));
        assert_eq!(chain_at(text, text.len() - 1), None);
    }
}

//! `infra fmt`: the canonical layout of a `.infra` file.
//!
//! The formatter works on tokens, not on the tree, so comments stay exactly where
//! they were and the meaning cannot change: only the whitespace between tokens is
//! rewritten. Strings and heredocs are kept verbatim. The layout follows
//! `terraform fmt`: two-space indentation per nesting level, one space around
//! operators, `=` aligned across consecutive attribute lines, at most one blank line.

/// Formats source text. Callers parse first: text that does not parse is returned
/// with only its line endings and indentation normalised as far as tokens allow.
pub fn format(text: &str) -> String {
    let tokens = lex(text);
    let lines = split_lines(&tokens);
    let mut rendered = Vec::new();
    let mut stack: Vec<usize> = Vec::new();
    for line in lines {
        match line {
            None => rendered.push(RenderedLine::Blank),
            Some(tokens) => rendered.push(render_line(&tokens, &mut stack)),
        }
    }
    align_equals(&mut rendered);
    join(rendered)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Ident,
    Number,
    Str,
    Heredoc,
    Comment,
    Punct,
    Newline,
}

#[derive(Clone, Copy, Debug)]
struct Token<'a> {
    kind: Kind,
    text: &'a str,
}

const PUNCTS: [&str; 28] = [
    "...", "=>", "==", "!=", "<=", ">=", "&&", "||", "{", "}", "[", "]", "(", ")", ",", ".", "=", ":", "?", "<", ">",
    "+", "-", "*", "/", "%", "!", ";",
];

fn lex(text: &str) -> Vec<Token<'_>> {
    let bytes = text.as_bytes();
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        let start = i;
        let kind = match c {
            b'\n' => {
                i += 1;
                Kind::Newline
            }
            b' ' | b'\t' | b'\r' => {
                i += 1;
                continue;
            }
            b'#' => {
                i = line_end(bytes, i);
                Kind::Comment
            }
            b'/' if bytes.get(i + 1) == Some(&b'/') => {
                i = line_end(bytes, i);
                Kind::Comment
            }
            b'/' if bytes.get(i + 1) == Some(&b'*') => {
                i = text[i + 2..].find("*/").map_or(bytes.len(), |p| i + 2 + p + 2);
                Kind::Comment
            }
            b'"' => {
                i = string_end(bytes, i);
                Kind::Str
            }
            b'<' if bytes.get(i + 1) == Some(&b'<') && heredoc_end(text, i).is_some() => {
                i = heredoc_end(text, i).unwrap_or(bytes.len());
                Kind::Heredoc
            }
            c if c.is_ascii_alphabetic() || c == b'_' => {
                while i < bytes.len() && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'_' || bytes[i] == b'-') {
                    i += 1;
                }
                Kind::Ident
            }
            c if c.is_ascii_digit() => {
                i = number_end(bytes, i);
                Kind::Number
            }
            _ => {
                let rest = &text[i..];
                let len = PUNCTS
                    .iter()
                    .find(|p| rest.starts_with(**p))
                    .map_or_else(|| rest.chars().next().map_or(1, char::len_utf8), |p| p.len());
                i += len;
                Kind::Punct
            }
        };
        tokens.push(Token { kind, text: &text[start..i] });
    }
    tokens
}

fn line_end(bytes: &[u8], from: usize) -> usize {
    bytes[from..].iter().position(|b| *b == b'\n').map_or(bytes.len(), |p| from + p)
}

fn number_end(bytes: &[u8], mut i: usize) -> usize {
    while i < bytes.len() && bytes[i].is_ascii_digit() {
        i += 1;
    }
    if i + 1 < bytes.len() && bytes[i] == b'.' && bytes[i + 1].is_ascii_digit() {
        i += 1;
        while i < bytes.len() && bytes[i].is_ascii_digit() {
            i += 1;
        }
    }
    if i < bytes.len() && (bytes[i] == b'e' || bytes[i] == b'E') {
        let mut j = i + 1;
        if j < bytes.len() && (bytes[j] == b'+' || bytes[j] == b'-') {
            j += 1;
        }
        if j < bytes.len() && bytes[j].is_ascii_digit() {
            i = j;
            while i < bytes.len() && bytes[i].is_ascii_digit() {
                i += 1;
            }
        }
    }
    i
}

/// The end of a quoted string, skipping escapes and nested `${ ... }` (which may
/// themselves contain strings).
fn string_end(bytes: &[u8], start: usize) -> usize {
    let mut i = start + 1;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => i += 2,
            b'"' => return i + 1,
            b'\n' => return i,
            b'$' if crate::nesting::escapes_interpolation(bytes, i) => i += 3,
            b'$' if bytes.get(i + 1) == Some(&b'{') => i = interpolation_end(bytes, i + 2),
            _ => i += 1,
        }
    }
    bytes.len()
}

fn interpolation_end(bytes: &[u8], mut i: usize) -> usize {
    let mut depth = 1;
    while i < bytes.len() && depth > 0 {
        match bytes[i] {
            b'{' => depth += 1,
            b'}' => depth -= 1,
            b'"' => {
                i = string_end(bytes, i);
                continue;
            }
            _ => {}
        }
        i += 1;
    }
    i
}

/// `<<EOT` or `<<-EOT` through the line holding the closing marker.
fn heredoc_end(text: &str, start: usize) -> Option<usize> {
    let rest = &text[start + 2..];
    let rest = rest.strip_prefix('-').unwrap_or(rest);
    let marker_len = rest.bytes().take_while(|b| b.is_ascii_alphanumeric() || *b == b'_' || *b == b'-').count();
    if marker_len == 0 {
        return None;
    }
    let marker = &rest[..marker_len];
    let after_marker = &rest[marker_len..];
    let body_start = after_marker.strip_prefix('\n').or_else(|| after_marker.strip_prefix("\r\n"))?;
    let mut offset = text.len() - body_start.len();
    for line in body_start.split_inclusive('\n') {
        if let Some(end) = crate::nesting::closing_marker(line, marker) {
            return Some(offset + end);
        }
        offset += line.len();
    }
    None
}

/// Lines of tokens; `None` marks a blank line.
fn split_lines<'a>(tokens: &[Token<'a>]) -> Vec<Option<Vec<Token<'a>>>> {
    let mut lines = Vec::new();
    let mut current = Vec::new();
    for token in tokens {
        if token.kind == Kind::Newline {
            lines.push(if current.is_empty() { None } else { Some(std::mem::take(&mut current)) });
        } else {
            // What follows a heredoc's closing marker on its line (after a `\r`)
            // starts a line of its own: a space after the marker would not close it.
            if current.last().is_some_and(|t: &Token| t.kind == Kind::Heredoc) {
                lines.push(Some(std::mem::take(&mut current)));
            }
            current.push(*token);
        }
    }
    if !current.is_empty() {
        lines.push(Some(current));
    }
    lines
}

enum RenderedLine {
    Blank,
    Code {
        indent: usize,
        text: String,
        /// Byte length of the attribute name when the line reads `name = ...`.
        attribute_name: Option<usize>,
        opens: bool,
        closes_first: bool,
    },
}

fn is_opener(t: &Token) -> bool {
    t.kind == Kind::Punct && matches!(t.text, "{" | "[" | "(")
}

fn is_closer(t: &Token) -> bool {
    t.kind == Kind::Punct && matches!(t.text, "}" | "]" | ")")
}

/// Indentation is per line: every opener on a line indents the following lines by
/// one level, and a line that starts by closing returns to the opener's line.
fn render_line(tokens: &[Token], stack: &mut Vec<usize>) -> RenderedLine {
    let leading_closers = tokens.iter().take_while(|t| is_closer(t)).count();
    let mut indent = stack.last().map_or(0, |opener_indent| opener_indent + 1);
    for _ in 0..leading_closers {
        if let Some(opener_indent) = stack.pop() {
            indent = opener_indent;
        }
    }
    let mut depth_change = 0i32;
    for token in &tokens[leading_closers..] {
        if is_opener(token) {
            stack.push(indent);
            depth_change += 1;
        } else if is_closer(token) {
            stack.pop();
            depth_change -= 1;
        }
    }
    let mut text = String::new();
    for (i, token) in tokens.iter().enumerate() {
        if i > 0 && needs_space(tokens, i) {
            text.push(' ');
        }
        text.push_str(token.text);
    }
    let attribute_name =
        (tokens.len() > 2 && tokens[0].kind == Kind::Ident && tokens[1].kind == Kind::Punct && tokens[1].text == "=")
            .then(|| tokens[0].text.len());
    RenderedLine::Code { indent, text, attribute_name, opens: depth_change > 0, closes_first: leading_closers > 0 }
}

fn is_keyword(t: &Token) -> bool {
    t.kind == Kind::Ident && matches!(t.text, "for" | "in" | "if")
}

/// A `-` or `!` is unary when nothing that ends an operand precedes it.
fn is_unary(tokens: &[Token], i: usize) -> bool {
    let t = &tokens[i];
    if t.kind != Kind::Punct || !(t.text == "-" || t.text == "!") {
        return false;
    }
    match i.checked_sub(1).map(|p| &tokens[p]) {
        None => true,
        Some(prev) if is_keyword(prev) => true,
        Some(prev) => prev.kind == Kind::Punct && !matches!(prev.text, ")" | "]" | "}"),
    }
}

fn needs_space(tokens: &[Token], i: usize) -> bool {
    let (prev, next) = (&tokens[i - 1], &tokens[i]);
    if next.kind == Kind::Comment || prev.kind == Kind::Comment {
        return true;
    }
    if is_unary(tokens, i - 1) {
        return false;
    }
    if prev.kind == Kind::Punct && matches!(prev.text, "(" | "[" | ".") {
        return false;
    }
    if next.kind == Kind::Punct {
        match next.text {
            "," | ")" | "]" | "." | "..." => return false,
            "}" => return !(prev.kind == Kind::Punct && prev.text == "{"),
            "(" => return prev.kind != Kind::Ident || is_keyword(prev),
            "[" => {
                let indexes = matches!(prev.kind, Kind::Ident | Kind::Str) && !is_keyword(prev)
                    || (prev.kind == Kind::Punct && matches!(prev.text, "]" | ")" | "}"));
                return !indexes;
            }
            _ => {}
        }
    }
    if prev.kind == Kind::Punct && matches!(prev.text, "(" | "[" | ".") {
        return false;
    }
    true
}

/// Pads attribute names so that `=` lines up across consecutive attribute lines
/// at the same indentation, as `terraform fmt` does.
fn align_equals(lines: &mut [RenderedLine]) {
    let mut i = 0;
    while i < lines.len() {
        let Some((indent, _)) = attribute_at(&lines[i]) else {
            i += 1;
            continue;
        };
        let mut end = i;
        let mut width = 0;
        while end < lines.len() {
            match attribute_at(&lines[end]) {
                Some((other_indent, name_len)) if other_indent == indent => {
                    width = width.max(name_len);
                    end += 1;
                    if opens(&lines[end - 1]) {
                        break;
                    }
                }
                _ => break,
            }
        }
        for line in &mut lines[i..end] {
            if let RenderedLine::Code { text, attribute_name: Some(name_len), .. } = line {
                let padding = " ".repeat(width - *name_len);
                text.insert_str(*name_len, &padding);
            }
        }
        i = end.max(i + 1);
    }
}

fn attribute_at(line: &RenderedLine) -> Option<(usize, usize)> {
    match line {
        RenderedLine::Code { indent, attribute_name: Some(len), .. } => Some((*indent, *len)),
        _ => None,
    }
}

fn opens(line: &RenderedLine) -> bool {
    matches!(line, RenderedLine::Code { opens: true, .. })
}

/// Joins lines: no blank lines at the start, after an opening line or before a
/// closing one; runs of blank lines become one; one final newline.
fn join(lines: Vec<RenderedLine>) -> String {
    let mut out = String::new();
    let mut pending_blank = false;
    let mut previous_opened = true;
    for line in lines {
        match line {
            RenderedLine::Blank => pending_blank = true,
            RenderedLine::Code { indent, text, opens, closes_first, .. } => {
                if pending_blank && !previous_opened && !closes_first {
                    out.push('\n');
                }
                pending_blank = false;
                for _ in 0..indent {
                    out.push_str("  ");
                }
                out.push_str(&text);
                out.push('\n');
                previous_opened = opens;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::format;

    fn check(input: &str, expected: &str) {
        let formatted = format(input);
        assert_eq!(formatted, expected, "formatting changed unexpectedly");
        assert_eq!(format(&formatted), formatted, "format is not idempotent");
    }

    #[test]
    fn indents_and_aligns_attributes() {
        check(
            "file \"motd\" {\npath=\"/etc/motd\"\n    mode = \"0644\"\n\n\n  content=\"hi\"   # greeting\n}\n",
            "file \"motd\" {\n  path = \"/etc/motd\"\n  mode = \"0644\"\n\n  content = \"hi\" # greeting\n}\n",
        );
    }

    #[test]
    fn spaces_operators_and_keeps_calls_tight() {
        check(
            "locals {\n  a = 1+2*-3\n  b = join( \",\" , [ \"x\",\"y\" ] )\n  c = var.list[0]\n  d = !true ? { } : {a=1}\n}\n",
            "locals {\n  a = 1 + 2 * -3\n  b = join(\",\", [\"x\", \"y\"])\n  c = var.list[0]\n  d = !true ? {} : { a = 1 }\n}\n",
        );
    }

    #[test]
    fn nested_openers_on_one_line_indent_once() {
        check("x = [{\na = 1\n}]\n", "x = [{\n  a = 1\n}]\n");
    }

    #[test]
    fn heredocs_are_verbatim() {
        check(
            "file \"x\" {\ncontent = <<-EOT\n      keep   this\n    EOT\n}\n",
            "file \"x\" {\n  content = <<-EOT\n      keep   this\n    EOT\n}\n",
        );
    }

    #[test]
    fn a_heredoc_closes_where_the_grammar_says_before_a_carriage_return() {
        // Found by the format fuzz target: the marker followed by `\r` closes
        // the heredoc and the rest of that line is code (here a comment); the
        // formatter read on, took `<<` for two `<` and wrote `< < OtT`.
        let text = "ntent = <<OtT\nOtTl \"hsax\n  content = <<OtT\nOtT\r#\"hie";
        assert!(crate::parse(crate::FileId(0), text).is_ok(), "the fuzz input parses");
        let formatted = format(text);
        assert!(crate::parse(crate::FileId(0), &formatted).is_ok(), "{formatted:?}");
        assert!(formatted.starts_with("ntent = <<OtT\nOtTl"), "{formatted:?}");
        check("x = <<-E-T\n  a\n  E-T\n", "x = <<-E-T\n  a\n  E-T\n");
    }

    #[test]
    fn an_escaped_interpolation_after_a_dollar_ends_where_the_grammar_says() {
        // Found by the format fuzz target: `$$${` is `$` then the escape `$${`;
        // pairing `$$` first read `${"motmo{ }` as an interpolation and every
        // run added a newline.
        let text = "v\"motd$$$$$'$$${\"motmo{ }\n";
        let once = format(text);
        assert_eq!(once, "v \"motd$$$$$'$$${\" motmo {}\n");
        assert_eq!(format(&once), once);
    }

    #[test]
    fn calls_taking_collections_stay_tight() {
        check("x = contains( [\"a\"], merge( {a=1}))\n", "x = contains([\"a\"], merge({ a = 1 }))\n");
    }

    #[test]
    fn for_expressions_keep_keywords_spaced() {
        check("x = [for s in [\"a\"]: upper(s) if s!=\"\"]\n", "x = [for s in [\"a\"] : upper(s) if s != \"\"]\n");
    }
}

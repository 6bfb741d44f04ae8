//! The guard that runs before the parser: how deeply a file nests.
//!
//! The grammar is recursive, and so is everything after it (the tree builder,
//! the evaluator, dropping the tree). A file of 5,000 nested brackets would
//! overflow the stack of any of them, so text that nests deeper than
//! [`MAX_NESTING`] is refused before pest sees it. The scan knows strings,
//! interpolations, heredocs and comments, so brackets inside text are not
//! counted and closers inside text cannot hide openers in code.

/// Brackets, braces, parentheses, strings and `${ }` inside one another. Real
/// configurations stay far below it (ten levels is a lot).
pub const MAX_NESTING: usize = 100;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Level<'a> {
    /// `(`, `[` or `{` in code.
    Bracket,
    /// A quoted string.
    Quoted,
    /// The body of a heredoc, ended by a line holding only its marker.
    Heredoc(&'a str),
    /// `${ ... }` inside a string or heredoc.
    Interpolation,
    /// A whole template file (`templatefile()`): text with interpolations.
    Template,
}

/// The byte offset at which a template file (text rather than code) first
/// nests deeper than [`MAX_NESTING`].
pub fn template_too_deep(text: &str) -> Option<usize> {
    scan(text, vec![Level::Template], |_| {})
}

/// For a `.infra` file: the byte offset at which it first nests deeper than
/// [`MAX_NESTING`], as an error, or else where each top-level `}` ends: the
/// places a large file can be cut into pieces that parse on their own.
pub(crate) fn top_level_closes(text: &str) -> Result<Vec<usize>, usize> {
    let mut closes = Vec::new();
    match scan(text, Vec::new(), |end| closes.push(end)) {
        Some(at) => Err(at),
        None => Ok(closes),
    }
}

/// Where the end of a text stands, for an editor completing there: whether it
/// is in code (not inside a string's text, a heredoc's body or a comment) and
/// the offsets of the brackets, strings and interpolations still open around
/// it, outermost first. Editors call it with the text up to the cursor.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Surroundings {
    pub in_code: bool,
    /// `(`, `[` and `{` in code, `"`, `<<` and `${`: where each open one starts.
    pub open: Vec<usize>,
}

pub fn surroundings(text: &str) -> Surroundings {
    let bytes = text.as_bytes();
    let mut levels = Vec::new();
    let mut open = Vec::new();
    let mut i = 0;
    let mut in_comment = false;
    while i < bytes.len() {
        let (start, depth) = (i, levels.len());
        let comment = matches!(levels.last(), None | Some(Level::Bracket | Level::Interpolation))
            && (bytes[i] == b'#' || (bytes[i] == b'/' && matches!(bytes.get(i + 1), Some(b'/' | b'*'))));
        i = match levels.last().copied() {
            Some(Level::Quoted) => in_quoted(bytes, i, &mut levels),
            Some(Level::Heredoc(marker)) => in_text(text, i, Some(marker), &mut levels),
            Some(Level::Template) => in_text(text, i, None, &mut levels),
            _ => in_code(text, i, &mut levels),
        };
        // A line comment runs to its newline, which is code again; a block
        // comment that has not closed runs to the end.
        in_comment = comment && i >= bytes.len() && !text[start..].ends_with("*/");
        if levels.len() > depth {
            open.push(start);
        } else if levels.len() < depth {
            open.pop();
        }
    }
    let in_code = !in_comment && matches!(levels.last(), None | Some(Level::Bracket | Level::Interpolation));
    Surroundings { in_code, open }
}

fn scan<'a>(text: &'a str, mut levels: Vec<Level<'a>>, mut top_level_close: impl FnMut(usize)) -> Option<usize> {
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let start = i;
        if levels.len() == 1 && levels[0] == Level::Bracket && bytes[i] == b'}' {
            top_level_close(i + 1);
        }
        match levels.last().copied() {
            Some(Level::Quoted) => i = in_quoted(bytes, i, &mut levels),
            Some(Level::Heredoc(marker)) => i = in_text(text, i, Some(marker), &mut levels),
            Some(Level::Template) => i = in_text(text, i, None, &mut levels),
            _ => i = in_code(text, i, &mut levels),
        }
        // Counting is only needed once the stack could hold too many.
        if levels.len() > MAX_NESTING && levels.iter().filter(|l| **l != Level::Template).count() > MAX_NESTING {
            return Some(start);
        }
        debug_assert!(i > start, "the scan always moves on");
    }
    None
}

/// One step in code (top level, a bracket or an interpolation).
fn in_code<'a>(text: &'a str, i: usize, levels: &mut Vec<Level<'a>>) -> usize {
    let bytes = text.as_bytes();
    match bytes[i] {
        b'(' | b'[' | b'{' => levels.push(Level::Bracket),
        b')' | b']' | b'}' => {
            if matches!(levels.last(), Some(Level::Bracket | Level::Interpolation)) {
                levels.pop();
            }
        }
        b'"' => levels.push(Level::Quoted),
        b'#' => return line_end(bytes, i),
        b'/' if bytes.get(i + 1) == Some(&b'/') => return line_end(bytes, i),
        b'/' if bytes.get(i + 1) == Some(&b'*') => {
            return text[i + 2..].find("*/").map_or(bytes.len(), |p| i + 2 + p + 2);
        }
        b'<' if bytes.get(i + 1) == Some(&b'<') => {
            if let Some((marker, body)) = heredoc_start(text, i) {
                levels.push(Level::Heredoc(marker));
                return body;
            }
            return i + 2;
        }
        _ => {}
    }
    i + 1
}

/// Whether `$${` starts at `i`: the escape for a literal `${`, as the grammar
/// reads it. Only those three characters: in `$$${` the first `$` is plain
/// text and the escape follows, so `$` is never paired with the next `$`.
pub(crate) fn escapes_interpolation(bytes: &[u8], i: usize) -> bool {
    bytes[i..].starts_with(b"$${")
}

/// One step inside a quoted string.
fn in_quoted(bytes: &[u8], i: usize, levels: &mut Vec<Level>) -> usize {
    match bytes[i] {
        b'\\' => return (i + 2).min(bytes.len()),
        // The grammar ends a string at the end of its line (as an error); so does the scan.
        b'"' | b'\n' => {
            levels.pop();
        }
        b'$' if escapes_interpolation(bytes, i) => return i + 3,
        b'$' if bytes.get(i + 1) == Some(&b'{') => {
            levels.push(Level::Interpolation);
            return i + 2;
        }
        _ => {}
    }
    i + 1
}

/// One step inside a heredoc's body (ended by its marker) or a template file.
fn in_text<'a>(text: &'a str, i: usize, marker: Option<&str>, levels: &mut Vec<Level<'a>>) -> usize {
    let bytes = text.as_bytes();
    let at_line_start = i == 0 || bytes[i - 1] == b'\n';
    if let Some(end) = marker.filter(|_| at_line_start).and_then(|m| closing_marker(&text[i..], m)) {
        levels.pop();
        return i + end;
    }
    match bytes[i] {
        b'$' if escapes_interpolation(bytes, i) => i + 3,
        b'$' if bytes.get(i + 1) == Some(&b'{') => {
            levels.push(Level::Interpolation);
            i + 2
        }
        _ => i + 1,
    }
}

/// Whether `line` (from its start) closes a heredoc: spaces or tabs, the
/// marker, then the end of the line, a `\r` or the end of the text, as the
/// grammar's `heredoc_end` reads it. What follows a `\r` on that line is code
/// again. Returns where the marker ends.
pub(crate) fn closing_marker(line: &str, marker: &str) -> Option<usize> {
    let body = line.trim_start_matches([' ', '\t']);
    let end = line.len() - body.len() + marker.len();
    (body.starts_with(marker) && matches!(line.as_bytes().get(end), None | Some(b'\n' | b'\r'))).then_some(end)
}

/// `<<EOT` or `<<-EOT` followed by a newline: the marker and where the body starts.
fn heredoc_start(text: &str, i: usize) -> Option<(&str, usize)> {
    let rest = &text[i + 2..];
    let rest = rest.strip_prefix('-').unwrap_or(rest);
    let marker_len = rest.bytes().take_while(|b| b.is_ascii_alphanumeric() || *b == b'_' || *b == b'-').count();
    if marker_len == 0 {
        return None;
    }
    let after = &rest[marker_len..];
    let body = after.strip_prefix('\n').or_else(|| after.strip_prefix("\r\n"))?;
    Some((&rest[..marker_len], text.len() - body.len()))
}

fn line_end(bytes: &[u8], from: usize) -> usize {
    bytes[from..].iter().position(|b| *b == b'\n').map_or(bytes.len(), |p| from + p)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn too_deep(text: &str) -> Option<usize> {
        top_level_closes(text).err()
    }

    fn nested(open: &str, depth: usize, close: &str) -> String {
        format!("x = {}1{}\n", open.repeat(depth), close.repeat(depth))
    }

    #[test]
    fn nesting_up_to_the_limit_is_fine_and_one_more_is_not() {
        assert_eq!(too_deep(&nested("[", MAX_NESTING, "]")), None);
        assert_eq!(too_deep(&nested("[", MAX_NESTING + 1, "]")), Some(4 + MAX_NESTING));
        assert!(too_deep(&nested("(", 5_000, ")")).is_some());
    }

    #[test]
    fn brackets_in_text_and_comments_do_not_count() {
        let text = "a = \"[[[[\"\n# ((((\nb = <<EOT\n{{{{\nEOT\n/* [[[[ */\n".repeat(MAX_NESTING);
        assert_eq!(too_deep(&text), None);
    }

    #[test]
    fn closers_in_text_cannot_hide_openers_in_code() {
        let text = format!("x = {}1\n", "[\"]\"".repeat(MAX_NESTING + 1));
        assert!(too_deep(&text).is_some());
    }

    #[test]
    fn interpolations_nest_strings() {
        let deep = format!("x = {}1{}\n", "\"${".repeat(60), "}\"".repeat(60));
        assert!(too_deep(&deep).is_some(), "a string and its interpolation are two levels");
        let heredoc = format!("x = <<EOT\n{}\nEOT\n", "${[".repeat(60));
        assert!(too_deep(&heredoc).is_some());
        assert_eq!(too_deep("x = \"$${[[[[\"\ny = \"a\\\"[[[\"\n"), None);
    }

    #[test]
    fn surroundings_name_what_is_open_and_whether_it_is_code() {
        let text = "file \"a\" {\n  content = \"x ${upper(var.";
        let s = surroundings(text);
        assert!(s.in_code);
        let kinds: Vec<char> = s.open.iter().map(|at| text.as_bytes()[*at] as char).collect();
        assert_eq!(kinds, ['{', '"', '$', '(']);
        assert!(!surroundings("a = \"text").in_code);
        assert!(!surroundings("# comment").in_code);
        assert!(surroundings("# comment\n").in_code);
        assert!(!surroundings("a = <<EOT\nbody").in_code);
        assert!(!surroundings("/* open").in_code);
        assert!(surroundings("/* shut */ x").in_code);
        assert_eq!(surroundings("a { b = [1] }\nc {").open, vec![16]);
    }

    #[test]
    fn top_level_closes_skip_braces_in_text_and_nested_ones() {
        let text = "a {\n  b = { c = \"}\" }\n}\n# }\nd \"x\" {\n  e = <<EOT\n}\nEOT\n}\n";
        let first = text.find("}\n#").map(|p| p + 1);
        assert_eq!(top_level_closes(text).ok(), Some(vec![first.unwrap_or(0), text.len() - 1]));
        assert_eq!(top_level_closes(&nested("{", MAX_NESTING + 1, "}")), Err(4 + MAX_NESTING));
    }

    #[test]
    fn a_template_is_text_until_an_interpolation() {
        assert_eq!(template_too_deep(&"[[[[ {{{{ (((( \"\n".repeat(MAX_NESTING)), None);
        assert!(template_too_deep(&format!("${{{}", "(".repeat(MAX_NESTING))).is_some());
    }
}

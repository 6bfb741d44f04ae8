//! Errors at the edge: every failure becomes a miette report on stderr and an
//! exit code Terraform users know (0 ok, 1 error, 2 changes present, 3 fmt -check).

use std::io::IsTerminal;
use std::path::Path;
use std::process::ExitCode;

use infra_core::state::StateError;
use infra_syntax::{Diagnostic, Severity, SourceMap};
use miette::{GraphicalReportHandler, GraphicalTheme, LabeledSpan, NamedSource};

/// What a command ends with when it did not fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Ok,
    /// `-detailed-exitcode` and the plan has changes.
    Changes,
    /// `fmt -check` found files to format.
    Unformatted,
    /// `exec`: the remote command's own exit code.
    Code(u8),
}

/// What every command returns.
pub(crate) type Outcome = Result<Status, CliError>;

#[derive(Debug)]
pub enum CliError {
    /// Problems in the configuration, pointing into its files.
    Config {
        sources: SourceMap,
        diagnostics: Vec<Diagnostic>,
    },
    State(StateError),
    Message {
        message: String,
        help: Option<String>,
    },
}

impl CliError {
    pub fn message(message: impl Into<String>) -> CliError {
        CliError::Message { message: message.into(), help: None }
    }

    pub fn with_help(message: impl Into<String>, help: impl Into<String>) -> CliError {
        CliError::Message { message: message.into(), help: Some(help.into()) }
    }
}

impl From<infra_core::state::manage::Refused> for CliError {
    fn from(e: infra_core::state::manage::Refused) -> Self {
        use infra_core::state::manage::Refused;
        match e {
            Refused::State(e) => CliError::State(e),
            refused => CliError::Message { message: refused.to_string(), help: refused.help().map(str::to_string) },
        }
    }
}

impl From<StateError> for CliError {
    fn from(e: StateError) -> Self {
        CliError::State(e)
    }
}

pub fn color_enabled(no_color_flag: bool, stream_is_tty: bool) -> bool {
    !no_color_flag && stream_is_tty && std::env::var_os("NO_COLOR").is_none()
}

pub fn exit(result: Result<Status, (CliError, bool)>) -> ExitCode {
    match result {
        Ok(Status::Ok) => ExitCode::SUCCESS,
        Ok(Status::Changes) => ExitCode::from(2),
        Ok(Status::Unformatted) => ExitCode::from(3),
        Ok(Status::Code(code)) => ExitCode::from(code),
        Err((error, no_color)) => {
            let color = color_enabled(no_color, std::io::stderr().is_terminal());
            eprint!("{}", render_error(&error, color));
            ExitCode::from(1)
        }
    }
}

/// The text a user sees for an error (also used by snapshot tests).
pub fn render_error(error: &CliError, color: bool) -> String {
    match error {
        CliError::Config { sources, diagnostics } => render_diagnostics(sources, diagnostics, color),
        CliError::State(e) => {
            let help = state_help(e);
            render_plain(&e.to_string(), help.as_deref(), color)
        }
        CliError::Message { message, help } => render_plain(message, help.as_deref(), color),
    }
}

fn state_help(e: &StateError) -> Option<String> {
    Some(match e {
        StateError::Locked { info, .. } => format!(
            "wait for it to finish, or retry with -lock-timeout=2m. A crashed process releases the lock by itself; \
             a stale record can be cleared with `infra force-unlock {}`",
            info.id
        ),
        StateError::Corrupt { .. } => {
            "the file was left untouched; restore it from its .backup copy or from version control".into()
        }
        StateError::NewerFormat { .. } => "the file was left untouched".into(),
        StateError::Encryption { .. } => "nothing was changed; the keys come from `state { encryption { key = ..., \
             previous_key = ... } }` (the old key goes in `previous_key` while rotating)"
            .into(),
        _ => return None,
    })
}

fn handler(color: bool) -> GraphicalReportHandler {
    let theme = if color { GraphicalTheme::unicode() } else { GraphicalTheme::unicode_nocolor() };
    GraphicalReportHandler::new_themed(theme).with_width(100).with_links(false)
}

fn render_plain(message: &str, help: Option<&str>, color: bool) -> String {
    let diagnostic = Rendered {
        message: message.to_string(),
        code: None,
        help: help.map(str::to_string),
        severity: miette::Severity::Error,
        source: None,
        labels: Vec::new(),
        related: Vec::new(),
    };
    let mut out = String::new();
    let _ = handler(color).render_report(&mut out, &diagnostic);
    out
}

pub fn render_diagnostics(sources: &SourceMap, diagnostics: &[Diagnostic], color: bool) -> String {
    let mut out = String::new();
    for d in diagnostics {
        let _ = handler(color).render_report(&mut out, &to_miette(sources, d));
        out.push('\n');
    }
    let errors = diagnostics.iter().filter(|d| d.is_error()).count();
    if errors > 1 {
        out.push_str(&format!("{errors} errors\n"));
    }
    out
}

/// Paths as the user typed them: relative to the current directory when inside it.
pub fn display_path(path: &Path) -> String {
    let cwd = std::env::current_dir().unwrap_or_default();
    match path.strip_prefix(&cwd) {
        // The working directory itself: "no .infra files in ." reads better than "in ".
        Ok(relative) if relative.as_os_str().is_empty() => ".".to_string(),
        Ok(relative) => relative.display().to_string(),
        Err(_) => path.display().to_string(),
    }
}

fn to_miette(sources: &SourceMap, d: &Diagnostic) -> Rendered {
    let severity = match d.severity {
        Severity::Error => miette::Severity::Error,
        Severity::Warning => miette::Severity::Warning,
    };
    let mut rendered = Rendered {
        message: shorten_long_words(&d.message),
        code: Some(d.code.to_string()),
        help: d.help.as_deref().map(shorten_long_words),
        severity,
        source: None,
        labels: Vec::new(),
        related: Vec::new(),
    };
    let known = |file: infra_syntax::FileId| sources.files().any(|(id, _)| id == file);
    let mut files: Vec<infra_syntax::FileId> = Vec::new();
    for label in d.labels.iter().filter(|l| known(l.span.file)) {
        if !files.contains(&label.span.file) {
            files.push(label.span.file);
        }
    }
    // A label on a line of tens of thousands of characters would print all of
    // them: name the place instead of showing it.
    let (files, too_long): (Vec<_>, Vec<_>) = files.into_iter().partition(|file| {
        let text = &sources.get(*file).text;
        d.labels.iter().filter(|l| l.span.file == *file).all(|l| line_length(text, l.span.start) <= LONGEST_SHOWN_LINE)
    });
    for file in too_long {
        let source = sources.get(file);
        for label in d.labels.iter().filter(|l| l.span.file == file) {
            let (line, col) = source.line_col(label.span.start);
            let place = format!("\n  at {}:{line}:{col}: {}", display_path(&source.path), label.message);
            rendered.message.push_str(&shorten_long_words(&place));
        }
    }
    for (i, file) in files.iter().enumerate() {
        let source = sources.get(*file);
        let named = NamedSource::new(display_path(&source.path), source.text.to_string());
        let labels: Vec<LabeledSpan> = d
            .labels
            .iter()
            .filter(|l| l.span.file == *file)
            .map(|l| LabeledSpan::new(Some(l.message.clone()), l.span.start, l.span.len()))
            .collect();
        if i == 0 {
            rendered.source = Some(named);
            rendered.labels = labels;
        } else {
            rendered.related.push(Rendered {
                message: "related".into(),
                code: None,
                help: None,
                severity,
                source: Some(named),
                labels,
                related: Vec::new(),
            });
        }
    }
    rendered
}

/// Source lines longer than this are not shown under a diagnostic.
const LONGEST_SHOWN_LINE: usize = 2_000;

/// The length of the line holding byte `offset`.
fn line_length(text: &str, offset: usize) -> usize {
    let offset = offset.min(text.len());
    let start = text[..offset].rfind('\n').map_or(0, |i| i + 1);
    let end = text[offset..].find('\n').map_or(text.len(), |i| offset + i);
    end - start
}

/// Words of more than 120 characters (a 200,000-character name) are cut in the
/// middle, so a message stays readable.
fn shorten_long_words(text: &str) -> String {
    const LONGEST: usize = 120;
    let mut out = String::with_capacity(text.len().min(4096));
    let mut rest = text;
    while let Some(start) = rest.find(|c: char| !c.is_whitespace()) {
        out.push_str(&rest[..start]);
        rest = &rest[start..];
        let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
        let word = &rest[..end];
        let chars = word.chars().count();
        if chars > LONGEST {
            let head: String = word.chars().take(60).collect();
            let tail: String = word.chars().skip(chars - 20).collect();
            out.push_str(&format!("{head}…{tail} ({chars} characters)"));
        } else {
            out.push_str(word);
        }
        rest = &rest[end..];
    }
    out.push_str(rest);
    out
}

/// A diagnostic in the shape miette renders.
#[derive(Debug)]
struct Rendered {
    message: String,
    code: Option<String>,
    help: Option<String>,
    severity: miette::Severity,
    source: Option<NamedSource<String>>,
    labels: Vec<LabeledSpan>,
    related: Vec<Rendered>,
}

impl std::fmt::Display for Rendered {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Rendered {}

impl miette::Diagnostic for Rendered {
    fn code<'a>(&'a self) -> Option<Box<dyn std::fmt::Display + 'a>> {
        self.code.as_ref().map(|c| Box::new(c) as Box<dyn std::fmt::Display>)
    }
    fn help<'a>(&'a self) -> Option<Box<dyn std::fmt::Display + 'a>> {
        self.help.as_ref().map(|h| Box::new(h) as Box<dyn std::fmt::Display>)
    }
    fn severity(&self) -> Option<miette::Severity> {
        Some(self.severity)
    }
    fn source_code(&self) -> Option<&dyn miette::SourceCode> {
        self.source.as_ref().map(|s| s as &dyn miette::SourceCode)
    }
    fn labels(&self) -> Option<Box<dyn Iterator<Item = LabeledSpan> + '_>> {
        if self.labels.is_empty() { None } else { Some(Box::new(self.labels.iter().cloned())) }
    }
    fn related<'a>(&'a self) -> Option<Box<dyn Iterator<Item = &'a dyn miette::Diagnostic> + 'a>> {
        if self.related.is_empty() {
            None
        } else {
            Some(Box::new(self.related.iter().map(|r| r as &dyn miette::Diagnostic)))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_words_are_cut_in_the_middle() {
        let name = format!("var.{}", "a".repeat(200_000));
        let short = shorten_long_words(&format!("unknown reference `{name}` here"));
        assert!(short.len() < 200, "{short}");
        assert!(short.starts_with("unknown reference `var.aaa"));
        assert!(short.ends_with("(200006 characters) here"), "{short}");
        assert_eq!(shorten_long_words("short words\n  stay as\tthey are"), "short words\n  stay as\tthey are");
    }

    #[test]
    fn line_length_is_the_line_around_an_offset() {
        let text = "ab\ncdef\ng";
        assert_eq!(line_length(text, 0), 2);
        assert_eq!(line_length(text, 4), 4);
        assert_eq!(line_length(text, 9), 1);
    }
}

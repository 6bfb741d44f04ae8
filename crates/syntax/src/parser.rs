//! The pest grammar (`grammar/infra.pest`) turned into the [`ast`](crate::ast).
//! A large file is parsed in pieces, cut after top-level blocks, on several
//! threads; the result is the tree one pass would give.

use pest::Parser as _;
use pest::iterators::Pair;

use crate::ast::*;
use crate::{Code, Diagnostic, FileId, Span};

#[derive(pest_derive::Parser)]
#[grammar = "../../grammar/infra.pest"]
struct Grammar;

/// Parses one file. Returns the tree, or the diagnostics that stopped it.
pub fn parse(file: FileId, text: &str) -> Result<File, Vec<Diagnostic>> {
    let closes = crate::nesting::top_level_closes(text).map_err(|at| too_deep(file, text, at))?;
    match parse_in_pieces(file, text, &closes) {
        Some(body) => Ok(File { body }),
        None => parse_whole(file, text),
    }
}

/// One file in one piece, on this thread.
pub(crate) fn parse_whole(file: FileId, text: &str) -> Result<File, Vec<Diagnostic>> {
    let mut pairs = Grammar::parse(Rule::file, text).map_err(|e| vec![syntax_error(file, text, e)])?;
    let Some(root) = pairs.next() else {
        return Ok(File { body: Body::default() });
    };
    let mut builder = Builder { file, offset: 0, errors: Vec::new() };
    let body = root.into_inner().next().map(|b| builder.body(b)).unwrap_or_default();
    if builder.errors.is_empty() { Ok(File { body }) } else { Err(builder.errors) }
}

/// The size of a piece: below twice this a file is parsed in one piece (a
/// thread costs more than it saves). Pieces stay this small however many
/// threads there are, because pest's token queue for a piece takes about 55
/// bytes per byte of text while the piece's tree is built: 100,000 resources
/// cut into one piece per core held 335 MB of queues at once.
pub(crate) const PIECE_BYTES: usize = 64 * 1024;

/// A large file parsed as pieces on several threads, cut after top-level
/// blocks. `None` when the file is small, or when a piece does not parse:
/// then the whole file is parsed again in one piece, which gives the same
/// tree, or the same diagnostics as always. A cut is only ever made after a
/// `}` that closes the top level, so a piece that parses starts an item of its
/// own: text that continues an expression (`[`, `.`, an operator, `:`) cannot
/// start a file, and its piece fails.
fn parse_in_pieces(file: FileId, text: &str, closes: &[usize]) -> Option<Body> {
    if text.len() < 2 * PIECE_BYTES {
        return None;
    }
    let mut cuts = vec![0];
    for part in 1..text.len() / PIECE_BYTES {
        let at = closes.partition_point(|&end| end < part * PIECE_BYTES);
        cuts.extend(closes.get(at).filter(|&&end| end > cuts[cuts.len() - 1] && end < text.len()));
    }
    cuts.push(text.len());
    parse_pieces(file, text, &cuts)
}

/// The pieces between `cuts` (the first 0, the last the text's length), taken
/// in turn by one thread per core.
pub(crate) fn parse_pieces(file: FileId, text: &str, cuts: &[usize]) -> Option<Body> {
    let pieces: Vec<(usize, usize)> = cuts.windows(2).map(|w| (w[0], w[1])).collect();
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get()).min(pieces.len());
    let next = std::sync::atomic::AtomicUsize::new(0);
    let parsed: Vec<Vec<(usize, Option<Body>)>> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                scope.spawn(|| {
                    let mut done = Vec::new();
                    loop {
                        let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        let Some(&(start, end)) = pieces.get(i) else { return done };
                        done.push((i, parse_piece(file, &text[start..end], start)));
                    }
                })
            })
            .collect();
        workers.into_iter().map(|w| w.join().unwrap_or_default()).collect()
    });
    let mut bodies: Vec<Option<Body>> = (0..pieces.len()).map(|_| None).collect();
    for (i, body) in parsed.into_iter().flatten() {
        bodies[i] = body;
    }
    let mut bodies = bodies.into_iter().collect::<Option<Vec<Body>>>()?;
    if bodies.iter().any(|b| b.items.is_empty()) {
        return None; // a piece of comments alone: its body's span would not be the file's
    }
    let span = bodies.first()?.span.to(bodies.last()?.span);
    let mut items = Vec::with_capacity(bodies.iter().map(|b| b.items.len()).sum());
    for body in &mut bodies {
        items.append(&mut body.items);
    }
    Some(Body { items, span })
}

/// One piece of a file, its spans counted from the start of the file.
fn parse_piece(file: FileId, piece: &str, offset: usize) -> Option<Body> {
    let root = Grammar::parse(Rule::file, piece).ok()?.next()?;
    let mut builder = Builder { file, offset, errors: Vec::new() };
    let body = builder.body(root.into_inner().next()?);
    builder.errors.is_empty().then_some(body)
}

/// Parses the text of a template file (`templatefile()`): literal text with `${...}`.
pub fn parse_template(file: FileId, text: &str) -> Result<Expr, Vec<Diagnostic>> {
    if let Some(at) = crate::nesting::template_too_deep(text) {
        return Err(too_deep(file, text, at));
    }
    let mut pairs = Grammar::parse(Rule::template, text).map_err(|e| vec![syntax_error(file, text, e)])?;
    let root = next(&mut pairs);
    let span = Span::new(file, 0, text.len());
    let mut builder = Builder { file, offset: 0, errors: Vec::new() };
    let mut parts = Vec::new();
    for part in root.into_inner() {
        match part.as_rule() {
            Rule::template_chars => push_literal(&mut parts, part.as_str()),
            Rule::heredoc_escape => push_literal(&mut parts, "${"),
            Rule::interpolation => {
                parts.push(TemplatePart::Interpolation(Box::new(builder.expr(next(&mut part.into_inner())))))
            }
            _ => {}
        }
    }
    if builder.errors.is_empty() { Ok(Expr { kind: ExprKind::Template(parts), span }) } else { Err(builder.errors) }
}

/// Every stage after this one recurses over the tree: text that nests deeper
/// than they can follow stops here, with a way out.
fn too_deep(file: FileId, text: &str, at: usize) -> Vec<Diagnostic> {
    let end = text[at..].chars().next().map_or(at, |c| at + c.len_utf8());
    vec![
        Diagnostic::error(
            Code::Syntax,
            format!("syntax error: this nests more than {} levels deep", crate::nesting::MAX_NESTING),
        )
        .with_label(Span::new(file, at, end), "one level too many")
        .with_help("split the value into locals: each `local.NAME` starts again at the top level"),
    ]
}

fn syntax_error(file: FileId, text: &str, error: pest::error::Error<Rule>) -> Diagnostic {
    let (start, end) = match error.location {
        pest::error::InputLocation::Pos(p) => (p, (p + 1).min(text.len()).max(p)),
        pest::error::InputLocation::Span((s, e)) => (s, e),
    };
    let expected = match &error.variant {
        pest::error::ErrorVariant::ParsingError { positives, .. } => describe_expected(positives),
        pest::error::ErrorVariant::CustomError { message } => message.clone(),
    };
    let found = text[start..].chars().next().map_or("end of file".to_string(), |c| match c {
        '\n' => "end of line".to_string(),
        c => format!("`{c}`"),
    });
    Diagnostic::error(Code::Syntax, format!("syntax error: expected {expected}, found {found}"))
        .with_label(Span::new(file, start, end), format!("expected {expected}"))
        .with_help("blocks look like `TYPE \"NAME\" { ... }` and attributes like `name = value`")
}

/// Names the tokens a user could have typed, not grammar rule names.
fn describe_expected(rules: &[Rule]) -> String {
    let mut names: Vec<&str> = rules.iter().filter_map(|r| rule_symbol(*r)).collect();
    names.sort_unstable();
    names.dedup();
    match names.len() {
        0 => "something else".into(),
        1 => names[0].into(),
        n if n > 6 => "an expression".into(),
        _ => {
            let (last, rest) = names.split_last().expect("at least two names");
            format!("{} or {}", rest.join(", "), last)
        }
    }
}

fn rule_symbol(rule: Rule) -> Option<&'static str> {
    Some(match rule {
        Rule::EOI => "end of file",
        Rule::ident | Rule::keyword_ident | Rule::variable => "a name",
        Rule::attribute => "an attribute",
        Rule::block => "a block",
        Rule::expr | Rule::binary | Rule::unary | Rule::postfix => "an expression",
        Rule::bin_op => "an operator",
        Rule::string | Rule::string_chars | Rule::escape => "a string",
        Rule::interpolation => "`${`",
        Rule::number => "a number",
        Rule::get_attr => "`.`",
        Rule::index | Rule::splat | Rule::tuple | Rule::for_tuple => "`[`",
        Rule::object | Rule::for_object => "`{`",
        Rule::object_item | Rule::object_key => "an object key",
        Rule::call | Rule::paren => "`(`",
        Rule::heredoc | Rule::heredoc_line | Rule::heredoc_end => "the heredoc's closing marker",
        Rule::for_cond => "`if`",
        Rule::expand | Rule::group => "`...`",
        _ => return None,
    })
}

struct Builder {
    file: FileId,
    /// Where the text being built starts in its file (a piece of a large file).
    offset: usize,
    errors: Vec<Diagnostic>,
}

impl Builder {
    fn span(&self, pair: &Pair<Rule>) -> Span {
        let s = pair.as_span();
        Span::new(self.file, self.offset + s.start(), self.offset + s.end())
    }

    fn body(&mut self, pair: Pair<Rule>) -> Body {
        let span = self.span(&pair);
        let items = pair
            .into_inner()
            .map(|item| match item.as_rule() {
                Rule::attribute => BodyItem::Attribute(self.attribute(item)),
                _ => BodyItem::Block(self.block(item)),
            })
            .collect();
        Body { items, span }
    }

    fn attribute(&mut self, pair: Pair<Rule>) -> Attribute {
        let span = self.span(&pair);
        let mut inner = pair.into_inner();
        let name = self.ident(next(&mut inner));
        let value = self.expr(next(&mut inner));
        Attribute { name, value, span }
    }

    fn block(&mut self, pair: Pair<Rule>) -> Block {
        let span = self.span(&pair);
        let mut inner = pair.into_inner();
        let kind = self.ident(next(&mut inner));
        let mut labels = Vec::new();
        let mut body = Body::default();
        for part in inner {
            match part.as_rule() {
                Rule::ident => labels.push(self.ident(part)),
                Rule::string => labels.push(self.string_label(part)),
                _ => body = self.body(part),
            }
        }
        Block { kind, labels, body, span }
    }

    fn string_label(&mut self, pair: Pair<Rule>) -> Ident {
        let span = self.span(&pair);
        let expr = self.string(pair);
        let name = expr.as_literal_str().unwrap_or_else(|| {
            self.errors.push(
                Diagnostic::error(Code::Syntax, "a block label cannot contain `${...}`")
                    .with_label(span, "interpolation not allowed here")
                    .with_help("block labels are fixed names; use `for_each` to create several"),
            );
            String::new()
        });
        Ident { name, span }
    }

    fn ident(&self, pair: Pair<Rule>) -> Ident {
        Ident { name: pair.as_str().to_string(), span: self.span(&pair) }
    }

    fn expr(&mut self, pair: Pair<Rule>) -> Expr {
        let span = self.span(&pair);
        let mut inner = pair.into_inner();
        let condition = self.binary(next(&mut inner));
        match (inner.next(), inner.next()) {
            (Some(then), Some(otherwise)) => {
                let kind = ExprKind::Conditional(
                    Box::new(condition),
                    Box::new(self.expr(then)),
                    Box::new(self.expr(otherwise)),
                );
                Expr { kind, span }
            }
            _ => condition,
        }
    }

    /// Operands and operators alternate; precedence climbing (all operators
    /// bind left) folds them into one tree.
    fn binary(&mut self, pair: Pair<Rule>) -> Expr {
        let mut inner = pair.into_inner();
        let first = self.unary(next(&mut inner));
        let mut operands = vec![first];
        let mut operators: Vec<BinaryOp> = Vec::new();
        while let Some(op) = inner.next() {
            let op = binary_op(op.as_str());
            while operators.last().is_some_and(|top| top.precedence() >= op.precedence()) {
                self.fold(&mut operands, &mut operators);
            }
            operators.push(op);
            operands.push(self.unary(next(&mut inner)));
        }
        while !operators.is_empty() {
            self.fold(&mut operands, &mut operators);
        }
        operands.pop().expect("one operand is left")
    }

    /// Combines the last two operands with the last operator.
    fn fold(&self, operands: &mut Vec<Expr>, operators: &mut Vec<BinaryOp>) {
        let (Some(op), Some(rhs), Some(lhs)) = (operators.pop(), operands.pop(), operands.pop()) else {
            unreachable!("grammar: an operator between two operands")
        };
        let span = Span::new(self.file, lhs.span.start, rhs.span.end);
        operands.push(Expr { kind: ExprKind::Binary(op, Box::new(lhs), Box::new(rhs)), span });
    }

    fn unary(&mut self, pair: Pair<Rule>) -> Expr {
        let mut ops = Vec::new();
        let mut operand = None;
        for part in pair.into_inner() {
            match part.as_rule() {
                Rule::neg => ops.push((UnaryOp::Neg, self.span(&part))),
                Rule::not => ops.push((UnaryOp::Not, self.span(&part))),
                _ => operand = Some(self.postfix(part)),
            }
        }
        let mut expr = operand.expect("grammar: unary ends in a postfix");
        for (op, span) in ops.into_iter().rev() {
            let span = span.to(expr.span);
            expr = Expr { kind: ExprKind::Unary(op, Box::new(expr)), span };
        }
        expr
    }

    fn postfix(&mut self, pair: Pair<Rule>) -> Expr {
        let mut inner = pair.into_inner();
        let mut expr = self.primary(next(&mut inner));
        let mut splat: Option<(Expr, Vec<Traversal>)> = None;
        for part in inner {
            let end = self.span(&part).end;
            let traversal = match part.as_rule() {
                Rule::splat => {
                    let base = match splat.take() {
                        Some((base, rest)) => finish_splat(base, rest, end),
                        None => expr.clone(),
                    };
                    splat = Some((base, Vec::new()));
                    continue;
                }
                Rule::get_attr => Traversal::Attr(self.ident(next(&mut part.into_inner()))),
                _ => Traversal::Index(self.expr(next(&mut part.into_inner()))),
            };
            match &mut splat {
                Some((_, rest)) => rest.push(traversal),
                None => {
                    let span = Span::new(self.file, expr.span.start, end);
                    let kind = match traversal {
                        Traversal::Attr(name) => ExprKind::GetAttr(Box::new(expr), name),
                        Traversal::Index(index) => ExprKind::Index(Box::new(expr), Box::new(index)),
                    };
                    expr = Expr { kind, span };
                }
            }
        }
        match splat {
            Some((base, rest)) => {
                let end = rest.last().map_or(base.span.end, traversal_end).max(base.span.end);
                finish_splat(base, rest, end)
            }
            None => expr,
        }
    }

    fn primary(&mut self, pair: Pair<Rule>) -> Expr {
        let span = self.span(&pair);
        let kind = match pair.as_rule() {
            Rule::number => match pair.as_str().parse::<f64>() {
                Ok(n) => ExprKind::Number(n),
                Err(_) => {
                    self.errors
                        .push(Diagnostic::error(Code::Syntax, "invalid number").with_label(span, "not a number"));
                    ExprKind::Null
                }
            },
            Rule::true_lit => ExprKind::Bool(true),
            Rule::false_lit => ExprKind::Bool(false),
            Rule::null_lit => ExprKind::Null,
            Rule::string => return self.string(pair),
            Rule::heredoc => return self.heredoc(pair),
            Rule::tuple => ExprKind::Tuple(pair.into_inner().map(|e| self.expr(e)).collect()),
            Rule::object => ExprKind::Object(pair.into_inner().map(|item| self.object_item(item)).collect()),
            Rule::for_tuple | Rule::for_object => ExprKind::For(Box::new(self.for_expr(pair))),
            Rule::call => {
                let mut inner = pair.into_inner();
                let name = self.ident(next(&mut inner));
                let mut args = Vec::new();
                let mut expand_final = false;
                for arg in inner {
                    match arg.as_rule() {
                        Rule::expand => expand_final = true,
                        _ => args.push(self.expr(arg)),
                    }
                }
                ExprKind::Call { name, args, expand_final }
            }
            Rule::variable => ExprKind::Variable(self.ident(next(&mut pair.into_inner()))),
            Rule::paren => ExprKind::Paren(Box::new(self.expr(next(&mut pair.into_inner())))),
            rule => unreachable!("grammar: unexpected primary {rule:?}"),
        };
        Expr { kind, span }
    }

    fn object_item(&mut self, pair: Pair<Rule>) -> ObjectItem {
        let mut inner = pair.into_inner();
        let key_pair = next(&mut next(&mut inner).into_inner());
        let key = match key_pair.as_rule() {
            Rule::ident | Rule::keyword_ident => ObjectKey::Ident(self.ident(key_pair)),
            Rule::string => ObjectKey::Expr(self.string(key_pair)),
            _ => ObjectKey::Expr(self.primary(key_pair)),
        };
        let value = self.expr(next(&mut inner));
        ObjectItem { key, value }
    }

    fn for_expr(&mut self, pair: Pair<Rule>) -> ForExpr {
        let is_object = pair.as_rule() == Rule::for_object;
        let mut inner = pair.into_inner();
        let mut intro = next(&mut inner).into_inner();
        let first = self.ident(next(&mut intro));
        let second = next(&mut intro);
        let (key_var, value_var, collection) = if second.as_rule() == Rule::ident {
            (Some(first), self.ident(second), self.expr(next(&mut intro)))
        } else {
            (None, first, self.expr(second))
        };
        let first_expr = self.expr(next(&mut inner));
        let (key_expr, value_expr) =
            if is_object { (Some(first_expr), self.expr(next(&mut inner))) } else { (None, first_expr) };
        let mut condition = None;
        let mut group = false;
        for rest in inner {
            match rest.as_rule() {
                Rule::group => group = true,
                _ => condition = Some(self.expr(next(&mut rest.into_inner()))),
            }
        }
        ForExpr { key_var, value_var, collection, key_expr, value_expr, condition, group }
    }

    fn string(&mut self, pair: Pair<Rule>) -> Expr {
        let span = self.span(&pair);
        let mut parts = Vec::new();
        for part in pair.into_inner() {
            match part.as_rule() {
                Rule::string_chars => push_literal(&mut parts, part.as_str()),
                Rule::escape => push_literal(&mut parts, &unescape(part.as_str())),
                _ => parts.push(TemplatePart::Interpolation(Box::new(self.expr(next(&mut part.into_inner()))))),
            }
        }
        Expr { kind: ExprKind::Template(parts), span }
    }

    fn heredoc(&mut self, pair: Pair<Rule>) -> Expr {
        let span = self.span(&pair);
        let mut strip = false;
        let mut lines: Vec<Vec<TemplatePart>> = Vec::new();
        for part in pair.into_inner() {
            match part.as_rule() {
                Rule::heredoc_strip => strip = true,
                Rule::heredoc_line => {
                    let mut line = Vec::new();
                    for piece in part.into_inner() {
                        match piece.as_rule() {
                            Rule::heredoc_chars => push_literal(&mut line, piece.as_str()),
                            Rule::heredoc_escape => push_literal(&mut line, "${"),
                            _ => line
                                .push(TemplatePart::Interpolation(Box::new(self.expr(next(&mut piece.into_inner()))))),
                        }
                    }
                    push_literal(&mut line, "\n");
                    lines.push(line);
                }
                _ => {}
            }
        }
        if strip {
            strip_common_indent(&mut lines);
        }
        let mut parts = Vec::new();
        for line in lines {
            for part in line {
                match part {
                    TemplatePart::Literal(text) => push_literal(&mut parts, &text),
                    interpolation => parts.push(interpolation),
                }
            }
        }
        Expr { kind: ExprKind::Template(parts), span }
    }
}

fn next<'a>(pairs: &mut pest::iterators::Pairs<'a, Rule>) -> Pair<'a, Rule> {
    pairs.next().expect("grammar guarantees this child")
}

fn traversal_end(t: &Traversal) -> usize {
    match t {
        Traversal::Attr(name) => name.span.end,
        Traversal::Index(e) => e.span.end + 1,
    }
}

fn finish_splat(base: Expr, rest: Vec<Traversal>, end: usize) -> Expr {
    let span = Span::new(base.span.file, base.span.start, end);
    Expr { kind: ExprKind::Splat(Box::new(base), rest), span }
}

fn binary_op(token: &str) -> BinaryOp {
    match token {
        "||" => BinaryOp::Or,
        "&&" => BinaryOp::And,
        "==" => BinaryOp::Eq,
        "!=" => BinaryOp::Ne,
        "<" => BinaryOp::Lt,
        ">" => BinaryOp::Gt,
        "<=" => BinaryOp::Le,
        ">=" => BinaryOp::Ge,
        "+" => BinaryOp::Add,
        "-" => BinaryOp::Sub,
        "*" => BinaryOp::Mul,
        "/" => BinaryOp::Div,
        _ => BinaryOp::Rem,
    }
}

fn push_literal(parts: &mut Vec<TemplatePart>, text: &str) {
    if let Some(TemplatePart::Literal(last)) = parts.last_mut() {
        last.push_str(text);
    } else {
        parts.push(TemplatePart::Literal(text.to_string()));
    }
}

fn unescape(escape: &str) -> String {
    match escape {
        "$${" => "${".into(),
        "\\n" => "\n".into(),
        "\\r" => "\r".into(),
        "\\t" => "\t".into(),
        "\\\"" => "\"".into(),
        "\\\\" => "\\".into(),
        hex => u32::from_str_radix(&hex[2..], 16)
            .ok()
            .and_then(char::from_u32)
            .map_or_else(|| char::REPLACEMENT_CHARACTER.to_string(), |c| c.to_string()),
    }
}

/// `<<-EOT`: removes the indentation shared by every non-blank line.
fn strip_common_indent(lines: &mut [Vec<TemplatePart>]) {
    let indent_of = |line: &Vec<TemplatePart>| match line.first() {
        Some(TemplatePart::Literal(text)) if !text.trim().is_empty() => {
            Some(text.len() - text.trim_start_matches([' ', '\t']).len())
        }
        Some(TemplatePart::Literal(_)) => None,
        _ => Some(0),
    };
    let Some(common) = lines.iter().filter_map(indent_of).min() else {
        return;
    };
    for line in lines.iter_mut() {
        if let Some(TemplatePart::Literal(text)) = line.first_mut() {
            let strippable = text.len() - text.trim_start_matches([' ', '\t']).len();
            text.drain(..common.min(strippable));
        }
    }
}

//! Parser tests: source in, the tree (or the diagnostic) out, as readable text.

use crate::ast::*;
use crate::{Code, FileId, parse};

fn parse_ok(text: &str) -> File {
    match parse(FileId(0), text) {
        Ok(file) => file,
        Err(errors) => panic!("unexpected errors: {errors:#?}"),
    }
}

fn expr(text: &str) -> Expr {
    let file = parse_ok(&format!("x = {text}\n"));
    match file.body.items.into_iter().next() {
        Some(BodyItem::Attribute(a)) => a.value,
        other => panic!("expected an attribute, got {other:?}"),
    }
}

/// A compact s-expression of an expression, to assert structure and precedence.
fn sexp(e: &Expr) -> String {
    match &e.kind {
        ExprKind::Null => "null".into(),
        ExprKind::Bool(b) => b.to_string(),
        ExprKind::Number(n) => n.to_string(),
        ExprKind::Template(parts) => {
            let parts: Vec<String> = parts
                .iter()
                .map(|p| match p {
                    TemplatePart::Literal(t) => format!("{t:?}"),
                    TemplatePart::Interpolation(e) => format!("${{{}}}", sexp(e)),
                })
                .collect();
            format!("(tpl {})", parts.join(" "))
        }
        ExprKind::Tuple(items) => {
            format!("[{}]", items.iter().map(sexp).collect::<Vec<_>>().join(" "))
        }
        ExprKind::Object(items) => {
            let items: Vec<String> = items
                .iter()
                .map(|i| match &i.key {
                    ObjectKey::Ident(k) => format!("{}={}", k.name, sexp(&i.value)),
                    ObjectKey::Expr(k) => format!("{}={}", sexp(k), sexp(&i.value)),
                })
                .collect();
            format!("{{{}}}", items.join(" "))
        }
        ExprKind::Variable(v) => v.name.clone(),
        ExprKind::GetAttr(e, a) => format!("{}.{}", sexp(e), a.name),
        ExprKind::Index(e, i) => format!("{}[{}]", sexp(e), sexp(i)),
        ExprKind::Splat(e, rest) => format!("(splat {} {})", sexp(e), rest.len()),
        ExprKind::Call { name, args, expand_final } => format!(
            "({} {}{})",
            name.name,
            args.iter().map(sexp).collect::<Vec<_>>().join(" "),
            if *expand_final { "..." } else { "" }
        ),
        ExprKind::Unary(op, e) => format!("({op:?} {})", sexp(e)),
        ExprKind::Binary(op, l, r) => format!("({} {} {})", op.symbol(), sexp(l), sexp(r)),
        ExprKind::Conditional(c, t, f) => format!("(if {} {} {})", sexp(c), sexp(t), sexp(f)),
        ExprKind::For(f) => format!(
            "(for {}{} {} {}{})",
            f.key_var.as_ref().map_or(String::new(), |k| format!("{},", k.name)),
            f.value_var.name,
            sexp(&f.collection),
            f.key_expr.as_ref().map_or(String::new(), |k| format!("{} => ", sexp(k))),
            sexp(&f.value_expr)
        ),
        ExprKind::Paren(e) => sexp(e),
    }
}

#[test]
fn precedence_follows_hcl() {
    assert_eq!(sexp(&expr("1 + 2 * 3 == 7 && !false || x")), "(|| (&& (== (+ 1 (* 2 3)) 7) (Not false)) x)");
    assert_eq!(sexp(&expr("a ? b : c ? d : e")), "(if a b (if c d e))");
    assert_eq!(sexp(&expr("-x.y[0]")), "(Neg x.y[0])");
    assert_eq!(sexp(&expr("(1 + 2) * 3")), "(* (+ 1 2) 3)");
    // Every operator binds left, within a level and across levels.
    assert_eq!(sexp(&expr("8 - 4 - 2")), "(- (- 8 4) 2)");
    assert_eq!(sexp(&expr("8 / 4 * 2 % 3")), "(% (* (/ 8 4) 2) 3)");
    assert_eq!(sexp(&expr("a * b + c * d - e")), "(- (+ (* a b) (* c d)) e)");
    assert_eq!(sexp(&expr("a < b == c >= d != e <= f")), "(!= (== (< a b) (>= c d)) (<= e f))");
    assert_eq!(sexp(&expr("a || b && c || d")), "(|| (|| a (&& b c)) d)");
}

#[test]
fn strings_and_interpolation() {
    assert_eq!(sexp(&expr(r#""a ${var.x} \"b\" $${c}""#)), r#"(tpl "a " ${var.x} " \"b\" ${c}")"#);
    assert_eq!(sexp(&expr(r#""${upper("x")}""#)), r#"(tpl ${(upper (tpl "x"))})"#);
}

#[test]
fn heredocs_keep_or_strip_indentation() {
    assert_eq!(sexp(&expr("<<EOT\n  a\n  ${b}\nEOT")), r#"(tpl "  a\n  " ${b} "\n")"#);
    assert_eq!(sexp(&expr("<<-EOT\n    a\n      b\n    EOT")), r#"(tpl "a\n  b\n")"#);
}

#[test]
fn collections_for_and_calls() {
    assert_eq!(sexp(&expr(r#"{ a = 1, "b": [2, 3], (k) = null }"#)), r#"{a=1 (tpl "b")=[2 3] k=null}"#);
    assert_eq!(sexp(&expr("[for k, v in m : v if v]")), "(for k,v m v)");
    assert_eq!(sexp(&expr("{for s in l : s => upper(s)}")), "(for s l s => (upper s))");
    assert_eq!(sexp(&expr("concat(a, b...)")), "(concat a b...)");
    assert_eq!(sexp(&expr("file.x[*].path")), "(splat file.x 1)");
}

#[test]
fn blocks_have_labels_and_bodies() {
    let file = parse_ok("file \"motd\" {\n  path = \"/etc/motd\"\n  lifecycle {\n    prevent_destroy = true\n  }\n}\n");
    let block = file.body.blocks().next().expect("a block");
    assert_eq!(block.kind.name, "file");
    assert_eq!(block.labels[0].name, "motd");
    assert_eq!(block.body.attributes().count(), 1);
    assert_eq!(block.body.blocks().next().map(|b| b.kind.name.as_str()), Some("lifecycle"));
}

#[test]
fn syntax_errors_point_at_the_problem() {
    let text = "file \"x\" {\n  path = \n}\n";
    let errors = parse(FileId(0), text).expect_err("must fail");
    assert_eq!(errors[0].code, Code::Syntax);
    let span = errors[0].primary_span().expect("span");
    assert_eq!(&text[span.start..span.start + 1], "}");
    assert!(errors[0].message.contains("expected an expression"), "{}", errors[0].message);
}

/// A file large enough to be parsed in pieces gives the tree a single pass
/// gives, spans included; a piece that does not parse falls back to the
/// single pass and its diagnostics.
#[test]
fn a_large_file_parsed_in_pieces_is_the_file_parsed_whole() {
    let block = "# a comment with a } in it\nfile \"f${i}\" {\n  path = \"out/${i}\"\n  content = <<EOT\n}\nEOT\n  \
                 tags = { a = [1, 2 * 3 - 1], \"b\" = x.y[0] }\n}\nlocals { x = \"}\" }\n";
    let text: String = (0..3_500).map(|i| block.replace("${i}", &i.to_string())).collect();
    let whole = super::parser::parse_whole(FileId(0), &text).expect("parses");
    assert_eq!(whole.body.items.len(), 7_000);
    let closes = crate::nesting::top_level_closes(&text).expect("not too deep");
    // More pieces than this machine has cores: threads take them in turn.
    let cuts = [0, closes[1_000], closes[2_000], closes[4_000], closes[5_000], closes[6_500], text.len()];
    assert_eq!(super::parser::parse_pieces(FileId(0), &text, &cuts).as_ref(), Some(&whole.body));
    assert!(text.len() > 2 * super::parser::PIECE_BYTES, "parse() cuts it where threads allow");
    assert_eq!(super::parse(FileId(0), &text).expect("parses"), whole);

    // A cut after a top-level object value leaves `["k"]` starting a piece:
    // that piece fails, and the file is parsed whole.
    let continued = "v = { k = 1 }\n[\"k\"]\nw = 2\n";
    let cut = continued.find('}').map_or(0, |p| p + 1);
    assert_eq!(super::parser::parse_pieces(FileId(0), continued, &[0, cut, continued.len()]), None);
    let inside = [0, cut + 2, continued.len()];
    assert_eq!(
        super::parser::parse_pieces(FileId(0), continued, &inside),
        None,
        "a cut inside an expression fails too"
    );
    let broken = format!("{text}file \"x\" {{\n  a =\n}}\n{text}");
    let errors = super::parse(FileId(0), &broken).expect_err("a syntax error");
    assert_eq!(errors, super::parser::parse_whole(FileId(0), &broken).expect_err("a syntax error"));
}

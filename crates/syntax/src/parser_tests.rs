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

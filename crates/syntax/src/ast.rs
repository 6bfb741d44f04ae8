//! The syntax tree of one `.infra` file. Every node keeps its [`Span`].

use crate::Span;

#[derive(Clone, Debug, PartialEq)]
pub struct File {
    pub body: Body,
}

/// Attributes and blocks in source order.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct Body {
    pub items: Vec<BodyItem>,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub enum BodyItem {
    Attribute(Attribute),
    Block(Block),
}

impl Body {
    pub fn attributes(&self) -> impl Iterator<Item = &Attribute> {
        self.items.iter().filter_map(|item| match item {
            BodyItem::Attribute(a) => Some(a),
            BodyItem::Block(_) => None,
        })
    }

    pub fn blocks(&self) -> impl Iterator<Item = &Block> {
        self.items.iter().filter_map(|item| match item {
            BodyItem::Block(b) => Some(b),
            BodyItem::Attribute(_) => None,
        })
    }

    /// The names written in the body, attributes' and blocks' alike, in order.
    pub fn item_names(&self) -> impl Iterator<Item = &str> {
        self.items.iter().map(|item| match item {
            BodyItem::Attribute(a) => a.name.name.as_str(),
            BodyItem::Block(b) => b.kind.name.as_str(),
        })
    }

    pub fn attribute(&self, name: &str) -> Option<&Attribute> {
        self.attributes().find(|a| a.name.name == name)
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Ident {
    pub name: String,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Attribute {
    pub name: Ident,
    pub value: Expr,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Block {
    pub kind: Ident,
    pub labels: Vec<Ident>,
    pub body: Body,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Expr {
    pub kind: ExprKind,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub enum ExprKind {
    Null,
    Bool(bool),
    Number(f64),
    /// A quoted string or heredoc: literal text and `${...}` interpolations.
    Template(Vec<TemplatePart>),
    Tuple(Vec<Expr>),
    Object(Vec<ObjectItem>),
    /// A bare name at the root of a reference: `var`, `local`, `file`, `each`, ...
    Variable(Ident),
    GetAttr(Box<Expr>, Ident),
    Index(Box<Expr>, Box<Expr>),
    /// `list[*].attr`: the traversals after the splat apply to each element.
    Splat(Box<Expr>, Vec<Traversal>),
    Call {
        name: Ident,
        args: Vec<Expr>,
        expand_final: bool,
    },
    Unary(UnaryOp, Box<Expr>),
    Binary(BinaryOp, Box<Expr>, Box<Expr>),
    Conditional(Box<Expr>, Box<Expr>, Box<Expr>),
    For(Box<ForExpr>),
    Paren(Box<Expr>),
}

#[derive(Clone, Debug, PartialEq)]
pub enum Traversal {
    Attr(Ident),
    Index(Expr),
}

#[derive(Clone, Debug, PartialEq)]
pub enum TemplatePart {
    Literal(String),
    /// Boxed: most parts are literals, and an `Expr` is four times a `String`.
    Interpolation(Box<Expr>),
}

#[derive(Clone, Debug, PartialEq)]
pub struct ObjectItem {
    pub key: ObjectKey,
    pub value: Expr,
}

#[derive(Clone, Debug, PartialEq)]
pub enum ObjectKey {
    /// `name = ...`: a bare identifier is the literal key, never a reference.
    Ident(Ident),
    Expr(Expr),
}

#[derive(Clone, Debug, PartialEq)]
pub struct ForExpr {
    pub key_var: Option<Ident>,
    pub value_var: Ident,
    pub collection: Expr,
    /// `Some` for `{for ...: k => v}`, `None` for `[for ...: v]`.
    pub key_expr: Option<Expr>,
    pub value_expr: Expr,
    pub condition: Option<Expr>,
    /// `{for ...: k => v...}` groups values of equal keys into lists.
    pub group: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UnaryOp {
    Neg,
    Not,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BinaryOp {
    Or,
    And,
    Eq,
    Ne,
    Lt,
    Gt,
    Le,
    Ge,
    Add,
    Sub,
    Mul,
    Div,
    Rem,
}

impl BinaryOp {
    /// Binding strength: higher binds tighter.
    pub fn precedence(self) -> u8 {
        match self {
            BinaryOp::Or => 1,
            BinaryOp::And => 2,
            BinaryOp::Eq | BinaryOp::Ne => 3,
            BinaryOp::Lt | BinaryOp::Gt | BinaryOp::Le | BinaryOp::Ge => 4,
            BinaryOp::Add | BinaryOp::Sub => 5,
            BinaryOp::Mul | BinaryOp::Div | BinaryOp::Rem => 6,
        }
    }

    pub fn symbol(self) -> &'static str {
        match self {
            BinaryOp::Or => "||",
            BinaryOp::And => "&&",
            BinaryOp::Eq => "==",
            BinaryOp::Ne => "!=",
            BinaryOp::Lt => "<",
            BinaryOp::Gt => ">",
            BinaryOp::Le => "<=",
            BinaryOp::Ge => ">=",
            BinaryOp::Add => "+",
            BinaryOp::Sub => "-",
            BinaryOp::Mul => "*",
            BinaryOp::Div => "/",
            BinaryOp::Rem => "%",
        }
    }
}

impl Expr {
    /// The dotted form of a plain traversal such as `file.motd.path`, if it is one.
    pub fn as_traversal_path(&self) -> Option<Vec<&Ident>> {
        match &self.kind {
            ExprKind::Variable(root) => Some(vec![root]),
            ExprKind::GetAttr(inner, attr) => {
                let mut path = inner.as_traversal_path()?;
                path.push(attr);
                Some(path)
            }
            _ => None,
        }
    }

    /// A string literal with no interpolation.
    pub fn as_literal_str(&self) -> Option<String> {
        match &self.kind {
            ExprKind::Template(parts) => {
                let mut out = String::new();
                for part in parts {
                    match part {
                        TemplatePart::Literal(text) => out.push_str(text),
                        TemplatePart::Interpolation(_) => return None,
                    }
                }
                Some(out)
            }
            _ => None,
        }
    }
}

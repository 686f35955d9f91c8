//! Recursive-descent parser for filters (RFC 7644 §3.4.2.2) and PATCH paths (§3.5.2).
//!
//! Precedence, tightest first: grouping and `not (…)`, attribute expressions, `and`, `or`.
//! Nesting, term count and input length are bounded by [`ParseOptions`] so hostile input gets
//! an error instead of exhausting the stack.

use super::ast::{AttrPath, CompareOp, Comparison, Filter, Present, Span, Value, ValuePath};
use super::lexer::{Lexer, Token, TokenKind};
use super::{Expected, ParseOptions, SyntaxError};
use crate::scim::path::PatchPath;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Logic {
    And,
    Or,
    Neither,
}

/// What closes the expression being parsed, for "expected …" messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Close {
    End,
    Paren,
    Bracket,
}

impl Close {
    fn token(self) -> Expected {
        match self {
            Close::End => Expected::END,
            Close::Paren => Expected::CLOSE_PAREN,
            Close::Bracket => Expected::CLOSE_BRACKET,
        }
    }

    fn describe(self) -> &'static str {
        match self {
            Close::End => "the end of the filter",
            Close::Paren => "`)`",
            Close::Bracket => "`]`",
        }
    }
}

/// Where the parser stood when it stopped, for completions (see [`super::complete`]).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Context {
    /// The attribute whose value filter `attr[…]` (or `attr[…].sub`) was being read.
    pub(crate) value_path: Option<Span>,
    /// The attribute of the comparison being read.
    pub(crate) attribute: Option<Span>,
}

pub(crate) struct Parser<'a> {
    lex: Lexer<'a>,
    context: Context,
    peeked: Option<Token>,
    opts: &'a ParseOptions,
    depth: usize,
    terms: usize,
    in_value_path: bool,
    /// End of the last token consumed.
    last_end: usize,
}

pub(crate) fn filter(src: &str, opts: &ParseOptions) -> Result<Filter, SyntaxError> {
    filter_in_context(src, opts).0
}

/// Parses a filter and tells where the parser stood when it stopped.
pub(crate) fn filter_in_context(
    src: &str,
    opts: &ParseOptions,
) -> (Result<Filter, SyntaxError>, Context) {
    if let Err(e) = check_length(src, opts, "filter") {
        return (Err(e), Context::default());
    }
    let mut p = Parser::new(src, opts);
    let result = p.or_expr().and_then(|f| {
        p.expect_close(Close::End)?;
        Ok(f)
    });
    (result, p.context)
}

pub(crate) fn patch_path(src: &str, opts: &ParseOptions) -> Result<PatchPath, SyntaxError> {
    check_length(src, opts, "path")?;
    let mut p = Parser::new(src, opts);
    let t = p.bump()?;
    if t.kind != TokenKind::Word {
        return Err(p.unexpected(t, "expected an attribute name", Expected::ATTRIBUTE));
    }
    let attr = attr_path(p.lex.text(t), t.start())?;
    let mut path = PatchPath {
        attr,
        filter: None,
        sub_attr: None,
    };
    if p.peek()?.kind == TokenKind::LBracket {
        let open = p.bump()?;
        path.filter = Some(p.value_filter(&path.attr, open.start())?);
        if p.peek()?.kind == TokenKind::Dot {
            p.bump()?;
            path.sub_attr = Some(p.sub_attr_after_bracket()?);
        }
    }
    let t = p.bump()?;
    if t.kind != TokenKind::End {
        let (what, expected) = if path.sub_attr.is_some() {
            ("expected the end of the path", Expected::END)
        } else if path.filter.is_some() {
            (
                "expected `.` and a sub-attribute, or the end of the path",
                Expected::DOT | Expected::END,
            )
        } else {
            (
                "expected `[` or the end of the path",
                Expected::OPEN_BRACKET | Expected::END,
            )
        };
        return Err(p.unexpected(t, what, expected));
    }
    Ok(path)
}

fn check_length(src: &str, opts: &ParseOptions, what: &str) -> Result<(), SyntaxError> {
    // Token positions are 32-bit, whatever the configured limit.
    let max_length = opts.max_length.min(u32::MAX as usize);
    if src.len() > max_length {
        return Err(SyntaxError::new(
            opts.max_length,
            src.len(),
            format!(
                "{what} is longer than the limit of {} bytes",
                opts.max_length
            ),
        ));
    }
    Ok(())
}

impl<'a> Parser<'a> {
    fn new(src: &'a str, opts: &'a ParseOptions) -> Self {
        Self {
            lex: Lexer::new(src),
            context: Context::default(),
            peeked: None,
            opts,
            depth: 0,
            terms: 0,
            in_value_path: false,
            last_end: 0,
        }
    }

    #[inline]
    fn peek(&mut self) -> Result<Token, SyntaxError> {
        match self.peeked {
            Some(t) => Ok(t),
            None => {
                let t = self.lex.next_token()?;
                self.peeked = Some(t);
                Ok(t)
            }
        }
    }

    #[inline]
    fn bump(&mut self) -> Result<Token, SyntaxError> {
        let t = match self.peeked.take() {
            Some(t) => t,
            None => self.lex.next_token()?,
        };
        self.last_end = t.end();
        Ok(t)
    }

    fn unexpected(&self, t: Token, message: &str, expected: Expected) -> SyntaxError {
        SyntaxError::new(
            t.start(),
            t.end()
                .max(t.start() + usize::from(t.kind != TokenKind::End)),
            format!("{message}, found {}", self.lex.describe(t)),
        )
        .expecting(expected)
    }

    fn enter(&mut self, at: usize) -> Result<(), SyntaxError> {
        self.depth += 1;
        if self.depth > self.opts.max_depth {
            return Err(SyntaxError::new(
                at,
                at + 1,
                format!(
                    "filter nests deeper than the limit of {} levels",
                    self.opts.max_depth
                ),
            ));
        }
        Ok(())
    }

    fn expect_close(&mut self, close: Close) -> Result<(), SyntaxError> {
        let t = self.bump()?;
        let ok = match close {
            Close::End => t.kind == TokenKind::End,
            Close::Paren => t.kind == TokenKind::RParen,
            Close::Bracket => t.kind == TokenKind::RBracket,
        };
        if ok {
            return Ok(());
        }
        Err(self.unexpected(
            t,
            &format!("expected `and`, `or` or {}", close.describe()),
            Expected::AND | Expected::OR | close.token(),
        ))
    }

    /// `term (and term)* (or term (and term)*)*` as n-ary nodes, in one loop so that each
    /// term is moved as few times as possible.
    fn or_expr(&mut self) -> Result<Filter, SyntaxError> {
        let mut ors: Vec<Filter> = Vec::new();
        let mut ands: Vec<Filter> = Vec::new();
        let mut term = self.unary()?;
        loop {
            let next = self.peek_logic()?;
            if next == Logic::And {
                self.bump()?;
                push_flat(&mut ands, term, true);
                term = self.unary()?;
                continue;
            }
            let conjunction = if ands.is_empty() {
                term
            } else {
                push_flat(&mut ands, term, true);
                Filter::And(std::mem::take(&mut ands))
            };
            if next == Logic::Or {
                self.bump()?;
                push_flat(&mut ors, conjunction, false);
                term = self.unary()?;
            } else if ors.is_empty() {
                return Ok(conjunction);
            } else {
                push_flat(&mut ors, conjunction, false);
                return Ok(Filter::Or(ors));
            }
        }
    }

    /// Whether the next token is the keyword `and`, `or`, or neither.
    fn peek_logic(&mut self) -> Result<Logic, SyntaxError> {
        let t = self.peek()?;
        if t.kind == TokenKind::Word {
            let w = self.lex.text(t);
            if w.eq_ignore_ascii_case("and") {
                return Ok(Logic::And);
            }
            if w.eq_ignore_ascii_case("or") {
                return Ok(Logic::Or);
            }
        }
        Ok(Logic::Neither)
    }

    fn unary(&mut self) -> Result<Filter, SyntaxError> {
        let t = self.bump()?;
        match t.kind {
            TokenKind::LParen => self.group(t.start()),
            TokenKind::Word => {
                let w = self.lex.text(t);
                if w.eq_ignore_ascii_case("not") && self.peek()?.kind == TokenKind::LParen {
                    let open = self.bump()?;
                    return Ok(Filter::Not(Box::new(self.group(open.start())?)));
                }
                self.attr_expr(t, w)
            }
            _ => Err(self.unexpected(
                t,
                "expected an attribute name, `not` or `(`",
                Expected::ATTRIBUTE | Expected::NOT | Expected::OPEN_PAREN,
            )),
        }
    }

    /// The rest of `( filter )` once `(` at `open` is read.
    fn group(&mut self, open: usize) -> Result<Filter, SyntaxError> {
        self.enter(open)?;
        let f = self.or_expr()?;
        self.expect_close(Close::Paren)?;
        self.depth -= 1;
        Ok(f)
    }

    fn attr_expr(&mut self, t: Token, word: &str) -> Result<Filter, SyntaxError> {
        let path = attr_path(word, t.start())?;
        if self.peek()?.kind == TokenKind::LBracket {
            let open = self.bump()?;
            let mut inner = self.value_filter(&path, open.start())?;
            if self.peek()?.kind == TokenKind::Dot {
                let dot = self.bump()?;
                if !self.opts.compat.value_path_sub_attribute {
                    return Err(SyntaxError::new(
                        dot.start(),
                        dot.end(),
                        "a sub-attribute after `]` is not allowed in a filter (it is a \
                         Microsoft Entra ID form, turned off here)",
                    ));
                }
                let sub_start = self.peek()?.start();
                self.context.value_path = Some(path.span());
                let sub = self.sub_attr_after_bracket()?;
                self.context.value_path = None;
                let sub_path =
                    AttrPath::from_parts(&sub, 0, 0, Span::new(sub_start, sub_start + sub.len()));
                let condition = self.condition(sub_path, sub_start)?;
                inner = match inner {
                    Filter::And(mut items) => {
                        items.push(condition);
                        Filter::And(items)
                    }
                    other => Filter::And(vec![other, condition]),
                };
            }
            let end = self.last_end;
            return Ok(Filter::ValuePath(Box::new(ValuePath {
                path,
                filter: inner,
                span: Span::new(t.start(), end),
            })));
        }
        self.condition(path, t.start())
    }

    /// The rest of `attrPath[filter]` once `[` at `open` is read.
    fn value_filter(&mut self, path: &AttrPath, open: usize) -> Result<Filter, SyntaxError> {
        if self.in_value_path {
            return Err(SyntaxError::new(
                open,
                open + 1,
                "value filters cannot be nested",
            ));
        }
        if let Some(sub) = path.sub_attr() {
            let span = path.span();
            return Err(SyntaxError::new(
                span.start as usize,
                span.end as usize,
                format!(
                    "a value filter applies to a multi-valued attribute, not to the \
                     sub-attribute `{sub}`"
                ),
            ));
        }
        self.enter(open)?;
        self.in_value_path = true;
        self.context.value_path = Some(path.span());
        let inner = self.or_expr()?;
        self.expect_close(Close::Bracket)?;
        self.in_value_path = false;
        self.context.value_path = None;
        self.depth -= 1;
        Ok(inner)
    }

    /// The sub-attribute name after `].`.
    fn sub_attr_after_bracket(&mut self) -> Result<String, SyntaxError> {
        let t = self.bump()?;
        let w = self.lex.text(t);
        if t.kind == TokenKind::Word && !w.contains([':', '.']) {
            check_attr_name(w, t.start())?;
            Ok(w.to_owned())
        } else {
            Err(self.unexpected(
                t,
                "expected a sub-attribute name after `.`",
                Expected::SUB_ATTRIBUTE,
            ))
        }
    }

    /// `op value` or `pr` after the attribute path `path` that started at `start`.
    fn condition(&mut self, path: AttrPath, start: usize) -> Result<Filter, SyntaxError> {
        self.terms += 1;
        if self.terms > self.opts.max_terms {
            return Err(SyntaxError::new(
                start,
                path.span().end as usize,
                format!(
                    "filter has more than the limit of {} comparisons",
                    self.opts.max_terms
                ),
            ));
        }
        self.context.attribute = Some(path.span());
        let t = self.bump()?;
        if t.kind != TokenKind::Word {
            return Err(self.missing_operator(t, &path));
        }
        let op_word = self.lex.text(t);
        if op_word.eq_ignore_ascii_case("pr") {
            return Ok(Filter::Present(Present {
                path,
                span: Span::new(start, t.end()),
            }));
        }
        let Some(op) = CompareOp::from_keyword(op_word) else {
            return Err(self.missing_operator(t, &path));
        };
        let v = self.bump()?;
        let word = self.lex.text(v);
        let value = match v.kind {
            TokenKind::PlainString | TokenKind::EscapedString => {
                Value::String(self.lex.string_value(v)?)
            }
            TokenKind::Integer | TokenKind::Decimal => self.lex.number_value(v)?,
            TokenKind::Word if word.eq_ignore_ascii_case("true") => Value::Boolean(true),
            TokenKind::Word if word.eq_ignore_ascii_case("false") => Value::Boolean(false),
            TokenKind::Word if word.eq_ignore_ascii_case("null") => Value::Null,
            _ => {
                return Err(self.unexpected(
                    v,
                    &format!(
                        "expected a value (a string, number, `true`, `false` or `null`) after \
                         `{}`",
                        op.as_str()
                    ),
                    Expected::VALUE,
                ));
            }
        };
        Ok(Filter::Compare(Comparison {
            path,
            op,
            value,
            span: Span::new(start, v.end()),
        }))
    }

    fn missing_operator(&self, t: Token, path: &AttrPath) -> SyntaxError {
        let mut expected = format!("expected a comparison operator after `{}`", path.as_str());
        if path.as_str().eq_ignore_ascii_case("not") {
            expected.push_str(" (a negation is written `not (…)`)");
        }
        // `attr[` is a value filter: the grammar takes it after any attribute outside one.
        let mut classes = Expected::OPERATOR;
        if !self.in_value_path {
            classes = classes | Expected::OPEN_BRACKET;
        }
        self.unexpected(t, &expected, classes)
    }
}

/// Appends `f` to an `and` (or `or`) list, merging a nested list of the same kind into it.
fn push_flat(items: &mut Vec<Filter>, f: Filter, and: bool) {
    match f {
        Filter::And(inner) if and => items.extend(inner),
        Filter::Or(inner) if !and => items.extend(inner),
        other => items.push(other),
    }
}

/// Splits and checks an attribute path word that starts at byte `start` of the input.
pub(crate) fn attr_path(word: &str, start: usize) -> Result<AttrPath, SyntaxError> {
    // Words are short: a plain loop beats a call to memrchr/memchr here.
    let name_start = word.bytes().rposition(|b| b == b':').map_or(0, |i| i + 1);
    if name_start > 0 {
        let urn = &word[..name_start - 1];
        if urn.contains('$') || urn.ends_with(':') || urn.contains("::") {
            return Err(SyntaxError::new(
                start,
                start + urn.len(),
                format!("`{urn}` is not a valid schema URN"),
            ));
        }
        if name_start == word.len() {
            return Err(SyntaxError::new(
                start + word.len(),
                start + word.len(),
                format!("expected an attribute name after the schema URN `{urn}`"),
            )
            .expecting(Expected::ATTRIBUTE));
        }
    }
    let rest = &word[name_start..];
    let (name, sub_start) = match rest.bytes().position(|b| b == b'.') {
        Some(dot) => (&rest[..dot], name_start + dot + 1),
        None => (rest, 0),
    };
    check_attr_name(name, start + name_start)?;
    if sub_start > 0 {
        let sub = &word[sub_start..];
        if let Some(dot) = sub.find('.') {
            let at = start + sub_start + dot;
            return Err(SyntaxError::new(
                at,
                at + 1,
                "an attribute path has at most one sub-attribute",
            ));
        }
        if sub.is_empty() {
            let at = start + sub_start;
            return Err(
                SyntaxError::new(at - 1, at, "expected a sub-attribute name after `.`")
                    .expecting(Expected::SUB_ATTRIBUTE),
            );
        }
        check_attr_name(sub, start + sub_start)?;
    }
    Ok(AttrPath::from_parts(
        word,
        name_start,
        sub_start,
        Span::new(start, start + word.len()),
    ))
}

/// `ATTRNAME = ALPHA *(ALPHA / DIGIT / "-" / "_")`, plus SCIM's `$ref`.
fn check_attr_name(name: &str, at: usize) -> Result<(), SyntaxError> {
    let b = name.as_bytes();
    let ok = name.eq_ignore_ascii_case("$ref")
        || (b.first().is_some_and(u8::is_ascii_alphabetic)
            && b.iter()
                .all(|&c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_'));
    if ok {
        Ok(())
    } else if name.is_empty() {
        Err(SyntaxError::new(at, at + 1, "expected an attribute name")
            .expecting(Expected::ATTRIBUTE))
    } else {
        Err(SyntaxError::new(
            at,
            at + name.len(),
            format!("`{name}` is not a valid attribute name"),
        ))
    }
}

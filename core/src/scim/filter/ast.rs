//! The filter syntax tree. It is schema-free: attribute names are kept as written and resolved
//! against a resource type only when the filter is compiled (see [`super::CompiledFilter`]).

use std::ops::Range;

use super::decimal::Decimal;

/// Byte offsets `[start, end)` of a piece of the input, for error messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Span {
    /// First byte.
    pub start: u32,
    /// One past the last byte.
    pub end: u32,
}

impl Span {
    pub(crate) fn new(start: usize, end: usize) -> Self {
        // Inputs are limited far below 4 GiB (see `ParseOptions::max_length`).
        Self {
            start: u32::try_from(start).unwrap_or(u32::MAX),
            end: u32::try_from(end).unwrap_or(u32::MAX),
        }
    }

    /// The span as a byte range.
    pub fn range(&self) -> Range<usize> {
        self.start as usize..self.end as usize
    }
}

/// A parsed SCIM filter (RFC 7644 §3.4.2.2).
///
/// `and` and `or` are n-ary: `a and b and c` is one [`Filter::And`] of three, and a
/// parenthesised `and` inside an `and` is merged into it, since grouping does not change what
/// a conjunction means. [`std::fmt::Display`] prints the canonical form, which parses back to
/// the same tree.
#[derive(Debug, Clone, PartialEq)]
pub enum Filter {
    /// `attrPath op value`.
    Compare(Comparison),
    /// `attrPath pr`.
    Present(Present),
    /// `not (filter)`.
    Not(Box<Filter>),
    /// Two or more filters that must all match.
    And(Vec<Filter>),
    /// Two or more filters of which one must match.
    Or(Vec<Filter>),
    /// `attrPath[filter]`: one value of a multi-valued complex attribute satisfies the whole
    /// inner filter.
    ValuePath(Box<ValuePath>),
}

/// `attrPath op value`.
#[derive(Debug, Clone, PartialEq)]
#[repr(C)] // keeps the operator byte last, so moving a `Filter` copies aligned words
pub struct Comparison {
    /// The attribute compared.
    pub path: AttrPath,
    /// The literal compared against.
    pub value: Value,
    /// Where the whole comparison stands in the input.
    pub span: Span,
    /// The comparison operator.
    pub op: CompareOp,
}

/// `attrPath pr`.
#[derive(Debug, Clone, PartialEq)]
pub struct Present {
    /// The attribute tested.
    pub path: AttrPath,
    /// Where the whole test stands in the input.
    pub span: Span,
}

/// `attrPath[filter]`.
#[derive(Debug, Clone, PartialEq)]
pub struct ValuePath {
    /// The multi-valued (or single-valued) complex attribute.
    pub path: AttrPath,
    /// The filter each value is tested against; its paths name sub-attributes of `path`.
    pub filter: Filter,
    /// Where the whole value path stands in the input.
    pub span: Span,
}

/// The comparison operators of RFC 7644 Table 3.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CompareOp {
    /// `eq`
    Eq,
    /// `ne`
    Ne,
    /// `co`
    Co,
    /// `sw`
    Sw,
    /// `ew`
    Ew,
    /// `gt`
    Gt,
    /// `ge`
    Ge,
    /// `lt`
    Lt,
    /// `le`
    Le,
}

impl CompareOp {
    /// The operator as written in canonical form.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Eq => "eq",
            Self::Ne => "ne",
            Self::Co => "co",
            Self::Sw => "sw",
            Self::Ew => "ew",
            Self::Gt => "gt",
            Self::Ge => "ge",
            Self::Lt => "lt",
            Self::Le => "le",
        }
    }

    pub(crate) fn from_keyword(word: &str) -> Option<Self> {
        let b = word.as_bytes();
        if b.len() != 2 {
            return None;
        }
        Some(
            match [b[0].to_ascii_lowercase(), b[1].to_ascii_lowercase()] {
                [b'e', b'q'] => Self::Eq,
                [b'n', b'e'] => Self::Ne,
                [b'c', b'o'] => Self::Co,
                [b's', b'w'] => Self::Sw,
                [b'e', b'w'] => Self::Ew,
                [b'g', b't'] => Self::Gt,
                [b'g', b'e'] => Self::Ge,
                [b'l', b't'] => Self::Lt,
                [b'l', b'e'] => Self::Le,
                _ => return None,
            },
        )
    }

    /// Whether this operator orders values (`gt`, `ge`, `lt`, `le`).
    pub const fn is_ordering(self) -> bool {
        matches!(self, Self::Gt | Self::Ge | Self::Lt | Self::Le)
    }

    /// Whether this operator matches text (`co`, `sw`, `ew`).
    pub const fn is_substring(self) -> bool {
        matches!(self, Self::Co | Self::Sw | Self::Ew)
    }
}

/// A comparison literal: a JSON string, number, boolean or `null`.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// A JSON string, unescaped.
    String(Box<str>),
    /// A JSON number without fraction or exponent that fits in an `i64`.
    Integer(i64),
    /// Any other JSON number.
    Decimal(Decimal),
    /// `true` or `false`.
    Boolean(bool),
    /// `null`.
    Null,
}

/// An attribute path: `[schemaURN ":"] name ["." subAttr]`, as written.
///
/// The schema URN is everything before the last colon, so
/// `urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value` has the URN
/// `urn:ietf:params:scim:schemas:extension:enterprise:2.0:User`, the name `manager` and the
/// sub-attribute `value`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct AttrPath {
    text: Box<str>,
    /// Byte where the attribute name starts (0 without a URN).
    name_start: u32,
    /// Byte where the sub-attribute starts, after its dot (0 without one).
    sub_start: u32,
    span: Span,
}

impl AttrPath {
    /// Builds a path from text already checked by the parser; see
    /// [`super::parser::attr_path`].
    pub(crate) fn from_parts(text: &str, name_start: usize, sub_start: usize, span: Span) -> Self {
        Self {
            text: text.into(),
            name_start: name_start as u32,
            sub_start: sub_start as u32,
            span,
        }
    }

    /// Parses an attribute path on its own, as `attributes=` and `sortBy=` carry them.
    ///
    /// # Errors
    /// [`crate::Error::Path`] when `text` is not an attribute path.
    ///
    /// ```
    /// use usersync_core::scim::filter::AttrPath;
    /// let p = AttrPath::parse("name.familyName")?;
    /// assert_eq!((p.name(), p.sub_attr()), ("name", Some("familyName")));
    /// assert!(AttrPath::parse("name familyName").is_err());
    /// # Ok::<(), usersync_core::Error>(())
    /// ```
    pub fn parse(text: &str) -> Result<Self, crate::Error> {
        match crate::scim::path::PatchPath::parse(text)? {
            crate::scim::path::PatchPath {
                attr,
                filter: None,
                sub_attr: None,
            } => Ok(attr),
            _ => Err(crate::Error::Path(super::SyntaxError::new(
                0,
                text.len(),
                "expected an attribute path without a value filter",
            ))),
        }
    }

    /// The whole path as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The schema URN, if the path is qualified with one.
    pub fn urn(&self) -> Option<&str> {
        (self.name_start > 0).then(|| &self.text[..self.name_start as usize - 1])
    }

    /// The attribute name.
    pub fn name(&self) -> &str {
        let end = if self.sub_start > 0 {
            self.sub_start as usize - 1
        } else {
            self.text.len()
        };
        &self.text[self.name_start as usize..end]
    }

    /// The sub-attribute name, if any.
    pub fn sub_attr(&self) -> Option<&str> {
        (self.sub_start > 0).then(|| &self.text[self.sub_start as usize..])
    }

    /// Where the path stands in the input.
    pub fn span(&self) -> Span {
        self.span
    }

    #[cfg(test)]
    pub(crate) fn clear_span(&mut self) {
        self.span = Span::default();
    }
}

/// Builds a tree of plain data (JSON, or a binding's own objects) from a filter: see
/// [`Filter::to_tree`]. Keys are ASCII and fixed.
pub trait TreeBuilder {
    /// A value of the tree.
    type Node;
    /// An object with these members, in this order.
    fn object(&mut self, members: Vec<(&'static str, Self::Node)>) -> Self::Node;
    /// An array.
    fn array(&mut self, items: Vec<Self::Node>) -> Self::Node;
    /// A string.
    fn string(&mut self, s: &str) -> Self::Node;
    /// An integer (a literal, or a position in the text).
    fn integer(&mut self, n: i64) -> Self::Node;
    /// A decimal literal.
    fn decimal(&mut self, d: &Decimal) -> Self::Node;
    /// `true` or `false`.
    fn boolean(&mut self, b: bool) -> Self::Node;
    /// `null`.
    fn null(&mut self) -> Self::Node;
}

/// Builds `serde_json` values.
struct JsonBuilder;

impl TreeBuilder for JsonBuilder {
    type Node = serde_json::Value;
    fn object(&mut self, members: Vec<(&'static str, Self::Node)>) -> Self::Node {
        serde_json::Value::Object(
            members
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v))
                .collect(),
        )
    }
    fn array(&mut self, items: Vec<Self::Node>) -> Self::Node {
        serde_json::Value::Array(items)
    }
    fn string(&mut self, s: &str) -> Self::Node {
        s.into()
    }
    fn integer(&mut self, n: i64) -> Self::Node {
        n.into()
    }
    fn decimal(&mut self, d: &Decimal) -> Self::Node {
        d.to_f64().into()
    }
    fn boolean(&mut self, b: bool) -> Self::Node {
        b.into()
    }
    fn null(&mut self) -> Self::Node {
        serde_json::Value::Null
    }
}

impl Filter {
    /// The tree as plain JSON data, for bindings that hand it to another language:
    /// `{"type": "and" | "or", "filters": […]}`, `{"type": "not", "filter": …}`,
    /// `{"type": "compare", "path", "op", "value", "start", "end"}`,
    /// `{"type": "present", "path", "start", "end"}` and
    /// `{"type": "valuePath", "path", "filter", "start", "end"}`, where `path` is
    /// `{"text", "schema"?, "attribute", "subAttribute"?}` and `start`/`end` are byte offsets
    /// passed through `offset` (a binding turns them into its own string indices).
    ///
    /// ```
    /// use usersync_core::scim::filter::Filter;
    /// let f = Filter::parse(r#"title pr and not (active eq false)"#)?;
    /// let tree = f.to_json(&|byte| byte);
    /// assert_eq!(tree["type"], "and");
    /// assert_eq!(tree["filters"][1]["filter"]["value"], false);
    /// assert_eq!(tree["filters"][1]["filter"]["start"], 18);
    /// # Ok::<(), usersync_core::Error>(())
    /// ```
    pub fn to_json(&self, offset: &dyn Fn(usize) -> usize) -> serde_json::Value {
        self.to_tree(&mut JsonBuilder, offset)
    }

    /// The tree of [`Filter::to_json`], built by `b`: a binding builds its own objects
    /// directly.
    pub fn to_tree<B: TreeBuilder>(&self, b: &mut B, offset: &dyn Fn(usize) -> usize) -> B::Node {
        let at = |b: &mut B, byte: u32| {
            b.integer(i64::try_from(offset(byte as usize)).unwrap_or(i64::MAX))
        };
        let located = |b: &mut B, kind: &str, path: &AttrPath, span: Span, extra| {
            let mut members = vec![("type", b.string(kind)), ("path", path.to_tree(b))];
            members.extend::<Vec<_>>(extra);
            members.push(("start", at(b, span.start)));
            members.push(("end", at(b, span.end)));
            b.object(members)
        };
        match self {
            Filter::Compare(c) => {
                let value = match &c.value {
                    Value::String(s) => b.string(s),
                    Value::Integer(n) => b.integer(*n),
                    Value::Decimal(x) => b.decimal(x),
                    Value::Boolean(v) => b.boolean(*v),
                    Value::Null => b.null(),
                };
                let extra = vec![("op", b.string(c.op.as_str())), ("value", value)];
                located(b, "compare", &c.path, c.span, extra)
            }
            Filter::Present(p) => located(b, "present", &p.path, p.span, Vec::new()),
            Filter::ValuePath(vp) => {
                let extra = vec![("filter", vp.filter.to_tree(b, offset))];
                located(b, "valuePath", &vp.path, vp.span, extra)
            }
            Filter::Not(inner) => {
                let members = vec![
                    ("type", b.string("not")),
                    ("filter", inner.to_tree(b, offset)),
                ];
                b.object(members)
            }
            Filter::And(items) | Filter::Or(items) => {
                let kind = b.string(if matches!(self, Filter::And(_)) {
                    "and"
                } else {
                    "or"
                });
                let filters = items.iter().map(|i| i.to_tree(b, offset)).collect();
                let filters = b.array(filters);
                b.object(vec![("type", kind), ("filters", filters)])
            }
        }
    }
}

impl AttrPath {
    fn to_tree<B: TreeBuilder>(&self, b: &mut B) -> B::Node {
        let mut members = vec![("text", b.string(self.as_str()))];
        if let Some(urn) = self.urn() {
            members.push(("schema", b.string(urn)));
        }
        members.push(("attribute", b.string(self.name())));
        if let Some(sub) = self.sub_attr() {
            members.push(("subAttribute", b.string(sub)));
        }
        b.object(members)
    }
}

#[cfg(test)]
impl Filter {
    /// The same tree with every span zeroed, so that trees parsed from different spellings
    /// can be compared.
    pub(crate) fn without_spans(mut self) -> Self {
        fn clear(f: &mut Filter) {
            match f {
                Filter::Compare(c) => {
                    c.span = Span::default();
                    c.path.clear_span();
                }
                Filter::Present(p) => {
                    p.span = Span::default();
                    p.path.clear_span();
                }
                Filter::Not(inner) => clear(inner),
                Filter::And(v) | Filter::Or(v) => v.iter_mut().for_each(clear),
                Filter::ValuePath(vp) => {
                    vp.span = Span::default();
                    vp.path.clear_span();
                    clear(&mut vp.filter);
                }
            }
        }
        clear(&mut self);
        self
    }
}

//! Tokens of the SCIM filter and path grammar. Keywords are not told apart here: a word is a
//! keyword or an attribute name depending on where the parser meets it, which is what lets an
//! attribute be called `order`, `andrew` or even `not`.
//!
//! Tokens are small `Copy` spans; a string or number is validated while scanning but only
//! turned into a value when the parser takes it ([`Lexer::string_value`],
//! [`Lexer::number_value`]), which keeps peeking cheap.

use super::SyntaxError;
use super::ast::Value;
use super::decimal::Decimal;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TokenKind {
    /// An attribute path or keyword: a letter or `$`, then letters, digits, `-`, `_`, `.`,
    /// `:` and `$`.
    Word,
    /// A JSON string without escapes.
    PlainString,
    /// A JSON string with escapes to decode.
    EscapedString,
    /// A JSON number without fraction or exponent.
    Integer,
    /// Any other JSON number.
    Decimal,
    LParen,
    RParen,
    LBracket,
    RBracket,
    Dot,
    End,
}

/// A token: 12 bytes, so that `Result<Token, SyntaxError>` is returned in registers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Token {
    pub(crate) kind: TokenKind,
    from: u32,
    to: u32,
}

impl Token {
    fn new(kind: TokenKind, start: usize, end: usize) -> Self {
        // The parser rejects inputs longer than `u32::MAX` before lexing them.
        Self {
            kind,
            from: start as u32,
            to: end as u32,
        }
    }

    pub(crate) fn start(self) -> usize {
        self.from as usize
    }

    pub(crate) fn end(self) -> usize {
        self.to as usize
    }
}

#[derive(Debug, Clone)]
pub(crate) struct Lexer<'a> {
    src: &'a str,
    pos: usize,
}

pub(crate) fn is_word_start(b: u8) -> bool {
    b.is_ascii_alphabetic() || b == b'$'
}

pub(crate) fn is_word_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':' | b'$')
}

impl<'a> Lexer<'a> {
    pub(crate) fn new(src: &'a str) -> Self {
        Self { src, pos: 0 }
    }

    /// The text of a token.
    pub(crate) fn text(&self, t: Token) -> &'a str {
        &self.src[t.start()..t.end()]
    }

    /// How the token reads in an error message.
    pub(crate) fn describe(&self, t: Token) -> String {
        if t.kind == TokenKind::End {
            return "the end of the input".to_owned();
        }
        let text = self.text(t);
        let mut short: String = text.chars().take(40).collect();
        if short.len() < text.len() {
            short.push('…');
        }
        format!("`{short}`")
    }

    pub(crate) fn next_token(&mut self) -> Result<Token, SyntaxError> {
        let bytes = self.src.as_bytes();
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = bytes.get(self.pos) {
            self.pos += 1;
        }
        let start = self.pos;
        let Some(&b) = bytes.get(start) else {
            return Ok(Token::new(TokenKind::End, start, start));
        };
        let (kind, end) = match b {
            b'(' => (TokenKind::LParen, start + 1),
            b')' => (TokenKind::RParen, start + 1),
            b'[' => (TokenKind::LBracket, start + 1),
            b']' => (TokenKind::RBracket, start + 1),
            b'.' => (TokenKind::Dot, start + 1),
            b'"' => {
                let (end, escaped) = self.scan_string(start, None)?;
                let kind = if escaped {
                    TokenKind::EscapedString
                } else {
                    TokenKind::PlainString
                };
                (kind, end)
            }
            b'-' | b'0'..=b'9' => {
                let (end, integral) = self.scan_number(start)?;
                (
                    if integral {
                        TokenKind::Integer
                    } else {
                        TokenKind::Decimal
                    },
                    end,
                )
            }
            b if is_word_start(b) => {
                let mut end = start + 1;
                while bytes.get(end).is_some_and(|&c| is_word_byte(c)) {
                    end += 1;
                }
                (TokenKind::Word, end)
            }
            b'\'' => {
                return Err(SyntaxError::new(
                    start,
                    start + 1,
                    "strings are written in double quotes, not `'`",
                ));
            }
            _ => {
                let c = self.src[start..].chars().next().unwrap_or('\u{fffd}');
                return Err(SyntaxError::new(
                    start,
                    start + c.len_utf8(),
                    format!("unexpected character `{}`", c.escape_debug()),
                ));
            }
        };
        self.pos = end;
        Ok(Token::new(kind, start, end))
    }

    /// The unescaped content of a string token.
    pub(crate) fn string_value(&self, t: Token) -> Result<Box<str>, SyntaxError> {
        match t.kind {
            TokenKind::PlainString => Ok(self.src[t.start() + 1..t.end() - 1].into()),
            _ => {
                let mut out = String::with_capacity(t.end() - t.start());
                self.scan_string(t.start(), Some(&mut out))?;
                Ok(out.into_boxed_str())
            }
        }
    }

    /// The value of a number token.
    pub(crate) fn number_value(&self, t: Token) -> Result<Value, SyntaxError> {
        let text = self.text(t);
        if t.kind == TokenKind::Integer
            && let Ok(n) = text.parse::<i64>()
        {
            return Ok(Value::Integer(n));
        }
        match Decimal::parse(text) {
            Ok(x) => Ok(Value::Decimal(x)),
            Err(_) => Err(SyntaxError::new(
                t.start(),
                t.end(),
                format!("number `{text}` is out of range"),
            )),
        }
    }

    /// Scans the string opening at `start`, checking every escape; returns where it ends and
    /// whether it has escapes. With `out`, appends the decoded content.
    fn scan_string(
        &self,
        start: usize,
        mut out: Option<&mut String>,
    ) -> Result<(usize, bool), SyntaxError> {
        let bytes = self.src.as_bytes();
        let mut i = start + 1;
        let mut escaped = false;
        loop {
            // Copy the run up to the next quote, backslash or control character.
            let run_end = bytes[i..]
                .iter()
                .position(|&b| b == b'"' || b == b'\\' || b < 0x20)
                .map_or(bytes.len(), |p| i + p);
            if let Some(out) = out.as_deref_mut() {
                out.push_str(&self.src[i..run_end]);
            }
            i = run_end;
            let Some(&c) = bytes.get(i) else {
                return Err(SyntaxError::new(start, bytes.len(), "unterminated string"));
            };
            match c {
                b'"' => return Ok((i + 1, escaped)),
                b'\\' => {
                    escaped = true;
                    let esc = bytes.get(i + 1).copied();
                    let simple = match esc {
                        Some(b'"') => Some('"'),
                        Some(b'\\') => Some('\\'),
                        Some(b'/') => Some('/'),
                        Some(b'b') => Some('\u{8}'),
                        Some(b'f') => Some('\u{c}'),
                        Some(b'n') => Some('\n'),
                        Some(b'r') => Some('\r'),
                        Some(b't') => Some('\t'),
                        _ => None,
                    };
                    let (ch, len) = if let Some(ch) = simple {
                        (ch, 2)
                    } else if esc == Some(b'u') {
                        self.unicode_escape(i)?
                    } else if esc.is_none() {
                        return Err(SyntaxError::new(start, bytes.len(), "unterminated string"));
                    } else {
                        let shown: String = self.src[i..].chars().take(2).collect();
                        return Err(SyntaxError::new(
                            i,
                            i + shown.len(),
                            format!("invalid escape `{}` in a string", shown.escape_debug()),
                        ));
                    };
                    if let Some(out) = out.as_deref_mut() {
                        out.push(ch);
                    }
                    i += len;
                }
                _ => {
                    return Err(SyntaxError::new(
                        i,
                        i + 1,
                        format!("control character U+{c:04X} must be escaped in a string"),
                    ));
                }
            }
        }
    }

    /// `\uXXXX` at `at`, joined with a following low surrogate where needed; returns the char
    /// and how many bytes were read.
    fn unicode_escape(&self, at: usize) -> Result<(char, usize), SyntaxError> {
        let hex4 = |i: usize| -> Option<u32> {
            let s = self.src.get(i..i + 4)?;
            if s.bytes().all(|b| b.is_ascii_hexdigit()) {
                u32::from_str_radix(s, 16).ok()
            } else {
                None
            }
        };
        let shown = |len: usize| -> String {
            self.src[at..]
                .chars()
                .take(len)
                .collect::<String>()
                .escape_debug()
                .to_string()
        };
        let Some(hi) = hex4(at + 2) else {
            return Err(SyntaxError::new(
                at,
                (at + 6).min(self.src.len()),
                format!(
                    "invalid unicode escape `{}`: expected four hex digits",
                    shown(6)
                ),
            ));
        };
        if (0xD800..0xDC00).contains(&hi) {
            let lo = (self.src.as_bytes().get(at + 6..at + 8) == Some(b"\\u"))
                .then(|| hex4(at + 8))
                .flatten()
                .filter(|lo| (0xDC00..0xE000).contains(lo));
            if let Some(lo) = lo
                && let Some(ch) = char::from_u32(0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00))
            {
                return Ok((ch, 12));
            }
        }
        match char::from_u32(hi) {
            Some(ch) => Ok((ch, 6)),
            None => Err(SyntaxError::new(
                at,
                at + 6,
                format!("unpaired surrogate `{}` in a string", shown(6)),
            )),
        }
    }

    /// Scans a JSON number at `start`; returns where it ends and whether it is integral.
    fn scan_number(&self, start: usize) -> Result<(usize, bool), SyntaxError> {
        let bytes = self.src.as_bytes();
        let digits = |mut i: usize| {
            while bytes.get(i).is_some_and(u8::is_ascii_digit) {
                i += 1;
            }
            i
        };
        let mut i = start + usize::from(bytes[start] == b'-');
        let int_start = i;
        i = digits(i);
        let mut ok = i > int_start && !(bytes[int_start] == b'0' && i - int_start > 1);
        let mut integral = true;
        if ok && bytes.get(i) == Some(&b'.') {
            integral = false;
            let frac = i + 1;
            i = digits(frac);
            ok = i > frac;
        }
        if ok && matches!(bytes.get(i), Some(b'e' | b'E')) {
            integral = false;
            let mut exp = i + 1;
            if matches!(bytes.get(exp), Some(b'+' | b'-')) {
                exp += 1;
            }
            i = digits(exp);
            ok = i > exp;
        }
        // A number runs into nothing word-like: `12ab` and `1.2.3` are not numbers.
        let mut end = i;
        while bytes
            .get(end)
            .is_some_and(|&c| is_word_byte(c) || c == b'+')
        {
            end += 1;
            ok = false;
        }
        if ok {
            Ok((end, integral))
        } else {
            Err(SyntaxError::new(
                start,
                end.max(start + 1),
                format!("invalid number `{}`", &self.src[start..end]),
            ))
        }
    }
}

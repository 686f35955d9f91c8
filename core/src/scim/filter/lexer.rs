//! Tokens of the SCIM filter and path grammar. Keywords are not told apart here: a word is a
//! keyword or an attribute name depending on where the parser meets it, which is what lets an
//! attribute be called `order`, `andrew` or even `not`.

use super::SyntaxError;
use super::ast::Value;

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum TokenKind<'a> {
    /// An attribute path or keyword: a letter or `$`, then letters, digits, `-`, `_`, `.`,
    /// `:` and `$`.
    Word(&'a str),
    String(Box<str>),
    Number(Value),
    LParen,
    RParen,
    LBracket,
    RBracket,
    Dot,
    End,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Token<'a> {
    pub(crate) kind: TokenKind<'a>,
    pub(crate) start: usize,
    pub(crate) end: usize,
}

impl Token<'_> {
    /// How the token reads in an error message.
    pub(crate) fn describe(&self, src: &str) -> String {
        match self.kind {
            TokenKind::End => "the end of the input".to_owned(),
            _ => {
                let text = &src[self.start..self.end];
                let mut short: String = text.chars().take(40).collect();
                if short.len() < text.len() {
                    short.push('…');
                }
                format!("`{short}`")
            }
        }
    }
}

#[derive(Debug, Clone)]
pub(crate) struct Lexer<'a> {
    src: &'a str,
    pos: usize,
}

fn is_word_start(b: u8) -> bool {
    b.is_ascii_alphabetic() || b == b'$'
}

fn is_word_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':' | b'$')
}

impl<'a> Lexer<'a> {
    pub(crate) fn new(src: &'a str) -> Self {
        Self { src, pos: 0 }
    }

    pub(crate) fn src(&self) -> &'a str {
        self.src
    }

    pub(crate) fn next_token(&mut self) -> Result<Token<'a>, SyntaxError> {
        let bytes = self.src.as_bytes();
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = bytes.get(self.pos) {
            self.pos += 1;
        }
        let start = self.pos;
        let Some(&b) = bytes.get(start) else {
            return Ok(Token {
                kind: TokenKind::End,
                start,
                end: start,
            });
        };
        let single = |kind| Token {
            kind,
            start,
            end: start + 1,
        };
        let token = match b {
            b'(' => single(TokenKind::LParen),
            b')' => single(TokenKind::RParen),
            b'[' => single(TokenKind::LBracket),
            b']' => single(TokenKind::RBracket),
            b'.' => single(TokenKind::Dot),
            b'"' => self.string(start)?,
            b'-' | b'0'..=b'9' => self.number(start)?,
            b if is_word_start(b) => {
                let mut end = start + 1;
                while bytes.get(end).is_some_and(|&c| is_word_byte(c)) {
                    end += 1;
                }
                Token {
                    kind: TokenKind::Word(&self.src[start..end]),
                    start,
                    end,
                }
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
        self.pos = token.end;
        Ok(token)
    }

    fn string(&self, start: usize) -> Result<Token<'a>, SyntaxError> {
        let bytes = self.src.as_bytes();
        let mut i = start + 1;
        // Fast path: no escapes, the common case.
        while let Some(&c) = bytes.get(i) {
            match c {
                b'"' => {
                    return Ok(Token {
                        kind: TokenKind::String(self.src[start + 1..i].into()),
                        start,
                        end: i + 1,
                    });
                }
                b'\\' => break,
                0..=0x1f => return Err(control_char(i, c)),
                _ => i += 1,
            }
        }
        let mut out = String::with_capacity(i - start + 8);
        out.push_str(&self.src[start + 1..i]);
        loop {
            let Some(&c) = bytes.get(i) else {
                return Err(SyntaxError::new(start, bytes.len(), "unterminated string"));
            };
            match c {
                b'"' => {
                    return Ok(Token {
                        kind: TokenKind::String(out.into_boxed_str()),
                        start,
                        end: i + 1,
                    });
                }
                b'\\' => {
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
                    if let Some(ch) = simple {
                        out.push(ch);
                        i += 2;
                    } else if esc == Some(b'u') {
                        let (ch, len) = self.unicode_escape(i)?;
                        out.push(ch);
                        i += len;
                    } else if esc.is_none() {
                        return Err(SyntaxError::new(start, bytes.len(), "unterminated string"));
                    } else {
                        let shown: String = self.src[i..].chars().take(2).collect();
                        return Err(SyntaxError::new(
                            i,
                            i + shown.len(),
                            format!("invalid escape `{}` in a string", shown.escape_debug()),
                        ));
                    }
                }
                0..=0x1f => return Err(control_char(i, c)),
                _ => {
                    // Copy the run up to the next quote, backslash or control character.
                    let run_end = bytes[i..]
                        .iter()
                        .position(|&b| b == b'"' || b == b'\\' || b < 0x20)
                        .map_or(bytes.len(), |p| i + p);
                    out.push_str(&self.src[i..run_end]);
                    i = run_end;
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
            if let Some(lo) = lo {
                let c = 0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00);
                if let Some(ch) = char::from_u32(c) {
                    return Ok((ch, 12));
                }
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

    fn number(&self, start: usize) -> Result<Token<'a>, SyntaxError> {
        let bytes = self.src.as_bytes();
        let mut i = start;
        let digits = |mut i: usize| {
            while bytes.get(i).is_some_and(u8::is_ascii_digit) {
                i += 1;
            }
            i
        };
        if bytes[i] == b'-' {
            i += 1;
        }
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
        let text = &self.src[start..end];
        if !ok {
            return Err(SyntaxError::new(
                start,
                end.max(start + 1),
                format!("invalid number `{text}`"),
            ));
        }
        let value = match integral.then(|| text.parse::<i64>().ok()).flatten() {
            Some(n) => Value::Integer(n),
            None => match text.parse::<f64>() {
                Ok(f) if f.is_finite() => Value::Decimal(f),
                _ => {
                    return Err(SyntaxError::new(
                        start,
                        end,
                        format!("number `{text}` is out of range"),
                    ));
                }
            },
        };
        Ok(Token {
            kind: TokenKind::Number(value),
            start,
            end,
        })
    }
}

fn control_char(at: usize, c: u8) -> SyntaxError {
    SyntaxError::new(
        at,
        at + 1,
        format!("control character U+{c:04X} must be escaped in a string"),
    )
}

//! Decimal literals kept as canonical text.
//!
//! A filter's decimal is checked and formatted from its digits, not through binary floating
//! point: the text is exact, and checking or formatting a filter (all the browser module does)
//! needs no float parser or printer, which would be a third of that module. The evaluator and
//! the SQL translators convert with [`Decimal::to_f64`].

use std::fmt;

/// A JSON number that is not an `i64` (it has a fraction or an exponent, or is too large),
/// in canonical form: the value's significant digits, fixed notation from `0.0001` up to
/// below `1e16` and scientific notation outside (`1.5e-7`, `2e20`), as Rust prints an `f64`.
/// A number written with its shortest digits (`1.5`, `0.25`, `3e10`) reads and prints as an
/// `f64` would; longer ones keep every digit written.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Decimal(Box<str>);

/// Why text is not a [`Decimal`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum DecimalError {
    /// Not a JSON number (RFC 8259 §6).
    #[error("not a JSON number")]
    Malformed,
    /// Beyond the largest finite `f64` (about `1.8e308`).
    #[error("out of range")]
    OutOfRange,
}

/// The smallest significand, for the exponent 308, that rounds past `f64::MAX` to infinity:
/// the digits of 2^1024 - 2^970, halfway between `f64::MAX` and 2^1024 (ties round to even,
/// and `f64::MAX`'s significand is odd).
const OVERFLOW_AT_308: &str = "17976931348623158079372897140530341507993413271003782693617377898\
044496829276475094664901797758720709633028641669288791094655554785194040263065748867150582068\
190890200070838367627385484581771153176447573027006985557136695962284291481986083493647529271\
9074168444365510704342711559699508093042880177904174497792";

/// Below 10^-400 every number rounds to zero (the smallest `f64` is about 4.9e-324), so its
/// digits are dropped: the canonical text stays short however many zeros were written.
const ZERO_BELOW: i64 = -400;

impl Decimal {
    /// Reads a JSON number.
    ///
    /// # Errors
    /// [`DecimalError::Malformed`] for text that is not a JSON number,
    /// [`DecimalError::OutOfRange`] for one whose `f64` would be infinite.
    ///
    /// ```
    /// use usersync_core::scim::filter::Decimal;
    /// assert_eq!(Decimal::parse("1.50")?.as_str(), "1.5");
    /// assert_eq!(Decimal::parse("-12E-10")?.as_str(), "-1.2e-9");
    /// assert_eq!(Decimal::parse("0.00012300")?.as_str(), "0.000123");
    /// assert_eq!(Decimal::parse("1e400").unwrap_err().to_string(), "out of range");
    /// # Ok::<(), usersync_core::scim::filter::DecimalError>(())
    /// ```
    pub fn parse(text: &str) -> Result<Self, DecimalError> {
        let number = Parts::read(text).ok_or(DecimalError::Malformed)?;
        // Significant digits: the integer and fraction digits without leading or trailing
        // zeros; `point` is how many of them stand before the decimal point.
        let all = || number.int.bytes().chain(number.frac.bytes());
        let leading = all().take_while(|&b| b == b'0').count();
        let written = number.int.len() + number.frac.len();
        let trailing = all().rev().take_while(|&b| b == b'0').count();
        let mut out = String::with_capacity(written + 8);
        if number.negative {
            out.push('-');
        }
        if leading == written {
            out.push_str("0.0");
            return Ok(Self(out.into()));
        }
        let digits: String = all()
            .skip(leading)
            .take(written - leading - trailing)
            .map(char::from)
            .collect();
        // The value is d.ddd × 10^exponent.
        let point = i64::try_from(number.int.len()).unwrap_or(i64::MAX);
        let exponent = point
            .saturating_sub(i64::try_from(leading).unwrap_or(i64::MAX))
            .saturating_sub(1)
            .saturating_add(number.exponent);
        if exponent > 308 || (exponent == 308 && digits.as_str() >= OVERFLOW_AT_308) {
            return Err(DecimalError::OutOfRange);
        }
        if exponent < ZERO_BELOW {
            out.push_str("0.0");
        } else if (-4..16).contains(&exponent) {
            write_fixed(&mut out, &digits, exponent);
        } else {
            out.push_str(&digits[..1]);
            if digits.len() > 1 {
                out.push('.');
                out.push_str(&digits[1..]);
            }
            out.push('e');
            out.push_str(&exponent.to_string());
        }
        Ok(Self(out.into()))
    }

    /// The number an `f64` would hold: a JSON number of this value converts to it exactly,
    /// or to the nearest `f64` (ties to even). Never infinite.
    ///
    /// ```
    /// use usersync_core::scim::filter::Decimal;
    /// assert_eq!(Decimal::parse("0.1")?.to_f64(), 0.1);
    /// # Ok::<(), usersync_core::scim::filter::DecimalError>(())
    /// ```
    pub fn to_f64(&self) -> f64 {
        // The canonical text is a valid Rust float literal.
        self.0.parse().unwrap_or(f64::NAN)
    }

    /// The shortest decimal that reads back as `x`, or `None` when `x` is not finite.
    pub fn from_f64(x: f64) -> Option<Self> {
        // `Debug` prints that decimal in this type's canonical form (`1.0`, `1e16`, `-0.0`).
        x.is_finite().then(|| Self(format!("{x:?}").into()))
    }

    /// The canonical text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Decimal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// `digits` (no leading or trailing zeros) × 10^`exponent` in fixed notation, with at least
/// one digit after the point.
fn write_fixed(out: &mut String, digits: &str, exponent: i64) {
    match usize::try_from(exponent) {
        Ok(whole) => {
            let (int, frac) = digits.split_at(digits.len().min(whole + 1));
            out.push_str(int);
            out.extend(std::iter::repeat_n('0', whole + 1 - int.len()));
            out.push('.');
            out.push_str(if frac.is_empty() { "0" } else { frac });
        }
        Err(_) => {
            out.push_str("0.");
            // -4 ≤ exponent < 0 here.
            let zeros = usize::try_from(-exponent - 1).unwrap_or(0);
            out.extend(std::iter::repeat_n('0', zeros));
            out.push_str(digits);
        }
    }
}

/// The parts of a JSON number: `-`? int (`.` frac)? (`e` exponent)?.
struct Parts<'a> {
    negative: bool,
    int: &'a str,
    frac: &'a str,
    /// Saturated: an exponent of a billion digits is still only "very large".
    exponent: i64,
}

impl<'a> Parts<'a> {
    fn read(text: &'a str) -> Option<Self> {
        let (negative, rest) = match text.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, text),
        };
        let digits_end = |s: &str| s.bytes().take_while(u8::is_ascii_digit).count();
        let int_len = digits_end(rest);
        let (int, mut rest) = rest.split_at(int_len);
        if int.is_empty() || (int.len() > 1 && int.starts_with('0')) {
            return None;
        }
        let mut frac = "";
        if let Some(after) = rest.strip_prefix('.') {
            let len = digits_end(after);
            if len == 0 {
                return None;
            }
            (frac, rest) = after.split_at(len);
        }
        let mut exponent = 0i64;
        if let Some(after) = rest.strip_prefix(['e', 'E']) {
            let (sign, after) = match after.as_bytes().first() {
                Some(b'-') => (-1, &after[1..]),
                Some(b'+') => (1, &after[1..]),
                _ => (1, after),
            };
            let len = digits_end(after);
            if len == 0 {
                return None;
            }
            for b in after[..len].bytes() {
                exponent = exponent
                    .saturating_mul(10)
                    .saturating_add(sign * i64::from(b - b'0'));
            }
            rest = &after[len..];
        }
        rest.is_empty().then_some(Self {
            negative,
            int,
            frac,
            exponent,
        })
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn canonical_forms() {
        for (text, canonical) in [
            ("1.0", "1.0"),
            ("1.50", "1.5"),
            ("1e0", "1.0"),
            ("15E-1", "1.5"),
            ("0.0001", "0.0001"),
            ("0.00001", "1e-5"),
            ("0.000010", "1e-5"),
            ("123.456e2", "12345.6"),
            ("1e15", "1000000000000000.0"),
            ("1e16", "1e16"),
            ("12345678901234567890", "1.234567890123456789e19"),
            ("-0.0", "-0.0"),
            ("0e999999999999999999999", "0.0"),
            ("1e-99999999999999999999", "0.0"),
            ("-1e-401", "-0.0"),
            ("1e-400", "1e-400"),
            ("1.7976931348623157e308", "1.7976931348623157e308"),
        ] {
            assert_eq!(Decimal::parse(text).unwrap().as_str(), canonical, "{text}");
        }
        for bad in [
            "", "-", "01", "1.", ".5", "1e", "1e+", "+1", "1.5x", "0x10", "1 ",
        ] {
            assert_eq!(Decimal::parse(bad), Err(DecimalError::Malformed), "{bad:?}");
        }
    }

    #[test]
    fn the_range_ends_where_f64_becomes_infinite() {
        let limit = format!("0.{OVERFLOW_AT_308}e309");
        let below = format!("0.{}e309", &OVERFLOW_AT_308[..OVERFLOW_AT_308.len() - 1]);
        for text in [
            limit.as_str(),
            below.as_str(),
            "1.8e308",
            "1.79769313486231581e308",
            "1e309",
        ] {
            let finite = text.parse::<f64>().unwrap().is_finite();
            assert_eq!(Decimal::parse(text).is_ok(), finite, "{text}");
        }
        assert_eq!(Decimal::parse(&limit), Err(DecimalError::OutOfRange));
        assert_eq!(Decimal::parse(&below).unwrap().to_f64(), f64::MAX);
    }

    proptest! {
        /// An f64's shortest text is already canonical, and reads back as the same f64.
        #[test]
        fn an_f64s_own_text_is_canonical(x in any::<f64>().prop_filter("finite", |x| x.is_finite())) {
            let printed = format!("{x:?}");
            let d = Decimal::parse(&printed).unwrap();
            prop_assert_eq!(d.as_str(), printed.as_str());
            prop_assert_eq!(d.to_f64().to_bits(), x.to_bits());
            prop_assert_eq!(Decimal::from_f64(x), Some(d));
        }

        /// Any JSON number: accepted exactly when its f64 is finite, with the same value,
        /// and canonical text is a fixed point.
        #[test]
        fn any_json_number_keeps_its_value(
            text in "-?(0|[1-9][0-9]{0,25})(\\.[0-9]{1,25})?([eE][+-]?[0-9]{1,3})?"
        ) {
            let value: f64 = text.parse().unwrap();
            match Decimal::parse(&text) {
                Ok(d) => {
                    prop_assert!(value.is_finite());
                    prop_assert_eq!(d.to_f64().to_bits(), value.to_bits());
                    prop_assert_eq!(Decimal::parse(d.as_str()), Ok(d.clone()));
                }
                Err(e) => {
                    prop_assert_eq!(e, DecimalError::OutOfRange);
                    prop_assert!(value.is_infinite());
                }
            }
        }
    }
}

//! Byte offsets (what the engine reports) to UTF-16 indices (what JavaScript strings use),
//! and back for cursors. ASCII text, the common case, maps one to one without a scan.

use std::ops::Range;

/// The offset mapping of one text.
pub(crate) struct Offsets<'a> {
    text: &'a str,
    ascii: bool,
}

impl<'a> Offsets<'a> {
    pub(crate) fn new(text: &'a str) -> Self {
        Self {
            text,
            ascii: text.is_ascii(),
        }
    }

    /// The UTF-16 index of byte `byte` (clamped to the text, and to a character start).
    pub(crate) fn utf16(&self, byte: usize) -> usize {
        let mut byte = byte.min(self.text.len());
        if self.ascii {
            return byte;
        }
        while !self.text.is_char_boundary(byte) {
            byte -= 1;
        }
        self.text[..byte].encode_utf16().count()
    }

    /// The byte offset of UTF-16 index `unit`; an index inside a surrogate pair maps to the
    /// character's start.
    pub(crate) fn byte(&self, unit: usize) -> usize {
        if self.ascii {
            return unit.min(self.text.len());
        }
        let mut units = 0;
        for (i, c) in self.text.char_indices() {
            units += c.len_utf16();
            if units > unit {
                return i;
            }
        }
        self.text.len()
    }

    /// The UTF-16 length of the text.
    pub(crate) fn utf16_len(&self) -> usize {
        self.utf16(self.text.len())
    }

    /// A byte range as (UTF-16 position, UTF-16 length).
    pub(crate) fn span(&self, bytes: Range<usize>) -> (usize, usize) {
        let start = self.utf16(bytes.start);
        (start, self.utf16(bytes.end).saturating_sub(start))
    }
}

#[cfg(test)]
mod tests {
    use super::Offsets;

    #[wasm_bindgen_test::wasm_bindgen_test]
    fn ascii_is_identity_and_other_text_counts_utf16_units() {
        let ascii = Offsets::new("userName eq 1");
        assert_eq!(
            (ascii.utf16(5), ascii.byte(5), ascii.utf16_len()),
            (5, 5, 13)
        );
        // `é` is 2 bytes and 1 unit; `😀` is 4 bytes and 2 units.
        let text = "é😀x";
        let o = Offsets::new(text);
        assert_eq!(
            [o.utf16(0), o.utf16(2), o.utf16(6), o.utf16(7)],
            [0, 1, 3, 4]
        );
        assert_eq!(o.utf16(3), 1, "inside a character: its start");
        assert_eq!(
            [o.byte(0), o.byte(1), o.byte(2), o.byte(3), o.byte(4)],
            [0, 2, 2, 6, 7]
        );
        assert_eq!(o.span(2..6), (1, 2));
    }
}

//! Byte offsets, which the parser's spans use, to and from LSP positions:
//! zero-based lines and columns counted in UTF-16 code units, the protocol's
//! default encoding.

use lsp_types::{Position, Range};

/// Where each line of one text starts.
#[derive(Clone, Debug)]
pub struct LineIndex<'a> {
    text: &'a str,
    starts: Vec<usize>,
}

impl<'a> LineIndex<'a> {
    pub fn new(text: &'a str) -> LineIndex<'a> {
        let starts = std::iter::once(0).chain(text.match_indices('\n').map(|(i, _)| i + 1)).collect();
        LineIndex { text, starts }
    }

    pub fn position(&self, offset: usize) -> Position {
        let offset = offset.min(self.text.len());
        let line = self.starts.partition_point(|start| *start <= offset) - 1;
        let start = self.starts[line];
        let column = self.text.get(start..offset).map_or(0, |s| s.encode_utf16().count());
        Position::new(line as u32, column as u32)
    }

    pub fn range(&self, start: usize, end: usize) -> Range {
        Range::new(self.position(start), self.position(end))
    }

    /// The byte offset of a position; past a line's end is its end, past the
    /// last line is the text's end (clients send such positions while typing).
    pub fn offset(&self, position: Position) -> usize {
        let Some(start) = self.starts.get(position.line as usize).copied() else {
            return self.text.len();
        };
        let end = self.starts.get(position.line as usize + 1).map_or(self.text.len(), |next| next - 1);
        let mut units = 0;
        for (i, c) in self.text[start..end].char_indices() {
            if units >= position.character as usize {
                return start + i;
            }
            units += c.len_utf16();
        }
        end
    }

    /// The whole text's range.
    pub fn full_range(&self) -> Range {
        self.range(0, self.text.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_and_positions_agree_across_wide_characters() {
        let text = "a = \"é😀x\"\nb = 1\n";
        let index = LineIndex::new(text);
        let x = text.find('x').unwrap_or_default();
        // é is one UTF-16 unit, 😀 two.
        assert_eq!(index.position(x), Position::new(0, 8));
        assert_eq!(index.offset(Position::new(0, 8)), x);
        assert_eq!(index.position(text.find('b').unwrap_or_default()), Position::new(1, 0));
        assert_eq!(index.offset(Position::new(1, 99)), text.len() - 1);
        assert_eq!(index.offset(Position::new(9, 0)), text.len());
    }
}

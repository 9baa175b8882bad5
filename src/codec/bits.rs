//! Bit-granular stream I/O for the column encoders.
//!
//! Invariants:
//! - Bits are written and read most-significant first; a stream is a byte
//!   string whose last byte is zero-padded on the right.
//! - [`BitWriter`] buffers up to 64 bits in a register and appends whole
//!   big-endian words to its byte vector, so the hot path touches memory
//!   once per 8 bytes.
//! - [`BitReader`] never fails mid-stream: reading past the end yields zero
//!   bits and marks the reader as overrun. Decoders loop a bounded number of
//!   times (the chunk's sample count) and check [`BitReader::overrun`] once at
//!   the end, so a short stream is reported, never silently accepted.
//! - Neither type ever writes into the input slice (it may be a read-only
//!   mmap).

/// Appends bit fields to a growable byte buffer.
#[derive(Debug, Default, Clone)]
pub struct BitWriter {
    bytes: Vec<u8>,
    /// Pending bits, right-aligned: the low `pending_bits` bits are valid.
    register: u64,
    pending_bits: u32,
}

impl BitWriter {
    #[cfg(any(test, feature = "internals"))]
    pub fn new() -> Self {
        Self::default()
    }

    /// A writer that appends after the bytes already in `bytes`.
    pub fn from_vec(bytes: Vec<u8>) -> Self {
        BitWriter {
            bytes,
            register: 0,
            pending_bits: 0,
        }
    }

    /// Appends the low `width` bits of `value` (`width` in 0..=64).
    #[inline(always)]
    pub fn write_bits(&mut self, value: u64, width: u32) {
        debug_assert!(width <= 64);
        if width == 0 {
            return;
        }
        let value = if width == 64 {
            value
        } else {
            value & ((1u64 << width) - 1)
        };
        let free = 64 - self.pending_bits;
        if width < free {
            self.register = (self.register << width) | value;
            self.pending_bits += width;
        } else {
            // Fill the register to exactly 64 bits, emit it, keep the rest.
            let rest = width - free;
            let head = value >> rest;
            let word = if free == 64 {
                head
            } else {
                (self.register << free) | head
            };
            if self.bytes.len() == self.bytes.capacity() {
                // Grow by a quarter, not double: open chunks live long in
                // the head, and doubling leaves a third of it unused on
                // average.
                self.bytes.reserve_exact((self.bytes.len() / 4).max(32));
            }
            self.bytes.extend_from_slice(&word.to_be_bytes());
            self.register = if rest == 0 {
                0
            } else {
                value & ((1u64 << rest) - 1)
            };
            self.pending_bits = rest;
        }
    }

    #[inline(always)]
    pub fn write_bit(&mut self, bit: bool) {
        self.write_bits(u64::from(bit), 1);
    }

    /// Number of bits written so far.
    pub fn bit_len(&self) -> u64 {
        self.bytes.len() as u64 * 8 + u64::from(self.pending_bits)
    }

    /// Appends the stream so far, zero-padded to whole bytes, to `out`
    /// without consuming the writer (the head reads open chunks this way).
    pub fn copy_to(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.bytes);
        if self.pending_bits > 0 {
            let aligned = self.register << (64 - self.pending_bits);
            let tail_bytes = self.pending_bits.div_ceil(8) as usize;
            out.extend_from_slice(&aligned.to_be_bytes()[..tail_bytes]);
        }
    }

    /// Finishes the stream and returns its bytes (after any bytes the
    /// writer was created with).
    pub fn finish(mut self) -> Vec<u8> {
        if self.pending_bits > 0 {
            let aligned = self.register << (64 - self.pending_bits);
            let tail_bytes = self.pending_bits.div_ceil(8) as usize;
            self.bytes
                .extend_from_slice(&aligned.to_be_bytes()[..tail_bytes]);
        }
        self.bytes
    }
}

/// Reads bit fields from a byte slice; see the module invariants.
#[derive(Debug, Clone)]
pub struct BitReader<'a> {
    data: &'a [u8],
    /// Next byte of `data` to load into the register.
    next_byte: usize,
    /// Valid bits, left-aligned: the top `available` bits are unread.
    register: u64,
    available: u32,
    /// Zero bits loaded past the end of `data`.
    padding_bits: u64,
}

impl<'a> BitReader<'a> {
    pub fn new(data: &'a [u8]) -> Self {
        let mut reader = Self {
            data,
            next_byte: 0,
            register: 0,
            available: 0,
            padding_bits: 0,
        };
        reader.refill();
        reader
    }

    /// Loads bytes until at least 57 bits are available.
    #[inline(always)]
    fn refill(&mut self) {
        if let Some(word) = self.data.get(self.next_byte..self.next_byte + 8) {
            let mut be = [0u8; 8];
            be.copy_from_slice(word);
            // Bits beyond the counted bytes are ORed again, identically, by
            // the next refill, so loading a whole word is harmless.
            self.register |= u64::from_be_bytes(be) >> self.available;
            let whole_bytes = (64 - self.available) / 8;
            self.next_byte += whole_bytes as usize;
            self.available += whole_bytes * 8;
        } else {
            self.refill_slow();
        }
    }

    #[cold]
    #[inline(never)]
    fn refill_slow(&mut self) {
        while self.available <= 56 {
            let byte = match self.data.get(self.next_byte) {
                Some(&byte) => {
                    self.next_byte += 1;
                    byte
                }
                None => {
                    self.padding_bits += 8;
                    0
                }
            };
            self.register |= u64::from(byte) << (56 - self.available);
            self.available += 8;
        }
    }

    /// Makes at least `width` (≤ 57) bits available for [`Self::peek`].
    #[inline(always)]
    pub fn ensure(&mut self, width: u32) {
        if self.available < width {
            self.refill();
        }
    }

    /// The next `width` bits (1..=57) without consuming them; call
    /// [`Self::ensure`] first.
    #[inline(always)]
    pub fn peek(&self, width: u32) -> u64 {
        debug_assert!(width >= 1 && width <= self.available);
        self.register >> (64 - width)
    }

    /// How many leading zero bits follow, at most `limit` (< 64) and at
    /// most the bits available; for skipping runs of 1-bit `0` codes.
    #[inline(always)]
    pub fn zero_run(&self, limit: u32) -> u32 {
        self.register.leading_zeros().min(self.available).min(limit)
    }

    /// The whole register: the top [`Self::ensure`]d bits are the next ones.
    #[inline(always)]
    pub fn peek_register(&self) -> u64 {
        self.register
    }

    /// Drops the next `width` (< 64, at most the available) bits.
    #[inline(always)]
    pub fn consume(&mut self, width: u32) {
        debug_assert!(width < 64 && width <= self.available);
        self.register <<= width;
        self.available -= width;
    }

    /// Reads `width` bits (0..=64) as an unsigned integer.
    #[inline(always)]
    pub fn read_bits(&mut self, width: u32) -> u64 {
        debug_assert!(width <= 64);
        if width <= 56 {
            self.read_short(width)
        } else {
            let low_width = width - 32;
            let high = self.read_short(32);
            (high << low_width) | self.read_short(low_width)
        }
    }

    /// Reads `width` bits, at most 56.
    #[inline(always)]
    fn read_short(&mut self, width: u32) -> u64 {
        if width == 0 {
            return 0;
        }
        self.ensure(width);
        let value = self.peek(width);
        self.consume(width);
        value
    }

    /// True once more bits were read than the input holds.
    pub fn overrun(&self) -> bool {
        self.bits_consumed() > self.data.len() as u64 * 8
    }

    /// Bits consumed so far, including any zero padding read past the end.
    pub fn bits_consumed(&self) -> u64 {
        self.next_byte as u64 * 8 + self.padding_bits - u64::from(self.available)
    }
}

/// Sign-extends the low `width` bits of `raw` (two's complement).
#[inline]
pub fn sign_extend(raw: u64, width: u32) -> i64 {
    let shift = 64 - width;
    ((raw << shift) as i64) >> shift
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn fields_round_trip(fields in proptest::collection::vec((any::<u64>(), 0u32..=64), 0..300)) {
            let mut writer = BitWriter::new();
            for &(value, width) in &fields {
                writer.write_bits(value, width);
            }
            let total_bits: u64 = fields.iter().map(|&(_, w)| u64::from(w)).sum();
            prop_assert_eq!(writer.bit_len(), total_bits);
            let bytes = writer.finish();
            prop_assert_eq!(bytes.len() as u64, total_bits.div_ceil(8));
            let mut reader = BitReader::new(&bytes);
            for &(value, width) in &fields {
                let expected = if width == 64 { value } else { value & ((1u64 << width) - 1) };
                prop_assert_eq!(reader.read_bits(width), expected);
            }
            prop_assert!(!reader.overrun());
            prop_assert_eq!(reader.bits_consumed(), total_bits);
        }
    }

    #[test]
    fn reading_past_the_end_marks_overrun() {
        let mut reader = BitReader::new(&[0xff]);
        assert_eq!(reader.read_bits(8), 0xff);
        assert!(!reader.overrun());
        assert_eq!(reader.read_bits(3), 0);
        assert!(reader.overrun());
    }

    #[test]
    fn sign_extension() {
        assert_eq!(sign_extend(0b111_1111, 7), -1);
        assert_eq!(sign_extend(0b100_0000, 7), -64);
        assert_eq!(sign_extend(0b011_1111, 7), 63);
        assert_eq!(sign_extend(u64::MAX, 64), -1);
    }
}

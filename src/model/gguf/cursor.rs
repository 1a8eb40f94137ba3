//! A bounds-checked little-endian reader over the bytes of a GGUF file.
//!
//! Every read either returns exactly the bytes asked for or reports where it
//! ran out, so the header parser can never slice past the end of a truncated
//! or corrupt file. Lengths read from the file are `u64` and are compared
//! against the remaining length *before* any conversion to `usize`, which
//! keeps a forged length from overflowing anything.

/// Where a read ran out of bytes: the caller adds what it was reading.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct OutOfBytes {
    /// Absolute offset at which the read started.
    pub offset: u64,
    /// How many bytes the read needed.
    pub needed: u64,
}

/// A forward-only position in a byte slice.
#[derive(Debug, Clone)]
pub(super) struct ByteCursor<'a> {
    bytes: &'a [u8],
    position: usize,
}

impl<'a> ByteCursor<'a> {
    /// Starts reading at the first byte.
    pub fn new(bytes: &'a [u8]) -> Self {
        Self { bytes, position: 0 }
    }

    /// Absolute offset of the next byte to be read.
    pub fn position(&self) -> u64 {
        self.position as u64
    }

    /// Bytes left after the current position.
    pub fn remaining(&self) -> u64 {
        (self.bytes.len() - self.position) as u64
    }

    /// Takes the next `count` bytes, or reports that the file is too short.
    pub fn take(&mut self, count: u64) -> Result<&'a [u8], OutOfBytes> {
        let shortfall = OutOfBytes { offset: self.position(), needed: count };
        if count > self.remaining() {
            return Err(shortfall);
        }
        // `count <= remaining <= usize::MAX`, so the conversion is lossless.
        let end = self.position + count as usize;
        let taken = &self.bytes[self.position..end];
        self.position = end;
        Ok(taken)
    }

    /// Takes exactly `N` bytes as an array.
    pub fn take_array<const N: usize>(&mut self) -> Result<[u8; N], OutOfBytes> {
        let taken = self.take(N as u64)?;
        let mut array = [0u8; N];
        array.copy_from_slice(taken);
        Ok(array)
    }

    pub fn read_u8(&mut self) -> Result<u8, OutOfBytes> {
        Ok(self.take_array::<1>()?[0])
    }

    pub fn read_i8(&mut self) -> Result<i8, OutOfBytes> {
        Ok(i8::from_le_bytes(self.take_array()?))
    }

    pub fn read_u16(&mut self) -> Result<u16, OutOfBytes> {
        Ok(u16::from_le_bytes(self.take_array()?))
    }

    pub fn read_i16(&mut self) -> Result<i16, OutOfBytes> {
        Ok(i16::from_le_bytes(self.take_array()?))
    }

    pub fn read_u32(&mut self) -> Result<u32, OutOfBytes> {
        Ok(u32::from_le_bytes(self.take_array()?))
    }

    pub fn read_i32(&mut self) -> Result<i32, OutOfBytes> {
        Ok(i32::from_le_bytes(self.take_array()?))
    }

    pub fn read_u64(&mut self) -> Result<u64, OutOfBytes> {
        Ok(u64::from_le_bytes(self.take_array()?))
    }

    pub fn read_i64(&mut self) -> Result<i64, OutOfBytes> {
        Ok(i64::from_le_bytes(self.take_array()?))
    }

    pub fn read_f32(&mut self) -> Result<f32, OutOfBytes> {
        Ok(f32::from_le_bytes(self.take_array()?))
    }

    pub fn read_f64(&mut self) -> Result<f64, OutOfBytes> {
        Ok(f64::from_le_bytes(self.take_array()?))
    }

    /// Reads a GGUF string: a `u64` byte length followed by that many bytes.
    ///
    /// The length prefix and the body are reported separately so an error can
    /// say which of the two was cut off.
    pub fn read_string_bytes(&mut self) -> Result<&'a [u8], OutOfBytes> {
        let length = self.read_u64()?;
        self.take(length)
    }

    /// Moves forward to the next multiple of `alignment` (a power of two),
    /// without reading; fails when that point lies beyond the end.
    pub fn align_to(&mut self, alignment: u64) -> Result<(), OutOfBytes> {
        let padding = padding_to(self.position(), alignment);
        self.take(padding).map(|_| ())
    }
}

/// Bytes needed after `offset` to reach the next multiple of `alignment`.
pub(super) fn padding_to(offset: u64, alignment: u64) -> u64 {
    let remainder = offset % alignment;
    if remainder == 0 {
        0
    } else {
        alignment - remainder
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_little_endian_scalars_in_sequence() {
        let bytes = [
            0x01, // u8 1
            0x34, 0x12, // u16 0x1234
            0xff, 0xff, 0xff, 0xff, // i32 -1
            0x00, 0x00, 0x80, 0x3f, // f32 1.0 (0x3f800000)
        ];
        let mut cursor = ByteCursor::new(&bytes);
        assert_eq!(cursor.read_u8(), Ok(1));
        assert_eq!(cursor.read_u16(), Ok(0x1234));
        assert_eq!(cursor.read_i32(), Ok(-1));
        assert_eq!(cursor.read_f32(), Ok(1.0));
        assert_eq!(cursor.remaining(), 0);
    }

    #[test]
    fn short_read_reports_offset_and_need_without_moving() {
        let bytes = [1u8, 2, 3];
        let mut cursor = ByteCursor::new(&bytes);
        cursor.read_u8().unwrap();
        assert_eq!(cursor.read_u32(), Err(OutOfBytes { offset: 1, needed: 4 }));
        assert_eq!(cursor.position(), 1);
    }

    #[test]
    fn forged_huge_string_length_is_a_short_read_not_an_overflow() {
        let mut bytes = u64::MAX.to_le_bytes().to_vec();
        bytes.extend_from_slice(b"abc");
        let mut cursor = ByteCursor::new(&bytes);
        assert_eq!(cursor.read_string_bytes(), Err(OutOfBytes { offset: 8, needed: u64::MAX }));
    }

    #[test]
    fn string_is_length_prefixed() {
        let mut bytes = 2u64.to_le_bytes().to_vec();
        bytes.extend_from_slice(b"hiX");
        let mut cursor = ByteCursor::new(&bytes);
        assert_eq!(cursor.read_string_bytes(), Ok(&b"hi"[..]));
        assert_eq!(cursor.remaining(), 1);
    }

    #[test]
    fn padding_reaches_next_multiple() {
        assert_eq!(padding_to(0, 32), 0);
        assert_eq!(padding_to(1, 32), 31);
        assert_eq!(padding_to(32, 32), 0);
        assert_eq!(padding_to(33, 64), 31);
    }

    #[test]
    fn align_to_past_end_is_a_short_read() {
        let bytes = [0u8; 5];
        let mut cursor = ByteCursor::new(&bytes);
        cursor.take(3).unwrap();
        assert_eq!(cursor.align_to(8), Err(OutOfBytes { offset: 3, needed: 5 }));
    }
}

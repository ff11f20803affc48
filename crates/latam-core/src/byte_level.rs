//! GPT-2's byte-level alphabet: the printable character that stands for each of the 256 bytes
//! in the vocabularies of byte-level BPE tokenizers (GPT-2, Llama 3, Qwen, SmolLM). Printable
//! Latin-1 bytes stand for themselves; the 68 others (controls, space, soft hyphen...) take
//! U+0100 onwards in byte order, so a space is `Ġ` and a newline `Ċ`.

/// Whether byte `b` stands for itself.
const fn printable(b: u8) -> bool {
    matches!(b, b'!'..=b'~' | 0xA1..=0xAC | 0xAE..=0xFF)
}

/// One past the last stand-in character (U+0100 + 68 = U+0144).
const END: usize = 0x144;

/// The stand-in of each byte, in byte order.
pub const BYTE_CHARS: [char; 256] = {
    let mut table = ['\0'; 256];
    let mut extra = 0u32;
    let mut b = 0;
    while b < 256 {
        table[b] = if printable(b as u8) {
            b as u8 as char
        } else {
            extra += 1;
            match char::from_u32(0xFF + extra) {
                Some(c) => c,
                None => panic!("U+0100..U+0144 are characters"),
            }
        };
        b += 1;
    }
    table
};

/// The byte of each character below U+0144; `NONE` for characters that stand for no byte.
const BYTE_OF: [u16; END] = {
    let mut table = [NONE; END];
    let mut b = 0;
    while b < 256 {
        table[BYTE_CHARS[b] as usize] = b as u16;
        b += 1;
    }
    table
};
const NONE: u16 = u16::MAX;

/// The byte that character `c` stands for, if any.
pub fn byte_of(c: char) -> Option<u8> {
    let byte = *BYTE_OF.get(c as usize)?;
    (byte != NONE).then_some(byte as u8)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gpt2_stand_ins() {
        // As GPT-2's `bytes_to_unicode` and every byte-level vocabulary spell them.
        assert_eq!(BYTE_CHARS[b'a' as usize], 'a');
        assert_eq!(BYTE_CHARS[b' ' as usize], 'Ġ');
        assert_eq!(BYTE_CHARS[b'\n' as usize], 'Ċ');
        assert_eq!(BYTE_CHARS[0], 'Ā');
        assert_eq!(BYTE_CHARS[0x7F], 'ġ');
        assert_eq!(BYTE_CHARS[0xAD], 'Ń');
        assert_eq!(BYTE_CHARS[0xE9], 'é');
    }

    #[test]
    fn every_byte_has_one_character_and_back() {
        for b in 0..=255u8 {
            assert_eq!(byte_of(BYTE_CHARS[b as usize]), Some(b));
        }
        let distinct: std::collections::BTreeSet<char> = BYTE_CHARS.into_iter().collect();
        assert_eq!(distinct.len(), 256);
        assert_eq!(byte_of(' '), None);
        assert_eq!(byte_of('\u{AD}'), None);
        assert_eq!(byte_of('Ņ'), None);
        assert_eq!(byte_of('€'), None);
    }
}

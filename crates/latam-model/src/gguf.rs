//! GGUF headers read with every count, length and offset checked against the file's size before
//! anything is allocated for it. candle's reader (`gguf_file::Content::read`) sizes its buffers
//! from the header's counts, divides by `general.alignment` unchecked and follows nested arrays
//! without a limit, so a corrupt or hostile file makes it panic or abort; this reader answers
//! with an error and builds the same `Content`, from which candle then reads the tensors.

use std::collections::HashMap;
use std::io::Read;

use candle_core::quantized::GgmlDType;
use candle_core::quantized::gguf_file::{Content, TensorInfo, Value, VersionedMagic};

/// Values in all the metadata's arrays together: a tokenizer of 256K tokens with 500K merges
/// has about 1.3 million.
const MAX_VALUES: u64 = 1 << 23;
/// Arrays inside arrays (the format allows them; models do not use them).
const MAX_DEPTH: u32 = 3;
/// ggml's most dimensions of a tensor.
const MAX_DIMS: u32 = 4;
/// The alignment of the tensor data when `general.alignment` does not give it.
const DEFAULT_ALIGNMENT: u64 = 32;

/// Reads the header of a GGUF file of `len` bytes from `reader`, positioned at its start.
pub(crate) fn read_header(reader: impl Read, len: u64) -> Result<Content, String> {
    let mut header = Header {
        reader,
        pos: 0,
        len,
        v1: false,
        values: 0,
    };
    if header.fixed::<4>()? != *b"GGUF" {
        return Err("no GGUF magic".into());
    }
    let magic = match u32::from_le_bytes(header.fixed()?) {
        1 => VersionedMagic::GgufV1,
        2 => VersionedMagic::GgufV2,
        3 => VersionedMagic::GgufV3,
        v => return Err(format!("GGUF version {v} (versions 1 to 3 are read)")),
    };
    header.v1 = magic == VersionedMagic::GgufV1;
    let width = header.length_width();
    let tensors = header.count("tensors", width + 4 + width + 4 + 8)?;
    let entries = header.count("metadata entries", width + 4 + 1)?;
    let mut metadata = HashMap::new();
    for _ in 0..entries {
        let key = header.string()?;
        let kind = u32::from_le_bytes(header.fixed()?);
        let value = header.value(kind, 0)?;
        if metadata.insert(key.clone(), value).is_some() {
            return Err(format!("metadata key {key:?} appears twice"));
        }
    }
    let alignment = alignment(&metadata)?;
    let infos = (0..tensors)
        .map(|_| header.tensor_info())
        .collect::<Result<Vec<_>, _>>()?;
    let data_offset = header
        .pos
        .checked_next_multiple_of(alignment)
        .filter(|&offset| offset <= len)
        .ok_or("no room for tensor data after the header")?;
    let mut tensor_infos = HashMap::new();
    for (name, info, size) in infos {
        if info.offset % alignment != 0 {
            return Err(format!(
                "tensor {name}: offset {} is not a multiple of the alignment {alignment}",
                info.offset
            ));
        }
        if info
            .offset
            .checked_add(size)
            .is_none_or(|end| end > len - data_offset)
        {
            return Err(format!(
                "tensor {name}: its {size} bytes at offset {} lie past the end of the file's {} \
                 bytes of tensor data (a truncated file?)",
                info.offset,
                len - data_offset
            ));
        }
        if tensor_infos.insert(name.clone(), info).is_some() {
            return Err(format!("tensor {name} appears twice"));
        }
    }
    Ok(Content {
        magic,
        metadata,
        tensor_infos,
        tensor_data_offset: data_offset,
    })
}

/// `general.alignment`, a power of two.
fn alignment(metadata: &HashMap<String, Value>) -> Result<u64, String> {
    let Some(value) = metadata.get("general.alignment") else {
        return Ok(DEFAULT_ALIGNMENT);
    };
    value
        .to_u64()
        .ok()
        .filter(|a| a.is_power_of_two())
        .ok_or_else(|| format!("general.alignment {value:?} is not a power of two"))
}

/// ggml's type codes.
fn dtype(code: u32) -> Option<GgmlDType> {
    Some(match code {
        0 => GgmlDType::F32,
        1 => GgmlDType::F16,
        2 => GgmlDType::Q4_0,
        3 => GgmlDType::Q4_1,
        6 => GgmlDType::Q5_0,
        7 => GgmlDType::Q5_1,
        8 => GgmlDType::Q8_0,
        9 => GgmlDType::Q8_1,
        10 => GgmlDType::Q2K,
        11 => GgmlDType::Q3K,
        12 => GgmlDType::Q4K,
        13 => GgmlDType::Q5K,
        14 => GgmlDType::Q6K,
        15 => GgmlDType::Q8K,
        30 => GgmlDType::BF16,
        _ => return None,
    })
}

/// The reader, where it is, and what is left.
struct Header<R> {
    reader: R,
    pos: u64,
    len: u64,
    /// Version 1 writes lengths and counts as `u32`, later versions as `u64`.
    v1: bool,
    /// Array values read so far.
    values: u64,
}

impl<R: Read> Header<R> {
    fn left(&self) -> u64 {
        self.len - self.pos
    }

    /// Checks that `n` more bytes are in the file.
    fn check(&self, n: u64, what: &str) -> Result<(), String> {
        if n > self.left() {
            return Err(format!(
                "truncated: {what} of {n} bytes at byte {}, {} left",
                self.pos,
                self.left()
            ));
        }
        Ok(())
    }

    fn fixed<const N: usize>(&mut self) -> Result<[u8; N], String> {
        self.check(N as u64, "a field")?;
        let mut buf = [0u8; N];
        self.reader
            .read_exact(&mut buf)
            .map_err(|e| format!("at byte {}: {e}", self.pos))?;
        self.pos += N as u64;
        Ok(buf)
    }

    /// Bytes of a length `n` that the file holds, checked before allocating.
    fn bytes(&mut self, n: u64) -> Result<Vec<u8>, String> {
        self.check(n, "a string")?;
        let mut buf = vec![0u8; n as usize];
        self.reader
            .read_exact(&mut buf)
            .map_err(|e| format!("at byte {}: {e}", self.pos))?;
        self.pos += n;
        Ok(buf)
    }

    fn length_width(&self) -> u64 {
        if self.v1 { 4 } else { 8 }
    }

    /// A length or count.
    fn length(&mut self) -> Result<u64, String> {
        Ok(if self.v1 {
            u64::from(u32::from_le_bytes(self.fixed()?))
        } else {
            u64::from_le_bytes(self.fixed()?)
        })
    }

    /// A count of items of at least `min` bytes each, refused when they cannot fit in what is
    /// left of the file.
    fn count(&mut self, what: &str, min: u64) -> Result<usize, String> {
        let n = self.length()?;
        if n.checked_mul(min).is_none_or(|bytes| bytes > self.left()) {
            return Err(format!(
                "{n} {what} cannot fit in the {} bytes left at byte {}",
                self.left(),
                self.pos
            ));
        }
        usize::try_from(n).map_err(|_| format!("{n} {what}"))
    }

    /// A string; trailing NULs, which some writers leave, are dropped (as candle does).
    fn string(&mut self) -> Result<String, String> {
        let n = self.length()?;
        let mut bytes = self.bytes(n)?;
        while bytes.last() == Some(&0) {
            bytes.pop();
        }
        Ok(String::from_utf8(bytes)
            .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned()))
    }

    /// The fewest bytes a value of type `kind` takes, `None` for an unknown type.
    fn min_size(&self, kind: u32) -> Option<u64> {
        Some(match kind {
            0 | 1 | 7 => 1,
            2 | 3 => 2,
            4..=6 => 4,
            10..=12 => 8,
            8 => self.length_width(),
            9 => 4 + self.length_width(),
            _ => return None,
        })
    }

    fn value(&mut self, kind: u32, depth: u32) -> Result<Value, String> {
        Ok(match kind {
            0 => Value::U8(u8::from_le_bytes(self.fixed()?)),
            1 => Value::I8(i8::from_le_bytes(self.fixed()?)),
            2 => Value::U16(u16::from_le_bytes(self.fixed()?)),
            3 => Value::I16(i16::from_le_bytes(self.fixed()?)),
            4 => Value::U32(u32::from_le_bytes(self.fixed()?)),
            5 => Value::I32(i32::from_le_bytes(self.fixed()?)),
            6 => Value::F32(f32::from_le_bytes(self.fixed()?)),
            7 => match self.fixed::<1>()? {
                [0] => Value::Bool(false),
                [1] => Value::Bool(true),
                [b] => return Err(format!("boolean {b} at byte {}", self.pos - 1)),
            },
            8 => Value::String(self.string()?),
            9 => self.array(depth)?,
            10 => Value::U64(u64::from_le_bytes(self.fixed()?)),
            11 => Value::I64(i64::from_le_bytes(self.fixed()?)),
            12 => Value::F64(f64::from_le_bytes(self.fixed()?)),
            other => return Err(format!("value type {other} at byte {}", self.pos)),
        })
    }

    fn array(&mut self, depth: u32) -> Result<Value, String> {
        if depth >= MAX_DEPTH {
            return Err(format!("arrays nested more than {MAX_DEPTH} deep"));
        }
        let kind = u32::from_le_bytes(self.fixed()?);
        let min = self
            .min_size(kind)
            .ok_or_else(|| format!("array of value type {kind} at byte {}", self.pos))?;
        let n = self.count("array values", min)?;
        self.values += n as u64;
        if self.values > MAX_VALUES {
            return Err(format!(
                "more than {MAX_VALUES} values in the metadata's arrays"
            ));
        }
        (0..n)
            .map(|_| self.value(kind, depth + 1))
            .collect::<Result<Vec<_>, _>>()
            .map(Value::Array)
    }

    /// A tensor's name, its shape, type and offset, and its size in bytes.
    fn tensor_info(&mut self) -> Result<(String, TensorInfo, u64), String> {
        let name = self.string()?;
        let dims = u32::from_le_bytes(self.fixed()?);
        if !(1..=MAX_DIMS).contains(&dims) {
            return Err(format!("tensor {name}: {dims} dimensions"));
        }
        let mut dims = (0..dims)
            .map(|_| self.length())
            .collect::<Result<Vec<u64>, _>>()?;
        let code = u32::from_le_bytes(self.fixed()?);
        let dtype = dtype(code).ok_or_else(|| format!("tensor {name}: type code {code}"))?;
        let offset = u64::from_le_bytes(self.fixed()?);
        let block = dtype.block_size() as u64;
        if dims[0] % block != 0 {
            return Err(format!(
                "tensor {name}: rows of {} values do not fill {dtype:?} blocks of {block}",
                dims[0]
            ));
        }
        let size = dims
            .iter()
            .try_fold(1u64, |n, &d| n.checked_mul(d))
            .and_then(|n| (n / block).checked_mul(dtype.type_size() as u64))
            .filter(|&size| size <= self.len)
            .ok_or_else(|| format!("tensor {name}: dimensions {dims:?} exceed the file"))?;
        // ggml lists the innermost dimension first; candle's shapes list it last.
        dims.reverse();
        let shape: Vec<usize> = dims.into_iter().map(|d| d as usize).collect();
        let info = TensorInfo {
            ggml_dtype: dtype,
            shape: shape.into(),
            offset,
        };
        Ok((name, info, size))
    }
}

#[cfg(test)]
mod tests {
    use std::io::Cursor;

    use candle_core::Device;
    use candle_core::quantized::{QTensor, gguf_file};

    use super::*;

    /// A GGUF file written by candle with `metadata` and one F32 tensor of 8 values.
    fn file(metadata: &[(&str, Value)]) -> Vec<u8> {
        let t = candle_core::Tensor::arange(0f32, 8.0, &Device::Cpu).unwrap();
        let q = QTensor::quantize(&t, GgmlDType::F32).unwrap();
        let metadata: Vec<(&str, &Value)> = metadata.iter().map(|(k, v)| (*k, v)).collect();
        let mut out = Cursor::new(Vec::new());
        gguf_file::write(&mut out, &metadata, &[("t", &q)]).unwrap();
        out.into_inner()
    }

    fn read(bytes: &[u8]) -> Result<Content, String> {
        read_header(bytes, bytes.len() as u64)
    }

    #[test]
    fn reads_what_candle_writes_and_candle_reads_the_tensor() {
        let bytes = file(&[
            ("general.architecture", Value::String("llama".into())),
            ("list", Value::Array(vec![Value::I32(1), Value::I32(2)])),
        ]);
        let content = read(&bytes).unwrap();
        assert_eq!(content.metadata["list"].to_vec().unwrap().len(), 2);
        let t = content
            .tensor(&mut Cursor::new(&bytes), "t", &Device::Cpu)
            .unwrap()
            .dequantize(&Device::Cpu)
            .unwrap();
        assert!((t.to_vec1::<f32>().unwrap()[7] - 7.0).abs() < f32::EPSILON);
    }

    /// candle 0.9 divides by the alignment: 0 panicked ("attempt to divide by zero").
    #[test]
    fn an_alignment_of_zero_or_not_a_power_of_two_is_refused() {
        for bad in [0, 12] {
            let bytes = file(&[("general.alignment", Value::U32(bad))]);
            let err = read(&bytes).unwrap_err();
            assert!(err.contains("not a power of two"), "{err}");
        }
        assert!(read(&file(&[("general.alignment", Value::U32(32))])).is_ok());
    }

    /// The byte where the first metadata value's length (after the key "k" and its type)
    /// starts, in a file whose only metadata entry is `k`.
    const FIRST_VALUE: usize = 24 + 8 + 1 + 4;

    /// candle 0.9 allocated a string's bytes, or an array's values, from its length alone
    /// ("capacity overflow", or an abort on a failed allocation).
    #[test]
    fn lengths_past_the_end_are_refused_before_allocating() {
        let string = file(&[("k", Value::String("abc".into()))]);
        let array = file(&[("k", Value::Array(vec![Value::U8(1)]))]);
        for (bytes, at) in [(string, FIRST_VALUE), (array, FIRST_VALUE + 4)] {
            for huge in [u64::MAX, 1 << 40, bytes.len() as u64] {
                let mut bad = bytes.clone();
                bad[at..at + 8].copy_from_slice(&huge.to_le_bytes());
                let err = read(&bad).unwrap_err();
                assert!(err.contains("left"), "{huge}: {err}");
            }
        }
    }

    /// candle 0.9 followed nested arrays to any depth: a stack overflow aborts.
    #[test]
    fn deeply_nested_arrays_are_refused() {
        let mut value = Value::Array(Vec::new());
        for _ in 0..MAX_DEPTH {
            value = Value::Array(vec![value]);
        }
        let err = read(&file(&[("k", value)])).unwrap_err();
        assert!(err.contains("nested"), "{err}");
    }

    #[test]
    fn tensors_outside_the_file_or_of_overflowing_sizes_are_refused() {
        let bytes = file(&[]);
        // The tensor's entry: name (8 + 1), 1 dimension, its size, type, offset.
        let at = 24 + 9 + 4;
        let mut wide = bytes.clone();
        wide[at..at + 8].copy_from_slice(&(1u64 << 62).to_le_bytes());
        assert!(read(&wide).unwrap_err().contains("exceed the file"));
        let mut moved = bytes.clone();
        moved[at + 12..at + 20].copy_from_slice(&32u64.to_le_bytes());
        assert!(read(&moved).unwrap_err().contains("past the end"));
        let mut unaligned = bytes.clone();
        unaligned[at + 12..at + 20].copy_from_slice(&4u64.to_le_bytes());
        assert!(read(&unaligned).unwrap_err().contains("not a multiple"));
        let mut cut = bytes.clone();
        cut.truncate(bytes.len() - 4);
        assert!(read(&cut).unwrap_err().contains("past the end"));
    }
}

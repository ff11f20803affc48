//! Weight matrices in GGML's block formats (Q4_0, Q4_1 and Q8_0 of 32 values; the k-quants
//! Q4_K, Q5_K and Q6_K of 256) and their product with `f32` inputs on the CPU.
//!
//! Why not candle's kernels: Q4_1 has no SIMD kernel there, its k-quant kernels use AVX2 only in
//! a binary compiled for it (`target-cpu=native`, which crashes on an older CPU), and each input
//! row walks the whole matrix. Here the AVX2 kernel is chosen at run time, and each weight row
//! is read once per call however many input rows there are, so a batch of decoding steps or a
//! prompt chunk costs little more memory traffic than a single token.
//!
//! Inputs are quantized to 8 bits and multiplied in integers, as llama.cpp does: per 32 values
//! for the 32-value formats (an `f32` scale and the scaled sum, as GGML's Q8_1), per 256 for the
//! k-quants (one scale and the sums of each 32 values, as GGML's Q8_K), so the eight sub-blocks
//! of a k-quant block add up in integers and meet floating point once per block.

#![allow(
    clippy::inline_always,
    reason = "pulp applies the CPU features only to code inlined into `vectorize`"
)]

use candle_core::quantized::GgmlDType;
use candle_core::{CpuStorage, CustomOp1, Layout, Shape};
#[cfg(target_arch = "x86_64")]
use pulp::x86::V3;
use rayon::prelude::*;

/// Values per sub-block of every format.
const BLOCK: usize = 32;

/// Weight rows per parallel task: enough work to outweigh scheduling.
const ROWS_PER_TASK: usize = 16;

/// 4-bit values `d * (q - 8)`.
#[derive(Clone, Copy)]
pub struct Q4_0 {
    d: u16,
    /// Value `i` in the low nibble of byte `i`, value `i + 16` in its high nibble.
    qs: [u8; 16],
}

/// 4-bit values `d * q + m`.
#[derive(Clone, Copy)]
pub struct Q4_1 {
    d: u16,
    m: u16,
    qs: [u8; 16],
}

/// 8-bit values `d * q`.
#[derive(Clone, Copy)]
pub struct Q8_0 {
    d: u16,
    qs: [i8; 32],
}

/// 256 values in eight sub-blocks of 32: `d * scale * q - dmin * min`, 4-bit `q`, a 6-bit scale
/// and min per sub-block.
#[derive(Clone, Copy)]
pub struct Q4K {
    d: u16,
    dmin: u16,
    /// The sub-blocks' scales and mins, packed (GGML's `get_scale_min_k4`).
    scales: [u8; 12],
    /// Sub-block `2i` in the low nibbles of `qs[i]`, sub-block `2i + 1` in the high ones.
    qs: [[u8; 32]; 4],
}

/// Q4_K with a fifth bit per value: bit `j` of `qh[i]` for value `i` of sub-block `j`.
#[derive(Clone, Copy)]
pub struct Q5K {
    d: u16,
    dmin: u16,
    scales: [u8; 12],
    qh: [u8; 32],
    qs: [[u8; 32]; 4],
}

/// 256 values `d * scale * (q - 32)`, 6-bit `q`, an 8-bit scale per 16 values.
#[derive(Clone, Copy)]
pub struct Q6K {
    /// Low 4 bits: in each half of 128 values, sub-block `k` in `ql[2·half + k % 2]`, low
    /// nibbles for `k < 2`.
    ql: [[u8; 32]; 4],
    /// High 2 bits: of sub-block `k` of each half at bit `2k` of `qh[half]`.
    qh: [[u8; 32]; 2],
    scales: [i8; 16],
    d: u16,
}

/// A block of inputs quantized to 8 bits: `d * q`, one `f32` scale per block.
trait BlockInput: Copy + Send + Sync {
    /// Values per block.
    const VALUES: usize;
    fn quantize(values: &[f32]) -> Self;
    /// The values of 32-value sub-block `j`.
    fn qs(&self, j: usize) -> &[i8; BLOCK];
}

/// Rounds `values` to `q` of `d * q`, `|q| <= 127`, and returns `d`.
fn quantize_8bit(values: &[f32], q: &mut [i8]) -> f32 {
    let max = values.iter().fold(0f32, |m, v| m.max(v.abs()));
    let d = max / 127.0;
    let inverse = if d > 0.0 { 1.0 / d } else { 0.0 };
    for (q, v) in q.iter_mut().zip(values) {
        // |v * inverse| <= 127: the cast cannot saturate.
        *q = (v * inverse).round() as i8;
    }
    d
}

/// The sum of 32 values.
fn sum(qs: &[i8; BLOCK]) -> i32 {
    qs.iter().map(|&q| i32::from(q)).sum()
}

/// 32 input values as `d * q`, with `s = d * Σq` for the weights' offsets (GGML's Q8_1).
#[derive(Clone, Copy)]
pub struct Input {
    d: f32,
    s: f32,
    qs: [i8; BLOCK],
}

impl BlockInput for Input {
    const VALUES: usize = BLOCK;
    fn quantize(values: &[f32]) -> Self {
        let mut qs = [0i8; BLOCK];
        let d = quantize_8bit(values, &mut qs);
        Self {
            d,
            s: d * sum(&qs) as f32,
            qs,
        }
    }
    fn qs(&self, _: usize) -> &[i8; BLOCK] {
        &self.qs
    }
}

/// 256 input values as `d * q`, with the sum of `q` over each 32 for the k-quants' mins (GGML's
/// Q8_K).
#[derive(Clone, Copy)]
pub struct SuperInput {
    d: f32,
    sums: [i32; 8],
    qs: [[i8; BLOCK]; 8],
}

impl BlockInput for SuperInput {
    const VALUES: usize = 8 * BLOCK;
    fn quantize(values: &[f32]) -> Self {
        let mut qs = [[0i8; BLOCK]; 8];
        let d = quantize_8bit(values, qs.as_flattened_mut());
        Self {
            d,
            sums: qs.map(|q| sum(&q)),
            qs,
        }
    }
    fn qs(&self, j: usize) -> &[i8; BLOCK] {
        &self.qs[j]
    }
}

/// An IEEE half as `f32`, in a few integer operations that inline into the kernels (the `half`
/// crate calls out to F16C only when the whole binary is compiled for it).
#[inline(always)]
fn f16_to_f32(bits: u16) -> f32 {
    // Exponent and mantissa moved to f32's place, then rebased by 2^(127 - 15): exact for
    // normal and subnormal halves alike.
    let magnitude = f32::from_bits(u32::from(bits & 0x7FFF) << 13) * f32::from_bits(239 << 23);
    // Infinities and NaNs of the half land at or above 2^16: give them f32's top exponent.
    let magnitude = if magnitude >= 65536.0 {
        f32::from_bits(magnitude.to_bits() | 0x7F80_0000)
    } else {
        magnitude
    };
    f32::from_bits(magnitude.to_bits() | (u32::from(bits & 0x8000) << 16))
}

/// 32 values of a block as `scale * multiplier * q + offset`, with one integer multiplier per
/// 16 values (the k-quants' scales; 1 elsewhere).
struct Sub {
    q: [i8; BLOCK],
    multipliers: [i32; 2],
    scale: f32,
    offset: f32,
}

impl Sub {
    fn new(q: [i8; BLOCK], scale: f32, offset: f32) -> Self {
        Self {
            q,
            multipliers: [1, 1],
            scale,
            offset,
        }
    }

    /// Σ multiplier · q · x, in plain Rust.
    fn ints(&self, x: &[i8; BLOCK]) -> i32 {
        let half = |h: usize| -> i32 {
            self.q[16 * h..16 * h + 16]
                .iter()
                .zip(&x[16 * h..16 * h + 16])
                .map(|(&a, &b)| i32::from(a) * i32::from(b))
                .sum()
        };
        self.multipliers[0] * half(0) + self.multipliers[1] * half(1)
    }

    fn dequantize(&self, out: &mut Vec<f32>) {
        out.extend(self.q.iter().enumerate().map(|(i, &q)| {
            self.scale * (self.multipliers[i / 16] * i32::from(q)) as f32 + self.offset
        }));
    }
}

/// A block format of this module: `SUBS` sub-blocks of 32 values, multiplied with one input
/// block of as many values.
///
/// The product of a block with input `x` is `factor · Σ multiplier · q · x.q + offset`, with
/// the sum over all sub-blocks in integers and `(factor, offset)` from [`Self::finish`].
trait WeightBlock: Copy + Send + Sync {
    /// The inputs this format meets.
    type Input: BlockInput;
    /// Bytes of a block in GGML's layout.
    const BYTES: usize;
    /// 32-value sub-blocks per block.
    const SUBS: usize;
    /// The GGML type.
    const DTYPE: GgmlDType;
    fn parse(bytes: &[u8]) -> Self;
    /// Sub-block `j` in plain Rust.
    fn sub(&self, j: usize) -> Sub;
    /// Sub-block `j`'s integers for AVX2.
    #[cfg(target_arch = "x86_64")]
    fn unpack(&self, simd: V3, j: usize) -> avx2::Sub;
    /// The factor of the integer sum and the offset term of the product with `x`.
    fn finish(&self, x: &Self::Input) -> (f32, f32);
}

fn half(bytes: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([bytes[at], bytes[at + 1]])
}

fn array<const N: usize>(bytes: &[u8], at: usize) -> [u8; N] {
    bytes[at..at + N].try_into().expect("N bytes")
}

/// `N` runs of 32 bytes.
fn runs<const N: usize>(bytes: &[u8], at: usize) -> [[u8; 32]; N] {
    std::array::from_fn(|i| array(bytes, at + 32 * i))
}

/// The 32 nibbles of a Q4_0/Q4_1 block, in value order.
fn nibbles(qs: &[u8; 16]) -> [i8; 32] {
    bytemuck::cast::<[u8; 32], _>(std::array::from_fn(|i| {
        if i < 16 {
            qs[i] & 0x0F
        } else {
            qs[i - 16] >> 4
        }
    }))
}

/// Nibbles of 32 bytes: the low ones (`high == false`) or the high ones.
fn nibble_run(bytes: &[u8; 32], high: bool) -> [u8; 32] {
    bytes.map(|b| if high { b >> 4 } else { b & 0x0F })
}

impl WeightBlock for Q4_0 {
    type Input = Input;
    const BYTES: usize = 18;
    const SUBS: usize = 1;
    const DTYPE: GgmlDType = GgmlDType::Q4_0;
    fn parse(b: &[u8]) -> Self {
        Self {
            d: half(b, 0),
            qs: array(b, 2),
        }
    }
    fn sub(&self, _: usize) -> Sub {
        let d = f16_to_f32(self.d);
        Sub::new(nibbles(&self.qs), d, -8.0 * d)
    }
    #[cfg(target_arch = "x86_64")]
    #[inline(always)]
    fn unpack(&self, simd: V3, _: usize) -> avx2::Sub {
        avx2::Sub::unsigned(avx2::nibbles(simd, self.qs))
    }
    #[inline(always)]
    fn finish(&self, x: &Input) -> (f32, f32) {
        let d = f16_to_f32(self.d);
        (d * x.d, -8.0 * d * x.s)
    }
}

impl WeightBlock for Q4_1 {
    type Input = Input;
    const BYTES: usize = 20;
    const SUBS: usize = 1;
    const DTYPE: GgmlDType = GgmlDType::Q4_1;
    fn parse(b: &[u8]) -> Self {
        Self {
            d: half(b, 0),
            m: half(b, 2),
            qs: array(b, 4),
        }
    }
    fn sub(&self, _: usize) -> Sub {
        Sub::new(nibbles(&self.qs), f16_to_f32(self.d), f16_to_f32(self.m))
    }
    #[cfg(target_arch = "x86_64")]
    #[inline(always)]
    fn unpack(&self, simd: V3, _: usize) -> avx2::Sub {
        avx2::Sub::unsigned(avx2::nibbles(simd, self.qs))
    }
    #[inline(always)]
    fn finish(&self, x: &Input) -> (f32, f32) {
        (f16_to_f32(self.d) * x.d, f16_to_f32(self.m) * x.s)
    }
}

impl WeightBlock for Q8_0 {
    type Input = Input;
    const BYTES: usize = 34;
    const SUBS: usize = 1;
    const DTYPE: GgmlDType = GgmlDType::Q8_0;
    fn parse(b: &[u8]) -> Self {
        Self {
            d: half(b, 0),
            qs: bytemuck::cast(array::<32>(b, 2)),
        }
    }
    fn sub(&self, _: usize) -> Sub {
        Sub::new(self.qs, f16_to_f32(self.d), 0.0)
    }
    #[cfg(target_arch = "x86_64")]
    #[inline(always)]
    fn unpack(&self, simd: V3, _: usize) -> avx2::Sub {
        avx2::Sub::signed(simd, bytemuck::cast(self.qs))
    }
    #[inline(always)]
    fn finish(&self, x: &Input) -> (f32, f32) {
        (f16_to_f32(self.d) * x.d, 0.0)
    }
}

/// The 6-bit scale and min of sub-block `j` of Q4_K and Q5_K.
fn scale_min(scales: &[u8; 12], j: usize) -> (u8, u8) {
    if j < 4 {
        (scales[j] & 63, scales[j + 4] & 63)
    } else {
        (
            (scales[j + 4] & 0x0F) | ((scales[j - 4] >> 6) << 4),
            (scales[j + 4] >> 4) | ((scales[j] >> 6) << 4),
        )
    }
}

/// Sub-block `j` of Q4_K or Q5_K with values `q`: `d * scale * q - dmin * min`.
fn k_sub(q: [u8; BLOCK], d: u16, dmin: u16, scales: &[u8; 12], j: usize) -> Sub {
    let (scale, min) = scale_min(scales, j);
    Sub {
        q: bytemuck::cast(q),
        multipliers: [i32::from(scale); 2],
        scale: f16_to_f32(d),
        offset: -f16_to_f32(dmin) * f32::from(min),
    }
}

/// `finish` of Q4_K and Q5_K: the mins meet the sums of the inputs' sub-blocks.
#[inline(always)]
fn k_finish(d: u16, dmin: u16, scales: &[u8; 12], x: &SuperInput) -> (f32, f32) {
    let mins: i32 = (0..8)
        .map(|j| i32::from(scale_min(scales, j).1) * x.sums[j])
        .sum();
    (f16_to_f32(d) * x.d, -f16_to_f32(dmin) * x.d * mins as f32)
}

impl WeightBlock for Q4K {
    type Input = SuperInput;
    const BYTES: usize = 144;
    const SUBS: usize = 8;
    const DTYPE: GgmlDType = GgmlDType::Q4K;
    fn parse(b: &[u8]) -> Self {
        Self {
            d: half(b, 0),
            dmin: half(b, 2),
            scales: array(b, 4),
            qs: runs(b, 16),
        }
    }
    fn sub(&self, j: usize) -> Sub {
        let q = nibble_run(&self.qs[j / 2], j % 2 == 1);
        k_sub(q, self.d, self.dmin, &self.scales, j)
    }
    #[cfg(target_arch = "x86_64")]
    #[inline(always)]
    fn unpack(&self, simd: V3, j: usize) -> avx2::Sub {
        let q = avx2::nibble_run(simd, self.qs[j / 2], j % 2 == 1);
        avx2::Sub::unsigned(q).times(avx2::scale(simd, &self.scales, j))
    }
    #[inline(always)]
    fn finish(&self, x: &SuperInput) -> (f32, f32) {
        k_finish(self.d, self.dmin, &self.scales, x)
    }
}

impl WeightBlock for Q5K {
    type Input = SuperInput;
    const BYTES: usize = 176;
    const SUBS: usize = 8;
    const DTYPE: GgmlDType = GgmlDType::Q5K;
    fn parse(b: &[u8]) -> Self {
        Self {
            d: half(b, 0),
            dmin: half(b, 2),
            scales: array(b, 4),
            qh: array(b, 16),
            qs: runs(b, 48),
        }
    }
    fn sub(&self, j: usize) -> Sub {
        let low = nibble_run(&self.qs[j / 2], j % 2 == 1);
        let q = std::array::from_fn(|i| low[i] | (((self.qh[i] >> j) & 1) << 4));
        k_sub(q, self.d, self.dmin, &self.scales, j)
    }
    #[cfg(target_arch = "x86_64")]
    #[inline(always)]
    fn unpack(&self, simd: V3, j: usize) -> avx2::Sub {
        let low = avx2::nibble_run(simd, self.qs[j / 2], j % 2 == 1);
        let q = simd
            .avx2
            ._mm256_or_si256(low, avx2::fifth_bit(simd, self.qh, j));
        avx2::Sub::unsigned(q).times(avx2::scale(simd, &self.scales, j))
    }
    #[inline(always)]
    fn finish(&self, x: &SuperInput) -> (f32, f32) {
        k_finish(self.d, self.dmin, &self.scales, x)
    }
}

impl Q6K {
    /// Where sub-block `j` keeps its low 4 bits (run, high nibbles?) and its high 2 bits (run,
    /// shift).
    fn places(j: usize) -> ((usize, bool), (usize, usize)) {
        let (half, k) = (j / 4, j % 4);
        ((2 * half + k % 2, k >= 2), (half, 2 * k))
    }

    fn multipliers(&self, j: usize) -> [i8; 2] {
        [self.scales[2 * j], self.scales[2 * j + 1]]
    }
}

impl WeightBlock for Q6K {
    type Input = SuperInput;
    const BYTES: usize = 210;
    const SUBS: usize = 8;
    const DTYPE: GgmlDType = GgmlDType::Q6K;
    fn parse(b: &[u8]) -> Self {
        Self {
            ql: runs(b, 0),
            qh: runs(b, 128),
            scales: bytemuck::cast(array::<16>(b, 192)),
            d: half(b, 208),
        }
    }
    fn sub(&self, j: usize) -> Sub {
        let ((low, high), (bits, shift)) = Self::places(j);
        let low = nibble_run(&self.ql[low], high);
        let q = std::array::from_fn(|i| {
            (low[i] | (((self.qh[bits][i] >> shift) & 3) << 4)).cast_signed() - 32
        });
        Sub {
            q,
            multipliers: self.multipliers(j).map(i32::from),
            scale: f16_to_f32(self.d),
            offset: 0.0,
        }
    }
    #[cfg(target_arch = "x86_64")]
    #[inline(always)]
    fn unpack(&self, simd: V3, j: usize) -> avx2::Sub {
        let ((low, high), (bits, shift)) = Self::places(j);
        let low = avx2::nibble_run(simd, self.ql[low], high);
        let q = avx2::six_bits(simd, low, self.qh[bits], shift);
        avx2::Sub::signed(simd, q).times(avx2::multipliers(simd, self.multipliers(j)))
    }
    #[inline(always)]
    fn finish(&self, x: &SuperInput) -> (f32, f32) {
        (f16_to_f32(self.d) * x.d, 0.0)
    }
}

/// Dot products of one weight row with `N` input rows at once (each weight sub-block is
/// unpacked once for all of them). Each input row holds `row.len()` blocks.
trait Kernel<B: WeightBlock>: Copy + Send + Sync {
    fn dot<const N: usize>(self, row: &[B], inputs: [&[B::Input]; N]) -> [f32; N];
}

/// Plain Rust: CPUs without AVX2, and the reference of the AVX2 kernel in tests.
#[derive(Clone, Copy)]
struct Portable;

impl<B: WeightBlock> Kernel<B> for Portable {
    fn dot<const N: usize>(self, row: &[B], inputs: [&[B::Input]; N]) -> [f32; N] {
        let mut sums = [0f32; N];
        for (i, w) in row.iter().enumerate() {
            let mut ints = [0i32; N];
            for j in 0..B::SUBS {
                let sub = w.sub(j);
                for (ints, x) in ints.iter_mut().zip(inputs) {
                    *ints += sub.ints(x[i].qs(j));
                }
            }
            for ((sum, ints), x) in sums.iter_mut().zip(ints).zip(inputs) {
                let (factor, offset) = w.finish(&x[i]);
                *sum += factor * ints as f32 + offset;
            }
        }
        sums
    }
}

/// The enum `Blocks` of the formats' block vectors, and `with_blocks!` to run generic code on
/// whichever it holds. (`$d` is a `$` for the inner macro's own variables.)
macro_rules! formats {
    ($d:tt $($format:ident),*) => {
        #[derive(Clone)]
        enum Blocks {
            $($format(Vec<$format>),)*
        }

        impl Blocks {
            fn parse(dtype: GgmlDType, bytes: &[u8]) -> Option<Self> {
                $(if dtype == $format::DTYPE {
                    return Some(Self::$format(parse(bytes)));
                })*
                None
            }

            /// Appends the blocks of `other`, when it is of the same format.
            fn append(&mut self, other: &Self) -> bool {
                match (self, other) {
                    $((Self::$format(a), Self::$format(b)) => a.extend_from_slice(b),)*
                    _ => return false,
                }
                true
            }
        }

        /// The body with the variable bound to the blocks, whatever their format.
        macro_rules! with_blocks {
            ($d blocks:expr, $d w:ident => $d body:expr) => {
                match $d blocks {
                    $(Blocks::$format($d w) => $d body,)*
                }
            };
        }
    };
}

formats!($ Q4_0, Q4_1, Q8_0, Q4K, Q5K, Q6K);

/// A `[rows, cols]` matrix of blocks, row after row, multiplied by `x [.., cols]` as
/// `x · Wᵀ` (candle's `QMatMul` convention).
#[derive(Clone)]
pub struct BlockMatrix {
    rows: usize,
    cols: usize,
    blocks: Blocks,
}

fn parse<B: WeightBlock>(bytes: &[u8]) -> Vec<B> {
    bytes.chunks_exact(B::BYTES).map(B::parse).collect()
}

impl BlockMatrix {
    /// The types this module multiplies.
    pub fn supports(dtype: GgmlDType) -> bool {
        Blocks::parse(dtype, &[]).is_some()
    }

    /// A matrix from GGML's bytes, or `None` when the type is not supported or the bytes do not
    /// hold `rows` rows of `cols` values.
    pub fn from_ggml(dtype: GgmlDType, bytes: &[u8], rows: usize, cols: usize) -> Option<Self> {
        let per_block = dtype.block_size();
        let size = rows
            .checked_mul(cols / per_block)
            .and_then(|blocks| blocks.checked_mul(dtype.type_size()));
        if !cols.is_multiple_of(per_block) || size != Some(bytes.len()) {
            return None;
        }
        let blocks = Blocks::parse(dtype, bytes)?;
        Some(Self { rows, cols, blocks })
    }

    /// The rows of several matrices in one, when they share a type and a width.
    pub fn concat(parts: &[&Self]) -> Option<Self> {
        let first = parts.first()?;
        let mut joined = (*first).clone();
        for part in &parts[1..] {
            if part.cols != joined.cols || !joined.blocks.append(&part.blocks) {
                return None;
            }
            joined.rows += part.rows;
        }
        Some(joined)
    }

    /// Output width.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Input width.
    pub fn cols(&self) -> usize {
        self.cols
    }

    /// Rows `ids` as `f32`, one after the other.
    pub fn dequantize_rows(&self, ids: &[u32]) -> Vec<f32> {
        let mut out = Vec::with_capacity(ids.len() * self.cols);
        with_blocks!(&self.blocks, w => {
            let per_row = w.len() / self.rows.max(1);
            for &id in ids {
                dequantize(&w[id as usize * per_row..][..per_row], &mut out);
            }
        });
        out
    }

    /// `x [m, cols] · Wᵀ`, as `[m, rows]` row after row.
    pub fn matmul(&self, x: &[f32]) -> Vec<f32> {
        with_blocks!(&self.blocks, w => self.product(w, x))
    }

    /// Weight rows in parallel tasks; each row meets every input row while it is in cache.
    fn product<B: WeightBlock>(&self, weights: &[B], x: &[f32]) -> Vec<f32> {
        let values = B::Input::VALUES;
        let inputs: Vec<B::Input> = x.chunks_exact(values).map(B::Input::quantize).collect();
        // Blocks per row, of weights and inputs alike.
        let per_row = self.cols / values;
        let m = inputs.len() / per_row;
        // [rows, m]: each task writes whole rows of it.
        let mut by_weight = vec![0f32; self.rows * m];
        by_weight
            .par_chunks_mut(m * ROWS_PER_TASK)
            .zip(weights.par_chunks(per_row * ROWS_PER_TASK))
            .for_each(|(out, weights)| {
                #[cfg(target_arch = "x86_64")]
                if let Some(simd) = V3::try_new() {
                    return simd.vectorize(|| dot_rows(out, weights, &inputs, per_row, Avx2(simd)));
                }
                dot_rows(out, weights, &inputs, per_row, Portable);
            });
        if m == 1 {
            return by_weight;
        }
        let mut by_input = vec![0f32; self.rows * m];
        for (j, outputs) in by_weight.chunks(m).enumerate() {
            for (i, &value) in outputs.iter().enumerate() {
                by_input[i * self.rows + j] = value;
            }
        }
        by_input
    }
}

/// Appends the values of `blocks`.
fn dequantize<B: WeightBlock>(blocks: &[B], out: &mut Vec<f32>) {
    for block in blocks {
        for j in 0..B::SUBS {
            block.sub(j).dequantize(out);
        }
    }
}

/// `out [weight rows, input rows]` = each weight row dotted with each input row (`per_row`
/// blocks each), four input rows at a time.
#[inline(always)]
fn dot_rows<B: WeightBlock>(
    out: &mut [f32],
    weights: &[B],
    inputs: &[B::Input],
    per_row: usize,
    kernel: impl Kernel<B>,
) {
    let m = inputs.len() / per_row;
    for (out, row) in out.chunks_mut(m).zip(weights.chunks(per_row)) {
        for (out, inputs) in out.chunks_mut(4).zip(inputs.chunks(4 * per_row)) {
            if out.len() == 4 {
                let rows: [&[B::Input]; 4] =
                    std::array::from_fn(|k| &inputs[k * per_row..(k + 1) * per_row]);
                out.copy_from_slice(&kernel.dot(row, rows));
            } else {
                for (out, input) in out.iter_mut().zip(inputs.chunks(per_row)) {
                    [*out] = kernel.dot(row, [input]);
                }
            }
        }
    }
}

impl CustomOp1 for BlockMatrix {
    fn name(&self) -> &'static str {
        "block-matmul"
    }

    fn cpu_fwd(
        &self,
        storage: &CpuStorage,
        layout: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let CpuStorage::F32(data) = storage else {
            candle_core::bail!("block-matmul multiplies f32 inputs");
        };
        let Some((start, end)) = layout.contiguous_offsets() else {
            candle_core::bail!("block-matmul needs a contiguous input");
        };
        let mut dims = layout.shape().dims().to_vec();
        if dims.last() != Some(&self.cols) {
            candle_core::bail!(
                "block-matmul: input {:?} does not end in the matrix width {}",
                dims,
                self.cols
            );
        }
        let out = self.matmul(&data[start..end]);
        *dims.last_mut().expect("checked") = self.rows;
        Ok((CpuStorage::F32(out), Shape::from(dims)))
    }
}

/// AVX2, safe through `pulp`'s feature tokens, with vectors loaded from the blocks' arrays by
/// `bytemuck` casts: llama.cpp's integer products.
#[cfg(target_arch = "x86_64")]
#[derive(Clone, Copy)]
struct Avx2(V3);

#[cfg(target_arch = "x86_64")]
impl<B: WeightBlock> Kernel<B> for Avx2 {
    #[inline(always)]
    fn dot<const N: usize>(self, row: &[B], inputs: [&[B::Input]; N]) -> [f32; N] {
        let simd = self.0;
        let mut acc = [simd.avx._mm256_setzero_ps(); N];
        let mut offsets = [0f32; N];
        let ones = simd.avx._mm256_set1_epi16(1);
        for (i, w) in row.iter().enumerate() {
            let mut ints = [simd.avx._mm256_setzero_si256(); N];
            for j in 0..B::SUBS {
                let sub = w.unpack(simd, j);
                for k in 0..N {
                    let mut xq = bytemuck::cast(*inputs[k][i].qs(j));
                    if let Some(signs) = sub.signs {
                        xq = simd.avx2._mm256_sign_epi8(xq, signs);
                    }
                    let pairs = simd.avx2._mm256_maddubs_epi16(sub.unsigned, xq);
                    let products = simd
                        .avx2
                        ._mm256_madd_epi16(pairs, sub.multipliers.unwrap_or(ones));
                    ints[k] = simd.avx2._mm256_add_epi32(ints[k], products);
                }
            }
            for k in 0..N {
                let (factor, offset) = w.finish(&inputs[k][i]);
                offsets[k] += offset;
                let factor = simd.avx._mm256_set1_ps(factor);
                let ints = simd.avx._mm256_cvtepi32_ps(ints[k]);
                acc[k] = simd.fma._mm256_fmadd_ps(factor, ints, acc[k]);
            }
        }
        std::array::from_fn(|k| avx2::sum(simd, acc[k]) + offsets[k])
    }
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    use std::arch::x86_64::{__m256, __m256i};

    use pulp::x86::V3;

    /// The integers of a sub-block of 32 values, `multiplier * q`, for AVX2.
    pub struct Sub {
        /// `|q|` as unsigned bytes.
        pub unsigned: __m256i,
        /// `q`, whose signs the inputs take (`None`: `q` is unsigned).
        pub signs: Option<__m256i>,
        /// 16-bit multipliers of the sums of value pairs (`None`: 1).
        pub multipliers: Option<__m256i>,
    }

    impl Sub {
        #[inline(always)]
        pub fn unsigned(q: __m256i) -> Self {
            Self {
                unsigned: q,
                signs: None,
                multipliers: None,
            }
        }

        #[inline(always)]
        pub fn signed(simd: V3, q: __m256i) -> Self {
            Self {
                unsigned: simd.avx2._mm256_sign_epi8(q, q),
                signs: Some(q),
                multipliers: None,
            }
        }

        /// The sub-block with its 16-bit multipliers.
        #[inline(always)]
        pub fn times(self, multipliers: __m256i) -> Self {
            Self {
                multipliers: Some(multipliers),
                ..self
            }
        }
    }

    /// The 32 nibbles of a 4-bit block as bytes 0..=15, in value order.
    #[inline(always)]
    pub fn nibbles(simd: V3, qs: [u8; 16]) -> __m256i {
        let low = bytemuck::cast(qs);
        let high = simd.sse2._mm_srli_epi16::<4>(low);
        let both = simd.avx._mm256_set_m128i(high, low);
        simd.avx2
            ._mm256_and_si256(both, simd.avx._mm256_set1_epi8(0x0F))
    }

    /// The low nibbles of 32 bytes, or the high ones.
    #[inline(always)]
    pub fn nibble_run(simd: V3, bytes: [u8; 32], high: bool) -> __m256i {
        let mut v = bytemuck::cast(bytes);
        if high {
            v = simd.avx2._mm256_srli_epi16::<4>(v);
        }
        simd.avx2
            ._mm256_and_si256(v, simd.avx._mm256_set1_epi8(0x0F))
    }

    /// Bit `j` of each byte of `qh`, as 16 or 0 (Q5_K's fifth bit).
    #[inline(always)]
    pub fn fifth_bit(simd: V3, qh: [u8; 32], j: usize) -> __m256i {
        let mask = simd.avx._mm256_set1_epi8((1u8 << j).cast_signed());
        let set = simd
            .avx2
            ._mm256_cmpeq_epi8(simd.avx2._mm256_and_si256(bytemuck::cast(qh), mask), mask);
        simd.avx2
            ._mm256_and_si256(set, simd.avx._mm256_set1_epi8(16))
    }

    /// Q6_K's values `q - 32`: the low nibbles with bits `shift`, `shift + 1` of `qh` above them.
    #[inline(always)]
    pub fn six_bits(simd: V3, low: __m256i, qh: [u8; 32], shift: usize) -> __m256i {
        let qh = bytemuck::cast(qh);
        let qh = match shift {
            0 => qh,
            2 => simd.avx2._mm256_srli_epi16::<2>(qh),
            4 => simd.avx2._mm256_srli_epi16::<4>(qh),
            _ => simd.avx2._mm256_srli_epi16::<6>(qh),
        };
        let two = simd.avx2._mm256_and_si256(qh, simd.avx._mm256_set1_epi8(3));
        let q = simd
            .avx2
            ._mm256_or_si256(low, simd.avx2._mm256_slli_epi16::<4>(two));
        simd.avx2._mm256_sub_epi8(q, simd.avx._mm256_set1_epi8(32))
    }

    /// The 6-bit scale of sub-block `j` of Q4_K or Q5_K as the multiplier of every pair sum.
    #[inline(always)]
    pub fn scale(simd: V3, scales: &[u8; 12], j: usize) -> __m256i {
        simd.avx
            ._mm256_set1_epi16(i16::from(super::scale_min(scales, j).0))
    }

    /// The 16-bit multipliers of the pair sums of two halves of 16 values.
    #[inline(always)]
    pub fn multipliers(simd: V3, [first, second]: [i8; 2]) -> __m256i {
        simd.avx._mm256_set_m128i(
            simd.sse2._mm_set1_epi16(i16::from(second)),
            simd.sse2._mm_set1_epi16(i16::from(first)),
        )
    }

    #[inline(always)]
    pub fn sum(simd: V3, v: __m256) -> f32 {
        let quads = simd.sse._mm_add_ps(
            simd.avx._mm256_castps256_ps128(v),
            simd.avx._mm256_extractf128_ps::<1>(v),
        );
        let pairs = simd
            .sse
            ._mm_add_ps(quads, simd.sse._mm_movehl_ps(quads, quads));
        let one = simd.sse._mm_add_ss(pairs, simd.sse3._mm_movehdup_ps(pairs));
        simd.sse._mm_cvtss_f32(one)
    }
}

#[cfg(test)]
mod tests {
    use candle_core::quantized::QTensor;
    use candle_core::{Device, Tensor};

    use super::*;

    const FORMATS: [GgmlDType; 6] = [
        GgmlDType::Q4_0,
        GgmlDType::Q4_1,
        GgmlDType::Q8_0,
        GgmlDType::Q4K,
        GgmlDType::Q5K,
        GgmlDType::Q6K,
    ];

    fn values(n: usize, seed: u32) -> Vec<f32> {
        // A small LCG: reproducible, spread over [-1, 1) with a few outliers.
        let mut state = seed;
        (0..n)
            .map(|i| {
                state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                let v = (state >> 8) as f32 / (1u32 << 24) as f32 * 2.0 - 1.0;
                if i % 97 == 0 { v * 6.0 } else { v }
            })
            .collect()
    }

    /// A matrix quantized by candle, as ours and as candle's dequantized values.
    fn matrix(dtype: GgmlDType, rows: usize, cols: usize) -> (BlockMatrix, Vec<f32>) {
        let w = Tensor::from_vec(values(rows * cols, 7), (rows, cols), &Device::Cpu).unwrap();
        let q = QTensor::quantize(&w, dtype).unwrap();
        let ours = BlockMatrix::from_ggml(dtype, &q.data().unwrap(), rows, cols).unwrap();
        let full = q.dequantize(&Device::Cpu).unwrap().flatten_all().unwrap();
        (ours, full.to_vec1().unwrap())
    }

    fn reference(w: &[f32], x: &[f32], cols: usize) -> Vec<f32> {
        x.chunks(cols)
            .flat_map(|x| {
                w.chunks(cols).map(move |w| {
                    let sum: f64 = w.iter().zip(x).map(|(&a, &b)| f64::from(a * b)).sum();
                    sum as f32
                })
            })
            .collect()
    }

    /// `x` rounded to 8 bits per `n` values as the inputs are (`d = max |x| / 127`), written
    /// here again, independently of the module's code.
    fn rounded(x: &[f32], n: usize) -> Vec<f32> {
        x.chunks(n)
            .flat_map(|block| {
                let d = block.iter().fold(0f32, |m, v| m.max(v.abs())) / 127.0;
                block
                    .iter()
                    .map(move |v| if d > 0.0 { (v / d).round() * d } else { 0.0 })
            })
            .collect()
    }

    #[test]
    fn products_match_the_dequantized_matrix() {
        // Six input rows (a group of four and two alone); 70 rows: a partial parallel task.
        let (rows, cols, m) = (70, 512, 6);
        for dtype in FORMATS {
            let (ours, full) = matrix(dtype, rows, cols);
            let x = values(m * cols, 11);
            let got = ours.matmul(&x);
            assert_eq!(got.len(), m * rows);
            // With the inputs rounded as the kernels round them (per block of the format:
            // 32 values, 256 for the k-quants), only the order of the sums differs.
            let want = reference(&full, &rounded(&x, dtype.block_size()), cols);
            let scale = want.iter().fold(0f32, |a, v| a.max(v.abs()));
            for (g, w) in got.iter().zip(&want) {
                assert!((g - w).abs() < 1e-4 * scale, "{dtype:?}: {g} vs {w}");
            }
            // And the rounding of the inputs is small beside the products.
            for (g, w) in got.iter().zip(reference(&full, &x, cols)) {
                assert!((g - w).abs() < 0.05 * scale, "{dtype:?}: {g} vs {w}");
            }
            // Each input row alone gives the same numbers as in the batch.
            for (i, x) in x.chunks(cols).enumerate() {
                assert_eq!(ours.matmul(x), got[i * rows..(i + 1) * rows]);
            }
        }
    }

    /// Tells the test output that a test did not run: written to the process's stderr, which
    /// the test harness does not capture, so it shows among the results.
    fn skipped(test: &str, why: &str) {
        use std::io::Write;
        let _ = writeln!(std::io::stderr(), "test {test} ... skipped: {why}");
    }

    #[cfg(target_arch = "x86_64")]
    /// The AVX2 kernel on four rows of `x` and on each alone, against the portable one.
    fn check<B: WeightBlock>(simd: V3, w: &[B], x: &[f32]) {
        let inputs: Vec<B::Input> = x.chunks(B::Input::VALUES).map(B::Input::quantize).collect();
        let rows: [&[B::Input]; 4] = std::array::from_fn(|k| &inputs[k * w.len()..][..w.len()]);
        let want = Portable.dot(w, rows);
        let close = |a: f32, b: f32| (a - b).abs() <= 1e-4 * b.abs().max(1.0);
        let four = Avx2(simd).dot(w, rows);
        for k in 0..4 {
            let [one] = Avx2(simd).dot(w, [rows[k]]);
            assert!(
                close(four[k], want[k]) && one.to_bits() == four[k].to_bits(),
                "{:?}: {four:?} {one} {want:?}",
                B::DTYPE
            );
        }
    }

    #[test]
    fn avx2_kernels_equal_the_portable_ones() {
        #[cfg(target_arch = "x86_64")]
        if let Some(simd) = V3::try_new() {
            let cols = 512;
            let x = values(4 * cols, 3);
            for dtype in FORMATS {
                let (ours, _) = matrix(dtype, 1, cols);
                with_blocks!(&ours.blocks, w => check(simd, w, &x));
            }
            return;
        }
        skipped(
            "blocks::tests::avx2_kernels_equal_the_portable_ones",
            "this CPU has no AVX2",
        );
    }

    #[test]
    fn rows_dequantize_as_candle_does() {
        let (rows, cols) = (5, 512);
        for dtype in FORMATS {
            let (ours, full) = matrix(dtype, rows, cols);
            let got = ours.dequantize_rows(&[3, 0, 3]);
            let want = [3, 0, 3]
                .iter()
                .flat_map(|&r| &full[r * cols..(r + 1) * cols]);
            for (g, w) in got.iter().zip(want) {
                assert!(
                    (g - w).abs() <= 1e-5 * w.abs().max(1.0),
                    "{dtype:?}: {g} vs {w}"
                );
            }
            assert_eq!(got.len(), 3 * cols);
        }
    }

    #[test]
    fn halves_convert_as_the_half_crate_does() {
        for bits in 0..=u16::MAX {
            let want = half::f16::from_bits(bits).to_f32();
            let got = f16_to_f32(bits);
            assert!(
                got.to_bits() == want.to_bits() || (got.is_nan() && want.is_nan()),
                "{bits:#06x}: {got} vs {want}"
            );
        }
    }

    #[test]
    fn concat_joins_rows_and_refuses_mixed_types() {
        for dtype in [GgmlDType::Q4_1, GgmlDType::Q6K] {
            let (a, _) = matrix(dtype, 3, 256);
            let (b, _) = matrix(dtype, 5, 256);
            let joined = BlockMatrix::concat(&[&a, &b]).unwrap();
            assert_eq!(joined.rows(), 8);
            let x = values(256, 5);
            let mut both = a.matmul(&x);
            both.extend(b.matmul(&x));
            assert_eq!(joined.matmul(&x), both);
        }
        let (a, _) = matrix(GgmlDType::Q4_1, 3, 256);
        let (c, _) = matrix(GgmlDType::Q8_0, 5, 256);
        let (k, _) = matrix(GgmlDType::Q4K, 5, 256);
        assert!(BlockMatrix::concat(&[&a, &c]).is_none());
        assert!(BlockMatrix::concat(&[&k, &a]).is_none());
        assert!(BlockMatrix::from_ggml(GgmlDType::Q4_1, &[0; 7], 1, 32).is_none());
        // k-quant rows are whole blocks of 256.
        assert!(BlockMatrix::from_ggml(GgmlDType::Q4K, &[0; 144], 8, 32).is_none());
        assert!(BlockMatrix::from_ggml(GgmlDType::Q4K, &[0; 144], 1, 256).is_some());
        assert!(!BlockMatrix::supports(GgmlDType::Q3K));
    }
}

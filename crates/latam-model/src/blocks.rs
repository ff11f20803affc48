//! Weight matrices in GGML's 32-element block formats (Q4_0, Q4_1, Q8_0) and their product with
//! `f32` inputs on the CPU.
//!
//! Two things candle's CPU kernels lack: Q4_1 is multiplied as it is stored (candle has no SIMD
//! Q4_1 kernel, so it would have to be converted, losing either memory or accuracy), and each
//! weight row is read once per call however many input rows there are (candle walks the whole
//! matrix once per input row), so a batch of decoding steps or a prompt chunk costs little more
//! memory traffic than a single token.
//!
//! Inputs are quantized to 8 bits per 32 values (an `f32` scale and the scaled sum, as GGML's
//! Q8_1) and multiplied in integers, as llama.cpp does.

#![allow(
    clippy::inline_always,
    reason = "pulp applies the CPU features only to code inlined into `vectorize`"
)]

use candle_core::quantized::GgmlDType;
use candle_core::{CpuStorage, CustomOp1, Layout, Shape};
use half::f16;
#[cfg(target_arch = "x86_64")]
use pulp::x86::V3;
use rayon::prelude::*;
#[cfg(target_arch = "x86_64")]
use std::arch::x86_64::__m256i;

/// Values per block, in every format here.
pub const BLOCK: usize = 32;

/// Weight rows per parallel task: enough work to outweigh scheduling.
const ROWS_PER_TASK: usize = 16;

/// 4-bit values `d * (q - 8)`.
#[derive(Clone, Copy)]
pub struct Q4_0 {
    d: f16,
    /// Value `i` in the low nibble of byte `i`, value `i + 16` in its high nibble.
    qs: [u8; 16],
}

/// 4-bit values `d * q + m`.
#[derive(Clone, Copy)]
pub struct Q4_1 {
    d: f16,
    m: f16,
    qs: [u8; 16],
}

/// 8-bit values `d * q`.
#[derive(Clone, Copy)]
pub struct Q8_0 {
    d: f16,
    qs: [i8; 32],
}

/// 32 input values as `d * q`, with `s = d * Σq` for the offsets of Q4_0 and Q4_1.
#[derive(Clone, Copy)]
pub struct Input {
    d: f32,
    s: f32,
    qs: [i8; 32],
}

impl Input {
    fn quantize(values: &[f32]) -> Self {
        let max = values.iter().fold(0f32, |m, v| m.max(v.abs()));
        let d = max / 127.0;
        let inverse = if d > 0.0 { 1.0 / d } else { 0.0 };
        let mut qs = [0i8; 32];
        for (q, v) in qs.iter_mut().zip(values) {
            // |v * inverse| <= 127: the cast cannot saturate.
            *q = (v * inverse).round() as i8;
        }
        let sum: i32 = qs.iter().map(|&q| i32::from(q)).sum();
        Self {
            d,
            s: d * sum as f32,
            qs,
        }
    }
}

/// A block format of this module. Each block's value `i` is `scale · q[i] + offset`, with
/// `q` unsigned (4-bit) or signed (8-bit), so its dot product with an input block is
/// `scale · d · Σ q[i]·x[i] + offset · s`.
trait WeightBlock: Copy + Send + Sync {
    const BYTES: usize;
    fn parse(bytes: &[u8]) -> Self;
    fn scale(&self) -> f32;
    fn offset(&self) -> f32;
    /// `Σ q[i]·x[i]` in plain Rust.
    fn int_dot(&self, input: &Input) -> i32;
    /// The 32 quantized values, in order.
    fn values(&self) -> [i32; 32];
    /// Appends the block's 32 values.
    fn dequantize(&self, out: &mut Vec<f32>) {
        let (scale, offset) = (self.scale(), self.offset());
        out.extend(self.values().map(|q| scale * q as f32 + offset));
    }
    /// The quantized values for AVX2: `|q|` and the signs to give the inputs (for unsigned
    /// `q`, `q` itself and `None`).
    #[cfg(target_arch = "x86_64")]
    fn unpack(&self, simd: V3) -> (__m256i, Option<__m256i>);
}

fn half(bytes: &[u8], at: usize) -> f16 {
    f16::from_le_bytes([bytes[at], bytes[at + 1]])
}

/// Σ over a block of its nibbles (low: values 0..16, high: 16..32) times the inputs.
fn nibble_dot(qs: &[u8; 16], input: &Input) -> i32 {
    qs.iter()
        .zip(&input.qs[..16])
        .zip(&input.qs[16..])
        .map(|((&q, &a), &b)| i32::from(q & 0x0F) * i32::from(a) + i32::from(q >> 4) * i32::from(b))
        .sum()
}

/// The 32 nibbles of a 4-bit block, in value order.
fn nibble_values(qs: &[u8; 16]) -> [i32; 32] {
    std::array::from_fn(|i| {
        i32::from(if i < 16 {
            qs[i] & 0x0F
        } else {
            qs[i - 16] >> 4
        })
    })
}

/// The `WeightBlock` methods of the 4-bit formats, which read their nibbles `qs` alike.
macro_rules! nibble_methods {
    () => {
        fn int_dot(&self, input: &Input) -> i32 {
            nibble_dot(&self.qs, input)
        }
        fn values(&self) -> [i32; 32] {
            nibble_values(&self.qs)
        }
        #[cfg(target_arch = "x86_64")]
        #[inline(always)]
        fn unpack(&self, simd: V3) -> (__m256i, Option<__m256i>) {
            (avx2::nibbles(simd, self.qs), None)
        }
    };
}

impl WeightBlock for Q4_0 {
    const BYTES: usize = 18;
    fn parse(b: &[u8]) -> Self {
        Self {
            d: half(b, 0),
            qs: b[2..18].try_into().expect("16 bytes"),
        }
    }
    fn scale(&self) -> f32 {
        self.d.to_f32()
    }
    fn offset(&self) -> f32 {
        -8.0 * self.d.to_f32()
    }
    nibble_methods!();
}

impl WeightBlock for Q4_1 {
    const BYTES: usize = 20;
    fn parse(b: &[u8]) -> Self {
        Self {
            d: half(b, 0),
            m: half(b, 2),
            qs: b[4..20].try_into().expect("16 bytes"),
        }
    }
    fn scale(&self) -> f32 {
        self.d.to_f32()
    }
    fn offset(&self) -> f32 {
        self.m.to_f32()
    }
    nibble_methods!();
}

impl WeightBlock for Q8_0 {
    const BYTES: usize = 34;
    fn parse(b: &[u8]) -> Self {
        Self {
            d: half(b, 0),
            qs: bytemuck::cast(<[u8; 32]>::try_from(&b[2..34]).expect("32 bytes")),
        }
    }
    fn scale(&self) -> f32 {
        self.d.to_f32()
    }
    fn offset(&self) -> f32 {
        0.0
    }
    fn int_dot(&self, input: &Input) -> i32 {
        self.qs
            .iter()
            .zip(&input.qs)
            .map(|(&a, &b)| i32::from(a) * i32::from(b))
            .sum()
    }
    fn values(&self) -> [i32; 32] {
        self.qs.map(i32::from)
    }
    #[cfg(target_arch = "x86_64")]
    #[inline(always)]
    fn unpack(&self, simd: V3) -> (__m256i, Option<__m256i>) {
        let q = bytemuck::cast(self.qs);
        (simd.avx2._mm256_sign_epi8(q, q), Some(q))
    }
}

/// Dot products of one weight row with `N` input rows at once (each weight block is unpacked
/// once for all of them).
trait Kernel<B: WeightBlock>: Copy + Send + Sync {
    fn dot<const N: usize>(self, row: &[B], inputs: [&[Input]; N]) -> [f32; N];
}

/// Plain Rust: CPUs without AVX2, and the reference of the AVX2 kernel in tests.
#[derive(Clone, Copy)]
struct Portable;

impl<B: WeightBlock> Kernel<B> for Portable {
    fn dot<const N: usize>(self, row: &[B], inputs: [&[Input]; N]) -> [f32; N] {
        std::array::from_fn(|k| {
            row.iter()
                .zip(inputs[k])
                .map(|(w, x)| w.scale() * x.d * w.int_dot(x) as f32 + w.offset() * x.s)
                .sum()
        })
    }
}

#[derive(Clone)]
enum Blocks {
    Q4_0(Vec<Q4_0>),
    Q4_1(Vec<Q4_1>),
    Q8_0(Vec<Q8_0>),
}

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
        matches!(dtype, GgmlDType::Q4_0 | GgmlDType::Q4_1 | GgmlDType::Q8_0)
    }

    /// A matrix from GGML's bytes, or `None` when the type is not supported or the bytes do not
    /// hold `rows` rows of `cols` values.
    pub fn from_ggml(dtype: GgmlDType, bytes: &[u8], rows: usize, cols: usize) -> Option<Self> {
        if !cols.is_multiple_of(BLOCK) || bytes.len() != rows * cols / BLOCK * dtype.type_size() {
            return None;
        }
        let blocks = match dtype {
            GgmlDType::Q4_0 => Blocks::Q4_0(parse(bytes)),
            GgmlDType::Q4_1 => Blocks::Q4_1(parse(bytes)),
            GgmlDType::Q8_0 => Blocks::Q8_0(parse(bytes)),
            _ => return None,
        };
        Some(Self { rows, cols, blocks })
    }

    /// The rows of several matrices in one, when they share a type and a width.
    pub fn concat(parts: &[&Self]) -> Option<Self> {
        let first = parts.first()?;
        let mut joined = (*first).clone();
        for part in &parts[1..] {
            if part.cols != joined.cols {
                return None;
            }
            match (&mut joined.blocks, &part.blocks) {
                (Blocks::Q4_0(a), Blocks::Q4_0(b)) => a.extend_from_slice(b),
                (Blocks::Q4_1(a), Blocks::Q4_1(b)) => a.extend_from_slice(b),
                (Blocks::Q8_0(a), Blocks::Q8_0(b)) => a.extend_from_slice(b),
                _ => return None,
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
        let per_row = self.cols / BLOCK;
        let mut out = Vec::with_capacity(ids.len() * self.cols);
        let mut rows = |blocks: &dyn Fn(usize, &mut Vec<f32>)| {
            for &id in ids {
                let start = id as usize * per_row;
                for b in start..start + per_row {
                    blocks(b, &mut out);
                }
            }
        };
        match &self.blocks {
            Blocks::Q4_0(w) => rows(&|b, out| w[b].dequantize(out)),
            Blocks::Q4_1(w) => rows(&|b, out| w[b].dequantize(out)),
            Blocks::Q8_0(w) => rows(&|b, out| w[b].dequantize(out)),
        }
        out
    }

    /// `x [m, cols] · Wᵀ`, as `[m, rows]` row after row.
    pub fn matmul(&self, x: &[f32]) -> Vec<f32> {
        let inputs: Vec<Input> = x.chunks_exact(BLOCK).map(Input::quantize).collect();
        match &self.blocks {
            Blocks::Q4_0(w) => self.product(w, &inputs),
            Blocks::Q4_1(w) => self.product(w, &inputs),
            Blocks::Q8_0(w) => self.product(w, &inputs),
        }
    }

    /// Weight rows in parallel tasks; each row meets every input row while it is in cache.
    fn product<B: WeightBlock>(&self, weights: &[B], inputs: &[Input]) -> Vec<f32> {
        let per_row = self.cols / BLOCK;
        let m = inputs.len() / per_row;
        // [rows, m]: each task writes whole rows of it.
        let mut by_weight = vec![0f32; self.rows * m];
        by_weight
            .par_chunks_mut(m * ROWS_PER_TASK)
            .zip(weights.par_chunks(per_row * ROWS_PER_TASK))
            .for_each(|(out, weights)| {
                #[cfg(target_arch = "x86_64")]
                if let Some(simd) = V3::try_new() {
                    return simd.vectorize(|| dot_rows(out, weights, inputs, per_row, Avx2(simd)));
                }
                dot_rows(out, weights, inputs, per_row, Portable);
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

/// `out [weight rows, input rows]` = each weight row dotted with each input row, four input
/// rows at a time.
#[inline(always)]
fn dot_rows<B: WeightBlock>(
    out: &mut [f32],
    weights: &[B],
    inputs: &[Input],
    per_row: usize,
    kernel: impl Kernel<B>,
) {
    let m = inputs.len() / per_row;
    for (out, row) in out.chunks_mut(m).zip(weights.chunks(per_row)) {
        for (out, inputs) in out.chunks_mut(4).zip(inputs.chunks(4 * per_row)) {
            if out.len() == 4 {
                let rows: [&[Input]; 4] =
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
    fn dot<const N: usize>(self, row: &[B], inputs: [&[Input]; N]) -> [f32; N] {
        let simd = self.0;
        let mut acc = [simd.avx._mm256_setzero_ps(); N];
        let mut offsets = [0f32; N];
        // As long as the row: no bounds checks in the loop.
        let inputs = inputs.map(|x| &x[..row.len()]);
        for (i, w) in row.iter().enumerate() {
            let (unsigned, signs) = w.unpack(simd);
            let (scale, offset) = (w.scale(), w.offset());
            for k in 0..N {
                let x = &inputs[k][i];
                offsets[k] += offset * x.s;
                let mut xq = bytemuck::cast(x.qs);
                if let Some(signs) = signs {
                    xq = simd.avx2._mm256_sign_epi8(xq, signs);
                }
                let products = avx2::dot_unsigned(simd, unsigned, xq);
                let d = simd.avx._mm256_set1_ps(scale * x.d);
                acc[k] = simd.fma._mm256_fmadd_ps(d, products, acc[k]);
            }
        }
        std::array::from_fn(|k| avx2::sum(simd, acc[k]) + offsets[k])
    }
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    use std::arch::x86_64::{__m256, __m256i};

    use pulp::x86::V3;

    /// The 32 nibbles of a 4-bit block as bytes 0..=15, in value order.
    #[inline(always)]
    pub fn nibbles(simd: V3, qs: [u8; 16]) -> __m256i {
        let low = bytemuck::cast(qs);
        let high = simd.sse2._mm_srli_epi16::<4>(low);
        let both = simd.avx._mm256_set_m128i(high, low);
        simd.avx2
            ._mm256_and_si256(both, simd.avx._mm256_set1_epi8(0x0F))
    }

    /// Products of unsigned by signed bytes, summed in eight lanes.
    #[inline(always)]
    pub fn dot_unsigned(simd: V3, unsigned: __m256i, signed: __m256i) -> __m256 {
        let pairs = simd.avx2._mm256_maddubs_epi16(unsigned, signed);
        let ones = simd.avx._mm256_set1_epi16(1);
        simd.avx
            ._mm256_cvtepi32_ps(simd.avx2._mm256_madd_epi16(pairs, ones))
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

    /// A matrix quantized by candle, its dequantized values and ours.
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
                w.chunks(cols)
                    .map(move |w| w.iter().zip(x).map(|(a, b)| a * b).sum::<f32>())
            })
            .collect()
    }

    #[test]
    fn products_match_the_dequantized_matrix() {
        // Six input rows: a group of four and two alone.
        let (rows, cols, m) = (70, 96, 6);
        for dtype in [GgmlDType::Q4_0, GgmlDType::Q4_1, GgmlDType::Q8_0] {
            let (ours, full) = matrix(dtype, rows, cols);
            let x = values(m * cols, 11);
            let got = ours.matmul(&x);
            let want = reference(&full, &x, cols);
            assert_eq!(got.len(), m * rows);
            // The only difference is the 8-bit rounding of the inputs.
            let scale = want.iter().fold(0f32, |a, v| a.max(v.abs()));
            for (g, w) in got.iter().zip(&want) {
                assert!((g - w).abs() < 0.01 * scale, "{dtype:?}: {g} vs {w}");
            }
            // Each input row alone gives the same numbers as in the batch.
            for (i, x) in x.chunks(cols).enumerate() {
                assert_eq!(ours.matmul(x), got[i * rows..(i + 1) * rows]);
            }
        }
    }

    #[cfg(target_arch = "x86_64")]
    /// The AVX2 kernel on four rows and on each alone, against the portable one.
    fn check<B: WeightBlock>(simd: V3, w: &[B], rows: [&[Input]; 4]) {
        let want = Portable.dot(w, rows);
        let close = |a: f32, b: f32| (a - b).abs() <= 1e-4 * b.abs().max(1.0);
        let four = Avx2(simd).dot(w, rows);
        for k in 0..4 {
            let [one] = Avx2(simd).dot(w, [rows[k]]);
            assert!(
                close(four[k], want[k]) && one.to_bits() == four[k].to_bits(),
                "{four:?} {one} {want:?}"
            );
        }
    }

    #[cfg(target_arch = "x86_64")]
    #[test]
    fn avx2_kernels_equal_the_portable_ones() {
        let Some(simd) = V3::try_new() else {
            eprintln!("no AVX2 on this CPU: nothing to compare");
            return;
        };
        let cols = 256;
        let inputs: Vec<Input> = values(4 * cols, 3)
            .chunks(BLOCK)
            .map(Input::quantize)
            .collect();
        let rows: [&[Input]; 4] = std::array::from_fn(|k| &inputs[k * 8..(k + 1) * 8]);
        for dtype in [GgmlDType::Q4_0, GgmlDType::Q4_1, GgmlDType::Q8_0] {
            let (ours, _) = matrix(dtype, 1, cols);
            match &ours.blocks {
                Blocks::Q4_0(w) => check(simd, w, rows),
                Blocks::Q4_1(w) => check(simd, w, rows),
                Blocks::Q8_0(w) => check(simd, w, rows),
            }
        }
    }

    #[test]
    fn rows_dequantize_as_candle_does() {
        let (rows, cols) = (5, 64);
        for dtype in [GgmlDType::Q4_0, GgmlDType::Q4_1, GgmlDType::Q8_0] {
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
    fn concat_joins_rows_and_refuses_mixed_types() {
        let (a, _) = matrix(GgmlDType::Q4_1, 3, 64);
        let (b, _) = matrix(GgmlDType::Q4_1, 5, 64);
        let (c, _) = matrix(GgmlDType::Q8_0, 5, 64);
        let joined = BlockMatrix::concat(&[&a, &b]).unwrap();
        assert_eq!(joined.rows(), 8);
        let x = values(64, 5);
        let mut both = a.matmul(&x);
        both.extend(b.matmul(&x));
        assert_eq!(joined.matmul(&x), both);
        assert!(BlockMatrix::concat(&[&a, &c]).is_none());
        assert!(BlockMatrix::from_ggml(GgmlDType::Q4_1, &[0; 7], 1, 32).is_none());
    }
}

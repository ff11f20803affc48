//! The Llama forward pass (grouped-query attention, RoPE, SwiGLU, RMS norm) over quantized or
//! full-precision weights, with a growing key/value cache.

use std::borrow::Cow;
use std::collections::HashMap;
use std::fs::File;
use std::io::BufReader;
use std::path::Path;
use std::sync::Arc;

use candle_core::quantized::{GgmlDType, QMatMul, QStorage, QTensor, gguf_file};
use candle_core::{D, DType, Device, Module, Tensor};

use crate::ModelError;
use crate::blocks::BlockMatrix;
use crate::config::ModelConfig;

/// How a checkpoint lays out the two halves that RoPE rotates together.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RopeLayout {
    /// Pairs are adjacent (`x[2i], x[2i+1]`): GGUF, whose converter permutes q/k rows.
    Interleaved,
    /// Pairs are half a head apart (`x[i], x[i + d/2]`): Hugging Face checkpoints.
    Halves,
}

struct Block {
    attn_norm: Tensor,
    /// Query, key and value.
    qkv: Projections,
    o: Matrix,
    ffn_norm: Tensor,
    /// Gate and up.
    gate_up: Projections,
    down: Matrix,
}

/// A weight matrix: blocks multiplied by this crate's kernels (Q4_0, Q4_1, Q8_0, Q4_K, Q5_K,
/// Q6_K on the CPU), or anything candle multiplies (F16, F32, Q2_K, Q3_K, any type on a GPU).
#[derive(Clone)]
pub(crate) enum Matrix {
    Blocks(Arc<BlockMatrix>),
    Candle(QMatMul),
}

impl Matrix {
    fn rows(&self) -> candle_core::Result<usize> {
        match self {
            Self::Blocks(b) => Ok(b.rows()),
            Self::Candle(QMatMul::QTensor(q)) => q.shape().dims2().map(|d| d.0),
            Self::Candle(QMatMul::Tensor(t) | QMatMul::TensorF16(t)) => t.dims2().map(|d| d.0),
        }
    }

    /// `x [.., cols] · Wᵀ`.
    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        match self {
            Self::Blocks(b) => x.contiguous()?.apply_op1_no_bwd(b.as_ref()),
            Self::Candle(m) => m.forward(x),
        }
    }

    /// Rows `ids` as `f32` `[ids, cols]` (an embedding lookup), dequantizing only those rows.
    fn lookup(&self, ids: &[u32], device: &Device) -> candle_core::Result<Tensor> {
        let ids_tensor = || Tensor::new(ids, device);
        match self {
            Self::Blocks(b) => {
                Tensor::from_vec(b.dequantize_rows(ids), (ids.len(), b.cols()), device)
            }
            Self::Candle(QMatMul::Tensor(t)) => t.index_select(&ids_tensor()?, 0),
            Self::Candle(QMatMul::TensorF16(t)) => {
                t.index_select(&ids_tensor()?, 0)?.to_dtype(DType::F32)
            }
            Self::Candle(QMatMul::QTensor(q)) => {
                let (_, cols) = q.shape().dims2()?;
                let dtype = q.dtype();
                let row_bytes = cols / dtype.block_size() * dtype.type_size();
                let data = q.data()?;
                let mut rows = Vec::with_capacity(ids.len() * row_bytes);
                for &id in ids {
                    let start = id as usize * row_bytes;
                    rows.extend_from_slice(&data[start..start + row_bytes]);
                }
                // Borrowed: candle 0.9.2 reads an owned `Cow` after dropping it.
                let storage = QStorage::from_data(Cow::Borrowed(&rows), device, dtype)?;
                QTensor::new(storage, (ids.len(), cols))?.dequantize(device)
            }
        }
    }
}

/// Matrices applied to the same input, fused into one matrix when they share a type (fewer
/// passes over the input, larger parallel loops).
enum Projections {
    Fused { matrix: Matrix, widths: Vec<usize> },
    Separate(Vec<Matrix>),
}

impl Projections {
    fn new(parts: Vec<Matrix>, device: &Device) -> Result<Self, ModelError> {
        let widths = parts
            .iter()
            .map(Matrix::rows)
            .collect::<candle_core::Result<Vec<_>>>()?;
        Ok(match fuse(&parts, device)? {
            Some(matrix) => Self::Fused { matrix, widths },
            None => Self::Separate(parts),
        })
    }

    /// The output of each matrix.
    fn forward(&self, x: &Tensor) -> candle_core::Result<Vec<Tensor>> {
        match self {
            Self::Separate(parts) => parts.iter().map(|p| p.forward(x)).collect(),
            Self::Fused { matrix, widths } => {
                let y = matrix.forward(x)?;
                let mut start = 0;
                widths
                    .iter()
                    .map(|&w| {
                        start += w;
                        y.narrow(D::Minus1, start - w, w)
                    })
                    .collect()
            }
        }
    }
}

/// One matrix with the rows of `parts`, when they are all stored alike.
fn fuse(parts: &[Matrix], device: &Device) -> Result<Option<Matrix>, ModelError> {
    if let Some(blocks) = parts
        .iter()
        .map(|p| match p {
            Matrix::Blocks(b) => Some(b.as_ref()),
            Matrix::Candle(_) => None,
        })
        .collect::<Option<Vec<_>>>()
    {
        return Ok(BlockMatrix::concat(&blocks).map(|b| Matrix::Blocks(Arc::new(b))));
    }
    if let Some(tensors) = parts
        .iter()
        .map(|p| match p {
            Matrix::Candle(QMatMul::Tensor(t)) => Some(t.clone()),
            _ => None,
        })
        .collect::<Option<Vec<Tensor>>>()
    {
        return Ok(Some(Matrix::Candle(QMatMul::Tensor(Tensor::cat(
            &tensors, 0,
        )?))));
    }
    let Some(quantized) = parts
        .iter()
        .map(|p| match p {
            Matrix::Candle(QMatMul::QTensor(q)) => Some(q),
            _ => None,
        })
        .collect::<Option<Vec<_>>>()
    else {
        return Ok(None);
    };
    let dtype = quantized[0].dtype();
    let (_, cols) = quantized[0].shape().dims2()?;
    let mut rows = 0;
    let mut bytes = Vec::new();
    for q in quantized {
        let (r, c) = q.shape().dims2()?;
        if q.dtype() != dtype || c != cols {
            return Ok(None);
        }
        rows += r;
        bytes.extend_from_slice(&q.data()?);
    }
    // Borrowed: candle 0.9.2 reads an owned `Cow` after dropping it.
    let storage = QStorage::from_data(Cow::Borrowed(&bytes), device, dtype)?;
    Ok(Some(Matrix::Candle(QMatMul::QTensor(Arc::new(
        QTensor::new(storage, (rows, cols))?,
    )))))
}

/// A loaded Llama: weights, RoPE frequencies and the device they live on.
pub struct Llama {
    config: ModelConfig,
    /// Token embeddings, kept as stored (rows are dequantized when looked up).
    embed: Matrix,
    blocks: Vec<Block>,
    norm: Tensor,
    lm_head: Matrix,
    /// RoPE inverse frequencies, `[1, head_dim / 2]`: the angles of the positions that run are
    /// computed as they run (a table for the whole context would be sized by a file's claim).
    inv_freq: Tensor,
    layout: RopeLayout,
    device: Device,
}

/// The keys and values of one sequence, one pair per layer, grown by doubling.
pub struct KvCache {
    layers: Vec<LayerCache>,
    len: usize,
}

#[derive(Default)]
struct LayerCache {
    k: Option<Tensor>,
    v: Option<Tensor>,
}

impl KvCache {
    /// Tokens already in the cache.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True before the first forward pass.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// An independent copy (the keys and values are copied, not shared).
    pub fn try_clone(&self) -> Result<Self, ModelError> {
        let copy = |t: &Option<Tensor>| t.as_ref().map(Tensor::copy).transpose();
        Ok(Self {
            layers: self
                .layers
                .iter()
                .map(|l| {
                    Ok(LayerCache {
                        k: copy(&l.k)?,
                        v: copy(&l.v)?,
                    })
                })
                .collect::<Result<_, candle_core::Error>>()?,
            len: self.len,
        })
    }

    /// Forgets every position from `len` on (the next tokens are written over them).
    pub fn truncate(&mut self, len: usize) {
        self.len = self.len.min(len);
    }
}

impl LayerCache {
    /// Appends `[1, kv_heads, n, head_dim]` keys and values after the first `len` positions and
    /// returns all of them.
    fn append(
        &mut self,
        len: usize,
        keys: &Tensor,
        values: &Tensor,
    ) -> candle_core::Result<(Tensor, Tensor)> {
        let added = keys.dim(2)?;
        let needed = len + added;
        let capacity = self.k.as_ref().map_or(0, |t| t.dim(2).unwrap_or(0));
        if needed > capacity {
            let new_capacity = needed.max(capacity * 2).max(64);
            let grow = |old: Option<&Tensor>, like: &Tensor| -> candle_core::Result<Tensor> {
                let (batch, heads, _, width) = like.dims4()?;
                let fresh = Tensor::zeros(
                    (batch, heads, new_capacity, width),
                    like.dtype(),
                    like.device(),
                )?;
                if let Some(old) = old {
                    // `slice_set` copies only from contiguous tensors.
                    fresh.slice_set(&old.narrow(2, 0, len)?.contiguous()?, 2, 0)?;
                }
                Ok(fresh)
            };
            self.k = Some(grow(self.k.as_ref(), keys)?);
            self.v = Some(grow(self.v.as_ref(), values)?);
        }
        let (kc, vc) = (
            self.k.as_ref().expect("grown"),
            self.v.as_ref().expect("grown"),
        );
        kc.slice_set(keys, 2, len)?;
        vc.slice_set(values, 2, len)?;
        Ok((kc.narrow(2, 0, needed)?, vc.narrow(2, 0, needed)?))
    }
}

/// Where the weights of a checkpoint come from, under their Hugging Face or GGUF names.
pub(crate) trait WeightSource {
    /// A weight's shape (`[rows, columns]` or `[width]`), or `None` when absent; read from the
    /// file's header, before any weight.
    fn shape(&self, name: &str) -> Option<Vec<usize>>;
    /// A matrix (quantized or not), or `None` when absent.
    fn matrix(&mut self, name: &str) -> Result<Option<Matrix>, ModelError>;
    /// A tensor as `f32` on the device, or `None` when absent.
    fn tensor(&mut self, name: &str) -> Result<Option<Tensor>, ModelError>;
}

/// The weight names of one format.
pub(crate) struct Names {
    pub embed: &'static str,
    pub norm: &'static str,
    pub lm_head: &'static str,
    /// Block weight names with `{}` for the layer: attn_norm q k v o ffn_norm gate up down.
    pub block: [&'static str; 9],
}

pub(crate) const HF_NAMES: Names = Names {
    embed: "model.embed_tokens.weight",
    norm: "model.norm.weight",
    lm_head: "lm_head.weight",
    block: [
        "model.layers.{}.input_layernorm.weight",
        "model.layers.{}.self_attn.q_proj.weight",
        "model.layers.{}.self_attn.k_proj.weight",
        "model.layers.{}.self_attn.v_proj.weight",
        "model.layers.{}.self_attn.o_proj.weight",
        "model.layers.{}.post_attention_layernorm.weight",
        "model.layers.{}.mlp.gate_proj.weight",
        "model.layers.{}.mlp.up_proj.weight",
        "model.layers.{}.mlp.down_proj.weight",
    ],
};

pub(crate) const GGUF_NAMES: Names = Names {
    embed: "token_embd.weight",
    norm: "output_norm.weight",
    lm_head: "output.weight",
    block: [
        "blk.{}.attn_norm.weight",
        "blk.{}.attn_q.weight",
        "blk.{}.attn_k.weight",
        "blk.{}.attn_v.weight",
        "blk.{}.attn_output.weight",
        "blk.{}.ffn_norm.weight",
        "blk.{}.ffn_gate.weight",
        "blk.{}.ffn_up.weight",
        "blk.{}.ffn_down.weight",
    ],
};

impl Names {
    /// Checks every weight's shape against the configuration before any is read, so that no
    /// size a file claims in its configuration is allocated unless the file holds it; the
    /// output projection and `rope_freqs.weight` may be absent, the rest may not.
    fn check_shapes(&self, c: &ModelConfig, source: &dyn WeightSource) -> Result<(), ModelError> {
        let overflow = || ModelError::Config("the model's sizes overflow".into());
        let q = c.num_heads.checked_mul(c.head_dim).ok_or_else(overflow)?;
        let kv = c
            .num_kv_heads
            .checked_mul(c.head_dim)
            .ok_or_else(overflow)?;
        let (d, f) = (c.hidden_size, c.intermediate_size);
        let block = [
            vec![d],
            vec![q, d],
            vec![kv, d],
            vec![kv, d],
            vec![d, q],
            vec![d],
            vec![f, d],
            vec![f, d],
            vec![d, f],
        ];
        let check = |name: &str, want: &[usize], required: bool| match source.shape(name) {
            None if required => Err(ModelError::Weights(format!("the checkpoint has no {name}"))),
            Some(got) if got != want => Err(ModelError::Weights(format!(
                "{name} has shape {got:?} where the configuration needs {want:?}"
            ))),
            _ => Ok(()),
        };
        check(self.embed, &[c.vocab_size, d], true)?;
        check(self.lm_head, &[c.vocab_size, d], false)?;
        check(self.norm, &[d], true)?;
        check("rope_freqs.weight", &[c.head_dim / 2], false)?;
        // Layer by layer: a claim of more layers than the file has stops at the first missing.
        for layer in 0..c.num_layers {
            for (name, want) in self.block.iter().zip(&block) {
                check(&name.replace("{}", &layer.to_string()), want, true)?;
            }
        }
        Ok(())
    }
}

impl Llama {
    /// Builds the model from a source of weights; a `rope_freqs.weight` tensor (GGUF's form of
    /// Llama 3.1's RoPE scaling) divides the RoPE frequencies.
    pub(crate) fn build(
        config: ModelConfig,
        source: &mut dyn WeightSource,
        names: &Names,
        layout: RopeLayout,
        device: &Device,
    ) -> Result<Self, ModelError> {
        names.check_shapes(&config, source)?;
        let missing = |name: &str| ModelError::Weights(format!("the checkpoint has no {name}"));
        let matrix = |source: &mut dyn WeightSource, name: String| {
            source.matrix(&name)?.ok_or_else(|| missing(&name))
        };
        let vector = |source: &mut dyn WeightSource, name: String| {
            source.tensor(&name)?.ok_or_else(|| missing(&name))
        };
        let embed = if device.is_cpu() {
            matrix(source, names.embed.to_owned())?
        } else {
            Matrix::Candle(QMatMul::Tensor(vector(source, names.embed.to_owned())?))
        };
        let mut blocks = Vec::with_capacity(config.num_layers);
        for layer in 0..config.num_layers {
            let name = |i: usize| names.block[i].replace("{}", &layer.to_string());
            let qkv = vec![
                matrix(source, name(1))?,
                matrix(source, name(2))?,
                matrix(source, name(3))?,
            ];
            let gate_up = vec![matrix(source, name(6))?, matrix(source, name(7))?];
            blocks.push(Block {
                attn_norm: vector(source, name(0))?,
                qkv: Projections::new(qkv, device)?,
                o: matrix(source, name(4))?,
                ffn_norm: vector(source, name(5))?,
                gate_up: Projections::new(gate_up, device)?,
                down: matrix(source, name(8))?,
            });
        }
        let norm = source
            .tensor(names.norm)?
            .ok_or_else(|| missing(names.norm))?;
        // Tied embeddings: the output projection is the embedding matrix, shared.
        let lm_head = match source.matrix(names.lm_head)? {
            Some(m) => m,
            None => embed.clone(),
        };
        let mut inv_freq = config.inverse_frequencies();
        if let Some(factors) = source.tensor("rope_freqs.weight")? {
            let factors = factors.to_vec1::<f32>().map_err(ModelError::from)?;
            if factors.len() != inv_freq.len() {
                return Err(ModelError::Weights(format!(
                    "rope_freqs.weight has {} factors for {} frequencies",
                    factors.len(),
                    inv_freq.len()
                )));
            }
            for (f, s) in inv_freq.iter_mut().zip(factors) {
                *f /= s;
            }
        }
        let half = inv_freq.len();
        let inv_freq = Tensor::from_vec(inv_freq, (1, half), device)?;
        Ok(Self {
            config,
            embed,
            blocks,
            norm,
            lm_head,
            inv_freq,
            layout,
            device: device.clone(),
        })
    }

    /// The model's dimensions.
    pub fn config(&self) -> &ModelConfig {
        &self.config
    }

    /// An empty cache for a new sequence.
    pub fn new_cache(&self) -> KvCache {
        KvCache {
            layers: (0..self.blocks.len())
                .map(|_| LayerCache::default())
                .collect(),
            len: 0,
        }
    }

    /// Runs `tokens` after what `cache` holds and returns the logits `[n, vocab]` of every
    /// position (`all_positions`) or of the last one only (`[1, vocab]`).
    pub fn forward(
        &self,
        tokens: &[u32],
        cache: &mut KvCache,
        all_positions: bool,
    ) -> Result<Tensor, ModelError> {
        self.check(tokens, cache)?;
        let logits = self
            .forward_inner(tokens, cache, all_positions)
            .map_err(ModelError::from)?;
        cache.len += tokens.len();
        Ok(logits)
    }

    /// Refuses tokens that do not fit the context or the vocabulary.
    fn check(&self, tokens: &[u32], cache: &KvCache) -> Result<(), ModelError> {
        let pos = cache.len;
        if tokens.is_empty() {
            return Err(ModelError::Input("no tokens to run".into()));
        }
        if pos + tokens.len() > self.config.max_position_embeddings {
            return Err(ModelError::Input(format!(
                "{} tokens exceed the model's context of {}",
                pos + tokens.len(),
                self.config.max_position_embeddings
            )));
        }
        if let Some(&bad) = tokens
            .iter()
            .find(|&&t| t as usize >= self.config.vocab_size)
        {
            return Err(ModelError::Input(format!(
                "token id {bad} is outside the vocabulary of {}",
                self.config.vocab_size
            )));
        }
        Ok(())
    }

    fn forward_inner(
        &self,
        tokens: &[u32],
        cache: &mut KvCache,
        all_positions: bool,
    ) -> candle_core::Result<Tensor> {
        let pos = cache.len;
        let n = tokens.len();
        let mut x = self.embed.lookup(tokens, &self.device)?.unsqueeze(0)?;
        let mask = (n > 1)
            .then(|| causal_mask(n, pos, &self.device))
            .transpose()?;
        let (cos, sin) = self.rope(&Tensor::arange(pos as u32, (pos + n) as u32, &self.device)?)?;
        let eps = self.config.rms_norm_eps as f32;
        for (block, layer_cache) in self.blocks.iter().zip(&mut cache.layers) {
            let h = candle_nn::ops::rms_norm(&x, &block.attn_norm, eps)?;
            let qkv = self.project(block, &h, &cos, &sin)?;
            let attn = self.attend((&qkv.0, &qkv.1, &qkv.2), pos, mask.as_ref(), layer_cache)?;
            x = (x + block.o.forward(&attn)?)?;
            x = (&x + self.feed_forward(block, &x)?)?;
        }
        let x = if all_positions {
            x
        } else {
            x.narrow(1, n - 1, 1)?
        };
        let x = candle_nn::ops::rms_norm(&x, &self.norm, eps)?;
        self.lm_head.forward(&x)?.squeeze(0)
    }

    /// cos and sin of the RoPE angles at `positions` (`u32`, `[n]`): `[n, head_dim / 2]` each.
    fn rope(&self, positions: &Tensor) -> candle_core::Result<(Tensor, Tensor)> {
        let angles = positions
            .to_dtype(DType::F32)?
            .unsqueeze(1)?
            .broadcast_mul(&self.inv_freq)?;
        Ok((angles.cos()?, angles.sin()?))
    }

    /// Rotated queries and keys, and values, `[batch, heads, n, head_dim]`, of `hidden`
    /// `[batch, n, width]` at the positions of `cos`/`sin`.
    fn project(
        &self,
        block: &Block,
        hidden: &Tensor,
        cos: &Tensor,
        sin: &Tensor,
    ) -> candle_core::Result<(Tensor, Tensor, Tensor)> {
        let cfg = &self.config;
        let (batch, len, _) = hidden.dims3()?;
        let qkv = block.qkv.forward(hidden)?;
        let heads = |t: &Tensor, count: usize| -> candle_core::Result<Tensor> {
            t.reshape((batch, len, count, cfg.head_dim))?
                .transpose(1, 2)?
                .contiguous()
        };
        let rotate = |t: Tensor| match self.layout {
            RopeLayout::Interleaved => candle_nn::rotary_emb::rope_i(&t, cos, sin),
            RopeLayout::Halves => candle_nn::rotary_emb::rope(&t, cos, sin),
        };
        Ok((
            rotate(heads(&qkv[0], cfg.num_heads)?)?,
            rotate(heads(&qkv[1], cfg.num_kv_heads)?)?,
            heads(&qkv[2], cfg.num_kv_heads)?,
        ))
    }

    /// Attention of one sequence's `n` new positions (q, k, v `[1, heads, n, head_dim]`) over
    /// its cache and themselves: `[1, n, heads * head_dim]`.
    fn attend(
        &self,
        (q, k, v): (&Tensor, &Tensor, &Tensor),
        pos: usize,
        mask: Option<&Tensor>,
        cache: &mut LayerCache,
    ) -> candle_core::Result<Tensor> {
        let cfg = &self.config;
        let len = q.dim(2)?;
        let (k, v) = cache.append(pos, k, v)?;
        let total = k.dim(2)?;
        // Grouped-query attention without copying keys: the query heads that share a key/value
        // head are stacked along the sequence axis.
        let group = cfg.num_heads / cfg.num_kv_heads;
        let q = q.reshape((1, cfg.num_kv_heads, group * len, cfg.head_dim))?;
        let scale = 1.0 / (cfg.head_dim as f64).sqrt();
        let scores = (q.matmul(&k.t()?)? * scale)?.reshape((1, cfg.num_heads, len, total))?;
        let scores = match mask {
            Some(mask) => scores.broadcast_add(mask)?,
            None => scores,
        };
        let weights = candle_nn::ops::softmax_last_dim(&scores)?.reshape((
            1,
            cfg.num_kv_heads,
            group * len,
            total,
        ))?;
        let y = weights
            .matmul(&v)?
            .reshape((1, cfg.num_heads, len, cfg.head_dim))?;
        y.transpose(1, 2)?
            .reshape((1, len, cfg.num_heads * cfg.head_dim))
    }

    /// Runs one new token of each of several sequences (a decoding step of a batch): logits
    /// `[sequences, vocab]`. The matrices are read once for all of them.
    pub fn forward_batch(
        &self,
        tokens: &[u32],
        caches: &mut [&mut KvCache],
    ) -> Result<Tensor, ModelError> {
        if tokens.len() != caches.len() || tokens.is_empty() {
            return Err(ModelError::Input("one token per sequence is needed".into()));
        }
        for (token, cache) in tokens.iter().zip(caches.iter()) {
            self.check(&[*token], cache)?;
        }
        let logits = self.forward_batch_inner(tokens, caches)?;
        for cache in caches.iter_mut() {
            cache.len += 1;
        }
        Ok(logits)
    }

    fn forward_batch_inner(
        &self,
        tokens: &[u32],
        caches: &mut [&mut KvCache],
    ) -> candle_core::Result<Tensor> {
        let mut x = self.embed.lookup(tokens, &self.device)?.unsqueeze(1)?;
        let positions: Vec<u32> = caches.iter().map(|c| c.len as u32).collect();
        let positions = Tensor::new(positions.as_slice(), &self.device)?;
        let (cos, sin) = self.rope(&positions)?;
        let (cos, sin) = (cos.unsqueeze(1)?, sin.unsqueeze(1)?);
        let eps = self.config.rms_norm_eps as f32;
        for (layer, block) in self.blocks.iter().enumerate() {
            let h = candle_nn::ops::rms_norm(&x, &block.attn_norm, eps)?;
            let qkv = self.project(block, &h, &cos, &sin)?;
            let outputs = caches
                .iter_mut()
                .enumerate()
                .map(|(i, cache)| {
                    let one = |t: &Tensor| t.narrow(0, i, 1);
                    let pos = cache.len;
                    self.attend(
                        (&one(&qkv.0)?, &one(&qkv.1)?, &one(&qkv.2)?),
                        pos,
                        None,
                        &mut cache.layers[layer],
                    )
                })
                .collect::<candle_core::Result<Vec<_>>>()?;
            x = (x + block.o.forward(&Tensor::cat(&outputs, 0)?)?)?;
            x = (&x + self.feed_forward(block, &x)?)?;
        }
        let x = candle_nn::ops::rms_norm(&x, &self.norm, eps)?;
        self.lm_head.forward(&x)?.squeeze(1)
    }

    fn feed_forward(&self, block: &Block, x: &Tensor) -> candle_core::Result<Tensor> {
        let h = candle_nn::ops::rms_norm(x, &block.ffn_norm, self.config.rms_norm_eps as f32)?;
        let gate_up = block.gate_up.forward(&h)?;
        block
            .down
            .forward(&(candle_nn::ops::silu(&gate_up[0])? * &gate_up[1])?)
    }
}

/// `[n, pos + n]`: 0 where a query may look, -inf at later positions.
fn causal_mask(n: usize, pos: usize, device: &Device) -> candle_core::Result<Tensor> {
    let total = pos + n;
    let mask: Vec<f32> = (0..n)
        .flat_map(|i| (0..total).map(move |j| if j > pos + i { f32::NEG_INFINITY } else { 0.0 }))
        .collect();
    Tensor::from_vec(mask, (n, total), device)
}

/// Quantized types without a fast CPU kernel, here or in candle, converted at load.
fn needs_requantize(dtype: GgmlDType) -> bool {
    matches!(dtype, GgmlDType::Q5_0 | GgmlDType::Q5_1 | GgmlDType::Q8_1)
}

/// Weights read from a GGUF file.
pub(crate) struct GgufSource {
    pub content: gguf_file::Content,
    pub reader: BufReader<File>,
    pub device: Device,
    /// Target of `needs_requantize` types (Q8_0 by default: near-lossless).
    pub requantize: GgmlDType,
}

impl GgufSource {
    fn qtensor(&mut self, name: &str) -> Result<Option<QTensor>, ModelError> {
        if !self.content.tensor_infos.contains_key(name) {
            return Ok(None);
        }
        self.content
            .tensor(&mut self.reader, name, &self.device)
            .map(Some)
            .map_err(|e| ModelError::Weights(format!("GGUF tensor {name}: {e}")))
    }
}

impl WeightSource for GgufSource {
    fn shape(&self, name: &str) -> Option<Vec<usize>> {
        let info = self.content.tensor_infos.get(name)?;
        Some(info.shape.dims().to_vec())
    }

    fn matrix(&mut self, name: &str) -> Result<Option<Matrix>, ModelError> {
        let Some(mut t) = self.qtensor(name)? else {
            return Ok(None);
        };
        let row = t.shape().dims().last().copied().unwrap_or(0);
        if needs_requantize(t.dtype()) && row % self.requantize.block_size() == 0 {
            let full = t.dequantize(&self.device).map_err(ModelError::from)?;
            t = QTensor::quantize(&full, self.requantize).map_err(ModelError::from)?;
        }
        if self.device.is_cpu()
            && BlockMatrix::supports(t.dtype())
            && let Ok((rows, cols)) = t.shape().dims2()
            && let Some(blocks) = BlockMatrix::from_ggml(t.dtype(), &t.data()?, rows, cols)
        {
            return Ok(Some(Matrix::Blocks(Arc::new(blocks))));
        }
        QMatMul::from_qtensor(t)
            .map(|m| Some(Matrix::Candle(m)))
            .map_err(ModelError::from)
    }

    fn tensor(&mut self, name: &str) -> Result<Option<Tensor>, ModelError> {
        self.qtensor(name)?
            .map(|t| t.dequantize(&self.device).map_err(ModelError::from))
            .transpose()
    }
}

/// Weights read from Hugging Face safetensors (one file or shards), as `f32`.
pub(crate) struct SafetensorsSource {
    pub tensors: HashMap<String, Tensor>,
}

impl SafetensorsSource {
    /// Reads every shard.
    pub fn read(files: &[impl AsRef<Path>], device: &Device) -> Result<Self, ModelError> {
        let mut tensors = HashMap::new();
        for file in files {
            let file = file.as_ref();
            let part = candle_core::safetensors::load(file, device)
                .map_err(|e| ModelError::Weights(format!("{}: {e}", file.display())))?;
            tensors.extend(part);
        }
        Ok(Self { tensors })
    }

    /// The tensor as `f32`; the stored one (bf16, often) is dropped as it is converted.
    fn take(&mut self, name: &str) -> Result<Option<Tensor>, ModelError> {
        self.tensors
            .remove(name)
            .map(|t| t.to_dtype(DType::F32).map_err(ModelError::from))
            .transpose()
    }
}

impl WeightSource for SafetensorsSource {
    fn shape(&self, name: &str) -> Option<Vec<usize>> {
        self.tensors.get(name).map(|t| t.dims().to_vec())
    }

    fn matrix(&mut self, name: &str) -> Result<Option<Matrix>, ModelError> {
        Ok(self.take(name)?.map(|t| Matrix::Candle(QMatMul::Tensor(t))))
    }

    fn tensor(&mut self, name: &str) -> Result<Option<Tensor>, ModelError> {
        self.take(name)
    }
}

/// Log-softmax of one row of logits.
pub fn log_softmax(logits: &[f32]) -> Vec<f32> {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let sum: f64 = logits.iter().map(|&l| f64::from(l - max).exp()).sum();
    let log_sum = sum.ln() as f32 + max;
    logits.iter().map(|&l| l - log_sum).collect()
}

/// The rows of a `[n, vocab]` logits tensor.
pub fn rows(logits: &Tensor) -> Result<Vec<Vec<f32>>, ModelError> {
    logits
        .to_dtype(DType::F32)
        .and_then(|t| t.to_vec2::<f32>())
        .map_err(ModelError::from)
}

/// The last row of a `[n, vocab]` logits tensor.
pub fn last_row(logits: &Tensor) -> Result<Vec<f32>, ModelError> {
    logits
        .get(logits.dim(0).map_err(ModelError::from)? - 1)
        .and_then(|t| t.to_dtype(DType::F32))
        .and_then(|t| t.to_vec1::<f32>())
        .map_err(ModelError::from)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::synthetic::{random_weights, tiny_config, write_gguf};

    /// GGUF weights with every matrix multiplied by candle: by its quantized kernels, or
    /// dequantized to `f32` (the exact product of the stored weights).
    struct ViaCandle {
        source: GgufSource,
        dequantize: bool,
    }

    impl WeightSource for ViaCandle {
        fn shape(&self, name: &str) -> Option<Vec<usize>> {
            self.source.shape(name)
        }

        fn matrix(&mut self, name: &str) -> Result<Option<Matrix>, ModelError> {
            let Some(t) = self.source.qtensor(name)? else {
                return Ok(None);
            };
            Ok(Some(Matrix::Candle(if self.dequantize {
                QMatMul::Tensor(t.dequantize(&Device::Cpu)?)
            } else {
                QMatMul::from_qtensor(t)?
            })))
        }

        fn tensor(&mut self, name: &str) -> Result<Option<Tensor>, ModelError> {
            self.source.tensor(name)
        }
    }

    fn gguf(path: &Path) -> GgufSource {
        let mut reader = BufReader::new(File::open(path).unwrap());
        let content = gguf_file::Content::read(&mut reader).unwrap();
        GgufSource {
            content,
            reader,
            device: Device::Cpu,
            requantize: GgmlDType::Q8_0,
        }
    }

    fn log_probs(llama: &Llama, tokens: &[u32]) -> Vec<Vec<f32>> {
        let logits = llama.forward(tokens, &mut llama.new_cache(), true).unwrap();
        rows(&logits)
            .unwrap()
            .iter()
            .map(|r| log_softmax(r))
            .collect()
    }

    fn max_gap(a: &[Vec<f32>], b: &[Vec<f32>]) -> f32 {
        a.iter()
            .flatten()
            .zip(b.iter().flatten())
            .map(|(x, y)| (x - y).abs())
            .fold(0.0, f32::max)
    }

    #[test]
    fn k_quants_are_as_close_to_their_exact_product_as_candles_kernels() {
        let dir = tempfile::tempdir().unwrap();
        let mut config = tiny_config();
        // k-quants work on blocks of 256.
        config.hidden_size = 256;
        config.intermediate_size = 512;
        config.head_dim = 64;
        let weights = random_weights(&config, 3);
        let tokens: Vec<u32> = (0..48).map(|i| (i * 37 + 5) % 258).collect();
        let build = |source: &mut dyn WeightSource| {
            let layout = RopeLayout::Interleaved;
            Llama::build(config.clone(), source, &GGUF_NAMES, layout, &Device::Cpu).unwrap()
        };
        for dtype in [GgmlDType::Q4K, GgmlDType::Q5K, GgmlDType::Q6K] {
            let path = dir.path().join(format!("{dtype:?}.gguf"));
            write_gguf(&path, &config, &weights, dtype).unwrap();
            let ours = build(&mut gguf(&path));
            assert!(matches!(&ours.lm_head, Matrix::Blocks(_)), "{dtype:?}");
            let via = |dequantize| {
                let source = gguf(&path);
                log_probs(&build(&mut ViaCandle { source, dequantize }), &tokens)
            };
            let exact = via(true);
            // Both kernels round the inputs to 8 bits per 256 values (llama.cpp's Q8_K), ours
            // to ±127, candle's to -128..=127: the same error, give or take a tenth.
            let ours = max_gap(&log_probs(&ours, &tokens), &exact);
            let candle = max_gap(&via(false), &exact);
            eprintln!(
                "{dtype:?}: largest log-probability gap to the exact product: ours {ours}, candle's {candle}"
            );
            assert!(
                ours > 0.0 && ours <= 1.1 * candle,
                "{dtype:?}: {ours} vs {candle}"
            );
        }
    }
}

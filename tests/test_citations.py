"""Citation verification (`assistant.citations.verify`), shared by both answerers.

Most tests use hand-made sources and a deterministic bag-of-words embedding, so
the rules (removal, renumbering, quotes, layout) are checked exactly and fast; the
`slow` ones use the real sentence embedder where similarity itself is the point."""

from __future__ import annotations

import re
import zlib
from dataclasses import replace

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from assistant.citations import (
    MARKER,
    Source,
    claim_text,
    marker_numbers,
    strip_markers,
    verify,
)
from assistant.models import Occurrence, Paper
from assistant.text import sentence_pieces

THRESHOLD = 0.55
STOP = {"a", "an", "the", "of", "on", "in", "and", "or", "to", "is", "are", "by", "with", "for", "its", "it", "we",
        "our", "that", "this", "as", "at", "be", "whose"}


class BagOfWords:
    """Deterministic stand-in for the sentence embedder: unit vectors of hashed word
    counts, so the cosine measures shared content words. Counts its calls."""

    def __init__(self) -> None:
        self.calls: list[list[str]] = []

    def __call__(self, texts: list[str]) -> np.ndarray:
        self.calls.append(list(texts))
        out = np.zeros((len(texts), 1024), dtype=np.float32)
        for i, text in enumerate(texts):
            for word in re.findall(r"[a-z0-9]+", text.lower()):
                if word not in STOP:
                    out[i, zlib.crc32(word.encode()) % 1024] += 1.0
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return out / np.where(norms == 0, 1.0, norms)


def source(n: int, pid: str, title: str, sentences: list[str]) -> Source:
    paper = Paper(paper_id=pid, title=title, abstract=" ".join(sentences),
                  occurrences=[Occurrence(file="test.txt", line=n)], urls=[f"https://example.org/{pid}"])
    return Source(n=n, paper=paper, sentences=sentences)


MOMENTUM = [
    "Momentum accelerates gradient descent on ill-conditioned problems.",
    "We propose a momentum schedule that warms up the coefficient over the first epochs.",
    "Experiments on ImageNet show faster convergence than a constant coefficient.",
]
SPARSE = [
    "Sparse attention reduces the quadratic cost of transformers.",
    "Our kernel skips blocks of the attention matrix whose scores are negligible.",
    "It speeds up long-context language modeling by three times.",
]
DISTILL = [
    "Diffusion models generate images with many denoising steps.",
    "We distill a diffusion teacher into a one-step student generator.",
    "The student matches the teacher's FID on CIFAR-10 (e.g. 3.1 vs. 3.0).",
]


@pytest.fixture
def sources() -> list[Source]:
    return [
        source(1, "momentum", "Warm Momentum: Scheduling the Coefficient", MOMENTUM),
        source(2, "sparse", "Block-Sparse Attention Kernels", SPARSE),
        source(3, "distill", "One-Step Diffusion Distillation", DISTILL),
    ]


@pytest.fixture
def embed() -> BagOfWords:
    return BagOfWords()


def markers(text: str) -> list[int]:
    return [n for m in MARKER.finditer(text) for n in marker_numbers(m.group(1))]


def check_invariants(v, sources: list[Source]) -> None:
    """What every verified answer guarantees."""
    numbers = markers(v.text)
    assert list(dict.fromkeys(numbers)) == list(range(1, len(v.citations) + 1)), v.text
    assert [c.n for c in v.citations] == list(range(1, len(v.citations) + 1))
    by_id = {s.paper.paper_id: s for s in sources}
    assert len({c.paper_id for c in v.citations}) == len(v.citations)
    for c in v.citations:
        src = by_id[c.paper_id]
        assert c.title == src.paper.title and c.url == src.paper.url
        assert c.quote == src.sentences[c.sentence_index]
        assert c.support >= THRESHOLD
    assert 0 <= v.supported_claims <= v.cited_claims


def test_verbatim_quote_is_supported_without_the_model(sources, embed) -> None:
    v = verify(f"{SPARSE[1]} [2]", sources, embed, THRESHOLD)
    assert v.text == f"{SPARSE[1]} [1]"
    (c,) = v.citations
    assert (c.n, c.paper_id, c.quote, c.support, c.sentence_index) == (1, "sparse", SPARSE[1], 1.0, 1)
    assert embed.calls == [] and v.removed == [] and v.groundedness == 1.0


def test_paraphrase_cited_correctly(sources, embed) -> None:
    v = verify("The kernel skips negligible blocks of the attention matrix [2].", sources, embed, THRESHOLD)
    (c,) = v.citations
    assert c.paper_id == "sparse" and c.quote == SPARSE[1] and THRESHOLD <= c.support < 1.0
    assert v.text == "The kernel skips negligible blocks of the attention matrix [1]."
    check_invariants(v, sources)


def test_unsupported_claim_loses_its_citation(sources, embed) -> None:
    v = verify("Paris is the capital of France [1].", sources, embed, THRESHOLD)
    assert v.text == "Paris is the capital of France."
    assert v.citations == []
    (reason,) = v.removed
    assert reason.startswith("[1] removed:") and "does not support" in reason
    assert "'Paris is the capital of France.'" in reason and "Warm Momentum" in reason
    assert (v.cited_claims, v.supported_claims, v.groundedness) == (1, 0, 0.0)


def test_wrong_source_is_removed_right_one_kept(sources, embed) -> None:
    v = verify(f"{MOMENTUM[1]} [2, 1]", sources, embed, THRESHOLD)
    assert v.text == f"{MOMENTUM[1]} [1]"
    assert [c.paper_id for c in v.citations] == ["momentum"]
    assert len(v.removed) == 1 and v.removed[0].startswith("[2] removed")
    assert v.supported_claims == 0 and v.cited_claims == 1  # one of its citations failed


def test_citation_to_a_source_not_provided(sources, embed) -> None:
    text = f"{SPARSE[0]} [7]. {DISTILL[1]} [3, 7]. {MOMENTUM[0]} [0]."
    v = verify(text, sources, embed, THRESHOLD)
    assert v.removed == [
        "[7] removed: there is no source 7 (only 3 were provided)",
        "[7] removed: there is no source 7 (only 3 were provided)",
        "[0] removed: there is no source 0 (only 3 were provided)",
    ]
    assert [c.paper_id for c in v.citations] == ["distill"]
    assert "[7]" not in v.text and "[0]" not in v.text and "[1]" in v.text
    check_invariants(v, sources)


def test_renumbered_in_order_of_first_appearance(sources, embed) -> None:
    text = f"{DISTILL[1]} [3] {MOMENTUM[0]} [1] {DISTILL[2]} [3] {SPARSE[2]} [2]"
    v = verify(text, sources, embed, THRESHOLD)
    assert markers(v.text) == [1, 2, 1, 3]
    assert [(c.n, c.paper_id) for c in v.citations] == [(1, "distill"), (2, "momentum"), (3, "sparse")]
    assert v.citations[0].quote in (DISTILL[1], DISTILL[2])
    check_invariants(v, sources)


def test_only_cited_papers_are_listed(sources, embed) -> None:
    v = verify(f"{SPARSE[0]} [2]", sources, embed, THRESHOLD)
    assert [c.paper_id for c in v.citations] == ["sparse"]


def test_quote_is_the_best_support_over_all_claims(sources, embed) -> None:
    text = f"Sparse attention makes transformers cheaper [2]. {SPARSE[2]} [2]"
    v = verify(text, sources, embed, THRESHOLD)
    (c,) = v.citations
    assert c.quote == SPARSE[2] and c.support == 1.0


def test_marker_after_full_stop_and_layout_kept(sources, embed) -> None:
    text = (f"**Sparse**: {SPARSE[0]} [2] {SPARSE[1]} [2]\n\nOther papers:\n"
            f"\n- **Distill**: {DISTILL[1]} [3]\n- **Momentum**: {MOMENTUM[2]} [1]")
    v = verify(text, sources, embed, THRESHOLD)
    assert v.text == (f"**Sparse**: {SPARSE[0]} [1] {SPARSE[1]} [1]\n\nOther papers:\n"
                      f"\n- **Distill**: {DISTILL[1]} [2]\n- **Momentum**: {MOMENTUM[2]} [3]")
    assert v.text.count("\n") == text.count("\n") and "\n- **Distill**" in v.text
    assert [c.paper_id for c in v.citations] == ["sparse", "distill", "momentum"]
    assert v.removed == [] and embed.calls == []  # all verbatim
    check_invariants(v, sources)


def test_abbreviation_does_not_split_a_quoted_sentence(sources, embed) -> None:
    """"e.g. 3.1" must not end the sentence: the marker would sit on a fragment."""
    v = verify(f"{DISTILL[2]} [3]", sources, embed, THRESHOLD)
    assert v.removed == [] and v.citations[0].support == 1.0 and v.citations[0].quote == DISTILL[2]


def test_a_quoted_sentence_is_cut_where_the_index_cuts_it(sources, embed) -> None:
    """The index keeps "... i.i.d. generalization." and "... acceleration. %Our code ..."
    whole (no capital after the stop); verification must too, or the quote's first half
    is shown without a marker."""
    quoted = ("This sort of generalization is different from i.i.d. generalization. "
              "%Our code will be made publicly available.")
    src = [source(1, "p", "Paper", [quoted, "Another sentence of the abstract."])]
    v = verify(f"{quoted} [1]", src, embed, THRESHOLD)
    assert v.removed == [] and v.citations[0].quote == quoted and v.groundedness == 1.0
    assert [p for p in sentence_pieces(v.text) if p.strip()] == [f"{quoted} [1]"]


@pytest.mark.parametrize("marker, expected", [("[1-3]", [1, 2, 3]), ("[1\u20132]", [1, 2]), ("[2, 2]", [2, 2]),
                                              ("[3; 1]", [3, 1]), ("[1-99]", [1, 99])])
def test_marker_numbers(marker: str, expected: list[int]) -> None:
    (m,) = MARKER.finditer(marker)
    assert marker_numbers(m.group(1)) == expected


def test_range_marker_is_expanded_and_checked(sources, embed) -> None:
    v = verify(f"{SPARSE[0]} [1-3]", sources, embed, THRESHOLD)
    assert v.text == f"{SPARSE[0]} [1]"
    assert [c.paper_id for c in v.citations] == ["sparse"]
    assert sorted(r[:3] for r in v.removed) == ["[1]", "[3]"]


def test_duplicate_numbers_collapse(sources, embed) -> None:
    v = verify(f"{SPARSE[0]} [2, 2]", sources, embed, THRESHOLD)
    assert v.text == f"{SPARSE[0]} [1]"


def test_years_and_other_brackets_are_not_markers(sources, embed) -> None:
    text = f"{SPARSE[0]} [2] It appeared in [2024] and uses [a] notation."
    v = verify(text, sources, embed, THRESHOLD)
    assert "[2024]" in v.text and "[a]" in v.text and v.removed == []


def test_no_markers_means_no_citations(sources, embed) -> None:
    v = verify("Nothing here is cited.", sources, embed, THRESHOLD)
    assert (v.text, v.citations, v.removed, v.cited_claims, v.groundedness) == ("Nothing here is cited.", [], [], 0, 0.0)
    assert embed.calls == []
    assert verify("", sources, embed, THRESHOLD).citations == []


def test_source_sentences_with_their_own_reference_markers() -> None:
    """Abstracts cite their own references ("RoPE [32]"); a claim quoting such a
    sentence without that marker still counts as a verbatim quote."""
    sentence = "We combine rotary positional encoding (RoPE) [32] and attention with linear biases (ALiBi) [23]."
    srcs = [source(1, "pos", "Positional Encodings", ["Transformers need positions.", sentence])]
    embed = BagOfWords()
    v = verify(f"{strip_markers(sentence)} [1]", srcs, embed, THRESHOLD)
    assert v.removed == [] and v.citations[0].quote == sentence and v.citations[0].support == 1.0
    assert embed.calls == []
    assert strip_markers(sentence) == "We combine rotary positional encoding (RoPE) and attention with linear biases (ALiBi)."


def test_verbatim_quote_of_another_source_is_still_checked_against_the_cited_one() -> None:
    """Near-duplicate papers (the corpus has some): a claim quoting paper 2's wording but
    citing paper 1 is checked against paper 1 by similarity, not dropped unexamined."""
    v1 = "Our method reduces memory use by half while training large language models."
    v2 = "Our method reduces memory use by half while fine-tuning large language models."
    srcs = [source(1, "v1", "Version One", ["Intro.", v1]), source(2, "v2", "Version Two", ["Intro.", v2])]
    v = verify(f"{v2} [1]", srcs, BagOfWords(), THRESHOLD)
    assert v.removed == [], v.removed
    (c,) = v.citations
    assert c.paper_id == "v1" and c.quote == v1 and THRESHOLD <= c.support < 1.0


def test_stored_sentence_vectors_spare_re_embedding(sources, embed) -> None:
    stored = [replace(s, vectors=BagOfWords()(s.sentences)) for s in sources]
    v = verify("The kernel skips negligible blocks of the attention matrix [2].", stored, embed, THRESHOLD)
    assert embed.calls == [["The kernel skips negligible blocks of the attention matrix."]]
    assert v.citations[0].quote == SPARSE[1]


def test_claim_text_drops_markers_and_markup() -> None:
    assert claim_text("- **AdamP**: removes the radial component [1, 2].") == "AdamP: removes the radial component."


WORDS = st.sampled_from(["momentum", "attention", "sparse", "diffusion", "student", "kernel", "Paris", "the",
                         "blocks", "e.g.", "fast", "France", "cost", "(ALiBi)", "**bold**", "-", "\n", "\n\n"])
MARKS = st.sampled_from(["[1]", "[2]", "[3]", "[4]", "[99]", "[1, 3]", "[2-3]", "[0]", "[1][2]", "[2024]", ""])
SENTENCES = st.sampled_from(MOMENTUM + SPARSE + DISTILL)


@settings(max_examples=150, deadline=None, database=None)
@given(st.lists(st.tuples(st.one_of(SENTENCES, st.lists(WORDS, min_size=1, max_size=8).map(" ".join)), MARKS,
                          st.sampled_from([" ", ". ", "\n", "\n- "])), max_size=8))
def test_verify_invariants_hold_for_any_text(parts) -> None:
    srcs = [source(1, "momentum", "M", MOMENTUM), source(2, "sparse", "S", SPARSE), source(3, "distill", "D", DISTILL)]
    text = "".join(f"{body} {mark}{sep}" for body, mark, sep in parts)
    v = verify(text, srcs, BagOfWords(), THRESHOLD)
    check_invariants(v, srcs)
    assert all(1 <= n <= len(v.citations) for n in markers(v.text))
    # Everything the model cited is accounted for: kept or reported.
    cited = [n for n in markers(text) if n != 2024]
    assert len(cited) >= len(v.citations)
    assert len(v.removed) <= len(cited)


# ---------------------------------------------------------------- with the real embedder


@pytest.fixture(scope="module")
def adamp(assistant) -> Source:
    index = assistant.index
    pid = next(p for p, paper in index.papers.items() if paper.title.startswith("AdamP"))
    return Source(n=1, paper=index.papers[pid], sentences=index.sentences[pid])


@pytest.mark.slow
@pytest.mark.parametrize("claim", [
    "AdamP removes the radial component, the norm-increasing direction, at each step of the optimizer.",
    "Momentum makes the effective step sizes of scale-invariant weights shrink much faster.",
    "The fix only changes effective step sizes, not the effective update directions.",
])
def test_real_embedder_supports_paraphrases(assistant, adamp: Source, claim: str) -> None:
    threshold = assistant.settings.support_threshold
    v = verify(f"{claim} [1]", [adamp], assistant.index.dense.encode, threshold)
    assert v.removed == [], v.removed
    (c,) = v.citations
    assert threshold <= c.support < 1.0 and c.quote in adamp.sentences


@pytest.mark.slow
@pytest.mark.parametrize("claim", [
    "Paris is the capital of France.",
    "The model generates realistic videos of dancing people from a single photo.",
    "Protein structures are predicted with an equivariant graph network.",
])
def test_real_embedder_rejects_unrelated_claims(assistant, adamp: Source, claim: str) -> None:
    v = verify(f"{claim} [1]", [adamp], assistant.index.dense.encode, assistant.settings.support_threshold)
    assert v.citations == [] and len(v.removed) == 1 and "does not support" in v.removed[0]
    assert v.text == claim


@pytest.mark.slow
def test_real_embedder_with_stored_vectors_matches_fresh_embeddings(assistant, adamp: Source) -> None:
    index = assistant.index
    stored = index.dense.sentence_vectors([adamp.paper.paper_id])[adamp.paper.paper_id]
    claim = "Momentum makes the effective step sizes of scale-invariant weights shrink much faster [1]."
    a = verify(claim, [replace(adamp, vectors=stored)], index.dense.encode, 0.5)
    b = verify(claim, [adamp], index.dense.encode, 0.5)
    assert a.citations[0].sentence_index == b.citations[0].sentence_index
    assert abs(a.citations[0].support - b.citations[0].support) < 0.02

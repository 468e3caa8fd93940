"""Our BM25 scoring against the library's: `keyword.bm25_scores` replaces bm25s's
scoring loop for speed (docs/scale/README.md), so it must rank exactly as bm25s
does, on every evaluation question, over the real index. And re-ranking by
question parts: what it splits, and what it changes for a user."""

from __future__ import annotations

import json

import bm25s
import numpy as np
import pytest
import Stemmer

from assistant.config import PROJECT_ROOT, Settings
from assistant.keyword import TOKEN_PATTERN, bm25_scores, with_compounds
from assistant.models import Paper
from assistant.names import Abbreviations
from assistant.pipeline import Assistant
from assistant.rerank import RERANK_DEPTH, WORD_RERANK_DEPTH
from assistant.retrieve import Filters, Index, date_phrase, exclusion_phrase, mentions, open_index

QUESTION_FILES = ["core.jsonl", "hard.jsonl", "heldout.jsonl"]


def questions() -> list[str]:
    folder = PROJECT_ROOT / "evals" / "questions"
    return [json.loads(line)["question"] for name in QUESTION_FILES
            for line in (folder / name).read_text(encoding="utf-8").splitlines() if line.strip()]


@pytest.mark.slow
def test_unit_scores_equal_bm25s(full_index: Settings) -> None:
    keyword = open_index(full_index).keyword
    for q in questions()[:60]:
        tokens = bm25s.tokenize(q, stemmer=Stemmer.Stemmer("english"), token_pattern=TOKEN_PATTERN,
                                return_ids=False, show_progress=False)[0]
        ids = keyword.bm25.get_tokens_ids(tokens)
        if ids:
            assert np.allclose(bm25_scores(keyword.bm25, ids), keyword.bm25.get_scores_from_ids(ids), atol=1e-5), q


@pytest.mark.slow
def test_keyword_ranking_matches_bm25s_retrieve(full_index: Settings) -> None:
    """Same papers with the same scores as bm25s's own top 200 units (its `retrieve`,
    over the same saved index); the only allowed difference is which of several units
    tied at the cut gets in."""
    keyword = open_index(full_index).keyword
    for q in questions():
        tokens = bm25s.tokenize(q, stemmer=Stemmer.Stemmer("english"), token_pattern=TOKEN_PATTERN,
                                return_ids=False, show_progress=False)[0]
        if not keyword.bm25.get_tokens_ids(tokens):
            assert keyword.best_per_paper(q, 200) == {}, q
            continue
        units, scores = keyword.bm25.retrieve([tokens], k=200, show_progress=False)
        theirs: dict[str, float] = {}
        for unit, score in zip(units[0], scores[0]):
            if score > 0:
                pid = keyword.unit_papers[int(unit)]
                theirs[pid] = max(theirs.get(pid, 0.0), float(score))
        cut = float(scores[0].min())
        ours = keyword.best_per_paper(q, 200)
        assert ours == keyword.best_per_paper(q, 200), "deterministic"
        for pid in set(ours) & set(theirs):
            assert ours[pid] == pytest.approx(theirs[pid], abs=1e-5), q
        for pid in set(ours) ^ set(theirs):
            assert ours.get(pid, theirs.get(pid)) == pytest.approx(cut, abs=1e-5), f"{q}: {pid} is not a tie at the cut"


@pytest.mark.slow
def test_keyword_scores_equal_the_llama_index_retriever_the_index_was_built_with(full_index: Settings,
                                                                                 tmp_path) -> None:
    """Scores identical to llama-index's BM25Retriever (what built the keyword index
    before it moved to bm25s directly) over the same units, their hyphenated words
    also joined as the index writes them: the move changed no ranking."""
    from llama_index.core.schema import QueryBundle, TextNode
    from llama_index.retrievers.bm25 import BM25Retriever

    from assistant.index import _keyword_text, units_for

    index = open_index(full_index)
    papers = list(index.papers.values())
    papers.sort(key=lambda p: (p.occurrences[0].file, p.occurrences[0].line))
    nodes = [TextNode(id_=u.id, text=with_compounds(_keyword_text(p, u)), metadata={"paper_id": u.paper_id},
                      excluded_embed_metadata_keys=["paper_id"], excluded_llm_metadata_keys=["paper_id"])
             for p in papers for u in units_for(p)]
    theirs_retriever = BM25Retriever.from_defaults(nodes=nodes, similarity_top_k=200, verbose=False)
    for q in questions()[::5]:
        got = theirs_retriever.retrieve(QueryBundle(q))
        theirs: dict[str, float] = {}
        for node in got:
            if (node.score or 0) > 0:
                pid = node.node.metadata["paper_id"]
                theirs[pid] = max(theirs.get(pid, 0.0), float(node.score or 0.0))
        cut = min((float(n.score or 0.0) for n in got), default=0.0)
        ours = index.keyword_scores(q, 200)
        for pid in set(ours) & set(theirs):
            assert ours[pid] == pytest.approx(theirs[pid], abs=1e-5), q
        for pid in set(ours) ^ set(theirs):
            assert ours.get(pid, theirs.get(pid)) == pytest.approx(cut, abs=1e-5), f"{q}: {pid} is not a tie at the cut"


@pytest.mark.slow
def test_a_query_with_no_known_word_has_no_keyword_scores(full_index: Settings) -> None:
    assert open_index(full_index).keyword_scores("zxqv wqpj", 200) == {}


LONG_QUESTION = ("For vision-language assistants with many images in the prompt, which method shrinks the stored "
                 "attention state by favouring text entries and merging evicted pairs back in?")


@pytest.mark.slow
def test_the_paper_matching_every_part_of_a_long_question_comes_first(full_index: Settings) -> None:
    parts_only = full_index.model_copy(update={"word_support_weight": 0.0})  # the word re-rank is tested below
    on = open_index(parts_only).search(LONG_QUESTION, k=10)
    off = open_index(parts_only.model_copy(update={"part_coverage_weight": 0.0})).search(LONG_QUESTION, k=10)
    assert on.hits[0].title.startswith("LOOK-M")
    # Without it, papers that match one clause ("vision-language", "data reduction") rank above.
    assert not off.hits[0].title.startswith("LOOK-M")
    # It only re-orders the top of the ranking and hands the vectors it read to answering.
    assert {h.paper_id for h in on.hits[:RERANK_DEPTH]} == {h.paper_id for h in off.hits[:RERANK_DEPTH]}
    assert set(on.sentence_vectors) == {h.paper_id for h in on.hits[:RERANK_DEPTH]}
    assert "rerank" in on.timings_ms and "rerank" not in off.timings_ms


@pytest.mark.slow
@pytest.mark.parametrize("question, gold", [
    ("For event-driven neural networks, which work learns how long each link takes to pass its signal on, using 1D "
     "temporal filters with trainable tap locations?", "Learning Delays in Spiking Neural Networks"),
    ("Which generation method for denoising models solves the linear part of the underlying differential equation "
     "exactly, so that only the network-dependent part is approximated?", "DPM-Solver: A Fast ODE Solver"),
])
def test_the_paper_that_speaks_of_every_word_asked_about_comes_first(full_index: Settings, question: str,
                                                                     gold: str) -> None:
    """Hard paraphrases (hard-017, hard-082, tune split): their cluster's neighbours match
    the sentences as well, but only the gold paper has words near "event-driven",
    "link", "tap" or "linear", "exactly"."""
    on = open_index(full_index).search(question, k=10)
    off = open_index(full_index.model_copy(update={"word_support_weight": 0.0})).search(question, k=WORD_RERANK_DEPTH)
    assert on.hits[0].title.startswith(gold) and not off.hits[0].title.startswith(gold)
    assert any(h.title.startswith(gold) for h in off.hits)  # re-ordered from the top 20, not found anew
    assert "words" in on.timings_ms and "words" not in off.timings_ms
    assert len(on.hits) == 10  # the deeper re-rank does not lengthen what was asked for


@pytest.mark.slow
def test_a_question_naming_a_paper_is_not_re_ranked(full_index: Settings) -> None:
    ranking = open_index(full_index).search("In AdamP, how is the momentum term projected, and which layers use it?", k=10)
    assert ranking.hits[0].title.startswith("AdamP")
    assert "rerank" not in ranking.timings_ms and "words" not in ranking.timings_ms


@pytest.mark.slow
def test_the_index_cache_key_is_what_the_index_reads(full_index: Settings) -> None:
    """One loaded index per `IndexConfig`: a setting outside it (answering, serving, the
    LLM) shares the loaded index, a ranking knob gets its own, and the key has no
    hand-kept list to forget a new knob in."""
    index = open_index(full_index)
    assert isinstance(index, Index) and index.config == full_index.index_config
    for setting, value in (("top_k", 3), ("support_threshold", 0.9), ("llm_model", "other"), ("port", 1)):
        assert open_index(full_index.model_copy(update={setting: value})) is index, setting
    knobs = set(type(full_index.ranking).model_fields)
    assert {"rrf_k", "keyword_weight", "word_support_weight", "dense_candidates"} <= knobs
    other = full_index.model_copy(update={"rrf_k": full_index.rrf_k + 1})
    assert other.index_config != full_index.index_config and other.ranking.rrf_k == full_index.rrf_k + 1
    with pytest.raises(ValueError):  # frozen: a loaded index's knobs cannot change under it
        full_index.ranking.rrf_k = 1


@pytest.mark.slow
def test_stored_vectors_have_the_models_width(full_index: Settings) -> None:
    from assistant.embed import model_dim

    index = open_index(full_index)
    pid = next(iter(index.papers))
    rows = index.dense.sentence_vectors([pid])[pid]
    assert rows.shape == (len(index.sentences[pid]), model_dim(full_index.embed_model_path))
    assert index.dense.width == rows.shape[1] == index.dense.embed_query("adaptive optimizers").shape[0]


@pytest.mark.parametrize(("question", "bounds", "rest"), [
    ("Which papers were published in 2024?", ("2024-01-01", "2024-12-31"), "Which papers were?"),
    ("diffusion papers from 2023", ("2023-01-01", "2023-12-31"), "diffusion papers"),
    ("What work on LLM reasoning came out since 2023?", ("2023-01-01", None), "What work on LLM reasoning?"),
    ("papers on RL after 2021", ("2022-01-01", None), "papers on RL"),
    ("papers on RL before 2022", (None, "2021-12-31"), "papers on RL"),
    ("Which papers from 2022 to 2024 study video?", ("2022-01-01", "2024-12-31"), "Which papers study video?"),
    ("quantization papers between 2021 and 2023", ("2021-01-01", "2023-12-31"), "quantization papers"),
])
def test_a_year_the_question_states_is_a_date_filter(question: str, bounds: tuple, rest: str) -> None:
    dated = date_phrase(question)
    assert dated is not None
    assert (dated.filters.date_from, dated.filters.date_to) == bounds
    assert dated.rest == rest


@pytest.mark.parametrize("question", [
    "Which paper won the best paper award at NeurIPS 2023?", "How do the IMO 2022 problems look in Lean?",
    "Which model leads in 2024 benchmarks?", "What is AdamP?",
])
def test_a_year_naming_an_event_is_no_date_filter(question: str) -> None:
    assert date_phrase(question) is None


def _paper(n: int, abstract: str) -> Paper:
    return Paper(paper_id=f"p{n}", title=f"Paper {n}", abstract=abstract, occurrences=[])


def test_acronyms_the_abstracts_spell_out_are_searched_both_ways() -> None:
    """An acronym gets the reading at least two abstracts in three give; one two
    abstracts read differently gets none; a long form brings its own acronym only,
    not that of a shorter form inside it."""
    abbreviations = Abbreviations([
        _paper(1, "We adapt large language models (LLMs) with Low-Rank Adaptation (LoRA)."),
        _paper(2, "Reinforcement learning (RL) from scratch. A large language model (LLM) is used."),
        _paper(3, "Reinforcement learning from human feedback (RLHF) aligns chat models."),
        _paper(4, "A consistency model (CM) samples fast."),
        _paper(5, "A causal mask (CM) hides the future."),
    ])
    assert abbreviations.long["LLM"] == "large language model"
    assert "CM" not in abbreviations.long
    assert abbreviations.expand("Which papers fine-tune LLMs with LoRA?") == (
        "Which papers fine-tune LLMs with LoRA? large language model low rank adaptation")
    assert abbreviations.expand("papers on reinforcement learning from human feedback") == (
        "papers on reinforcement learning from human feedback RLHF")
    assert abbreviations.expand("What does a CM do?") == "What does a CM do?"


def test_a_question_spelling_out_an_acronym_lists_the_paper_that_writes_it_short(full_index: Settings,
                                                                                 assistant: Assistant) -> None:
    """The list for "learning-rate schedules" left out "Scaling Law with Learning Rate
    Annealing", whose abstract writes "LR annealing" (its keyword score counts towards
    its fit); the abstention model still reads the question's own words (the long
    forms' extra terms lifted three near misses of the hard and refusal sets past it)."""
    index = open_index(full_index)
    question = "Which papers are about learning-rate schedules?"
    assert "Scaling Law with Learning Rate Annealing" in [c.title for c in assistant.ask(question).citations]
    ranking = index.search(question)
    assert ranking.keyword_top == max(index.keyword_scores(question, index.config.ranking.dense_candidates).values())
    assert ranking.keyword_top < max(index.keyword_scores(index.abbreviations.expand(question),
                                                          index.config.ranking.dense_candidates).values())


@pytest.mark.parametrize(("question", "what", "rest"), [
    ("Which diffusion papers don't use transformers?", "transformers", "Which diffusion papers?"),
    ("Which papers never use reinforcement learning for alignment?", "reinforcement learning",
     "Which papers for alignment?"),
    ("Which papers that do not use attention model long sequences?", "attention", "Which papers model long sequences?"),
])
def test_papers_that_do_not_use_a_thing_is_an_exclusion(question: str, what: str, rest: str) -> None:
    known = {"reinforcement learning", "attention"}
    found = exclusion_phrase(question, lambda term: term in known)
    assert found is not None and (found.what, found.rest) == (what, rest)


@pytest.mark.parametrize("question", [
    # conv-002, hard-041, hard-048: negations that describe one method
    "Is there a tool that automates distributed training of LLMs so that developers do not have to configure "
    "model parallelism themselves?",
    "Which works train networks whose units communicate through discrete pulses instead of continuous activations?",
    "Which works change the content or style of an existing video, rather than generating a new one from scratch?",
    # a method that needs no training data says "training data" in its abstract
    "Which methods don't need any training data for quantization?",
])
def test_a_negation_that_describes_a_method_is_no_exclusion(question: str) -> None:
    assert exclusion_phrase(question) is None


def test_an_exclusion_leaves_out_the_papers_that_mention_the_thing() -> None:
    unet = _paper(1, "A U-Net denoiser for image diffusion.")
    dit = _paper(2, "We scale Transformer-based diffusion models.")
    assert not mentions(unet, "transformers") and mentions(dit, "transformers") and mentions(dit, "transformer")
    assert Filters(exclude=("transformers",)).accepts(unet) and not Filters(exclude=("transformers",)).accepts(dit)


"""Which paper a question names (assistant/names.py), on small synthetic corpora:
names from titles, and names an abstract defines (its acronyms and coined names),
counted only when they point at one paper."""

from __future__ import annotations

import pytest

from assistant.models import Paper
from assistant.names import NameMatcher, defined_names, long_form, spelled_out

FILLER = "We evaluate on standard benchmarks and report consistent gains over strong baselines."


def paper(pid: str, title: str, abstract: str) -> Paper:
    return Paper(paper_id=pid, title=title, abstract=f"{abstract} {FILLER}", occurrences=[])


def matcher(*papers: Paper) -> NameMatcher:
    others = [paper(f"other{i}", f"An unrelated study number {i} of learning", "Nothing named here at all.")
              for i in range(3)]
    return NameMatcher({p.paper_id: p for p in [*papers, *others]})


BFFG = paper("bffg", "Automatic Backward Filtering Forward Guiding for Markov processes",
             "We introduce the automatic Backward Filtering Forward Guiding (BFFG) paradigm for programmable "
             "inference on latent states.")
KVP = paper("kvp", "KV Prediction for Improved Time to First Token",
            "To reduce the time to first token (TTFT), we introduce a novel method called KV Prediction. "
            "A small auxiliary model processes the prompt.")
PASS = paper("pass", "Unlock Predictable Scaling from Emergent Abilities",
              "We present PassUntil, an evaluation strategy with massive sampling in the decoding phase.")


@pytest.mark.parametrize(("before", "acronym", "expected"), [
    ("We introduce the automatic Backward Filtering Forward Guiding", "BFFG", "Backward Filtering Forward Guiding"),
    ("we propose Temporal Motifs Explainer", "TempME", "Temporal Motifs Explainer"),
    ("a timestep-based dynamic LoRA", "TD-LoRA", "timestep-based dynamic LoRA"),
    ("Most work on large language models", "LLMs", "large language models"),
    ("the inference speed on the target devices", "BFFG", None),
])
def test_the_long_form_is_the_words_that_spell_the_acronym(before: str, acronym: str, expected: str | None) -> None:
    assert long_form(before, acronym) == expected


def test_an_acronym_the_abstract_introduces_names_its_paper_and_a_borrowed_one_does_not() -> None:
    abstract = ("Our model builds on State Space Duality (SSD) from Mamba2. We propose Time-aware Structured "
                "Fusion (TSF), which mixes both. Unlike retrieval-augmented generation (RAG), it needs no index.")
    assert spelled_out(abstract) == [("SSD", False), ("TSF", True), ("RAG", False)]
    assert defined_names(abstract) == ["TSF", "Time-aware Structured Fusion"]  # "we propose X (" names X too


def test_an_acronym_dubbed_as_is_introduced() -> None:
    """"an algorithm, dubbed as Reinforced Token Optimization (RTO)" introduces RTO; "as"
    after a naming word is no preposition making RTO what something else is of."""
    abstract = ("We introduce an algorithm, dubbed as Reinforced Token Optimization (RTO), which learns rewards. "
                "We propose a variant of Stochastic Weight Averaging (SWA) for tokens.")
    assert spelled_out(abstract) == [("RTO", True), ("SWA", False)]


@pytest.mark.parametrize("abstract", [
    "In this work, we introduce a novel method called KV Prediction. It is fast.",
    "We present PassUntil, an evaluation strategy with massive sampling.",
    "We propose ZO-RankSGD, a zeroth-order optimizer.",
])
def test_a_coined_name_the_abstract_introduces_is_defined(abstract: str) -> None:
    assert len(defined_names(abstract)) == 1


def test_generic_and_two_letter_acronyms_and_plain_words_are_no_names() -> None:
    abstract = ("We propose a method for large language models (LLMs) trained with reinforcement learning (RL) "
                "and a novel temporal difference (TD) rule. We propose Restart, a sampler.")
    assert defined_names(abstract) == []


@pytest.mark.parametrize(("question", "named"), [
    ("What does BFFG stand for?", ["bffg"]),
    ("What is KV Prediction and how does it cut the time to first token?", ["kvp"]),
    ("How does PassUntil measure task performance?", ["pass"]),
    ("how does passuntil measure task performance?", ["pass"]),  # a coined word matches in any case
    ("What is bffg?", []),  # an all-capitals acronym only as written: "step" is no STEP
    ("How can a small helper model cut the time to first token?", []),  # a description names nothing
])
def test_a_name_an_abstract_defines_names_its_paper(question: str, named: list[str]) -> None:
    assert matcher(BFFG, KVP, PASS).named(question) == named


def test_a_name_two_abstracts_spell_out_names_neither() -> None:
    """Two papers that both spell out "TIAR" (a journal version and its conference
    paper, or a shared baseline) leave the question to retrieval."""
    a = paper("a", "Temporal feature maintenance for quantized diffusion",
              "We propose temporal information aware reconstruction (TIAR) for quantized models.")
    b = paper("b", "Temporal features matter for quantized diffusion",
              "It extends temporal information aware reconstruction (TIAR) to video models.")
    assert matcher(a, b).named("What is TIAR?") == []


def test_a_defined_name_that_many_abstracts_use_names_none() -> None:
    """A baseline one paper introduces and two more use is common currency."""
    users = [paper(f"u{i}", f"Improving on a known baseline, variant {i}", f"We improve over GradMix by {i} points.")
             for i in range(2)]
    origin = paper("o", "Mixing gradients for robust training", "We propose GradMix, a gradient mixing rule.")
    assert matcher(origin, *users).named("How does GradMix work?") == []
    assert matcher(origin, users[0]).named("How does GradMix work?") == ["o"]


def test_a_title_name_wins_over_an_abstract_that_defines_the_same_name() -> None:
    """"HyDRA: ..." is that paper's name even when another abstract introduces a HyDRA of its own."""
    titled = paper("t", "HyDRA: Hybrid Diffusion for Robust Adaptation", "A diffusion method.")
    defining = paper("d", "Robust adaptation with hybrid diffusion",
                     "We introduce Hybrid Diffusion Robust Adaptation (HyDRA) for new domains.")
    assert matcher(titled, defining).named("What is HyDRA?") == ["t"]


def test_a_question_naming_two_defined_names_names_both_longest_first() -> None:
    assert matcher(BFFG, KVP).named("Compare BFFG with KV Prediction") == ["kvp", "bffg"]


def test_an_acronym_typed_in_lower_case_names_its_paper_unless_it_is_a_word() -> None:
    """People type "what is bffg?". An acronym matches in lower case when its lower-case
    form is no English word the model knows ("car") and no abstract writes it in lower
    case ("guide"); a plain capitalised name still matches only as written."""
    car = paper("car", "CAR: Collaborative Alerts Ranking for anomaly detection", "We rank alerts collaboratively.")
    guide = paper("guide", "GUIDE: Graph Unlearning with Informed Deletion", "A deletion method to guide unlearning.")
    papers = {p.paper_id: p for p in (BFFG, car, guide, PASS)}
    words = frozenset({"car", "what", "is"})
    names = NameMatcher(papers, words)
    assert names.named("what is bffg?") == ["bffg"]
    assert names.named("What is BFFG?") == ["bffg"]
    assert names.named("which car models drive themselves?") == []
    assert names.named("What is CAR?") == ["car"]
    assert names.named("how do I guide a model?") == [] and names.named("What is GUIDE?") == ["guide"]
    assert NameMatcher(papers).named("what is bffg?") == []  # no word list: as written only

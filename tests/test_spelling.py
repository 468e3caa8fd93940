"""Typos read as the corpus words they were meant for (assistant/spelling.py), and
the words that must stay as written: English words the corpus lacks (a near miss
must still be refused), British spellings, other forms of a corpus word, names and
other languages."""

from __future__ import annotations

import pytest

from assistant.pipeline import Assistant
from assistant.spelling import corrected, corrections, spelling_notice

CORPUS = {"quantization": 12, "models": 200, "modules": 30, "diffusion": 90, "optimizer": 15, "forecasting": 6,
          "cascade": 3, "analyzing": 4, "neighboring": 2, "quantizatio": 1, "generated": 40}


@pytest.mark.parametrize(("question", "fixes"), [
    ("quantizaton of diffusion modles", {"quantizaton": "quantization", "modles": "models"}),  # swapped letters: one edit
    ("Quantizaton of diffusion models", {"Quantizaton": "Quantization"}),
    ("time series forcasting", {"forcasting": "forecasting"}),
    ("federated learning of diffusion models", {}),  # an English word, not a typo of "generated"
    ("video interpolation for hand-drawn anime", {}),  # a near miss stays a near miss
    ("models of retweet cascades", {}),  # another form of "cascade"
    ("analysing neighbouring diffusion steps", {}),  # British spellings
    ("What is QuantizatonNet?", {}),  # a name
    ("¿Qué modelo de difusión usa cuantizaton?", {}),  # another language
])
def test_what_is_corrected_and_what_stays(question: str, fixes: dict[str, str]) -> None:
    assert corrections(question, CORPUS) == fixes


def test_a_correction_needs_a_word_two_abstracts_use() -> None:
    """"quantizatio" (one abstract's own typo) is no correction; the most used of the
    nearest words is ("models" over "modules" for "modles")."""
    assert corrections("quantizatoin", {"quantizatio": 1}) == {}
    assert corrections("modles", {"models": 200, "modules": 30}) == {"modles": "models"}


def test_the_question_is_rewritten_and_the_notice_names_each_word() -> None:
    fixes = {"quantizaton": "quantization", "modles": "models"}
    assert corrected("quantizaton of diffusion modles?", fixes) == "quantization of diffusion models?"
    assert spelling_notice(fixes) == "Read “quantizaton” as “quantization”, “modles” as “models”."


def test_a_misspelt_question_is_answered_as_meant(assistant: Assistant) -> None:
    """It was refused: no abstract has either misspelt word."""
    answer = assistant.ask("quantizaton of diffusion modles")
    assert not answer.abstained and "Quantization of Diffusion Models" in answer.citations[0].title
    assert [n.message for n in answer.notices if n.kind == "spelling"] == [
        "Read “quantizaton” as “quantization”, “modles” as “models”."]
    assert answer.question == "quantizaton of diffusion modles"  # shown as asked
    assert not assistant.ask("Which papers quantize diffusion models?").has_notice("spelling")

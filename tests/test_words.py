"""Word support (assistant/words.py): the vocabulary vectors built at index time, the
support a paper gives a question's words, and the check for questions in a language
the model does not read."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from assistant.config import PROJECT_ROOT, Settings
from assistant.corpus import load_corpus
from assistant import text
from assistant.words import (
    WORDS_FILE,
    WordVectors,
    build_word_vectors,
    content_words,
    looks_foreign,
)
from tests.conftest import write_small_corpus


class CountingEncoder:
    """The real model, counting what it is asked to embed."""

    def __init__(self, settings: Settings) -> None:
        from assistant.embed import get_embedder

        self.model = get_embedder(settings.embed_model_path, settings.embed_max_tokens, settings.embed_batch_size)
        self.seen: list[str] = []

    def encode(self, texts: list[str]) -> np.ndarray:
        self.seen.extend(texts)
        return self.model.encode(texts)


def test_content_words_drop_framing_and_function_words() -> None:
    assert content_words("Which paper quantizes a music diffusion model to 4-bit weights?") == [
        "quantizes", "music", "diffusion", "bit", "weights"]
    assert content_words("Is there a paper on it?") == []
    # a question asking for the best or the main one asks for a ranking, not about "best"
    assert content_words("What is the best method for text-to-video generation?") == ["text-to-video", "generation"]
    assert content_words("What are the main challenges in RLHF?") == ["challenges", "rlhf"]
    # asking for an overview frames the subject: "literature" and "say" cautioned a LoRA question
    assert content_words("What does the literature say about LoRA?") == ["lora"]
    # asking for papers is no subject either, but suggesting items is ("Which works suggest items to users?")
    assert content_words("Recommend some papers on RLHF") == ["rlhf"]
    assert content_words("Give me three good papers on spiking networks") == ["spiking", "networks"]
    assert content_words("Which works suggest items to users?") == ["suggest", "items", "users"]


def test_vocabulary_vectors_are_the_models_and_only_new_words_are_embedded_again(tmp_path: Path) -> None:
    settings = Settings(corpus_dir=write_small_corpus(tmp_path / "c3", n_papers=3))
    encoder = CountingEncoder(settings)
    target = tmp_path / WORDS_FILE
    three = load_corpus(settings.corpus_dir).papers
    vocabulary = {w for p in three for w in text.words(f"{p.title} {p.abstract}")}
    assert build_word_vectors(three, encoder.encode, "m1", target) == len(vocabulary)
    words = WordVectors(target, encoder.encode)
    assert set(words.row) == vocabulary and words.n_papers == 3
    sample = sorted(vocabulary)[:20]
    stored = words.vectors[[words.row[w] for w in sample]].astype(np.float32)
    assert np.allclose((stored * encoder.model.encode(sample)).sum(axis=1), 1.0, atol=2e-3)  # float16 storage
    assert int(words.df[words.row["the"]]) == 3  # every abstract uses it

    six = load_corpus(write_small_corpus(tmp_path / "c6", n_papers=6)).papers
    bigger = {w for p in six for w in text.words(f"{p.title} {p.abstract}")}
    encoder.seen.clear()
    assert build_word_vectors(six, encoder.encode, "m1", target) == len(bigger - vocabulary)
    assert set(encoder.seen) == bigger - vocabulary  # the three papers' words were reused
    encoder.seen.clear()
    build_word_vectors(six, encoder.encode, "m2", target)  # another model: nothing can be reused
    assert set(encoder.seen) == bigger


def test_a_word_the_top_paper_never_comes_near_lowers_its_support(assistant) -> None:
    index = assistant.index
    paper = next(p for p in index.papers.values() if p.title.startswith("TFMQ-DM"))
    (inside,) = index.words.support("temporal feature quantization of diffusion models", [paper])
    assert inside[0] == pytest.approx(1.0, abs=2e-3)  # every word occurs in the abstract
    (near_miss,) = index.words.support("temporal feature quantization of music diffusion models", [paper])
    assert near_miss[0] < inside[0] - 0.3 and near_miss[1] < inside[1]
    # a word the corpus never uses is embedded on the fly, not an error
    assert index.words.support("quantization of zxqvbw diffusion", [paper])[0][0] < 0.9


QUESTIONS = {json.loads(line)["id"]: json.loads(line)["question"]
             for line in (PROJECT_ROOT / "evals" / "questions" / "core.jsonl").read_text(encoding="utf-8").splitlines()}


@pytest.mark.parametrize("qid", ["core-101", "core-102", "core-103", "core-110"])
def test_a_question_in_another_language_gets_a_notice_instead_of_a_refusal_by_the_model(assistant, qid: str) -> None:
    """Before the language check all four were refused as unanswerable although the
    corpus holds their papers; now the abstention model leaves them alone and the user
    is told why results may miss (the Chinese one still finds nothing to cite)."""

    answer = assistant.ask(QUESTIONS[qid])
    assert not assistant.readable(QUESTIONS[qid])
    assert answer.has_notice("language") and not answer.has_notice("caution")
    if qid == "core-101":  # Spanish, with "KV" and "token" to go on: answered from the right paper
        assert not answer.abstained and answer.citations[0].title == "KV Prediction for Improved Time to First Token"


@pytest.mark.parametrize("question", [
    "How to cook pasta carbonara?", "Best hiking trails near Denver?", "Pasta carbonara recipe",
    "Which model detects plant diseases from smartphone photos of leaves?",  # refusal-017
])
def test_an_off_topic_english_question_is_refused_as_off_topic_not_as_foreign(assistant, question: str) -> None:
    """Few of their words are corpus words, which alone once read as "not English":
    the user was told to ask in English. Now they are judged like any question."""
    assert assistant.readable(question) and not looks_foreign(question)
    answer = assistant.ask(question)
    assert answer.abstained and not answer.has_notice("language")


@pytest.mark.parametrize("question", [
    "Quel article montre qu'un modèle de langage simule son alignement ?",
    "¿Qué método usa un modelo auxiliar pequeño?", "Welche Arbeit trainiert große Sprachmodelle?",
    "Quale modello genera video?", "哪篇论文把一维时间序列转换成二维张量？", "どのベンチマークですか",
])
def test_other_languages_look_foreign(question: str) -> None:
    assert looks_foreign(question)


def test_english_questions_are_read_as_english(assistant) -> None:

    english = [q for qid, q in QUESTIONS.items() if qid not in {"core-101", "core-102", "core-103", "core-110"}]
    assert all(assistant.readable(q) for q in english)
    assert not assistant.ask("How does h-Edit perform image editing with diffusion models?").has_notice("language")


def test_the_unknown_word_cache_is_safe_when_threads_clear_it(tmp_path: Path) -> None:
    """The server answers several questions at once; one clearing the cache of unknown
    words at its bound must not make another's lookup fail (KeyError) or go wrong."""
    import sys
    import threading

    import numpy as np

    from assistant.words import WordVectors

    path = tmp_path / "words.npz"
    np.savez(path, words=np.array(["diffusion"]), df=np.array([1], dtype=np.int32),
             vectors=np.ones((1, 4), dtype=np.float16), model=np.array("test"), papers=np.array(1))

    def encode(words: list[str]) -> np.ndarray:  # a deterministic vector per word: what the cache must return
        return np.array([[len(w), ord(w[0]), ord(w[-1]), 1.0] for w in words], dtype=np.float32)

    vectors = WordVectors(path, encode)
    vectors.UNKNOWN_WORDS = 3  # cleared almost every call
    errors: list[BaseException] = []

    def ask(t: int) -> None:
        try:
            for i in range(300):
                words = [f"w{t}x{i}", f"w{(t + 1) % 8}x{i}", "diffusion", f"z{i % 7}"]
                got = vectors._question_vectors(words)
                assert np.array_equal(got, np.vstack([encode(words[:2]), np.ones((1, 4)), encode(words[3:])]))
        except BaseException as exc:  # noqa: BLE001 - reported below with the thread's failure
            errors.append(exc)

    threads = [threading.Thread(target=ask, args=(t,)) for t in range(8)]
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # threads interleave as often as they can, as on a busy server
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        sys.setswitchinterval(interval)
    assert not errors, f"{len(errors)} threads failed, e.g. {errors[0]!r}"

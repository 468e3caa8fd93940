"""assistant/text.py: the one sentence splitter, tokenizer, stopword list, link
pattern and title head that indexing, answering, verification and the lab share."""

from __future__ import annotations

import pytest

from assistant.config import PROJECT_ROOT
from assistant.corpus import extract_urls, load_corpus
from assistant.text import ALNUM, STOPWORDS, TERM, URL, sentence_pieces, split_sentences, title_head, words


@pytest.fixture(scope="module")
def papers():
    return load_corpus(PROJECT_ROOT / "data" / "corpus").papers


def test_every_sentence_of_the_corpus_splits_the_same_way_for_indexing_and_verification(papers) -> None:
    """The index stores `split_sentences(abstract)`; verification cuts an answer with
    `sentence_pieces`. On every abstract of the real corpus both give the same
    sentences, and an answer quoting any stored sentence with its marker is one
    claim with that marker (a cut inside it would show half the quote unmarked)."""
    assert len(papers) == 356
    for paper in papers:
        stored = split_sentences(paper.abstract)
        pieces = sentence_pieces(paper.abstract)
        assert [p for p in pieces if p.strip()] == stored, paper.title
        assert "".join(pieces) == paper.abstract  # the layout is kept
        for sentence in stored:
            assert [p for p in sentence_pieces(f"{sentence} [1]") if p.strip()] == [f"{sentence} [1]"], sentence
        quoted = " ".join(f"{s} [{i}]" for i, s in enumerate(stored, 1))
        assert [p for p in sentence_pieces(quoted) if p.strip()] == [f"{s} [{i}]" for i, s in enumerate(stored, 1)]


@pytest.mark.parametrize("text, expected", [
    ("It works. [2] Then more.", ["It works. [2]", " ", "Then more."]),
    ("It works.[2] Then more.", ["It works.[2]", " ", "Then more."]),
    ("It works. [7]. Then more.", ["It works. [7].", " ", "Then more."]),
    ("It works. [1, 3]\n\n- Then more. [2]", ["It works. [1, 3]", "\n\n", "- Then more. [2]"]),
    ("As shown, e.g. in Fig. 3, it works. Then more.", ["As shown, e.g. in Fig. 3, it works.", " ", "Then more."]),
    ("i.i.d. generalization. %Our code is out.", ["i.i.d. generalization. %Our code is out."]),
])
def test_sentence_pieces_keep_markers_with_their_sentence(text: str, expected: list[str]) -> None:
    assert sentence_pieces(text) == expected


def test_split_sentences_cuts_glued_sentences_but_not_links() -> None:
    assert split_sentences("along the time axis.Given a clip, we fix it.") == ["along the time axis.", "Given a clip, we fix it."]
    assert split_sentences("Code at https://github.com/a/b.Then read it.") == ["Code at https://github.com/a/b.Then read it."]


def test_words_shapes() -> None:
    text = "Fine-tuning EEG models gives 4.70 FID in 3D; große Sprachmodelle"
    assert words(text) == ["fine-tuning", "eeg", "models", "gives", "fid", "in", "d", "große",
                           "sprachmodelle"]  # numbers are no words; "3D" leaves "d"
    assert words(text, keep_case=True)[:2] == ["Fine-tuning", "EEG"]
    assert words(text, ALNUM)[:6] == ["fine", "tuning", "eeg", "models", "gives", "4"]
    assert "3d" in words(text, TERM) and "4" not in words(text, TERM)
    assert {"the", "of", "is"} <= STOPWORDS and "model" not in STOPWORDS


def test_one_link_pattern_for_extraction_answers_and_topics() -> None:
    text = "Code: https: //github.com/a/b, see www.example.org/x or huggingface.ai/m/{m/} (e.g. not a link)."
    assert [m.group(0) for m in URL.finditer(text)] == ["https: //github.com/a/b,", "www.example.org/x",
                                                        "huggingface.ai/m/"]
    assert extract_urls(text) == ["https://github.com/a/b", "https://www.example.org/x", "https://huggingface.ai/m/"]
    # a link ends at a brace: the scrape's "x/{x/}" double leaves its inner word behind
    assert words(URL.sub(" ", text)) == ["code", "see", "or", "m", "e", "g", "not", "a", "link"]


def test_title_head() -> None:
    assert title_head("AdamP: Slowing Down the Slowdown") == "AdamP"
    assert title_head("Scaling Laws for Neural Language Models") == "Scaling Laws for Neural Language Models"
    assert title_head("Ratio: 3:1 Mixing: A Study") == "Ratio"

"""Validation of the evaluation question sets in evals/questions/*.jsonl.

A wrong gold title or an answer fact that is not in the gold abstract silently
poisons every evaluation run, so these checks are strict: they load the real
corpus and verify each question against it.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path

import pytest

from assistant.config import PROJECT_ROOT, Settings
from assistant.corpus import load_corpus, normalize_title
from evals.check_overlap import check_file, corpus_stats

QUESTIONS_DIR = PROJECT_ROOT / "evals" / "questions"
REQUIRED_KEYS = {"id", "question", "type", "gold_titles", "answer_facts", "notes"}
OPTIONAL_KEYS = {"split", "unanswerable_kind", "form"}
TYPES = {"concept", "fact", "multi", "lookup", "compare", "unanswerable", "adversarial"}
SPLITS = {"tune", "heldout"}
UNANSWERABLE_KINDS = {"off_topic", "near_miss"}
MAX_FACTS = 3
# Files whose questions carry a tune/heldout split.
SPLIT_FILES = {"hard", "refusal", "lists"}
# How a list question asks (lists.jsonl only; evals/README.md).
FORMS = {"which", "how", "paraphrase", "compare"}
CONVERSATIONS = QUESTIONS_DIR / "conversations.jsonl"  # one conversation a line: checked at the end of this file
QUESTION_FILES = sorted(p for p in QUESTIONS_DIR.glob("*.jsonl") if p != CONVERSATIONS)


def _load(path: Path) -> list[dict]:
    rows = []
    for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        assert line.strip(), f"{path.name}:{lineno}: blank line"
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError as exc:  # pragma: no cover - reported as a failure
            pytest.fail(f"{path.name}:{lineno}: invalid JSON: {exc}")
    return rows


@pytest.fixture(scope="module")
def question_sets() -> dict[str, list[dict]]:
    return {path.stem: _load(path) for path in QUESTION_FILES}


@pytest.fixture(scope="module")
def abstracts_by_title() -> dict[str, str]:
    corpus = load_corpus(Settings().corpus_dir)
    return {normalize_title(p.title): p.abstract for p in corpus.papers}


@pytest.fixture(scope="module")
def titles_by_norm() -> dict[str, str]:
    corpus = load_corpus(Settings().corpus_dir)
    return {normalize_title(p.title): p.title for p in corpus.papers}


def _all(question_sets: dict[str, list[dict]]):
    for name, rows in question_sets.items():
        for q in rows:
            yield name, q


def test_expected_files_exist() -> None:
    names = {p.stem for p in QUESTION_FILES}
    assert {"core", "heldout", "hard", "refusal"} <= names, names


def test_keys_and_value_types(question_sets) -> None:
    for name, q in _all(question_sets):
        keys = set(q)
        assert REQUIRED_KEYS <= keys, f"{name} {q.get('id')}: missing {REQUIRED_KEYS - keys}"
        assert keys <= REQUIRED_KEYS | OPTIONAL_KEYS, f"{name} {q['id']}: unexpected {keys - REQUIRED_KEYS - OPTIONAL_KEYS}"
        assert isinstance(q["id"], str) and q["id"], q
        assert isinstance(q["question"], str) and q["question"].strip(), q["id"]
        assert isinstance(q["notes"], str), q["id"]
        assert isinstance(q["gold_titles"], list) and all(isinstance(t, str) for t in q["gold_titles"]), q["id"]
        assert isinstance(q["answer_facts"], list) and all(isinstance(f, str) and f for f in q["answer_facts"]), q["id"]
        assert len(set(map(normalize_title, q["gold_titles"]))) == len(q["gold_titles"]), f"{q['id']}: duplicate gold"
        if "split" in q:
            assert q["split"] in SPLITS, f"{q['id']}: split {q['split']!r}"


def test_known_types(question_sets) -> None:
    for _, q in _all(question_sets):
        assert q["type"] in TYPES, f"{q['id']}: unknown type {q['type']!r}"


def test_ids_unique_across_files(question_sets) -> None:
    ids = Counter(q["id"] for _, q in _all(question_sets))
    dupes = [i for i, n in ids.items() if n > 1]
    assert not dupes, dupes


def test_ids_carry_their_file_prefix(question_sets) -> None:
    for name, q in _all(question_sets):
        assert q["id"].startswith(f"{name}-"), f"{q['id']} in {name}.jsonl"


def test_question_texts_unique_across_files(question_sets) -> None:
    texts = Counter(" ".join(q["question"].lower().split()) for _, q in _all(question_sets))
    dupes = [t for t, n in texts.items() if n > 1]
    assert not dupes, dupes


def test_gold_titles_exist_in_corpus(question_sets, abstracts_by_title) -> None:
    missing = [
        (q["id"], title)
        for _, q in _all(question_sets)
        for title in q["gold_titles"]
        if normalize_title(title) not in abstracts_by_title
    ]
    assert not missing, missing


def test_gold_presence_matches_type(question_sets) -> None:
    for _, q in _all(question_sets):
        if q["type"] == "unanswerable":
            assert q["gold_titles"] == [], f"{q['id']}: unanswerable with gold"
            assert q["answer_facts"] == [], f"{q['id']}: unanswerable with answer facts"
        elif q["type"] != "adversarial":
            assert q["gold_titles"], f"{q['id']}: {q['type']} question without gold"
        if q["type"] == "compare":
            assert len(q["gold_titles"]) == 2, f"{q['id']}: compare needs exactly two papers"
        if q["type"] == "multi":
            assert len(q["gold_titles"]) >= 2, f"{q['id']}: multi needs at least two papers"


def test_answer_facts_occur_verbatim_in_a_gold_paper(question_sets, abstracts_by_title, titles_by_norm) -> None:
    """Each fact is an exact (case-sensitive) substring of a gold abstract or gold title."""
    bad = []
    for _, q in _all(question_sets):
        texts = []
        for t in q["gold_titles"]:
            texts.append(abstracts_by_title.get(normalize_title(t), ""))
            texts.append(titles_by_norm.get(normalize_title(t), ""))
        for fact in q["answer_facts"]:
            if fact != fact.strip() or not any(fact in text for text in texts):
                bad.append((q["id"], fact))
    assert not bad, bad


def test_every_gold_question_has_answer_facts(question_sets) -> None:
    missing = [q["id"] for _, q in _all(question_sets) if q["gold_titles"] and not q["answer_facts"]]
    assert not missing, missing
    too_many = [q["id"] for _, q in _all(question_sets) if len(q["answer_facts"]) > MAX_FACTS]
    assert not too_many, too_many


def test_unanswerable_questions_carry_a_kind(question_sets) -> None:
    for _, q in _all(question_sets):
        if q["type"] == "unanswerable":
            assert q.get("unanswerable_kind") in UNANSWERABLE_KINDS, f"{q['id']}: kind {q.get('unanswerable_kind')!r}"
        else:
            assert "unanswerable_kind" not in q, f"{q['id']}: unanswerable_kind on a {q['type']} question"


def test_refusal_size_kinds_and_split(question_sets) -> None:
    refusal = question_sets["refusal"]
    assert len(refusal) >= 48, len(refusal)
    assert all(q["type"] == "unanswerable" for q in refusal)
    assert all("split" in q for q in refusal), "every refusal question needs a split"
    kinds = Counter(q["unanswerable_kind"] for q in refusal)
    assert all(kinds[k] >= 20 for k in UNANSWERABLE_KINDS), kinds
    share = sum(q["split"] == "heldout" for q in refusal) / len(refusal)
    assert 0.3 <= share <= 0.37, share
    # The heldout third is balanced across the two kinds.
    held = Counter(q["unanswerable_kind"] for q in refusal if q["split"] == "heldout")
    assert abs(held["off_topic"] - held["near_miss"]) <= 1, held


def test_core_size_and_types(question_sets) -> None:
    core = question_sets["core"]
    assert len(core) >= 100, len(core)
    assert {q["type"] for q in core} == TYPES


def test_heldout_size_and_types(question_sets) -> None:
    heldout = question_sets["heldout"]
    assert len(heldout) >= 25, len(heldout)
    assert {q["type"] for q in heldout} == TYPES


def test_hard_size_and_split(question_sets) -> None:
    hard = question_sets["hard"]
    assert len(hard) >= 60, len(hard)
    assert all("split" in q for q in hard), "every hard question needs a split"
    n_heldout = sum(q["split"] == "heldout" for q in hard)
    assert abs(n_heldout - len(hard) / 3) <= 2, (n_heldout, len(hard))
    # The heldout third is spread over kinds, not concentrated in one.
    kinds = {q["type"] for q in hard if q["split"] == "heldout"}
    assert {"concept", "multi", "unanswerable"} <= kinds, kinds


def test_lists_size_forms_and_split(question_sets) -> None:
    """The list set: 30+ questions asking for every paper that answers, in each of the
    four forms, a heldout third spread over the forms, exhaustive gold (notes say why)."""
    lists = question_sets["lists"]
    assert len(lists) >= 30, len(lists)
    assert all(q["type"] in {"multi", "compare"} and q.get("form") in FORMS and "split" in q for q in lists)
    assert all((q["form"] == "compare") == (q["type"] == "compare") for q in lists)
    forms = Counter(q["form"] for q in lists)
    assert forms["how"] >= 4 and forms["paraphrase"] >= 4 and forms["compare"] >= 6, forms
    assert abs(sum(q["split"] == "heldout" for q in lists) - len(lists) / 3) <= 2
    assert {q["form"] for q in lists if q["split"] == "heldout"} == FORMS
    # Each list records how it was made complete: the grep and the papers left out.
    assert all("complete" in q["notes"].lower() for q in lists if q["type"] == "multi")


def test_only_list_questions_carry_a_form(question_sets) -> None:
    for name, rows in question_sets.items():
        assert name == "lists" or not any("form" in q for q in rows), f"{name}.jsonl should not carry a form"


def test_only_split_files_have_splits(question_sets) -> None:
    for name, rows in question_sets.items():
        if name not in SPLIT_FILES:
            assert not any("split" in q for q in rows), f"{name}.jsonl should not carry a split"


def test_hard_paraphrases_avoid_rare_gold_words() -> None:
    rows = check_file(QUESTIONS_DIR / "hard.jsonl", corpus_stats())
    failing = [(r.qid, r.overlap) for r in rows if r.failing]
    assert not failing, failing


# ---------------------------------------------------------------- conversations (evals/README.md, "Conversations")

TURN_KINDS = {"first", "follow_up", "switch", "unanswerable"}
REFERRING = re.compile(r"\b(that|this|their|it|they|them)\b", re.IGNORECASE)


@pytest.fixture(scope="module")
def conversations() -> list[dict]:
    return _load(CONVERSATIONS)


def _turns(conversations: list[dict]):
    for c in conversations:
        for i, t in enumerate(c["turns"]):
            yield c, i, t


def test_conversation_set_size_kinds_and_split(conversations) -> None:
    """The issue's minimum: 25 conversations, 80 turns, 20 switches with a referring
    word, 8 unanswerable turns (half about the previous paper), a heldout third."""
    kinds = Counter(t["kind"] for _, _, t in _turns(conversations))
    assert len(conversations) >= 25 and sum(kinds.values()) >= 80, (len(conversations), kinds)
    assert set(kinds) == TURN_KINDS, kinds
    assert sum(1 for _, _, t in _turns(conversations) if t["kind"] == "switch" and REFERRING.search(t["question"])) >= 20
    unanswerable = Counter(t.get("unanswerable_kind") for _, _, t in _turns(conversations) if t["kind"] == "unanswerable")
    assert sum(unanswerable.values()) >= 8 and unanswerable["follow_up"] * 2 >= sum(unanswerable.values()), unanswerable
    share = sum(c["split"] == "heldout" for c in conversations) / len(conversations)
    assert 0.3 <= share <= 0.37, share
    assert len({c["id"] for c in conversations}) == len(conversations)


def test_conversation_turns_are_well_formed(conversations) -> None:
    for c, i, t in _turns(conversations):
        assert set(c) == {"id", "split", "notes", "turns"} and c["id"].startswith("conv-"), c["id"]
        assert c["split"] in SPLITS, c["id"]
        assert set(t) <= {"question", "kind", "gold_titles", "answer_facts", "notes", "unanswerable_kind"}, (c["id"], i)
        assert t["kind"] in TURN_KINDS and (t["kind"] == "first") == (i == 0), (c["id"], i, t["kind"])
        if t["kind"] == "unanswerable":
            assert t["gold_titles"] == [] and t["answer_facts"] == [], (c["id"], i)
            assert t["unanswerable_kind"] in {"follow_up", "off_topic"}, (c["id"], i)
        else:
            assert len(t["gold_titles"]) >= 1 and 1 <= len(t["answer_facts"]) <= MAX_FACTS, (c["id"], i)
            assert "unanswerable_kind" not in t, (c["id"], i)
        if t["kind"] == "follow_up":
            previous = next(p["gold_titles"] for p in reversed(c["turns"][:i]) if p["gold_titles"])
            assert set(t["gold_titles"]) <= set(previous), f"{c['id']} turn {i + 1}: a follow-up is about the paper under discussion"
        if t["kind"] == "switch":
            previous = next(p["gold_titles"] for p in reversed(c["turns"][:i]) if p["gold_titles"])
            assert not set(t["gold_titles"]) & set(previous), f"{c['id']} turn {i + 1}: a switch changes the paper"


def test_conversation_gold_titles_and_facts_are_the_corpus_own(conversations, abstracts_by_title, titles_by_norm) -> None:
    """Gold titles exist; each fact is an exact substring of a gold abstract or title."""
    bad = []
    for c, i, t in _turns(conversations):
        texts = [text for g in t["gold_titles"] for text in (abstracts_by_title.get(normalize_title(g)),
                                                              titles_by_norm.get(normalize_title(g)))]
        if None in texts:
            bad.append((c["id"], i + 1, "gold title not in the corpus"))
        bad += [(c["id"], i + 1, fact) for fact in t["answer_facts"]
                if fact != fact.strip() or not any(fact in text for text in texts if text)]
    assert not bad, bad

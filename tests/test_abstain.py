"""The abstention model: threshold choice, fitting, the shipped calibration, and what a
user sees when the calibration file is missing or damaged."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from assistant.abstain import SIGNALS, AbstentionModel, AbstentionModelError, question_signals
from assistant.config import PROJECT_ROOT, Settings
from evals.runner import file_sha256
from evals.calibrate import fit, group_threshold, margin_threshold, operating_threshold


def test_threshold_refuses_at_most_the_allowed_share_of_answerable_questions() -> None:
    answerable_scores = [i / 100 for i in range(40, 80)]  # 40 answerable questions
    scores = answerable_scores + [0.1, 0.2, 0.3]
    answerable = [True] * 40 + [False] * 3
    t = operating_threshold(scores, answerable, max_false=0.05)
    refused = sum(s < t for s, a in zip(scores, answerable) if a)
    assert refused == 2  # floor(0.05 * 40)
    assert all(s < t for s, a in zip(scores, answerable) if not a)
    assert operating_threshold(scores, answerable, max_false=0.0) == 0.40  # refuses no answerable one


def test_each_question_set_keeps_its_own_false_abstention_budget() -> None:
    """Pooled, an easy set's many high-scored answerable questions let the threshold
    rise into a hard set's answerable ones; per set, neither exceeds the budget."""
    easy = [0.5 + i / 100 for i in range(80)]  # 80 answerable, all high
    hard = [0.2 + i / 100 for i in range(20)]  # 20 answerable paraphrases, scored low
    scores, answerable = easy + hard, [True] * 100
    groups = ["core"] * 80 + ["hard"] * 20
    pooled = operating_threshold(scores, answerable, 0.05)
    assert sum(s < pooled for s in hard) > 0.05 * len(hard)  # pooled: 25% of the hard set refused
    t = group_threshold(scores, answerable, groups, 0.05)
    assert sum(s < t for s in hard) <= 0.05 * len(hard) and sum(s < t for s in easy) <= 0.05 * len(easy)


def test_the_threshold_refuses_no_answerable_question_that_buys_no_refusal() -> None:
    # unanswerable at 0.1-0.3; answerable at 0.35, 0.4 and up: a 10% budget would allow
    # refusing up to 0.45, which costs two answerable questions and refuses nothing more.
    scores = [0.1, 0.2, 0.3] + [0.35, 0.4] + [0.5 + i / 100 for i in range(18)]
    answerable = [False] * 3 + [True] * 20
    limit = operating_threshold(scores, answerable, 0.10)
    assert limit == 0.5
    t = margin_threshold(scores, answerable, limit)
    assert t == pytest.approx(0.325)  # midway between 0.3 (refused) and 0.35 (answered)
    assert all(s < t for s in scores[:3]) and not any(s < t for s in scores[3:])
    assert margin_threshold(scores, answerable, 0.05) == 0.05  # nothing refused below: the limit stands


def _synthetic_rows(n: int = 120, seed: int = 0) -> list[tuple[dict[str, float], bool]]:
    """Answerable questions have a close sentence, keyword matches and supported words; unanswerable ones less so."""
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        answerable = i % 4 != 0
        base = 0.6 if answerable else 0.45
        rows.append(({"best_sentence": base + rng.gauss(0, 0.06), "paper_similarity": base - 0.05 + rng.gauss(0, 0.08),
                      "keyword": (10 if answerable else 6) + rng.gauss(0, 2.5),
                      "word_support_min": base - 0.15 + rng.gauss(0, 0.08),
                      "word_support_weighted": base + 0.1 + rng.gauss(0, 0.08)}, answerable))
    return rows


def test_fit_ranks_unanswerable_questions_lower_and_keeps_its_false_abstention_budget(tmp_path: Path) -> None:
    rows = _synthetic_rows()
    model = fit(rows, max_false=0.05, meta={"question_sets": {"synthetic": "x"}})
    scores = [model.answerability(r) for r, _ in rows]
    answerable = [s for s, (_, a) in zip(scores, rows) if a]
    unanswerable = [s for s, (_, a) in zip(scores, rows) if not a]
    assert sum(unanswerable) / len(unanswerable) < sum(answerable) / len(answerable) - 0.3
    assert sum(s < model.threshold for s in answerable) <= 0.05 * len(answerable)
    assert sum(s < model.threshold for s in unanswerable) >= 0.5 * len(unanswerable)
    assert model.fitted_on["questions"] == len(rows) and model.fitted_on["unanswerable"] == 30
    assert 0.5 < model.fitted_on["loo_auc"] <= 1.0
    assert model.weights["best_sentence"] > 0 and model.weights["keyword"] > 0
    # The caution band sits above the refusal threshold and flags at most 15% of answerable questions.
    assert model.threshold <= model.caution_threshold
    assert sum(s < model.caution_threshold for s in answerable) <= 0.15 * len(answerable)
    model.save(tmp_path / "m.json")
    again = AbstentionModel.load(tmp_path / "m.json")
    assert again == model
    assert again.answerability(rows[1][0]) == pytest.approx(model.answerability(rows[1][0]))


def test_fit_refuses_a_calibration_set_without_unanswerable_questions() -> None:
    rows = [(r, True) for r, _ in _synthetic_rows(20)]
    with pytest.raises(ValueError, match="both answerable and unanswerable"):
        fit(rows)


def test_the_shipped_calibration_loads_and_documents_itself() -> None:
    model = AbstentionModel.load(Settings().abstain_model)
    assert set(model.weights) == set(SIGNALS)
    assert 0 < model.threshold < 1
    report = model.fitted_on
    assert report["unanswerable"] >= 40 and report["questions"] >= 150
    assert report["loo_false_abstention"] <= report["max_false_abstention"] == 0.05
    sets = {"evals/questions/core.jsonl", "evals/questions/hard.jsonl", "evals/questions/refusal.jsonl"}
    assert set(report["question_sets"]) == sets
    # fitted on the question files as they are (a changed file means `assistant calibrate` again)
    assert all(report["question_sets"][name] == file_sha256(PROJECT_ROOT / name) for name in sets)
    assert report["max_caution"] == 0.10 and report["fitted_answerable_answered_with_caution"] <= 0.10


@pytest.mark.parametrize("content,needle", [
    ("{not json", "unreadable"),
    (json.dumps({"weights": {"mystery": 1.0}, "intercept": 0, "means": {"mystery": 0}, "scales": {"mystery": 1},
                 "threshold": 0.5, "caution_threshold": 0.6}), "unknown or unscaled"),
    (json.dumps({"weights": {"keyword": 1.0}}), "unreadable"),
])
def test_a_damaged_calibration_names_the_file_and_the_fix(tmp_path: Path, content: str, needle: str) -> None:
    path = tmp_path / "abstention.json"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(AbstentionModelError) as info:
        AbstentionModel.load(path)
    assert str(path) in str(info.value) and needle in str(info.value) and "assistant calibrate" in str(info.value)


@pytest.mark.slow
def test_a_missing_calibration_is_a_clear_error_not_a_crash(full_index: Settings, tmp_path: Path) -> None:
    from assistant.pipeline import Assistant

    broken = full_index.model_copy(update={"abstain_model": tmp_path / "nowhere.json"})
    with pytest.raises(AbstentionModelError, match="is missing.*assistant calibrate"):
        Assistant(broken).ask("How can diffusion models be quantized to low bit widths?")


@pytest.mark.slow
def test_answerability_separates_a_near_miss_from_a_paraphrase(assistant) -> None:
    paraphrase = assistant.ask("How can image diffusion models be compressed to 4-bit weights after training?")
    near_miss = assistant.ask("Which paper folds proteins with a diffusion model over amino-acid sequences?")
    assert not paraphrase.abstained and paraphrase.answerability > 0.6
    assert near_miss.abstained and near_miss.answerability < paraphrase.answerability - 0.3
    assert "no paper that answers" in near_miss.answer


@pytest.mark.slow
def test_the_threshold_setting_overrides_the_calibrated_one(full_index: Settings) -> None:
    from assistant.pipeline import Assistant

    question = "How can image diffusion models be compressed to 4-bit weights after training?"
    strict = Assistant(full_index.model_copy(update={"abstain_threshold": 0.999})).ask(question)
    lenient = Assistant(full_index.model_copy(update={"abstain_threshold": 0.0})).ask(question)
    assert strict.abstained and not lenient.abstained
    assert strict.answerability == pytest.approx(lenient.answerability)


def run_calibrate(settings: Settings, monkeypatch: pytest.MonkeyPatch, *args: str):
    """`assistant calibrate ARGS` in-process against the test index."""
    from typer.testing import CliRunner

    from assistant.cli import app

    for key, value in (("INDEX_DIR", settings.index_dir), ("COLLECTION_PREFIX", settings.collection_prefix)):
        monkeypatch.setenv(f"ASSISTANT_{key}", str(value))
    return CliRunner().invoke(app, ["calibrate", *args])


@pytest.mark.slow
def test_calibrate_command_writes_a_model_that_the_pipeline_uses(full_index: Settings, tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "abstention.json"
    result = run_calibrate(full_index, monkeypatch, "--out", str(target))
    assert result.exit_code == 0, result.output
    assert "heldout, paper-naming and non-English questions left out" in result.output and "leave-one-out" in result.output
    fitted = AbstentionModel.load(target)
    shipped = AbstentionModel.load(Settings().abstain_model)
    # Same questions and corpus, another index build (Chroma's approximate neighbours may
    # differ at the margin): close to the model in the repository.
    assert fitted.threshold == pytest.approx(shipped.threshold, abs=0.02)
    assert fitted.weights == pytest.approx(shipped.weights, abs=0.1)
    from assistant.pipeline import Assistant

    answer = Assistant(full_index.model_copy(update={"abstain_model": target})).ask(
        "Which paper folds proteins with a diffusion model over amino-acid sequences?")
    assert answer.abstained and answer.answerability < fitted.threshold


@pytest.mark.slow
@pytest.mark.parametrize("retriever", ["dense", "bm25"])
def test_answerable_questions_are_not_refused_with_another_retriever(assistant, retriever: str) -> None:
    """The signals mean the same whichever retriever ranked (the best BM25 score of any
    paper, not of the retrieved ones), so one calibration serves every retriever."""
    for question in ("How can image diffusion models be compressed to 4-bit weights after training?",
                     "Which optimizers were discovered by searching over programs?",
                     "How do spiking neural networks learn synaptic delays?"):
        answer = assistant.ask(question, retriever=retriever)
        assert not answer.abstained, (retriever, question, answer.answerability)


@pytest.mark.slow
def test_a_near_miss_is_refused_and_the_nearest_papers_are_named(assistant) -> None:
    """hard-111 (tune split): reinforcement learning papers abound, none places macros on a chip."""
    near_miss = assistant.ask("Which paper uses reinforcement learning to place macros on a chip floorplan?")
    assert near_miss.abstained and near_miss.answerability < assistant.abstention.threshold
    assert near_miss.suggestions  # the nearest papers are still named


@pytest.mark.slow
def test_a_near_miss_it_answers_carries_a_caution_notice(assistant) -> None:
    near_miss = assistant.ask("Is there a voice conversion model that makes one speaker sound like another while "
                              "keeping the spoken words?")  # refusal-020, tune split
    clear = assistant.ask("Which papers learn synaptic delays in spiking neural networks?")
    model = assistant.abstention
    assert not near_miss.abstained and model.threshold <= near_miss.answerability < model.caution_threshold
    assert near_miss.has_notice("caution") and near_miss.citations  # still shows what is closest
    contract = near_miss.contract().model_dump(mode="json")  # what `ask --json` and POST /api/ask return
    assert [n["kind"] for n in contract["notices"]] == ["caution"]
    assert contract["answerability"] == round(near_miss.answerability, 4)
    assert clear.answerability >= model.caution_threshold and not clear.has_notice("caution")


@pytest.mark.slow
def test_calibrate_refuses_a_question_set_without_unanswerable_questions(full_index: Settings, tmp_path: Path,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    questions = tmp_path / "q.jsonl"
    questions.write_text(json.dumps({"id": "t-1", "question": "How do spiking networks learn delays?", "type": "concept",
                                     "gold_titles": ["Learning Delays in Spiking Neural Networks using Dilated "
                                                     "Convolutions with Learnable Spacings"]}) + "\n")
    target = tmp_path / "abstention.json"
    result = run_calibrate(full_index, monkeypatch, "--questions", str(questions), "--out", str(target))
    assert result.exit_code == 1 and "both answerable and unanswerable" in result.output
    assert not target.exists()  # nothing half-written


def test_the_signals_come_from_the_records_alone() -> None:
    """Abstention reads one thing, the evidence: its top paper's record and the two
    question-wide signals, with no ranking or index beside it."""
    from assistant.citations import Source
    from assistant.evidence import Evidence
    from assistant.models import Occurrence, Paper
    from assistant.words import WordSupport

    paper = Paper(paper_id="p", title="A paper", abstract="One. Two.", occurrences=[Occurrence(file="t.txt", line=1)])
    top = Source(n=1, paper=paper, sentences=["One.", "Two."], similarities=[0.2, 0.7],
                 support=WordSupport(0.3, 0.6, {"one": 0.3}))
    second = Source(n=2, paper=paper, sentences=["One."], similarities=[0.9], support=WordSupport(0.9, 0.9, {}))
    signals = question_signals(Evidence([top, second], paper_similarity=0.5, keyword_top=7.0))
    assert signals == {"best_sentence": 0.7, "paper_similarity": 0.5, "keyword": 7.0,
                       "word_support_min": 0.3, "word_support_weighted": 0.6}
    assert set(signals) == set(SIGNALS)
    nothing = question_signals(Evidence([], paper_similarity=0.4, keyword_top=0.0))
    assert nothing == {"best_sentence": 0.0, "paper_similarity": 0.4, "keyword": 0.0,
                       "word_support_min": 0.0, "word_support_weighted": 0.0}

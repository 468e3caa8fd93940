"""The evaluation runner: every metric on hand-made inputs whose values can be
checked with pencil and paper, `--compare` output, and a tiny end-to-end run."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from typer.testing import CliRunner

from assistant.cli import app
from assistant.corpus import normalize_title
from assistant.models import AnswerContract
from evals.stats import percentile
from evals.metrics import (
    EvalRun,
    Output,
    Question,
    abstention_auc,
    abstention_metrics,
    all_at_k,
    citation_precision,
    citation_recall,
    fact_first,
    fact_recall,
    gold_ranks,
    invalid_citations,
    load_questions,
    ndcg_at_k,
    recall_at_k,
    reciprocal_rank,
    score_question,
    summarize,
    summarize_config,
)
from evals.report import compare_runs, miss_reason, write_outputs
from evals.runner import parse_configs, result_row

RANKED = ["Xenon Paper", "alpha: A Study", "Yak", "Zebra", "Beta-Net"]  # gold A at 2, B at 5
GOLD = ["Alpha: a study!", "Beta Net"]  # differently cased/punctuated on purpose


# ------------------------------------------------------------ retrieval metrics


def test_gold_ranks_normalise_titles_and_count_a_paper_once() -> None:
    assert gold_ranks(GOLD, RANKED) == [2, 5]
    assert gold_ranks(GOLD, ["Alpha: A Study", "ALPHA a study"]) == [1]


@pytest.mark.parametrize(("k", "expected"), [(1, 0.0), (2, 0.5), (4, 0.5), (5, 1.0), (10, 1.0)])
def test_recall_at_k_is_the_share_of_gold_in_the_top_k(k: int, expected: float) -> None:
    assert recall_at_k(GOLD, RANKED, k) == expected


def test_all_at_k_needs_every_gold_paper() -> None:
    assert all_at_k(GOLD, RANKED, 4) == 0.0
    assert all_at_k(GOLD, RANKED, 5) == 1.0


def test_reciprocal_rank_uses_the_first_gold_paper() -> None:
    assert reciprocal_rank(GOLD, RANKED) == 0.5
    assert reciprocal_rank(GOLD, ["Yak"]) == 0.0
    assert reciprocal_rank(GOLD, RANKED, k=1) == 0.0


def test_ndcg_by_hand() -> None:
    # DCG = 1/log2(3) + 1/log2(6); ideal = 1 + 1/log2(3)
    expected = (1 / math.log2(3) + 1 / math.log2(6)) / (1 + 1 / math.log2(3))
    assert ndcg_at_k(GOLD, RANKED) == pytest.approx(expected)
    assert ndcg_at_k(["Yak"], RANKED) == pytest.approx(1 / math.log2(4))
    assert ndcg_at_k(GOLD, ["Alpha a study", "Beta net"]) == pytest.approx(1.0)


def test_retrieval_metrics_do_not_apply_without_gold() -> None:
    assert recall_at_k([], RANKED, 5) is None
    assert reciprocal_rank([], RANKED) is None
    assert ndcg_at_k([], RANKED) is None
    assert all_at_k([], RANKED, 10) is None


# ------------------------------------------------------------ answer metrics


def test_citation_precision_counts_gold_papers_only() -> None:
    cited = ["Alpha: A Study", "Yak"]
    assert citation_precision(cited, GOLD) == 0.5
    assert citation_precision(["Beta Net", "alpha: a study"], GOLD) == 1.0
    assert citation_precision([], GOLD) is None


def test_citation_recall_is_the_share_of_gold_cited() -> None:
    assert citation_recall(["alpha - a study"], GOLD) == 0.5
    assert citation_recall(["Yak"], GOLD) == 0.0
    assert citation_recall(["Yak"], []) is None


def test_fact_first_reads_only_the_first_cited_sentence() -> None:
    offline = "**Sophia: A Scalable Optimizer**: Sophia uses a diagonal Hessian estimate. [1] It is 2x faster. [1]"
    assert fact_first(["2x"], offline) == 0.0  # in the answer, not first
    assert fact_first(["diagonal hessian", "2x"], offline) == 1.0
    assert fact_first(["Sophia"], offline) == 1.0  # the sentence names it too; the heading alone would not count
    assert fact_first(["Scalable Optimizer"], offline) == 0.0
    assert fact_first(["2x"], "It is 2x faster than Adam [1, 2]. It estimates curvature [3].") == 1.0
    assert fact_first(["2x"], "") == 0.0 and fact_first([], offline) is None


def test_fact_recall_is_case_insensitive_substring() -> None:
    text = "It uses Expected Improvement and reaches 42% accuracy."
    assert fact_recall(["expected improvement", "42%", "knowledge gradient"], text) == pytest.approx(2 / 3)
    assert fact_recall([], text) is None


def test_invalid_citations_count_papers_never_retrieved() -> None:
    assert invalid_citations(["a", "b", "z"], ["a", "b", "c"]) == 1
    assert invalid_citations([], ["a"]) == 0


def test_abstention_metrics_by_hand() -> None:
    expected = [True, True, False, False, False]
    abstained = [True, False, True, False, False]
    m = abstention_metrics(expected, abstained)
    assert m["abstention_precision"] == 0.5  # 1 right of 2 abstentions
    assert m["abstention_recall"] == 0.5  # 1 of 2 unanswerables
    assert m["abstention_accuracy"] == 0.6  # 3 of 5 decisions right
    assert m["false_abstention_rate"] == pytest.approx(1 / 3)  # 1 of 3 answerables refused
    assert abstention_metrics([False], [False])["abstention_precision"] is None


def test_percentile_is_an_observed_value() -> None:
    """One definition for every report and benchmark: nearest rank, so a p50 or p95
    is a latency that was observed (the median of [10, 20, 30, 40] would be 25)."""
    values = [40.0, 10.0, 30.0, 20.0]
    assert percentile(values, 0.5) == 20.0
    assert percentile(values, 0.95) == 40.0
    assert percentile([7.0], 0.99) == 7.0
    assert percentile(list(map(float, range(1, 101))), 0.95) == 95.0
    assert percentile([], 0.5) is None


def test_abstention_auc_by_hand() -> None:
    should_abstain = [True, True, False, False]
    assert abstention_auc([0.1, 0.2, 0.5, 0.6], should_abstain) == pytest.approx(1.0)
    assert abstention_auc([0.6, 0.5, 0.2, 0.1], should_abstain) == pytest.approx(0.0)
    # one unanswerable (0.55) outranks one answerable (0.5): 3 of 4 pairs ordered -> 0.75
    assert abstention_auc([0.1, 0.55, 0.5, 0.6], should_abstain) == pytest.approx(0.75)
    assert abstention_auc([0.1], [True]) is None


# ------------------------------------------------------------ per question and summaries


def question(**kw) -> Question:
    base = dict(id="core-001", question="q?", type="concept", gold_titles=("Alpha: A Study",), answer_facts=("42%",))
    return Question(**{**base, **kw})


def answered(**kw) -> Output:
    base = dict(retrieved_ids=["x", "a", "y"], retrieved_titles=["Xenon Paper", "Alpha: A Study", "Yak"],
                latency_ms=12.0, contract={}, answer_text="Alpha reaches 42% [1].", abstained=False,
                cited_ids=["a", "y"], cited_titles=["Alpha: A Study", "Yak"],
                answerability=0.6, groundedness=1.0)
    return Output(**{**base, **kw})


def test_score_question_for_an_answer() -> None:
    s = score_question(question(), answered())
    assert (s["recall@1"], s["recall@5"], s["mrr"], s["first_gold_rank"]) == (0.0, 1.0, 0.5, 2.0)
    assert (s["cite_precision_gold"], s["cite_recall"]) == (0.5, 1.0)
    assert (s["fact_recall"], s["invalid_citations"], s["abstained"], s["groundedness"]) == (1.0, 0.0, 0.0, 1.0)


def test_a_citation_outside_the_retrieved_papers_is_invalid() -> None:
    s = score_question(question(), answered(cited_ids=["a", "zzz"], cited_titles=["Alpha: A Study", "Zed"]))
    assert s["invalid_citations"] == 1.0
    assert s["cite_precision_gold"] == 0.5


def test_an_abstention_scores_no_facts_and_retrieval_skips_unanswerables() -> None:
    s = score_question(question(), answered(abstained=True, answer_text="No paper; nearest 42%", cited_ids=[],
                                            cited_titles=[]))
    assert s["fact_recall"] == 0.0 and s["cite_recall"] == 0.0 and s["cite_precision_gold"] is None
    u = score_question(question(type="unanswerable", gold_titles=(), answer_facts=()), answered(abstained=True))
    assert u["recall@5"] is None and u["mrr"] is None and u["cite_recall"] is None


def test_baselines_get_retrieval_metrics_only() -> None:
    s = score_question(question(), Output(["a"], ["Alpha: A Study"], 1.0, {}))
    assert s["recall@1"] == 1.0
    assert "cite_recall" not in s and "abstained" not in s


def test_summarize_skips_not_applicable_values() -> None:
    rows = [
        result_row("hybrid", question(id="q1"), answered()),  # answered, gold at 2
        result_row("hybrid", question(id="q2", type="unanswerable", gold_titles=(), answer_facts=()),
                   answered(abstained=True, cited_ids=[], cited_titles=[], latency_ms=30.0)),
        result_row("hybrid", question(id="q3", type="unanswerable", gold_titles=(), answer_facts=()),
                   answered(latency_ms=20.0)),  # answered an unanswerable
    ]
    m = summarize(rows)
    assert m["n"] == 3 and m["n_retrieval"] == 1
    assert m["recall@5"] == 1.0 and m["mrr"] == 0.5
    assert m["abstention_accuracy"] == pytest.approx(2 / 3)
    assert m["abstention_precision"] == 1.0 and m["abstention_recall"] == 0.5 and m["false_abstention_rate"] == 0.0
    assert m["latency_p50_ms"] == 20.0 and m["latency_p95_ms"] == 30.0
    full = summarize_config(rows)
    assert list(full["by_type"]) == ["concept", "unanswerable"]
    assert full["recall_curve"][:2] == [0.0, 1.0]
    assert full["abstention_auc"] is not None


def test_miss_reasons_in_words() -> None:
    ok = result_row("hybrid", question(), answered(retrieved_titles=["Alpha: A Study"]))
    assert miss_reason(ok) is None
    low = result_row("hybrid", question(), answered(retrieved_titles=["a", "b", "c", "d", "e", "Alpha: A Study"]))
    assert miss_reason(low) == "gold ranks [6] of 1 gold"
    wrong = result_row("hybrid", question(type="unanswerable", gold_titles=()), answered())
    assert miss_reason(wrong) == "answered instead of abstaining"


# ------------------------------------------------------------ questions and options


def test_load_questions_filters_a_split_and_names_a_bad_line(tmp_path: Path) -> None:
    path = tmp_path / "hard.jsonl"
    rows = [dict(id=f"hard-{i}", question="q", type="concept", gold_titles=["T"], answer_facts=[], notes="",
                 split="tune" if i % 2 else "heldout") for i in range(4)]
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n\n", encoding="utf-8")
    assert len(load_questions(path)) == 4
    tune = load_questions(path, "tune")
    assert [q.id for q in tune] == ["hard-1", "hard-3"] and not tune[0].is_heldout
    assert all(q.is_heldout for q in load_questions(path, "heldout"))
    path.write_text(json.dumps(rows[0]) + "\n{\"id\": 1}\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"hard.jsonl:2"):
        load_questions(path)


def test_parse_configs() -> None:
    assert parse_configs("dense, bm25,hybrid,dense,li-vector") == ["dense", "bm25", "hybrid", "li-vector"]
    with pytest.raises(ValueError, match="unknown retriever colbert"):
        parse_configs("hybrid,colbert")


# ------------------------------------------------------------ compare


def _write_run(folder: Path, rows: list[dict], commit: str) -> None:
    metrics = {c: summarize_config([r for r in rows if r["config"] == c]) for c in dict.fromkeys(r["config"] for r in rows)}
    write_outputs(EvalRun({"git_commit": commit, "questions_sha256": "abc", "mode": "offline"}, rows, metrics, folder),
                  plots=False)


def test_compare_lists_changed_questions_and_metric_deltas(tmp_path: Path) -> None:
    q1, q2 = question(id="core-001"), question(id="core-002", type="unanswerable", gold_titles=(), answer_facts=())
    q3, q4 = question(id="heldout-001"), question(id="core-004")
    old = [
        result_row("hybrid", q1, answered(retrieved_titles=["a", "b", "Alpha: A Study"])),
        result_row("hybrid", q2, answered(abstained=True, cited_ids=[], cited_titles=[])),
        result_row("hybrid", q3, answered()),
        result_row("hybrid", q4, answered()),
    ]
    new = [
        result_row("hybrid", q1, answered(retrieved_titles=["Alpha: A Study"])),  # rank 3 -> 1
        result_row("hybrid", q2, answered()),  # abstention flipped
        result_row("hybrid", q3, answered(retrieved_titles=["x"] * 10)),  # heldout: counted, not named
        result_row("hybrid", q4, answered(cited_ids=["a"], cited_titles=["Alpha: A Study"])),  # citations changed
    ]
    _write_run(tmp_path / "old", old, "c0ffee")
    _write_run(tmp_path / "new", new, "beef")
    text = compare_runs(tmp_path / "old", tmp_path / "new")
    assert "commit differs: c0ffee -> beef" in text
    assert "[hybrid] core-001 (concept): gold rank 3 -> 1" in text
    assert "[hybrid] core-002 (unanswerable): no longer abstains; citations -0 +2" in text
    assert "[hybrid] core-004 (concept): citations -1 +0" in text
    assert "changed questions: 4 (1 heldout, not listed)" in text
    assert "heldout-001" not in text
    recall1 = next(line for line in text.splitlines() if line.startswith("recall@1 "))
    assert "0.333 (+0.333)" in recall1  # q1 now at rank 1; q3 and q4 not at rank 1 either time
    assert len(text.splitlines()) <= 30

    result = CliRunner().invoke(app, ["eval", "--compare", str(tmp_path / "old"), str(tmp_path / "new")])
    assert result.exit_code == 0, result.output
    assert "gold rank 3 -> 1" in result.output


def test_eval_refuses_missing_inputs(tmp_path: Path) -> None:
    runner = CliRunner()
    assert runner.invoke(app, ["eval"]).exit_code == 2
    assert runner.invoke(app, ["eval", "--compare", str(tmp_path), str(tmp_path)]).exit_code == 2


# ------------------------------------------------------------ end to end


@pytest.mark.slow
def test_a_three_question_run_writes_report_results_and_plots(full_index, tmp_path: Path, monkeypatch) -> None:
    core = Path(__file__).resolve().parent.parent / "evals" / "questions" / "core.jsonl"
    rows = [
        dict(id="t-1", question="Which optimizer adapts step sizes by the belief in observed gradients?",
             type="concept", gold_titles=["AdaBelief Optimizer: Adapting Stepsizes by the Belief in Observed Gradients"],
             answer_facts=["belief"], notes=""),
        dict(id="t-2", question="What is AdamP?", type="lookup",
             gold_titles=["AdamP: Slowing Down the Slowdown for Momentum Optimizers on Scale-invariant Weights"],
             answer_facts=[], notes=""),
        dict(id="t-3", question="How do I cook pasta carbonara?", type="unanswerable", gold_titles=[],
             answer_facts=[], notes=""),
    ]
    questions = tmp_path / "tiny.jsonl"
    questions.write_text("\n".join(json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    assert core.exists()  # the real sets live beside it; this run uses the tiny file only
    for key, value in (("INDEX_DIR", str(full_index.index_dir)), ("COLLECTION_PREFIX", full_index.collection_prefix),
                       ("MODE", "offline"), ("LLM_BASE_URL", ""), ("LLM_API_KEY", "")):
        monkeypatch.setenv(f"ASSISTANT_{key}", value)
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    out = tmp_path / "run"
    result = CliRunner().invoke(app, ["eval", "--questions", str(questions), "--retriever", "hybrid,li-bm25",
                                      "--mode", "offline", "--out", str(out)])
    assert result.exit_code == 0, result.output
    for name in ("report.md", "results.jsonl", "metrics.json", "recall_at_k.png", "recall5_by_type.png", "abstention_roc.png"):
        assert (out / name).exists(), name
    for png in out.glob("*.png"):
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    lines = [json.loads(line) for line in (out / "results.jsonl").read_text(encoding="utf-8").splitlines()]
    assert [(r["config"], r["id"]) for r in lines] == [(c, f"t-{i}") for c in ("hybrid", "li-bm25") for i in (1, 2, 3)]
    hybrid = {r["id"]: r for r in lines if r["config"] == "hybrid"}
    assert set(hybrid["t-1"]["output"]) == set(AnswerContract.model_fields)
    kept = hybrid["t-1"]["output"]["retrieved"]  # ids and scores; the titles are in retrieved_titles, same order
    assert len(kept) == len(hybrid["t-1"]["retrieved_titles"]) and set(kept[0]) == {"paper_id", "score"}
    assert hybrid["t-2"]["scores"]["recall@1"] == 1.0
    assert hybrid["t-3"]["scores"]["abstained"] == 1.0 and hybrid["t-3"]["scores"]["recall@5"] is None
    assert hybrid["t-1"]["scores"]["groundedness"] == 1.0
    report = (out / "report.md").read_text(encoding="utf-8")
    for needle in ("model_fingerprint", "corpus_fingerprint", "top_k", "abstain_threshold", "git_commit",
                   "| hybrid |", "| li-bm25 |", "recall_at_k.png"):
        assert needle in report
    metrics = json.loads((out / "metrics.json").read_text(encoding="utf-8"))
    assert metrics["metrics"]["hybrid"]["overall"]["abstention_accuracy"] == 1.0
    assert metrics["metrics"]["li-bm25"]["overall"].get("abstention_accuracy") is None


@pytest.mark.slow
def test_llama_index_baselines_map_nodes_back_to_papers(full_index) -> None:
    from assistant.retrieve import open_index
    from evals.baselines import Baselines

    papers = sorted(open_index(full_index).papers.values(), key=lambda p: p.paper_id)[:6]
    baselines = Baselines(full_index, papers)
    target = papers[3]
    for name in ("li-vector", "li-bm25", "li-fusion"):
        hits = baselines.search(name, target.title, 10)
        assert hits[0][:2] == (target.paper_id, target.title), name
        assert len({pid for pid, _, _ in hits}) == len(hits) <= 6


@pytest.mark.slow
def test_llm_mode_scores_the_draft_before_verification(full_index) -> None:
    """The scripted LLM makes one supported and one unsupported claim: the draft is
    half grounded, the shown answer (unsupported citation removed) fully."""
    from pydantic import SecretStr

    from assistant.pipeline import Assistant
    from evals.runner import pipeline_output
    from tests.fake_llm_server import FakeLLM, Reply, parse_sources

    def reply(body: dict) -> Reply:
        prompt = next(m["content"] for m in body["messages"] if m["role"] == "user")
        n = next(k for k, (title, _) in parse_sources(prompt).items() if "AdamP" in title)
        return Reply.text(f"AdamP removes the radial component, the norm-increasing direction, at each step of "
                          f"the optimizer [{n}]. Paris is the capital of France [{n}].")

    with FakeLLM() as fake:
        fake.script = [reply]
        settings = full_index.model_copy(update={"mode": "llm", "llm_base_url": fake.base_url,
                                                 "llm_api_key": SecretStr("sk-test")})
        q = question(id="t-llm", question="What does AdamP change in the optimizer step?", type="lookup",
                     gold_titles=("AdamP: Slowing Down the Slowdown for Momentum Optimizers on Scale-invariant Weights",),
                     answer_facts=("radial component",))
        out = pipeline_output(Assistant(settings), q, "llm", "hybrid")
    assert out.contract["mode"] == "llm" and out.removed_citations == 1
    assert out.draft_groundedness == 0.5
    assert out.groundedness == 1.0
    s = score_question(q, out)
    assert s["fact_recall"] == 1.0 and s["cite_recall"] == 1.0 and s["invalid_citations"] == 0.0


def test_headline_separates_single_paper_multi_paper_and_unanswerable_questions() -> None:
    from evals.metrics import headline

    def row(gold: list[str], expects: bool, abstained: float | None, **scores: float) -> dict:
        return {"gold_titles": gold, "expects_abstention": expects, "scores": {"abstained": abstained, **scores}}

    rows = [
        row(["A"], False, 0.0, **{"recall@1": 1.0, "recall@5": 1.0, "mrr": 1.0, "all@10": 1.0, "cautioned": 1.0}),
        row(["B"], False, 1.0, **{"recall@1": 0.0, "recall@5": 1.0, "mrr": 0.5, "all@10": 1.0, "cautioned": 0.0}),
        row(["C", "D"], False, 0.0, **{"recall@1": 0.5, "recall@5": 0.5, "mrr": 1.0, "all@10": 0.0, "cautioned": 0.0}),
        row([], True, 1.0, cautioned=0.0),
        row([], True, 0.0, cautioned=1.0),
        row([], True, 0.0, cautioned=0.0),
    ]
    h = headline(rows)
    assert (h["single_n"], h["single_recall@1"], h["single_recall@5"], h["single_mrr"]) == (2, 0.5, 1.0, 0.75)
    assert (h["multi_n"], h["multi_all@10"]) == (1, 0.0)
    assert (h["unanswerable_n"], h["unanswerable_abstained"]) == (3, pytest.approx(1 / 3))
    assert h["false_abstention"] == pytest.approx(1 / 3)
    assert h["unanswerable_abstained_or_cautioned"] == pytest.approx(2 / 3)
    assert h["answerable_cautioned"] == pytest.approx(1 / 3)
    retrieval_only = headline([{**r, "scores": {k: v for k, v in r["scores"].items() if k != "abstained"}} for r in rows])
    assert "unanswerable_abstained" not in retrieval_only  # baselines do not answer


def test_headline_measures_the_answer_and_refusals_by_kind() -> None:
    """Citation precision and recall and fact recall over answerable questions (a
    refusal counts 0 for recall, nothing for precision); refusals per kind."""
    from evals.metrics import headline

    def row(gold: list[str], abstained: float, kind: str | None = None, **scores: float) -> dict:
        return {"gold_titles": gold, "expects_abstention": not gold, "unanswerable_kind": kind,
                "scores": {"abstained": abstained, "cautioned": 0.0, **scores}}

    rows = [
        row(["A"], 0.0, cite_precision_gold=1.0, cite_recall=1.0, fact_recall=1.0, cited_papers=1.0),
        row(["B", "C"], 0.0, cite_precision_gold=0.5, cite_recall=0.5, fact_recall=0.5, cited_papers=2.0),
        row(["D"], 1.0, cite_precision_gold=None, cite_recall=0.0, fact_recall=0.0, cited_papers=None),
        row([], 1.0, "off_topic"), row([], 0.0, "off_topic"),
        row([], 0.0, "near_miss", cautioned=1.0), row([], 1.0, "near_miss"), row([], 0.0, "near_miss"),
    ]
    h = headline(rows)
    assert h["answerable_n"] == 3 and h["cite_precision"] == 0.75  # the refusal has no precision
    assert h["cite_recall"] == 0.5 and h["fact_recall"] == 0.5 and h["cited_papers"] == 1.5
    assert (h["off_topic_n"], h["off_topic_refused"]) == (2, 0.5)
    assert (h["near_miss_n"], h["near_miss_refused"]) == (3, pytest.approx(1 / 3))
    assert h["near_miss_refused_or_cautioned"] == pytest.approx(2 / 3)
    assert h["false_abstention"] == pytest.approx(1 / 3)


# ---------------------------------------------------------------- list questions (evals/lists.py)


def test_list_scores_by_hand() -> None:
    from evals.lists import list_scores

    gold = frozenset(normalize_title(t) for t in ("Paper A", "Paper B", "Paper C", "Paper D"))
    s = list_scores(["paper a", "Paper B!", "Paper X"], gold)  # titles compared normalised
    assert s == {"recall": 0.5, "complete": 0.0, "precision": 2 / 3, "cited": 3.0}
    assert list_scores(["Paper A", "Paper B", "Paper C", "Paper D"], gold)["complete"] == 1.0
    assert list_scores([], gold)["precision"] is None  # a refusal cites nothing: no precision


def test_list_summary_separates_lists_comparisons_splits_and_forms() -> None:
    from evals.lists import headline, list_scores, summarize

    def row(rule: str, qid: str, typ: str, form: str, split: str, cited: list[str], gold: list[str]) -> dict:
        return {"rule": rule, "id": qid, "type": typ, "form": form, "split": split, "latency_ms": 10.0,
                "scores": list_scores(cited, frozenset(map(normalize_title, gold)))}

    rows = [row(rule, "l1", "multi", "which", "tune", ["A", "B"], ["A", "B"]) for rule in ("naive", "today", "ours")]
    rows += [row(rule, "l2", "multi", "paraphrase", "heldout", ["A"], ["A", "C"]) for rule in ("naive", "today", "ours")]
    rows += [row(rule, "c1", "compare", "compare", "tune", ["A"], ["A", "D"]) for rule in ("naive", "today", "ours")]
    m = summarize(rows)
    assert m["ours"]["list/all"] == {"n": 2, "recall": 0.75, "complete": 0.5, "precision": 1.0, "cited": 1.5}
    assert m["ours"]["list/heldout"]["n"] == 1 and m["ours"]["paraphrase/heldout"]["recall"] == 0.5
    assert m["ours"]["compare/tune"]["complete"] == 0.0  # one side of two
    h = headline(m)
    assert (h["list_recall"], h["compare_both_sides"], h["paraphrase_recall"], h["list_n"]) == (0.75, 0.0, 0.5, 2)

"""Can a per-paper signal tell a paper *about* a subject from one that mentions it?
The measurement behind the list rule (`assistant.focus.fitting`), so the next attempt
starts from figures, not from a repeat of this grid:

    python -m evals.list_signals --out evals/reports/list-signals

Tune questions only (never the heldout third): the list questions of lists.jsonl and
the several-paper questions of core.jsonl and hard.jsonl's tune split. For each, the
ten papers a list answer reads (`list_top_k`) with their signals, gold or not. Reports:

- each signal's ROC AUC, gold vs not, over ranks 2-10 (the first paper is always cited);
- the rule in use (`LIST_FIT` on (best sentence + word support) / 2 + BM25 / 20) at
  several thresholds, as recall / complete / precision averaged over questions;
- a logistic regression over each feature set, leave-one-question-out (each question's
  papers judged by a model fitted on the other questions), at several thresholds: the
  estimate of how a learned judge would do on questions it never saw.

Aboutness signals beside the runtime's: the subject's core terms (the question less
its "which papers ..." scaffolding) in the title, in the first two sentences, anywhere;
how evenly they run through the abstract; the position of the best sentence; the share
of sentences near the question; the title's and the sentences' similarity to the
subject phrase; the paper's similarity to the first paper; its retrieval rank.
"""

from __future__ import annotations

import argparse
import json
import re
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from assistant.config import PROJECT_ROOT, Settings
from evals.metrics import Question, load_questions
from evals.report import table
from evals.runner import display_path, git_commit

QUESTIONS = PROJECT_ROOT / "evals" / "questions"
SCAFFOLD = re.compile(r"^\s*(which|what|any|list|name|find)\s+(papers?|works?|studies|research|articles|approaches|"
                      r"methods|techniques|ways)\s+((are|is|were)\s+)?((mainly|mostly|primarily)\s+)?"
                      r"((about|on|to|for|of|that|which|do|does|have|has)\s+)?|^\s*how\s+(can|could|to|might|should|"
                      r"would)\s+", re.I)
GENERIC_STEMS = frozenset({"paper", "work", "studi", "propos", "use", "mainli", "approach", "method", "model", "larg",
                           "new", "improv", "make", "build", "way", "research", "articl", "techniqu", "can", "done"})
FEATURE_SETS = {
    "rule signals": ("best", "support", "bm25"),
    "rule + rank": ("best", "support", "bm25", "rank", "sim_first"),
    "aboutness": ("best", "support", "bm25", "title_subject", "subject_best", "core_anywhere", "core_in_title",
                  "core_first_two", "core_spread", "share_near", "best_position"),
    "aboutness + relative": ("best", "support", "bm25", "title_subject", "subject_best", "core_anywhere",
                             "core_in_title", "sim_first", "rank", "fit_below_first"),
}
THRESHOLDS = (0.3, 0.4, 0.5, 0.6)


def subject(question: str) -> str:
    """The question less its "Which papers are about" / "How can" scaffolding."""
    return re.sub(r"\s+be\s+", " ", SCAFFOLD.sub("", question)).strip(" ?.")


def tune_questions() -> list[Question]:
    """Every tune question that asks for several papers (module docstring)."""
    return ([q for q in load_questions(QUESTIONS / "lists.jsonl", "tune") if q.type == "multi"]
            + [q for q in load_questions(QUESTIONS / "core.jsonl") if q.type == "multi"]
            + [q for q in load_questions(QUESTIONS / "hard.jsonl", "tune") if q.type == "multi"])


def paper_signals(question: str, evidence: Any, encode: Callable[[list[str]], np.ndarray]) -> list[dict[str, float]]:
    """The signals of each paper a list answer reads, in retrieval order."""
    from assistant.focus import KEYWORD_SCALE, stems

    core = {w for w in stems(subject(question)) if w not in GENERIC_STEMS}
    vectors = encode([subject(question)] + [s.paper.title for s in evidence.sources])
    subject_vector, title_vectors = vectors[0], vectors[1:]
    means = [s.vectors.mean(axis=0) for s in evidence.sources]
    means = [m / max(float(np.linalg.norm(m)), 1e-9) for m in means]
    rows = []
    for rank, (src, title_vector, mean) in enumerate(zip(evidence.sources, title_vectors, means)):
        sims, sentence_stems = np.array(src.similarities or [0.0]), [stems(t) for t in src.sentences]
        to_subject = src.vectors @ subject_vector if len(src.vectors) else np.zeros(1)
        row = {"best": float(sims.max()), "support": src.support.weighted, "bm25": src.keyword,
               "rank": float(rank), "sim_first": float(mean @ means[0]), "share_near": float((sims >= 0.5).mean()),
               "best_position": float(sims.argmax()) / len(sims), "title_subject": float(title_vector @ subject_vector),
               "subject_best": float(to_subject.max()),
               "core_in_title": _share(core, stems(src.paper.title)),
               "core_first_two": _share(core, frozenset().union(*sentence_stems[:2])),
               "core_anywhere": _share(core, frozenset().union(stems(src.paper.title), *sentence_stems)),
               "core_spread": float(np.mean([sum(w in s for s in sentence_stems) / max(1, len(sentence_stems))
                                             for w in core])) if core else 0.0}
        row["fit"] = (row["best"] + row["support"]) / 2 + row["bm25"] / KEYWORD_SCALE
        rows.append(row)
    for row in rows:
        row["fit_below_first"] = row["fit"] - rows[0]["fit"]
    return rows


def _share(words: set[str], found: frozenset[str]) -> float:
    return len(words & found) / len(words) if words else 0.0


def collect(settings: Settings) -> list[dict[str, Any]]:
    """Per tune question: its id and, per paper read, the signals and whether it is gold."""
    from assistant.corpus import normalize_title
    from assistant.evidence import gather
    from assistant.pipeline import Assistant

    assistant = Assistant(settings)
    out = []
    for q in tune_questions():
        index = assistant.index
        ranking = index.search(q.question, k=max(settings.retrieve_k, 10, settings.list_top_k), retriever="hybrid")
        evidence = gather(index, ranking, q.question, settings.list_top_k)
        signals = paper_signals(q.question, evidence, index.dense.encode)
        gold = [normalize_title(s.paper.title) in q.gold for s in evidence.sources]
        out.append({"id": q.id, "set": q.id.split("-")[0], "n_gold": len(q.gold), "signals": signals, "gold": gold})
    return out


# ====================================================================== measuring


def list_figures(questions: Sequence[dict[str, Any]], cited: Callable[[dict[str, Any]], list[int]]) -> list[float]:
    """Recall, complete, precision averaged over questions; the first paper always cited."""
    recall, complete, precision = [], [], []
    for q in questions:
        chosen = sorted({0, *cited(q)})
        hit = sum(q["gold"][i] for i in chosen)
        recall.append(hit / q["n_gold"])
        complete.append(float(hit == q["n_gold"]))
        precision.append(hit / len(chosen))
    return [float(np.mean(recall)), float(np.mean(complete)), float(np.mean(precision))]


def auc_rows(questions: Sequence[dict[str, Any]]) -> list[list[Any]]:
    from sklearn.metrics import roc_auc_score

    lists = [q for q in questions if q["set"] == "lists"]
    names = sorted({k for q in questions for row in q["signals"] for k in row})
    rows = []
    for name in names:
        cells: list[Any] = [name]
        for group in (lists, questions):
            y = [g for q in group for g in q["gold"][1:]]
            cells.append(roc_auc_score(y, [row[name] for q in group for row in q["signals"][1:]]))
        rows.append(cells)
    return sorted(rows, key=lambda r: -r[2])


def loqo_probabilities(questions: Sequence[dict[str, Any]], features: Sequence[str]) -> dict[str, list[float]]:
    """Each question's papers judged by a logistic regression fitted on the others' ranks 2-10."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    def matrix(qs: Sequence[dict[str, Any]], first: int) -> np.ndarray:
        return np.array([[row[f] for f in features] for q in qs for row in q["signals"][first:]])

    out = {}
    for held in questions:
        rest = [q for q in questions if q is not held]
        model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model.fit(matrix(rest, 1), np.array([g for q in rest for g in q["gold"][1:]]))
        out[held["id"]] = model.predict_proba(matrix([held], 0))[:, 1].tolist()
    return out


def rule_rows(questions: Sequence[dict[str, Any]]) -> list[list[Any]]:
    """The rule in use and each learned judge (leave-one-question-out), lists tune and all."""
    lists = [q for q in questions if q["set"] == "lists"]
    rows = []
    for threshold in (0.84, 0.88, 0.92, 0.96):
        def by_fit(q: dict[str, Any], t: float = threshold) -> list[int]:
            return [i for i, row in enumerate(q["signals"]) if row["fit"] >= t]
        rows.append([f"rule, fit >= {threshold}", *list_figures(lists, by_fit), *list_figures(questions, by_fit)])
    for name, features in FEATURE_SETS.items():
        probabilities = loqo_probabilities(questions, features)
        for threshold in THRESHOLDS:
            def judged(q: dict[str, Any], t: float = threshold,
                       judged_by: dict[str, list[float]] = probabilities) -> list[int]:
                return [i for i, p in enumerate(judged_by[q["id"]]) if p >= t]
            rows.append([f"{name}, p >= {threshold}", *list_figures(lists, judged), *list_figures(questions, judged)])
    return rows


def render(questions: Sequence[dict[str, Any]], record: dict[str, Any]) -> str:
    n_lists = sum(q["set"] == "lists" for q in questions)
    groups = f"lists tune ({n_lists})", f"all tune ({len(questions)})"
    return "\n".join([
        "# Per-paper signals for list questions (tune questions only)", "",
        f"Run {record['date']} at {record['git_commit']}; `python -m evals.list_signals` (module docstring).", "",
        "## Each signal alone: ROC AUC, gold vs not, ranks 2-10", "",
        table(["signal", *groups], auc_rows(questions)), "",
        "## Rules: recall / complete / precision, averaged over questions (first paper always cited)", "",
        table(["rule", *(f"{g} {k}" for g in groups for k in ("recall", "complete", "precision"))], rule_rows(questions)),
        ""])


def main(argv: Sequence[str] | None = None) -> None:
    import datetime as dt

    parser = argparse.ArgumentParser(prog="python -m evals.list_signals", description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=PROJECT_ROOT / "evals" / "reports" / "list-signals")
    args = parser.parse_args(argv)
    questions = collect(Settings(mode="offline", llm_base_url=None, llm_api_key=None))
    record = {"date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"), "git_commit": git_commit()}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "signals.json").write_text(json.dumps({"run": record, "questions": questions}), encoding="utf-8")
    (args.out / "report.md").write_text(render(questions, record), encoding="utf-8")
    print(f"wrote {display_path(args.out / 'report.md')}")


if __name__ == "__main__":
    main()

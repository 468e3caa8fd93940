"""Conversation evaluation: `assistant eval --questions evals/questions/conversations.jsonl`.

Each conversation is played turn by turn through the code path `POST /api/ask` uses
with `history`: the previous answers go back as the JSON objects the API returned
(`ui.api.HistoryTurn`, turned into pipeline turns by `ui.api.to_turns`) and each
question goes to `Assistant.ask(question, history)`. Four configurations run in the
same process, on the same index:

- `evidence`: the shipped follow-up rule (assistant/conversation.py);
- `word_list`: the rule before issue 24 (a short question holding "it", "that", ...
  is searched glued to the previous question): the *before* of the report;
- `never`: no question is ever a follow-up;
- `alone`: each question asked with no history at all (what a switch should match);
- `condense` (only with an LLM endpoint, `--mode llm`): the LLM rewrites each question
  after the first into a standalone one, answered with no history; an unusable
  rewrite falls back to `evidence` (evals/condense.py).

Scores per turn kind (evals/README.md, "Conversations"): R@1 (the first retrieved
paper is a gold one), citation precision and recall against the gold papers, fact
recall and fact-first, the hijack rate (a switch whose answer cites the paper under
discussion, which is not gold for it), and for unanswerable turns the share refused
or answered with the `not_in_paper` no. Answerable turns refused or answered "does
not mention" are counted as such (`declined`).
"""

from __future__ import annotations

import datetime as dt
import json
import re
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from assistant.config import Settings
from assistant.corpus import normalize_title
from assistant.files import atomic_write_json
from evals.condense import Condenser
from evals.metrics import citation_precision, citation_recall, fact_first, fact_recall, mean
from evals.report import fmt, table
from evals.runner import display_path, file_sha256, git_commit
from evals.stats import percentile

KINDS = ("first", "follow_up", "switch", "unanswerable")
CONFIGS = {"evidence": "evidence", "word_list": "word_list", "never": "never", "alone": "never", "condense": "evidence"}
OFFLINE_CONFIGS = ("evidence", "word_list", "never", "alone")
LLM_CONFIGS = ("evidence", "condense")  # the shipped rule and the LLM's rewrite, in the same run
# The referring words of issue 24: a switch holding one is what the word list mistook for a follow-up.
PRONOUN = re.compile(r"\b(that|this|their|it|they|them)\b", re.IGNORECASE)
GROUPS = (("first", "first question"), ("follow_up", "follow-up"), ("switch", "new topic (switch)"),
          ("switch_pronoun", "  switch with that/this/their/it/they/them"), ("switch_plain", "  switch without"),
          ("unanswerable", "unanswerable"), ("unanswerable_follow_up", "  about the previous paper"),
          ("unanswerable_off_topic", "  off topic"))


@dataclass(frozen=True)
class ConversationTurn:
    question: str
    kind: str
    gold_titles: tuple[str, ...]
    answer_facts: tuple[str, ...] = ()
    notes: str = ""
    unanswerable_kind: str | None = None  # follow_up (about the previous paper) or off_topic

    @property
    def group(self) -> str:
        if self.kind == "switch":
            return "switch_pronoun" if PRONOUN.search(self.question) else "switch_plain"
        if self.kind == "unanswerable":
            return f"unanswerable_{self.unanswerable_kind}"
        return self.kind


@dataclass(frozen=True)
class Conversation:
    id: str
    split: str
    notes: str
    turns: tuple[ConversationTurn, ...]


def is_conversation_set(path: Path) -> bool:
    """A question file whose lines are conversations (a `turns` list) rather than questions."""
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            try:
                row = json.loads(line)
            except ValueError:
                return False
            return isinstance(row, dict) and "turns" in row
    return False


def load_conversations(path: Path, split: str | None = None) -> list[Conversation]:
    """Reads a conversation set (evals/README.md documents the format); errors name the line."""
    out = []
    for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            turns = tuple(ConversationTurn(question=str(t["question"]), kind=str(t["kind"]),
                                           gold_titles=tuple(t.get("gold_titles") or ()),
                                           answer_facts=tuple(t.get("answer_facts") or ()),
                                           notes=str(t.get("notes") or ""), unanswerable_kind=t.get("unanswerable_kind"))
                          for t in row["turns"])
            conversation = Conversation(str(row["id"]), str(row["split"]), str(row.get("notes") or ""), turns)
        except (ValueError, KeyError, TypeError) as exc:
            raise ValueError(f"{path}:{lineno}: not a conversation object ({exc})") from None
        if split is None or conversation.split == split:
            out.append(conversation)
    return out


# ====================================================================== playing


def play(assistant: Any, conversation: Conversation, config: str,
         condenser: Condenser | None = None) -> list[dict[str, Any]]:
    """One result row per turn. History goes back as the API's JSON (README: pass back
    what /api/ask returned), through the API's own conversion. With a condenser, each
    turn with history is asked as its rewrite with no history, or with history under
    the evidence rule where the rewrite is unusable."""
    from ui.api import HistoryTurn, to_turns

    history: list[HistoryTurn] = []
    rows = []
    under_discussion: tuple[str, ...] = ()
    for i, turn in enumerate(conversation.turns):
        t0 = time.perf_counter()
        past = [] if config == "alone" else to_turns(history)
        rewrite = condenser.rewrite(turn.question, past) if condenser is not None and past else None
        if rewrite is not None and rewrite.question is not None:
            answer = assistant.ask(rewrite.question, [])
        else:
            answer = assistant.ask(turn.question, past)
        latency = (time.perf_counter() - t0) * 1000
        history.append(HistoryTurn.model_validate({"question": turn.question,
                                                   "answer": answer.contract().model_dump(mode="json")}))
        row = turn_row(conversation, i, turn, answer, latency, under_discussion, config)
        if rewrite is not None:
            row.update(condensed=rewrite.question, fallback=rewrite.fallback)
            row["scores"].update(fallback=float(rewrite.fallback is not None), condense_ms=rewrite.seconds * 1000)
        rows.append(row)
        under_discussion = turn.gold_titles or under_discussion
    return rows


def turn_row(conversation: Conversation, i: int, turn: ConversationTurn, answer: Any, latency: float,
             under_discussion: tuple[str, ...], config: str) -> dict[str, Any]:
    cited = [c.title for c in answer.citations]
    gold = {normalize_title(t) for t in turn.gold_titles}
    text = "" if answer.abstained else answer.answer
    previous = {normalize_title(t) for t in under_discussion} - gold
    declined = answer.abstained or answer.has_notice("not_in_paper")
    scores: dict[str, float | None] = {
        "recall@1": float(bool(answer.retrieved) and normalize_title(answer.retrieved[0].title) in gold) if gold else None,
        "cite_precision": citation_precision(cited, gold) if gold else None,
        "cite_recall": citation_recall(cited, gold) if gold else None,
        "fact_recall": fact_recall(turn.answer_facts, text) if gold else None,
        "fact_first": fact_first(turn.answer_facts, text) if gold else None,
        "hijacked": float(any(normalize_title(t) in previous for t in cited)) if turn.kind == "switch" else None,
        "declined": float(declined),
        "refused": float(answer.abstained),
        "not_in_paper": float(answer.has_notice("not_in_paper")),
        "read_as_follow_up": float(answer.has_notice("follow_up")),
        "invalid_citations": float(len({c.paper_id for c in answer.citations} - {h.paper_id for h in answer.retrieved})),
        "latency_ms": latency,
    }
    return {"config": config, "conversation": conversation.id, "turn": i + 1, "split": conversation.split,
            "kind": turn.kind, "group": turn.group, "question": turn.question, "gold_titles": list(turn.gold_titles),
            "cited_titles": cited, "retrieved_titles": [h.title for h in answer.retrieved[:3]],
            "notices": [n.kind for n in answer.notices], "answer": answer.answer, "scores": scores}


# ====================================================================== aggregation


def summarize(rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    score = lambda key: mean(r["scores"].get(key) for r in rows)  # noqa: E731
    timed = lambda key: [r["scores"][key] for r in rows if r["scores"].get(key) is not None]  # noqa: E731
    gold_rows = [r for r in rows if r["gold_titles"]]
    return {"n": len(rows), "recall@1": score("recall@1"), "cite_precision": score("cite_precision"),
            "cite_recall": score("cite_recall"), "fact_recall": score("fact_recall"), "fact_first": score("fact_first"),
            "hijack": score("hijacked"), "read_as_follow_up": score("read_as_follow_up"),
            "declined": mean(r["scores"]["declined"] for r in gold_rows) if gold_rows else None,
            "refused_or_not_in_paper": mean(r["scores"]["declined"] for r in rows if not r["gold_titles"]),
            "invalid_citations": sum(r["scores"]["invalid_citations"] for r in rows),
            "fallback": score("fallback"), "condense_p50_ms": percentile(timed("condense_ms"), 0.5),
            "latency_p50_ms": percentile(timed("latency_ms"), 0.5),
            "latency_p95_ms": percentile(timed("latency_ms"), 0.95)}


def by_group(rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    out = {kind: summarize([r for r in rows if r["kind"] == kind]) for kind in KINDS}
    out.update({g: summarize([r for r in rows if r["group"] == g]) for g, _ in GROUPS if g not in out})
    out["all"] = summarize(rows)
    return out


def headline(rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The figures the floors guard (evals/floors.py), for the shipped rule."""
    g = by_group(rows)
    return {"first_recall@1": g["first"]["recall@1"], "follow_up_recall@1": g["follow_up"]["recall@1"],
            "follow_up_fact_recall": g["follow_up"]["fact_recall"], "switch_recall@1": g["switch"]["recall@1"],
            "switch_hijack": g["switch"]["hijack"], "unanswerable_refused": g["unanswerable"]["refused_or_not_in_paper"],
            "invalid_citations": g["all"]["invalid_citations"],
            "first_n": g["first"]["n"], "follow_up_n": g["follow_up"]["n"], "switch_n": g["switch"]["n"],
            "unanswerable_n": g["unanswerable"]["n"]}


def run_conversations(settings: Settings, path: Path, configs: Sequence[str] = OFFLINE_CONFIGS,
                      split: str | None = None) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Plays every conversation under each configuration; rows and metrics (per config,
    per split, per turn kind). Answers are offline in every configuration: `condense`
    uses the LLM only to rewrite the question, so the configurations differ in how a
    question is read, nothing else."""
    from assistant.pipeline import Assistant

    conversations = load_conversations(path, split)
    rows: list[dict[str, Any]] = []
    for config in configs:
        assistant = Assistant(settings.model_copy(update={"follow_up_rule": CONFIGS[config], "mode": "offline"}))
        assistant.ask("How can diffusion models be quantized to low bit widths?")  # warm-up, not timed
        condenser = Condenser(settings) if config == "condense" else None
        for conversation in conversations:
            rows += play(assistant, conversation, config, condenser)
    splits = ["all"] + sorted({c.split for c in conversations})
    metrics = {config: {s: by_group([r for r in rows if r["config"] == config and s in ("all", r["split"])])
                        for s in splits} for config in configs}
    return rows, metrics


def measure(settings: Settings, path: Path) -> dict[str, Any]:
    """The floors' headline: the configured follow-up rule (the shipped one unless a
    test sets another) on every conversation."""
    rows, _ = run_conversations(settings, path, [settings.follow_up_rule])
    return headline(rows)


def latency(settings: Settings, path: Path) -> str:
    """Offline answer time with history (the shipped rule) against the same question
    alone, interleaved turn by turn in one process so machine load hits both alike."""
    from assistant.pipeline import Assistant
    from ui.api import HistoryTurn, to_turns

    assistant = Assistant(settings.model_copy(update={"mode": "offline"}))
    assistant.ask("How can diffusion models be quantized to low bit widths?")  # warm-up, not timed
    timed: dict[str, list[float]] = {"with history": [], "alone": []}
    for conversation in load_conversations(path):
        history: list[HistoryTurn] = []
        for turn in conversation.turns:
            for label, past in (("with history", to_turns(history)), ("alone", [])):
                t0 = time.perf_counter()
                answer = assistant.ask(turn.question, past)
                timed[label].append((time.perf_counter() - t0) * 1000)
                if label == "with history":
                    history.append(HistoryTurn.model_validate(
                        {"question": turn.question, "answer": answer.contract().model_dump(mode="json")}))
    p50 = {label: percentile(v, 0.5) or 0.0 for label, v in timed.items()}
    return "\n".join([f"{label}: p50 {p50[label]:.1f} ms, p95 {percentile(v, 0.95):.1f} ms ({len(v)} answers)"
                      for label, v in timed.items()] + [f"p50 ratio with history / alone: {p50['with history'] / p50['alone']:.2f}"])


# ====================================================================== report

COLUMNS = (("n", "n"), ("R@1", "recall@1"), ("citeP", "cite_precision"), ("citeR", "cite_recall"),
           ("factR", "fact_recall"), ("fact first", "fact_first"), ("hijack", "hijack"),
           ("refused or not_in_paper", "refused_or_not_in_paper"), ("answerable declined", "declined"),
           ("read as follow-up", "read_as_follow_up"), ("condense fallback", "fallback"),
           ("p50 ms", "latency_p50_ms"), ("p95 ms", "latency_p95_ms"), ("condense p50 ms", "condense_p50_ms"))


def render(settings_record: dict[str, Any], rows: Sequence[dict[str, Any]], metrics: dict[str, Any]) -> str:
    parts = [f"# Conversation evaluation: {settings_record['questions']}", "",
             table(("setting", "value"), list(settings_record.items())), "",
             "Configurations (same run, same index): `evidence` = the shipped follow-up rule; `word_list` = the rule "
             "before issue 24 (**before**); `never` = nothing is a follow-up; `alone` = each question asked with no "
             "history; `condense` (with an LLM) = the LLM rewrites each question after the first into a standalone one, "
             "answered with no history, falling back to `evidence` when the rewrite is unusable (evals/condense.py). "
             "Answers are offline in every configuration. R@1: the first retrieved paper is gold. "
             "Hijack: a switch citing the paper under discussion "
             "(not gold for it). Refused or not_in_paper: unanswerable turns refused or answered with the plain "
             "'does not mention'. Answerable declined: gold turns refused or answered 'does not mention'.", ""]
    for split in next(iter(metrics.values())):
        parts += [f"## {split}", ""]
        for key, label in GROUPS:
            parts += [f"### {label.strip()}", "",
                      table(["config"] + [h for h, _ in COLUMNS],
                            [[c] + [metrics[c][split][key].get(k) for _, k in COLUMNS] for c in metrics]), ""]
    parts += ["## Tune turns the shipped rule misses", "", "(heldout turns are never listed one by one: evals/README.md)", ""]
    parts += [f"- {r['conversation']} turn {r['turn']} ({r['kind']}): {r['question']} -> {miss(r)}"
              for r in rows if r["config"] == "evidence" and r["split"] == "tune" and miss(r)] or ["none"]
    reasons = Counter(str(r["fallback"]) for r in rows if r["config"] == "condense" and r.get("fallback"))
    rewritten = [r for r in rows if r["config"] == "condense" and r["split"] == "tune" and "fallback" in r]
    if any(r["config"] == "condense" for r in rows):
        parts += ["", "## Condense fallbacks to the evidence rule, by reason", ""]
        parts += [f"- {reason}: {n}" for reason, n in reasons.most_common()] or ["none"]
    if rewritten:
        parts += ["", "## Tune turns condense misses, with the rewrite", ""]
        parts += [f"- {r['conversation']} turn {r['turn']} ({r['kind']}): {r['question']} -> "
                  f"{r['condensed'] or 'fallback: ' + r['fallback']} -> {miss(r)}" for r in rewritten if miss(r)] or ["none"]
    return "\n".join(parts) + "\n"


def miss(row: dict[str, Any]) -> str | None:
    """Why a turn counts against the shipped rule, in words; None when it does not."""
    s = row["scores"]
    if not row["gold_titles"]:
        return None if s["declined"] else f"answered from {row['cited_titles'][:1]} instead of refusing or not_in_paper"
    if s["hijacked"]:
        return f"hijacked: cites {row['cited_titles']}"
    if s["declined"]:
        return f"declined ({', '.join(row['notices']) or 'refused'})"
    if not s["recall@1"]:
        return f"first retrieved {row['retrieved_titles'][:1]}"
    if s["fact_recall"] is not None and s["fact_recall"] < 1:
        return "fact missing from the answer"
    return None


def write_report(out_dir: Path, settings_record: dict[str, Any], rows: Sequence[dict[str, Any]],
                 metrics: dict[str, Any]) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    with (out_dir / "results.jsonl").open("w", encoding="utf-8") as fh:
        for row in rows:
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")
    atomic_write_json(out_dir / "metrics.json", {"settings": settings_record, "metrics": metrics}, indent=2)
    (out_dir / "report.md").write_text(render(settings_record, rows, metrics), encoding="utf-8")


def conversation_eval(settings: Settings, path: Path, out_dir: Path, split: str | None = None,
                      configs: Sequence[str] = OFFLINE_CONFIGS) -> str:
    """`assistant eval` on a conversation set: writes the report and returns the console summary."""
    rows, metrics = run_conversations(settings, path, configs, split=split)
    record = {"questions": display_path(path), "sha256": file_sha256(path), "split": split or "all",
              "mode": "offline answers", "retriever": settings.retriever, "commit": git_commit(),
              "run_at": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")}
    if "condense" in configs:
        record.update(condense_model=settings.llm_model, condense_endpoint=settings.llm_endpoint,
                      condense_prompt="evals/prompts/condense_system.md, condense_user.md")
    write_report(out_dir, record, rows, metrics)
    lines = [f"{'config':10} {'split':8} {'kind':26}" + "".join(f"{h:>8}" for h in ("n", "R@1", "factR", "hijack", "refused", "p50 ms"))]
    for config, by_split in metrics.items():
        for split_name, groups in by_split.items():
            for kind in KINDS:
                m = groups[kind]
                lines.append(f"{config:10} {split_name:8} {kind:26}" + "".join(
                    f"{fmt(m[k], 2):>8}" for k in ("n", "recall@1", "fact_recall", "hijack", "refused_or_not_in_paper", "latency_p50_ms")))
    lines.append(f"wrote {out_dir}/report.md, results.jsonl, metrics.json")
    return "\n".join(lines)

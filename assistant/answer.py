"""The two answerers behind one interface: `draft(question, evidence)` yields the
answer text, with `[n]` markers pointing into `evidence.sources`, as it is made.

- `OfflineAnswerer` composes the answer from the abstract sentences most similar
  to the question; no model service, deterministic.
- `LLMAnswerer` sends the numbered sources to an OpenAI-compatible endpoint with
  the prompt in prompts/ and streams its tokens.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np
from rapidfuzz import fuzz

from assistant.citations import Source, strip_markers
from assistant.llm import LLMClient

NO_ANSWER = "INSUFFICIENT_SOURCES"
NEAR_DUPLICATE = 85  # rapidfuzz ratio above which two sentences say the same thing
SENTENCE_MARGIN = 0.06  # a paper's second sentence is used when this close to its best
PAPER_MARGIN = 0.15  # a paper is used when its best sentence is this close to the overall best


@dataclass
class Evidence:
    """Numbered sources with the question's similarity to each of their sentences."""

    sources: list[Source]
    similarities: dict[int, list[float]]  # source n -> per-sentence similarity
    named: set[int]  # source numbers of papers the question names
    vectors: dict[int, np.ndarray]  # source n -> its stored sentence embeddings

    def best(self, n: int) -> float:
        return max(self.similarities.get(n, [0.0]), default=0.0)

    @property
    def relevance(self) -> float:
        return max((self.best(s.n) for s in self.sources), default=0.0)


class Answerer(Protocol):
    mode: str

    def draft(self, question: str, evidence: Evidence) -> Iterator[str]: ...


def short_name(title: str) -> str:
    head = re.split(r":\s", title, maxsplit=1)[0]
    return head if head != title and len(head) <= 40 else (title if len(title) <= 70 else title[:67].rstrip() + "...")


class OfflineAnswerer:
    mode = "offline"

    def __init__(self, max_papers: int = 5, floor: float = 0.3) -> None:
        self.max_papers = max_papers
        self.floor = floor

    def select(self, evidence: Evidence) -> list[tuple[int, list[int]]]:
        """(source n, sentence indexes) to use: the best sentences of the papers close
        to the top, skipping near-duplicates (the corpus has papers sharing sentences)."""
        top = evidence.relevance
        chosen: list[tuple[int, list[int]]] = []
        used: list[str] = []
        for src in evidence.sources:
            sims = evidence.similarities.get(src.n, [])
            if not sims:
                continue
            best = max(sims)
            if src.n not in evidence.named and (best < self.floor or best < top - PAPER_MARGIN):
                continue
            ranked = sorted(range(len(sims)), key=lambda i: -sims[i])
            picks: list[int] = []
            for i in ranked[:3]:
                if picks and (sims[i] < best - SENTENCE_MARGIN or len(picks) >= 2):
                    break
                text = src.sentences[i]
                if len(text) < 25 or any(fuzz.ratio(text, u) >= NEAR_DUPLICATE for u in used):
                    continue
                picks.append(i)
                used.append(text)
            if picks:
                chosen.append((src.n, sorted(picks)))
            if len(chosen) >= self.max_papers:
                break
        return chosen

    def draft(self, question: str, evidence: Evidence) -> Iterator[str]:
        chosen = self.select(evidence)
        if not chosen:
            return
        by_n = {s.n: s for s in evidence.sources}
        lead_n, lead_idx = chosen[0]
        lead = by_n[lead_n]
        # An abstract's own references ("RoPE [32]") are dropped: they would read as citations.
        yield f"**{short_name(lead.paper.title)}**: " + " ".join(
            f"{strip_markers(lead.sentences[i])} [{lead_n}]" for i in lead_idx
        )
        if len(chosen) > 1:
            yield "\n\nOther papers in the corpus on this:\n"
            for n, idx in chosen[1:]:
                src = by_n[n]
                yield f"\n- **{short_name(src.paper.title)}**: " + " ".join(
                    f"{strip_markers(src.sentences[i])} [{n}]" for i in idx
                )


class LLMAnswerer:
    mode = "llm"

    def __init__(self, client: LLMClient, prompts_dir: Path) -> None:
        self.client = client
        self.system = (prompts_dir / "answer_system.md").read_text(encoding="utf-8").strip()
        self.user = (prompts_dir / "answer_user.md").read_text(encoding="utf-8").strip()
        self.source = (prompts_dir / "source.md").read_text(encoding="utf-8").strip()

    def messages(self, question: str, evidence: Evidence) -> list[dict[str, str]]:
        sources = "\n\n".join(
            self.source.format(n=s.n, title=s.paper.title, date=s.paper.date or "date unknown",
                               abstract=strip_markers(s.paper.abstract))  # its own "[32]" would read as a source
            for s in evidence.sources
        )
        return [
            {"role": "system", "content": self.system},
            {"role": "user", "content": self.user.format(sources=sources, question=question)},
        ]

    def draft(self, question: str, evidence: Evidence) -> Iterator[str]:
        yield from self.client.stream(self.messages(question, evidence))


"""Word support: does a paper speak of every thing the question asks about?

A near miss ("4-bit quantization of a *music* diffusion model") matches its cluster
as a whole, so sentence and paper similarities stay high; what gives it away is one
question word that nothing in the top paper comes near ("music" against an image
diffusion abstract). For each content word of the question this takes its best
embedding similarity to any word of the top paper; abstention reads the weakest
word and an idf-weighted mean (rare words count more; `assistant/abstain.py`), and
retrieval re-orders its top 20 by the same two figures (`Index.rerank_by_words`).
Measured on core + hard tune (evals/README.md): hard-tune recall@1 0.658 -> 0.816.

Word vectors come from the same model as everything else, one vector per word of the
corpus vocabulary, embedded at index time (a few seconds for the 356 papers) and
stored beside the keyword index; encoding a paper's 100-200 words per question would
cost ~95 ms on 2 cores. Comparing question words with whole sentences instead was
tried: no better than chance (AUC 0.47-0.66).

The same vocabulary tells when a question is not in a language the model reads:
most of its words are neither corpus words nor English function words, and it is
written in another script or has as many function words of another language as of
English (a short English question on something the corpus never mentions, "How to
cook pasta carbonara?", has few corpus words too). Similarity
scores of such a question are low whatever it asks (the French, Spanish, German and
Chinese questions of the core set were the four lowest-scored answerable ones), so
the pipeline answers it with a notice rather than let abstention refuse it.
"""

from __future__ import annotations

import math
import re
import threading
from functools import cached_property
import unicodedata
from pathlib import Path
from typing import Any, Callable, Iterable, NamedTuple

import numpy as np

from assistant.files import atomic_path
from assistant.models import Paper
from assistant.text import STOPWORDS, words

WORDS_FILE = "words.npz"
# Below this share of readable words (corpus words or English function words) a
# question is taken to be in a language the model does not read. Measured: English
# questions of the eval sets score 0.60 or more, the five non-English ones 0.26 or less.
READABLE_SHARE = 0.5

# Words that frame a question rather than say what it is about.
_FRAMING = set(
    "paper papers work works method methods approach approaches model models propose proposes proposed "
    "show shows use uses using used based new way ways study studies make makes made help helps let lets "
    "like kind idea ideas research researchers authors collection corpus article remember looking want "
    "does did know tell literature say says overview summary summarize summarise "
    # asking for a ranking, not a subject: "What is the best method for text-to-video
    # generation?" put first a video-editing paper whose abstract says "best"
    "best better good top main key important popular notable latest recent interesting".split()
)
# Function words of the other languages users ask in most (French, Spanish, German,
# Italian, Portuguese), less those that are English words too. A short English
# question about something the corpus never mentions ("How to cook pasta
# carbonara?") has few corpus words as well, but none of these.
_FOREIGN_FUNCTION_WORDS = frozenset("""
le la les de des du un une que en est qui quel quelle quels quelles dans avec sur sa ses cette ces aux au et ou où comment pourquoi
el los las del una lo es qué cuál cuáles para por su sus como cómo este esta estos estas
der das den dem ein eine einen ist sind welche welcher welches und mit auf für von zu wie warum nicht
il gli di che è della delle quale quali
os um uma em da é qual quais seu sua
""".split()) - STOPWORDS
NOT_CONTENT = STOPWORDS | _FRAMING  # what `content_words` leaves out


def looks_foreign(question: str) -> bool:
    """More letters outside the Latin script than in it, or more function words of
    another language than of English."""
    letters = [c for c in question if c.isalpha()]
    latin = sum(1 for c in letters if "LATIN" in unicodedata.name(c, ""))
    if letters and latin * 2 < len(letters):
        return True
    found = words(question)
    foreign = sum(w in _FOREIGN_FUNCTION_WORDS for w in found)
    return foreign > 0 and foreign >= sum(w in STOPWORDS for w in found)


# Asking for papers rather than saying what they are about: "Recommend some papers on
# RLHF" was refused for "recommend", which no RLHF abstract comes near. Only before
# "papers" ("Which works suggest items to users?" is about recommender systems).
_REQUEST = re.compile(r"\b(recommend|suggest|give|show|find|list|point)\s+(me\s+(to\s+)?)?((some|a few|any|the|good|"
                      r"\d+|two|three|four|five|six|seven|eight|nine|ten)\s+)*(papers|works|studies|articles)\b",
                      re.IGNORECASE)


def content_words(question: str) -> list[str]:
    """The words a question is about, in order, once each."""
    return [w for w in dict.fromkeys(words(_REQUEST.sub(" ", question))) if w not in NOT_CONTENT and len(w) >= 3]


def _paper_text(paper: Paper) -> str:
    return f"{paper.title} {paper.abstract}"


def build_word_vectors(papers: Iterable[Paper], encode: Callable[[list[str]], np.ndarray], model: str,
                       target: Path, progress: Callable[[int, str], Any] | None = None) -> int:
    """Writes the corpus vocabulary, its document frequencies and one vector per word.
    Vectors of words already in the previous file (same model) are reused, so a corpus
    change embeds only its new words. Returns how many words were embedded."""
    df: dict[str, int] = {}
    n_papers = 0
    for paper in papers:
        n_papers += 1
        for w in set(words(_paper_text(paper))):
            df[w] = df.get(w, 0) + 1
    vocabulary = sorted(df)
    old: dict[str, np.ndarray] = {}
    try:
        with np.load(target, allow_pickle=False) as data:
            if str(data["model"]) == model:
                old = dict(zip(data["words"].tolist(), data["vectors"]))
    except Exception:  # noqa: BLE001 - missing, truncated (BadZipFile) or foreign: embed everything
        pass
    todo = [w for w in vocabulary if w not in old]
    fresh: dict[str, np.ndarray] = {}
    bar = progress(len(todo), "Embedding words") if progress and todo else None
    for start in range(0, len(todo), 512):
        chunk = todo[start : start + 512]
        fresh.update(zip(chunk, encode(chunk).astype(np.float16)))
        if bar is not None:
            bar.update(len(chunk))
    if bar is not None:
        bar.close()
    rows = [fresh[w] if w in fresh else old[w] for w in vocabulary]
    vectors = np.stack(rows).astype(np.float16) if rows else np.zeros((0, 0), dtype=np.float16)
    with atomic_path(target, ".npz") as tmp:
        np.savez(tmp, words=np.array(vocabulary), df=np.array([df[w] for w in vocabulary], dtype=np.int32), vectors=vectors,
                 model=np.array(model), papers=np.array(n_papers))
    return len(todo)


class WordSupport(NamedTuple):
    """How near a paper's words come to a question's content words: the least supported
    word's best similarity, the idf-weighted mean, and each word's own (the "does not
    mention" answer to a follow-up names the words that come nowhere near,
    assistant/conversation.py)."""

    weakest: float
    weighted: float
    per_word: dict[str, float]


class WordVectors:
    """The stored vocabulary, read once per process."""

    UNKNOWN_WORDS = 10_000  # bound of the cache of question words the corpus lacks (~15 MB)

    def __init__(self, path: Path, encode: Callable[[list[str]], np.ndarray]) -> None:
        with np.load(path, allow_pickle=False) as data:
            words = data["words"].tolist()
            self.df = data["df"]
            # float16 on disk, float32 in memory (12 MB for 7.7k words): converting each
            # paper's rows per question cost ~2 ms of the re-rank's ~4 ms
            self.vectors = data["vectors"].astype(np.float32)
            self.model = str(data["model"])
            self.n_papers = int(data["papers"])
        self.row = {w: i for i, w in enumerate(words)}
        self._encode = encode
        # Caches, each cleared when past its bound: a paper's vocabulary rows (50,000
        # papers x ~1.5 KB, ~75 MB; 0.5 MB for the shipped 356) and vectors of question
        # words the corpus lacks (10,000 words x 1.5 KB, ~15 MB).
        self._paper_rows: dict[str, np.ndarray] = {}
        self._unknown: dict[str, np.ndarray] = {}
        self._lock = threading.Lock()  # the server answers several questions at once

    @cached_property
    def frequencies(self) -> dict[str, int]:
        """Each corpus word and how many papers use it (spelling correction reads these)."""
        return {w: int(self.df[i]) for w, i in self.row.items()}

    def readable_share(self, question: str) -> float:
        """Share of the question's words that are corpus words or English function words."""
        found = words(question)
        if not found:
            return 1.0
        return sum(w in self.row or w in STOPWORDS for w in found) / len(found)

    def readable(self, question: str) -> bool:
        """Whether a question is in a language the model reads: mostly corpus words and
        English function words, or at least not in another script and with no more
        function words of another language than of English."""
        return self.readable_share(question) >= READABLE_SHARE or not looks_foreign(question)

    def _question_vectors(self, words: list[str]) -> np.ndarray:
        """Vectors of the question's words; words the corpus never uses cost one model
        call, then are remembered. Read from a local copy: another thread may clear the
        shared cache at its bound between this one's update and its lookup."""
        with self._lock:
            known = {w: self._unknown[w] for w in words if w not in self.row and w in self._unknown}
        missing = [w for w in dict.fromkeys(words) if w not in self.row and w not in known]
        if missing:
            fresh = dict(zip(missing, self._encode(missing)))  # the model call, outside the lock
            known |= fresh
            with self._lock:
                if len(self._unknown) > self.UNKNOWN_WORDS:
                    self._unknown.clear()
                self._unknown.update(fresh)
        return np.array([self.vectors[self.row[w]] if w in self.row else known[w] for w in words], dtype=np.float32)

    def _rows_of(self, paper: Paper) -> np.ndarray:
        rows = self._paper_rows.get(paper.paper_id)
        if rows is None:
            rows = np.array(sorted({self.row[w] for w in words(_paper_text(paper)) if w in self.row}), dtype=np.int64)
            if len(self._paper_rows) > 50_000:
                self._paper_rows.clear()
            self._paper_rows[paper.paper_id] = rows
        return rows

    def support(self, question: str, papers: list[Paper]) -> list[WordSupport]:
        """Per paper: (weakest, idf-weighted mean) over the question's content words of
        each word's best similarity to a word of the paper. The question's words, vectors
        and weights are worked out once for all the papers. A question without content
        words lacks nothing: (1, 1)."""
        words = content_words(question)
        if not words:
            return [WordSupport(1.0, 1.0, {})] * len(papers)
        vectors = self._question_vectors(words)
        idf = np.array([math.log((self.n_papers + 1) / (int(self.df[self.row[w]]) + 1 if w in self.row else 1))
                        for w in words])
        out = []
        for paper in papers:
            rows = self._rows_of(paper)
            if not len(rows):
                out.append(WordSupport(0.0, 0.0, dict.fromkeys(words, 0.0)))
                continue
            best = (vectors @ self.vectors[rows].T).max(axis=1)
            weighted = float((best * idf).sum() / idf.sum()) if idf.sum() > 0 else float(best.mean())
            out.append(WordSupport(float(best.min()), weighted, dict(zip(words, best.tolist()))))
        return out

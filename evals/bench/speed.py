"""`assistant bench index|query`: benchmarks that print figures (never timed tests).

Each indexing phase runs as its own process, so wall time includes start-up and
peak RSS is that process's own (from wait4)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from assistant.config import PROJECT_ROOT, Settings
from evals.stats import percentile

QUESTIONS = [
    "What does AdamP change in the optimizer step?",
    "How can diffusion models be quantized to low bit widths?",
    "Which papers learn synaptic delays in spiking neural networks?",
    "How do consistency models reduce the number of sampling steps?",
    "What is test-time scaling for language model reasoning?",
    "How can the KV cache be compressed for long contexts?",
    "Which methods forecast time series with transformers?",
    "How is text-to-video generation made temporally consistent?",
    "What benchmarks evaluate temporal reasoning of video LLMs?",
    "How can a 3D scene be generated from a text prompt?",
    "Which optimizer uses the belief in observed gradients?",
    "What is Timo?",
    "How do you train a language model to verify its own chain of thought?",
    "Which paper discovers optimizers by program search?",
    "How to cook pasta carbonara?",
    "What is the capital of France?",
]
# Half-remembered, several-clause questions: these also pay for re-ranking by question
# parts (one more model call and one Chroma read), so they get their own rows.
LONG_QUESTIONS = [
    "Which speed-up lets a small denoiser handle the first steps of image generation and then hands over to a large one?",
    "I remember a paper that compresses the attention cache of a multimodal chat model, keeping text entries and merging the rest.",
    "Which optimizer, found by an automated search over programs, keeps only the sign of the update and uses less memory than Adam?",
    "Is there work that trains a verifier on final-answer correctness only, then uses it to guide a search over partial solutions?",
    "Which method generates moving 3D objects by fine-tuning a video model to render orbiting camera views, within minutes?",
    "For spiking networks, which paper learns the transmission delay of each connection with dilated temporal convolutions?",
]


def _run(cmd: list[str], env: dict[str, str]) -> tuple[float, float, str]:
    """Wall seconds, peak RSS in MiB and output of one child process."""
    start = time.perf_counter()
    with tempfile.TemporaryFile(mode="w+") as log:
        proc = subprocess.Popen(cmd, env=env, cwd=PROJECT_ROOT, stdout=log, stderr=subprocess.STDOUT, text=True)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - start
        log.seek(0)
        output = log.read()
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{output[-2000:]}")
    return wall, usage.ru_maxrss / 1024, output


def _units(output: str) -> int:
    import re

    match = re.search(r"embedded (\d+) units", output)
    return int(match.group(1)) if match else -1


def bench_index() -> None:
    """Cold build, no-op re-index and one-paper change, against llama-index's
    VectorStoreIndex.from_documents over the same papers and model."""
    work = Path(tempfile.mkdtemp(prefix="assistant-bench-"))
    corpus = work / "corpus"
    shutil.copytree(Settings().corpus_dir, corpus)
    env = {**os.environ, "ASSISTANT_CORPUS_DIR": str(corpus), "ASSISTANT_INDEX_DIR": str(work / "index"),
           "ASSISTANT_CHROMA_URL": "", "ASSISTANT_COLLECTION_PREFIX": "bench"}
    index_cmd = [sys.executable, "-m", "assistant", "index", "--quiet"]
    n = len(__import__("assistant.corpus", fromlist=["load_corpus"]).load_corpus(corpus).papers)
    try:
        cold, cold_rss, out = _run(index_cmd, env)
        print(f"cold build:        {cold:7.1f} s wall  {n / cold:6.1f} papers/s  peak RSS {cold_rss:6.0f} MiB  units embedded {_units(out)}")
        noop, noop_rss, out = _run(index_cmd, env)
        print(f"no-op re-index:    {noop:7.2f} s wall (incl. start-up)  peak RSS {noop_rss:6.0f} MiB  units embedded {_units(out)}")
        listing = sorted(corpus.glob("*.txt"))[-1]
        lines = listing.read_text(encoding="utf-8").split("\n")
        lines[3] += " This sentence was added by the benchmark."
        listing.write_text("\n".join(lines), encoding="utf-8")
        one, _, out = _run(index_cmd, env)
        print(f"one-paper change:  {one:7.2f} s wall  units embedded {_units(out)} (that paper's sentences + its paper unit)")
        li, li_rss, out = _run([sys.executable, "-m", "evals.bench.speed", "llama-index-build", str(corpus)], env)
        print(f"llama-index VectorStoreIndex.from_documents: {li:7.1f} s wall  {n / li:6.1f} papers/s  peak RSS {li_rss:6.0f} MiB  ({out.strip()})")
        print(f"per paper: ours {1000 * cold / n:.0f} ms vs llama-index {1000 * li / n:.0f} ms  (ratio {cold / li:.2f})")
    finally:
        shutil.rmtree(work, ignore_errors=True)


def llama_index_build(corpus_dir: str) -> None:
    """The out-of-the-box path a user would write: one Document per paper, default
    splitter, HuggingFaceEmbedding with the same packaged model, in-memory store."""
    from llama_index.core import Document, VectorStoreIndex
    from llama_index.core import Settings as LISettings
    from llama_index.embeddings.huggingface import HuggingFaceEmbedding

    from assistant.corpus import load_corpus

    papers = load_corpus(Path(corpus_dir)).papers
    LISettings.llm = None
    LISettings.embed_model = HuggingFaceEmbedding(model_name=str(Settings().embed_model_path), device="cpu")
    docs = [Document(text=f"{p.title}\n\n{p.abstract}", metadata={"title": p.title}) for p in papers]
    index = VectorStoreIndex.from_documents(docs)
    print(f"{len(index.docstore.docs)} nodes embedded")




def bench_query(repeats: int = 5) -> None:
    """Retrieval and offline answer latency beside a plain Chroma vector query."""
    settings = Settings(mode="offline")
    t0 = time.perf_counter()
    out = subprocess.run([sys.executable, "-m", "assistant", "ask", "--mode", "offline", QUESTIONS[0]],
                         cwd=PROJECT_ROOT, capture_output=True, text=True)
    cold = time.perf_counter() - t0
    if out.returncode != 0:
        raise RuntimeError(out.stderr[-2000:])
    from assistant.pipeline import Assistant

    assistant = Assistant(settings)
    index = assistant.index
    questions = QUESTIONS + LONG_QUESTIONS
    for q in questions:  # warm-up: model, BM25 and Chroma caches
        assistant.ask(q)
    vectors = {q: index.dense.embed_query(q) for q in questions}
    keys = ("chroma", "plain", "dense", "bm25", "hybrid", "answer")
    timings: dict[str, dict[str, list[float]]] = {q: {k: [] for k in keys} for q in questions}
    for _ in range(repeats):
        for q in questions:
            t = time.perf_counter()
            index.store.sentences.query(query_embeddings=[vectors[q]], n_results=10)
            timings[q]["chroma"].append((time.perf_counter() - t) * 1000)
            t = time.perf_counter()
            index.store.papers.query(query_embeddings=[index.dense.embed_query(q)], n_results=10)
            timings[q]["plain"].append((time.perf_counter() - t) * 1000)
            for name in ("dense", "bm25", "hybrid"):
                t = time.perf_counter()
                index.search(q, k=10, retriever=name)  # type: ignore[arg-type]
                timings[q][name].append((time.perf_counter() - t) * 1000)
            t = time.perf_counter()
            assistant.ask(q)
            timings[q]["answer"].append((time.perf_counter() - t) * 1000)
    print(f"{len(questions)} questions x {repeats} repeats, offline mode, {os.cpu_count()} CPUs")
    _print_latencies(f"all {len(questions)} questions", timings, questions)
    _print_latencies(f"the {len(LONG_QUESTIONS)} long questions (re-ranked by their parts)", timings, LONG_QUESTIONS)
    print(f"cold process start to first answer: {cold:.1f} s")


def _print_latencies(title: str, timings: dict[str, dict[str, list[float]]], questions: list[str]) -> None:
    """One table: p50/p95 of each step over `questions`, against a plain Chroma query of the same questions."""
    pooled = {k: [ms for q in questions for ms in timings[q][k]] for k in timings[questions[0]]}
    print(f"\n{title}")
    print(f"{'':44}{'p50 ms':>8}{'p95 ms':>8}{'p95 / plain p95':>17}")
    plain95 = percentile(pooled["plain"], 0.95)
    labels = {
        "chroma": "Chroma query alone (vector given)",
        "plain": "plain Chroma vector query (embed + top 10)",
        "dense": "dense retrieval (embed + Chroma)",
        "bm25": "BM25 retrieval",
        "hybrid": "hybrid retrieval (RRF)",
        "answer": "offline answer end to end",
    }
    for key, label in labels.items():
        p50, p95 = percentile(pooled[key], 0.5), percentile(pooled[key], 0.95)
        print(f"{label:44}{p50:8.1f}{p95:8.1f}{p95 / plain95:17.2f}")


def main() -> None:
    if len(sys.argv) == 3 and sys.argv[1] == "llama-index-build":
        llama_index_build(sys.argv[2])
        return
    raise SystemExit("usage: python -m evals.bench.speed llama-index-build CORPUS_DIR")


if __name__ == "__main__":
    main()

"""Which paper a question names: "What is AdamP?", "How does FlashRNN ...".

A name counts only when it points at one paper, so a question that names a paper
is answered from that paper even when its wording matches others better.
"""

from __future__ import annotations

import re
from collections import Counter

from assistant.models import Paper

# Acronyms that name a field or a device, not a paper ("... on a single GPU").
GENERIC_ACRONYMS = {
    "AI", "ML", "NLP", "LLM", "LLMS", "MLLM", "MLLMS", "LVLM", "LVLMS", "VLM", "VLMS", "GPU", "GPUS", "TPU", "TPUS",
    "CPU", "RL", "RLHF", "DNN", "DNNS", "CNN", "CNNS", "RNN", "RNNS", "GAN", "GANS", "VAE", "SOTA", "KV", "QA", "ODE",
    "SDE", "PDE", "PDES", "SGD", "MCTS", "DPO", "PPO", "SNN", "SNNS", "TTS", "SFT", "COT", "AR", "3D", "4D", "2D", "1D",
    "SLAM", "ASR", "OCR", "VQA", "UML", "ROS", "BEV",
}
_VERSION = re.compile(r"[vV]\d+(\.\d+)*")  # "V1.0" in "Pusa V1.0: ..." is no name of its own


def paper_names(paper: Paper) -> list[str]:
    """Short names a user may type for a paper: the part before the title's colon
    when it is short ("AdamP", "h-Edit", "TFMQ-DM"), and coined words in the title
    (mixed case or digits, like "FlashRNN" or "TimesNet"); generic acronyms excluded."""
    names: list[str] = []
    head = re.split(r":\s", paper.title, maxsplit=1)[0].strip()
    if head != paper.title and len(head.split()) <= 3 and head.upper() not in GENERIC_ACRONYMS:
        names.append(head)
    for word in re.findall(r"[\w$^\-\.]+", paper.title):
        word = word.strip(".-")
        if (len(word) < 3 or not re.match(r"[^\W\d]", word) or word.upper() in GENERIC_ACRONYMS
                or _VERSION.fullmatch(word)):
            continue
        if re.search(r"[a-z][A-Z]|[A-Z]{2,}[a-z]|\d", word) or word.isupper():
            names.append(word)
    return list(dict.fromkeys(names))


def name_pattern(name: str) -> re.Pattern[str]:
    """Coined names match in any case; a plain capitalised word ("Trace", "Hydra")
    must match exactly, so ordinary words in a question do not trigger it."""
    coined = bool(re.search(r"[a-z][A-Z]|\d|[a-z]-[A-Z]|[A-Z]-[a-z]", name))
    flags = re.IGNORECASE if coined else 0
    return re.compile(r"(?<![\w-])" + re.escape(name) + r"(?![\w-])", flags)


def distinctive_names(papers: dict[str, Paper]) -> list[tuple[str, str, re.Pattern[str]]]:
    """Names that point at one paper. The part of a title before its colon is the
    paper's own name unless another title uses it too; a coined word elsewhere in
    a title counts only when at most two abstracts mention it ("LoRA", "DDPM" and
    "NVIDIA" are common currency, "FlashRNN" is not)."""
    per_paper = {pid: paper_names(p) for pid, p in papers.items()}
    counts = Counter(n.casefold() for names in per_paper.values() for n in set(names))
    texts = [f"{p.title} {p.abstract}" for p in papers.values()]
    out = []
    for pid, names in per_paper.items():
        head = re.split(r":\s", papers[pid].title, maxsplit=1)[0].strip()
        for name in names:
            if counts[name.casefold()] != 1:
                continue
            pattern = name_pattern(name)
            if name != head and sum(1 for t in texts if pattern.search(t)) > 2:
                continue
            out.append((pid, name, pattern))
    return out


class NameMatcher:
    """The corpus's distinctive names, compiled once per index."""

    def __init__(self, papers: dict[str, Paper]) -> None:
        self.names = distinctive_names(papers)

    def named(self, query: str) -> list[str]:
        """Ids of the papers the question names, longest name first (the most
        specific name wins when a short one is part of a longer)."""
        hits = [(pid, len(name)) for pid, name, pattern in self.names if pattern.search(query)]
        hits.sort(key=lambda x: -x[1])
        return list(dict.fromkeys(pid for pid, _ in hits))

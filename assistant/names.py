"""Which paper a question names: "What is AdamP?", "What does BFFG stand for?".

A paper is named by the short name in its title ("AdamP: ...", "FlashRNN") or by a
name its abstract defines: an acronym spelled out before it ("Backward Filtering
Forward Guiding (BFFG)") or a coined name it introduces ("we introduce a novel
method called KV Prediction", "we propose PassUntil, a ..."). A name counts only
when it points at one paper: a name another paper also defines, or that several
abstracts use (a shared baseline, a field's acronym), names none. A question that
names a paper is answered from that paper even when its wording matches others
better, and is never refused (assistant/decide.py). The same spelled-out acronyms
give the keyword query both spellings of each (`Abbreviations`).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Collection, Iterable

from assistant.models import Paper
from assistant.text import ALNUM, title_head, words

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
    head = title_head(paper.title)
    if head != paper.title and len(head.split()) <= 3 and head.upper() not in GENERIC_ACRONYMS:
        names.append(head)
    for word in re.findall(r"[\w$^\-\.]+", paper.title):
        word = word.strip(".-")
        if (len(word) < 3 or not re.match(r"[^\W\d]", word) or word.upper() in GENERIC_ACRONYMS
                or _VERSION.fullmatch(word)):
            continue
        if _coined(word):
            names.append(word)
    return list(dict.fromkeys(names))


# An acronym in parentheses: two or more capitals, maybe lower case or digits ("BFFG", "TempME", "TD-LoRA").
ACRONYM = re.compile(r"\(([A-Za-z][A-Za-z0-9-]*[A-Z][A-Za-z0-9-]*)\)")
# A coined name: one to three capitalised words ("KV Prediction", "ZO-RankSGD").
_NAME = r"([A-Z][A-Za-z0-9]*(?:-[A-Za-z0-9]+)*(?:\s[A-Z][A-Za-z0-9]*(?:-[A-Za-z0-9]+)*){0,2})(?![\w-])"
# Where an abstract introduces a name: "called X", "dubbed X", "we propose X, a ...".
_INTRODUCED = re.compile(r"\b(?:called|named|dubbed|termed|coined)\s+" + _NAME
                         + r"|\b[Ww]e\s+(?:propose|introduce|present|develop)\s+" + _NAME
                         + r"(?=\s*(?:[,:(]|which\b|that\b|to\b|as\b))")


def long_form(before: str, acronym: str) -> str | None:
    """The words before "(ACRONYM)" that spell it, or None when they do not
    (Schwartz and Hearst's rule: each letter of the acronym, right to left, is found
    in order in those words, the first at the start of a word)."""
    letters = [c.casefold() for c in acronym if c.isalnum()]
    window = " ".join(before.split()[-min(len(letters) + 5, 2 * len(letters)):])
    i = len(window) - 1
    for j in range(len(letters) - 1, -1, -1):
        while i >= 0 and (window[i].casefold() != letters[j] or (j == 0 and i > 0 and window[i - 1].isalnum())):
            i -= 1
        if i < 0:
            return None
        i -= 1
    found = window[window.rfind(" ", 0, i + 2) + 1:].strip(" ,;")
    return found if " " in found or "-" in found else None


# Words that say the abstract introduces what follows ("we propose", "called"), as
# against borrowing it ("the recently proposed", "such as", "based on").
_INTRODUCING = re.compile(r"\b(?:(?:propos|introduc|present|develop|devis)(?:e|es|ing)|called|named|dubbed|termed|"
                          r"namely|coined|novel)\b", re.IGNORECASE)
# Between such a word and the name, a preposition makes the name what the new thing
# is of or for ("we propose a factored combination of rotary positional encoding").
_LINKING = re.compile(r"\b(?:of|for|with|on|in|to|from|by|than|like|as|over|via)\b", re.IGNORECASE)


def _introduced_here(before: str) -> bool:
    """Whether the sentence up to a name (its last ten words) introduces it: "our X",
    or an introducing word with no preposition between it and X. An acronym a paper
    borrows (a field's term, a baseline) is no name of that paper."""
    sentence = re.split(r"(?<=[.!?])\s+", before)[-1]
    text = " ".join(sentence.split()[-10:])
    if re.search(r"\bour$", text, re.IGNORECASE):
        return True
    cues = list(_INTRODUCING.finditer(text))
    if not cues:
        return False
    after = text[cues[-1].end():]
    if cues[-1].group().lower() in ("called", "named", "dubbed", "termed"):
        after = re.sub(r"^\s+as\b", "", after)  # "an algorithm, dubbed as Reinforced Token Optimization"
    return not _LINKING.search(after)


def _coined(word: str) -> bool:
    """Mixed case, a digit, or three or more capitals: a word nobody writes by chance."""
    return bool(re.search(r"[a-z][A-Z]|[A-Z]{2,}[a-z]|\d", word)) or (word.isupper() and len(word) >= 3)


def spelled_out(abstract: str) -> list[tuple[str, bool]]:
    """Acronyms an abstract spells out ("Backward Filtering Forward Guiding (BFFG)"),
    each with whether it introduces them there or borrows them ("... based on State
    Space Duality (SSD)"). Generic acronyms ("large language models (LLMs)") and
    two-letter ones are left out."""
    found: list[tuple[str, bool]] = []
    for match in ACRONYM.finditer(abstract):
        acronym, before = match.group(1), abstract[:match.start()]
        if len(acronym) < 3 or {acronym.upper(), acronym.upper().removesuffix("S")} & GENERIC_ACRONYMS:
            continue
        if spelled := long_form(before, acronym):
            found.append((acronym, _introduced_here(before[:before.rfind(spelled)])))
    return found


def spells_out(text: str, names: list[str]) -> bool:
    """Whether a text gives one of `names`, field acronyms included, with the long form
    it abbreviates ("Direct Preference Optimization (DPO)"): what "What is DPO?" asks."""
    return any(long_form(text[:m.start()], name) is not None for name in names
               for m in re.finditer(rf"\(\s*{re.escape(name)}s?\s*\)", text))


def defined_names(abstract: str) -> list[str]:
    """Names an abstract defines: acronyms it introduces ("we introduce the automatic
    Backward Filtering Forward Guiding (BFFG)") and coined names ("a novel method
    called KV Prediction": one coined word, or two or three capitalised words)."""
    names = [acronym for acronym, introduced in spelled_out(abstract) if introduced]
    for match in _INTRODUCED.finditer(abstract):
        name = match.group(1) or match.group(2)
        if " " in name or _coined(name):
            names.append(name)
    return list(dict.fromkeys(names))


def name_pattern(name: str, any_case: bool = False) -> re.Pattern[str]:
    """Coined names match in any case; a plain capitalised word ("Trace", "Hydra")
    must match exactly, so ordinary words in a question do not trigger it, and so
    must an acronym unless `any_case` (`lower_case_safe`)."""
    coined = bool(re.search(r"[a-z][A-Z]|\d|[a-z]-[A-Z]|[A-Z]-[a-z]", name))
    flags = re.IGNORECASE if coined or any_case else 0
    return re.compile(r"(?<![\w-])" + re.escape(name) + r"(?![\w-])", flags)


def lower_case_safe(name: str, texts: list[tuple[str, str]], words: Collection[str]) -> bool:
    """Whether an all-capital acronym ("BFFG", "EDA-DM") may match a question that
    writes it in lower case ("what is bffg?"), as people type: its lower-case form is
    no word of `words` (the English the model reads: "car", "lamp", "nirvana") and no
    abstract writes it in lower case ("guide", "help")."""
    letters = re.sub(r"[^A-Za-z]", "", name)
    lowered = name.lower()
    if len(letters) < 3 or not letters.isupper() or lowered in words:
        return False
    exact = name_pattern(lowered)
    return not any(lowered in low and exact.search(text) for text, low in texts)


def distinctive_names(papers: dict[str, Paper],
                      words: Collection[str] = frozenset()) -> list[tuple[str, str, re.Pattern[str]]]:
    """Names that point at one paper: its title's (`paper_names`) and its abstract's
    (`defined_names`), as (paper id, name, pattern). `words`: English words, which an
    acronym written in lower case would be rather than a name (`lower_case_safe`)."""
    texts = [(text, text.lower()) for text in (f"{p.title} {p.abstract}" for p in papers.values())]
    titled = {pid: paper_names(p) for pid, p in papers.items()}
    titles = Counter(n.casefold() for names in titled.values() for n in set(names))
    def pattern(name: str) -> re.Pattern[str]:
        return name_pattern(name, bool(words) and lower_case_safe(name, texts, words))

    return _title_names(papers, titled, titles, texts, pattern) + _abstract_names(papers, titles, texts, pattern)


def _title_names(papers: dict[str, Paper], titled: dict[str, list[str]], titles: Counter[str],
                 texts: list[tuple[str, str]],
                 pattern_of: Callable[[str], re.Pattern[str]]) -> list[tuple[str, str, re.Pattern[str]]]:
    """The part of a title before its colon is the paper's own name unless another
    title uses it too; a coined word elsewhere in a title counts only when at most
    two abstracts mention it ("LoRA", "DDPM" and "NVIDIA" are common currency,
    "FlashRNN" is not)."""
    out = []
    for pid, names in titled.items():
        head = title_head(papers[pid].title)
        for name in names:
            if titles[name.casefold()] != 1:
                continue
            pattern = pattern_of(name)
            if name != head and _mentions(name, pattern, texts) > 2:
                continue
            out.append((pid, name, pattern))
    return out


def _abstract_names(papers: dict[str, Paper], titles: Counter[str], texts: list[tuple[str, str]],
                    pattern_of: Callable[[str], re.Pattern[str]]) -> list[tuple[str, str, re.Pattern[str]]]:
    """A name an abstract defines counts when it is no title's name, no other
    abstract spells it out or defines it, and at most two abstracts mention it: a
    shared baseline or a field's acronym names no one paper."""
    defined = {pid: defined_names(p.abstract) for pid, p in papers.items()}
    claims = Counter(n.casefold() for pid, p in papers.items()
                     for n in {*defined[pid], *(acronym for acronym, _ in spelled_out(p.abstract))})
    out = []
    for pid, names in defined.items():
        for name in names:
            if titles[name.casefold()] or claims[name.casefold()] != 1:
                continue
            pattern = pattern_of(name)
            if _mentions(name, pattern, texts) <= 2:
                out.append((pid, name, pattern))
    return out


def _mentions(name: str, pattern: re.Pattern[str], texts: list[tuple[str, str]]) -> int:
    """How many papers' title and abstract mention a name. The substring test on the
    lower-cased text goes first: the pattern's look-arounds make every search slow
    (0.1-0.3 ms an abstract), and most abstracts lack the name altogether."""
    key = name.lower()
    return sum(1 for text, lowered in texts if key in lowered and pattern.search(text))


class NameMatcher:
    """The corpus's distinctive names, compiled once per index."""

    def __init__(self, papers: dict[str, Paper], words: Collection[str] = frozenset()) -> None:
        self.names = distinctive_names(papers, words)

    def named(self, query: str) -> list[str]:
        """Ids of the papers the question names, longest name first (the most
        specific name wins when a short one is part of a longer)."""
        hits = [(pid, len(name)) for pid, name, pattern in self.names if pattern.search(query)]
        hits.sort(key=lambda x: -x[1])
        return list(dict.fromkeys(pid for pid, _ in hits))


_TYPED_ACRONYM = re.compile(r"(?<![\w-])([A-Za-z][A-Za-z0-9-]*[A-Z][A-Za-z0-9-]*?)s?(?![\w-])")


def _plain(text: str) -> str:
    return " ".join(words(text, ALNUM))


def _singular(form: str) -> str:
    """"large language models" and "large language model" are one long form."""
    return re.sub(r"(?<=[a-z]{3})s$", "", form)


class Abbreviations:
    """The acronyms the abstracts spell out ("large language models (LLMs)", "Low-Rank
    Adaptation (LoRA)"), each with its most common long form. A question's keyword
    query gets the other spelling of each it uses: "LoRA" also searches "low rank
    adaptation" (TriAdaptLoRA's abstract writes only that), "reinforcement learning
    from human feedback" also searches "RLHF". The dense model reads either."""

    def __init__(self, papers: Iterable[Paper]) -> None:
        found: dict[str, dict[str, int]] = {}
        for paper in papers:
            for match in ACRONYM.finditer(paper.abstract):
                acronym = re.sub(r"(?<=[A-Z0-9])s$", "", match.group(1))
                spelled = long_form(paper.abstract[:match.start()], acronym)
                if spelled:
                    forms, form = found.setdefault(acronym, {}), _singular(_plain(spelled))
                    forms[form] = forms.get(form, 0) + 1
        # the reading at least two abstracts in three give: "RL" is reinforcement learning
        # (19 of 20), "CM" a consistency model once and a causal mask once, so neither
        self.long = {a: top for a, forms in found.items() if len(re.sub(r"[^A-Za-z]", "", a)) >= 2
                     and 3 * forms[top := max(forms, key=lambda f: (forms[f], f))] >= 2 * sum(forms.values())}
        self.short = {form: a for a, form in self.long.items()}

    def expand(self, query: str) -> str:
        """The query with the long form of each acronym it uses and the acronym of each
        long form it spells out, appended once each."""
        extra = [self.long[m.group(1)] for m in _TYPED_ACRONYM.finditer(query) if m.group(1) in self.long]
        plain = f" {_plain(query)} "
        spelled = [form for form in self.short if f" {form} " in plain]
        # the longest form only: "reinforcement learning from human feedback" is RLHF, not also RL
        extra += [self.short[f] for f in spelled if not any(f != g and f in g for g in spelled)
                  and self.short[f] not in query]
        extra = [e for e in dict.fromkeys(extra) if e not in plain]
        return f"{query} {' '.join(extra)}" if extra else query

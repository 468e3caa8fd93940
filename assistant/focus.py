"""Which papers answer a question, and which of their sentences carry the answer.
Both answerers use it: the offline one quotes what it picks, the LLM one is shown
only that, so a small model reads a few sentences instead of whole abstracts.

How many papers follows the question. One paper is asked for ("Which paper ...",
"What does AdamP ...") unless the question asks for several ("Which papers ...",
"Compare ...", "X versus Y", two papers named): then every retrieved paper whose
best sentence comes near the best one's (and is no weak match itself), whose fused
score is not far below the top paper's and whose words come about as near all of
the question's as the best of them (word support, assistant/words.py: a paper
sharing only "transformers" with "Which papers predict stock prices with
transformers?" does not answer it). Citing runners-up of a one-paper question cost
more citation precision than it gained recall on the evaluation's tune questions,
so they are left out.

A list question ("Which papers ...?", "What work ...?", a short "How can X be
done?") asks for every paper that answers, so each retrieved paper is judged on its
own: it is cited when its best sentence comes near the question and its words
cover the question's (word support), whatever the best paper scores; no cap. The
relative rule above cited a quarter of the papers of a long list (evals/README.md,
lists).

For a comparison, each part of the question ("How do ReMax and RTO differ?") also
brings in the paper that best matches it, and each name it uses brings in the paper
that introduces that name, even when only its abstract does ("Lion" in "Compare
Lion and Sophia optimizers").

Within a paper, a sentence is scored by its similarity to the question plus how
many of the question's (stemmed) words it shares outside URLs, with a small bonus
for what tends to hold the answer (a named method or acronym, a number (more when
the question asks how many, how much or what FID, accuracy, ...), "we propose ...",
and for "What is X?" the sentence that introduces X) and a penalty for what never
does (link and code-availability lines, the opening background sentence,
fragments). The weights were chosen on the tune questions (evals/README.md,
answers)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING

from rapidfuzz import fuzz

from assistant.models import Paper
from assistant.names import GENERIC_ACRONYMS, spells_out
from assistant.names import defined_names as abstract_names
from assistant.text import STOPWORDS, URL, title_head

if TYPE_CHECKING:
    from assistant.citations import Source


PLURAL = re.compile(r"\b(which|what|list|name|find|any|are there)\s+(\w+[\s-]+){0,3}?"
                    r"(?<!paper )(?<!work )(papers|works|studies|approaches|methods|articles)\b|^(papers|works)\b", re.I)
COMPARE = re.compile(r"\bcompare\b|\bversus\b|\bvs\.?\s|\bhow do\b.+\band\b.+\b(differ|each|both)\b|"
                     r"\bdiffer(ence)?s? between\b|\bhow does\b.+\bdiffer\b|:\s*[^:?]+\bor\b[^:?]+\?$|\b(and|or)\b[^?]*\beach\b|"
                     r"\bwhich\b[^?]*\band which\b", re.I)
LINK = re.compile(r"https?://|github\.com|\bavailable at\b|\b(code|project page|demo|website|models?|dataset|data|"
                  r"checkpoints?)\b[^.]{0,40}\b(available|released|found|open[- ]sourced?|public)\b", re.I)
ASKS_FOR_NUMBER = re.compile(r"\b(how (many|much|large|big|fast|long|often|well)|by how much|what (share|percentage|"
                             r"fraction|proportion|accuracy|speed-?up|ratio|score|size))\b|"
                             r"\bwhat\b[^?]{0,40}\b(fid|bleu|rouge|perplexity|f1|auc|psnr|ssim|accuracy|error rate|"
                             r"speed-?ups?|win rate|pass@1|throughput|latency|compression ratio)\b", re.I)
# "What is X?", "What does X do?": the sentence that introduces X answers it.
ASKS_WHAT_IS = re.compile(r"^\s*(what|who)\s+(is|are|was|were|does|do)\b", re.I)
CAPITALISED = re.compile(r"\b[A-Z][\w-]*")
ASKS_FOR_LINK = re.compile(r"\b(code|repo(sitory)?|github|link|url|website|project page|download|demo)\b", re.I)
# Who wrote a paper, where, when: what the abstracts never say, and the listing rarely.
ASKS_FOR_LISTING = re.compile(r"\bwho\s+(wrote|writes|authored|are the authors|made|created|developed|is behind|"
                              r"proposed|introduced|invented|came up with|designed|"
                              r"are behind)\b|\bauthors?\s+(of|behind)\b|\b(which|what)\s+(lab|organi[sz]ation|"
                              r"company|university|institution|group)s?\s+(wrote|published|made|developed|released|"
                              r"is behind|are behind|authored)\b|\bwhen\s+(was|were|did)\b[^?]*\b(published|released|"
                              r"written|come out|appear(ed)?)\b|\bwhat\s+year\b|\bpublication date\b", re.I)
# "Which papers ...", "What work ...", "Any papers on ...", "approaches to ...", "I'm looking
# for papers on ...", "What has been done on ...", "Ways to ...", "How do people ...", "What
# techniques ...", "an overview of ...", "Summarize the work on ...", "the literature on ...",
# "What is known about ...": every paper that answers. "Is there work that ...?" is left
# out: the conversation set asks it of one paper (conv-003, conv-010), and so is "work on"
# without an article ("Does it also work on video?").
COUNTS = {"two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8, "nine": 9, "ten": 10}
_COUNT = r"(\d{1,2}|" + "|".join(COUNTS) + ")"
LIST = re.compile(r"\bwhat\s+(work|research)\b|\b(any|all)\s+(papers|works|studies)\b|"
                  r"\bany\s+(work|research)\s+(on|about|in|into)\b|"
                  r"\b(what|which)\s+(\w+\s+)?(approaches|methods|techniques|ways)\s+(to|for|of)\b|"
                  r"\b(looking for|show me|give me|point me to|suggest|recommend)\s+(some\s+|any\s+|a few\s+|the\s+|"
                  + _COUNT + r"\s+)?(papers|works|work|studies|research|articles)\b|\bwhat\s+has\s+been\s+done\b|"
                  r"^\s*(ways|approaches|methods)\s+(to|for|of)\b|^\s*how\s+(do|did)\s+(people|researchers|others)\b|"
                  r"\b(what|which)\s+(\w+\s+)?(techniques|strategies|solutions|options|algorithms)\b|"
                  r"\b(overview|survey)\s+of\s+(?!the\b|this\b|that\b|its?\b)|"
                  r"\bsummari[sz]e\s+(the\s+)?(work|research|literature|papers|studies)\b|\bliterature\s+(on|about|says?)\b|"
                  r"\b(the|recent|prior|existing|related|previous|published|about)\s+(research|work)\s+(on|about|in|into)\b|"
                  r"\bwhat\s+is\s+known\s+(about|on)\b|"
                  r"\bwhat\s+has\s+been\s+(published|written|proposed)\b", re.I)
# A short "How can X be done?" asks for the ways; a long one describes one paper's way
# (the single-paper "How can ..." questions of core and hard have 18 words or more);
# "How does X work?" asks about one thing.
HOW = re.compile(r"^\s*how\s+(can|could|to|might|should|would|(do|does|would|should)\s+(i|you|we|one))\b", re.I)
# "Give me three papers on ...", "list 5 papers about ...": that many, no more.
ASKED_COUNT = re.compile(r"\b" + _COUNT + r"\s+(\w+[\s-]+){0,2}?(papers|works|studies|articles)\b", re.I)
HOW_MAX_WORDS = 14
RECENT = re.compile(r"\b(latest|recent(ly)?|newest|most recent)\b", re.I)
NAME = re.compile(r"\b[A-Z][a-z]*[A-Z][A-Za-z0-9-]*\b|\b[A-Z]{2,}[A-Za-z0-9-]*\b")
NUMBER = re.compile(r"\d")
CLAIM = re.compile(r"\b(we|this paper|this work|our method|our approach)\s+(\w+\s+)?(propose|introduce|present|"
                   r"develop|design|call|name|show|find|demonstrate|achieve)", re.I)

# Sentence score = similarity + these (tune questions of core + hard, evals/README.md).
SHARED_WORDS = 0.2  # x share of the question's content words the sentence contains
NAMED_THING = 0.1
HAS_NUMBER = 0.1
NUMBER_ASKED = 0.2  # instead, when the question asks how many, how much, what share ...
CLAIM_BONUS = 0.1
DEFINES_BONUS = 0.2  # the sentence introducing the X of "What is X?"
LINK_PENALTY = 0.4
OPENER_PENALTY = 0.2  # the first sentence, unless it states the contribution
MIN_CHARS = 40  # shorter pieces are fragments ("Short one.") or headings

# A paper whose best sentence is further from the question than this is never cited
# unless the question names it, or a list question abstention has judged finds it
# fitting (`choose_papers`): the abstention model refuses most such questions first,
# and it does not judge questions it cannot read (another language).
FLOOR = 0.3

# Papers cited for a question that asks for several.
SEVERAL_SIMILARITY_MARGIN = 0.2  # best sentence at most this far below the best paper's
SEVERAL_SCORE_SHARE = 0.5  # fused retrieval score at least this share of the top paper's
# Beside the first, a paper cited among several needs a best sentence of at least
# SEVERAL_FLOOR (unless its words are the best match of all) and word support
# (assistant/words.py) at most SEVERAL_SUPPORT_MARGIN below the best of them: image
# transformer papers come within the similarity margin of "Which papers predict
# stock prices with transformers?" (whose nearest paper, on cryptocurrency prices,
# is a weak match itself) on one word alone.
SEVERAL_FLOOR = 0.4
SEVERAL_SUPPORT_MARGIN = 0.2
SEVERAL_MAX_PAPERS = 4
# A paper of a list answer shows on its own that it is about what is asked: the mean
# of its best sentence similarity and its word support, plus its BM25 score /
# KEYWORD_SCALE (the question's own terms in its title or abstract), reaches LIST_FIT.
# Chosen on the tune questions of evals/questions/lists.jsonl and the several-paper
# questions of core and hard tune (evals/README.md, lists).
LIST_FIT = 0.88
KEYWORD_SCALE = 20.0
LEAD_SENTENCES = 4  # sentences quoted when one paper answers
SENTENCES_EACH = 2  # when several do
NEAR_DUPLICATE = 85  # rapidfuzz ratio above which two sentences say the same thing


@dataclass(frozen=True)
class Pick:
    """A source to cite (its number in the evidence) and its sentences, best first."""

    n: int
    sentences: list[int]


# Asking for more papers like those under discussion: "Are there other fast samplers?",
# "Any similar work?", "What else is there?", "Which alternatives exist?". A question about
# the paper itself ("Does it beat other samplers?", "What else does it do?") is not, nor
# one on a subject of its own ("Which papers are related to diffusion quantization?").
OTHERS = re.compile(r"^\s*(are there|is there|any|what|which|show|find|list|give|recommend|suggest|point me|"
                    r"i'?m looking|looking)\b[^?]*\b(?<!each )(other|others|else|alternatives?|similar|related(?!\s+to\b))\b",
                    re.IGNORECASE)
_ABOUT_IT = re.compile(r"\b(does|do|did|is|are|was|were|can|could|has|have)\s+(it|they|this|these|those)\b|"
                       r"\b(than|beat|beats|outperform|outperforms)\s+(it|this|them)\b", re.IGNORECASE)


def asks_for_others(question: str) -> bool:
    """Whether a question asks for papers besides those under discussion (OTHERS)."""
    return bool(OTHERS.search(question)) and not _ABOUT_IT.search(question)


# A question about the collection itself, not a subject in it: "How many papers are in the
# corpus?", "What topics does the collection cover?", "What's in your library?". It needs
# the collection's own word, so "How many papers use LoRA?" stays a question on LoRA.
_COLLECTION = r"(corpus|collection|database|library|index|dataset of papers)"
ABOUT_CORPUS = re.compile(
    r"^\s*how\s+many\s+(papers|abstracts|documents|articles|works)(\s+(are|is|does|do))?(\s+there)?\s+"
    r"(in\s+)?(the|this|your|you)\s+(" + _COLLECTION[1:-1] + r"|have|hold|know)"
    r"(\s+(are|is|have|has|hold|holds|contain|contains|there))*\s*\??\s*$|"
    r"^\s*what\s+(topics|subjects|areas|fields|kinds? of papers)\s+(does|do|are|is)\s+(in\s+)?(the|this|your)\s+"
    + _COLLECTION + r"\b|^\s*what('s|\s+is)\s+in\s+(the|this|your)\s+" + _COLLECTION + r"\b|"
    r"^\s*what\s+(does|do)\s+(the|this|your)\s+" + _COLLECTION + r"\s+(cover|contain|hold|include)\b", re.I)


def asks_about_corpus(question: str) -> bool:
    """Whether the question asks about the collection itself (ABOUT_CORPUS)."""
    return bool(ABOUT_CORPUS.search(question))


def asks_for_several(question: str, named: int = 0) -> bool:
    """"Which papers ...", comparisons, or two or more papers named."""
    return bool(PLURAL.search(question) or COMPARE.search(question) or named > 1 or asks_for_list(question))


def asks_for_list(question: str, named: int = 0) -> bool:
    """Whether the question asks for every paper on a subject (module docstring); a
    comparison, or a question naming two papers, asks for those papers only."""
    if COMPARE.search(question) or named > 1:
        return False
    short_how = bool(HOW.search(question)) and len(question.split()) <= HOW_MAX_WORDS
    return bool(PLURAL.search(question) or LIST.search(question) or short_how) or asks_for_others(question)


def asked_count(question: str) -> int | None:
    """How many papers a list question asks for ("three papers on ..."), if it says."""
    found = ASKED_COUNT.search(question)
    if found is None:
        return None
    word = found.group(1).lower()
    return int(word) if word.isdigit() else COUNTS[word]


def asks_for_recent(question: str) -> bool:
    """"Which are the latest papers on ...": newest first."""
    return bool(RECENT.search(question))


@lru_cache(maxsize=4096)  # bound: 4096 texts (questions, sentences), ~3 KB each at most: ~12 MB
def stems(text: str) -> frozenset[str]:
    """Content words, stemmed and without stopwords, as the keyword index reads them."""
    import bm25s

    from assistant.keyword import TOKEN_PATTERN, stemmer, with_compounds

    tokens = bm25s.tokenize(with_compounds(text), stopwords="en", stemmer=stemmer(), token_pattern=TOKEN_PATTERN,
                            return_ids=False, show_progress=False)
    return frozenset(tokens[0]) if tokens else frozenset()


def as_word(name: str, flags: int = 0) -> re.Pattern[str]:
    """`name` as a word of its own: "Step-DPO" holds no DPO, "BDIA-DDIM" no DDIM."""
    return re.compile(rf"(?<![\w-]){re.escape(name)}(?![\w-])", flags)


def defined_names(question: str) -> list[str]:
    """The names a "What is X?" / "What does X do?" question asks about: its
    capitalised words after the first, and a short word in lower case as the acronym
    it may be typed for ("what is sps?" -> "SPS", which a sentence must then spell out
    in capitals to count); none for other questions."""
    if not ASKS_WHAT_IS.search(question):
        return []
    rest = question.split(None, 1)[1] if " " in question else ""
    typed = [w.upper() for w in re.findall(r"\b[a-z][a-z0-9-]{1,7}\b", rest) if w not in STOPWORDS]
    return [w for w in CAPITALISED.findall(rest) if len(w) > 1] + typed


def defines(text: str, names: list[str]) -> bool:
    """Whether a sentence introduces one of `names`: with a contribution verb ("we
    propose X") or its expansion beside it ("Reward-based Noise Optimization (ReNO)").
    The name as a word of its own: "Step-DPO" does not name DPO."""
    def expanded(name: str) -> bool:
        return bool(re.search(rf"(?<![\w-]){re.escape(name)}\s*\(|\(\s*{re.escape(name)}\b", text))

    def named(name: str) -> bool:
        return bool(as_word(name).search(text))

    return any(named(name) and (bool(CLAIM.search(text)) or expanded(name)) for name in names)


def sentence_scores(question: str, sentences: list[str], similarities: list[float]) -> list[float]:
    """Higher for the sentences that answer (module docstring); a link line is what
    answers "where is its code?", so there it counts for, not against, a sentence.
    Shared words are counted outside URLs: "https://github.com/clovaai/AdamP" holds
    the name of "What is AdamP?" and says nothing of what it is."""
    asked = stems(question)
    link_penalty = -LINK_PENALTY if ASKS_FOR_LINK.search(question) else LINK_PENALTY
    number_bonus = NUMBER_ASKED if ASKS_FOR_NUMBER.search(question) else HAS_NUMBER
    names = defined_names(question)
    scores = []
    for i, (text, sim) in enumerate(zip(sentences, similarities)):
        claim = bool(CLAIM.search(text))
        score = sim + SHARED_WORDS * len(asked & stems(URL.sub(" ", text))) / max(1, len(asked))
        score += NAMED_THING * bool(NAME.search(text)) + number_bonus * bool(NUMBER.search(text)) + CLAIM_BONUS * claim
        score += DEFINES_BONUS * (bool(names) and defines(text, names))
        score -= link_penalty * bool(LINK.search(text)) + OPENER_PENALTY * (i == 0 and not claim)
        score -= 1.0 * (len(text) < MIN_CHARS)
        scores.append(score)
    return scores


def choose_papers(question: str, best: dict[int, float], scores: dict[int, float], named: list[int],
                  support: dict[int, float] | None = None, keyword: dict[int, float] | None = None,
                  judged: bool = False) -> list[int]:
    """Source numbers to cite, in retrieval order. `best`: each source's best sentence
    similarity; `scores`: its fused retrieval score; `named`: sources the question names;
    `support`: how near each source's words come to all the question's (idf-weighted);
    `keyword`: its BM25 score; `judged`: abstention found the first source answers, so
    the floor does not drop it (a short question, "what is sps?", is far from every
    sentence while its word is in the first paper's)."""
    first = min(best, default=None) if judged else None
    order = [n for n in sorted(best) if best[n] >= FLOOR or n in named or n == first]
    if not order:
        return []
    if not asks_for_several(question, len(named)):
        return [named[0] if named else order[0]]
    if len(named) > 1:
        return sorted(named)
    if asks_for_list(question):
        # judged readable, the floor gives way to the fit: a paper all about "LoRA", a word
        # the model reads poorly, has sentences far from "Which papers are about LoRA?"
        pool = [order[0]] + [n for n in sorted(best) if n != order[0] and (judged or n in order)]
        listed = fitting(pool, best, support or {}, keyword or {})
        if (wanted := asked_count(question)) is not None:  # as many as asked: the fitting ones first
            listed = sorted((listed + [n for n in order if n not in listed])[:wanted], key=order.index)
        return listed
    return near_the_best(order, best, scores, named, support)


def fitting(order: list[int], best: dict[int, float], support: dict[int, float],
            keyword: dict[int, float]) -> list[int]:
    """Each paper that shows on its own that it is about what is asked (LIST_FIT), in
    retrieval order; the first always (abstention has judged the question answerable)."""
    def fit(n: int) -> float:
        return (best[n] + support.get(n, 0.0)) / 2 + keyword.get(n, 0.0) / KEYWORD_SCALE

    return order[:1] + [n for n in order[1:] if fit(n) >= LIST_FIT]


def near_the_best(order: list[int], best: dict[int, float], scores: dict[int, float], named: list[int],
                  support: dict[int, float] | None = None) -> list[int]:
    """Several papers, each near the best one (module docstring), at most SEVERAL_MAX_PAPERS."""
    top_score, top_sim = scores.get(order[0], 0.0), max(best.values())
    chosen = [n for n in order if best[n] >= top_sim - SEVERAL_SIMILARITY_MARGIN
              and scores.get(n, 0.0) >= SEVERAL_SCORE_SHARE * top_score]
    support = support or {}
    top_support = max((support.get(n, 0.0) for n in chosen), default=0.0)
    # A weak best sentence is let through when the paper speaks of everything asked
    # about as well as the best-supported paper does (STAG4D for "Which papers use
    # Gaussian splatting?").
    chosen = chosen[:1] + [n for n in chosen[1:]
                           if (best[n] >= SEVERAL_FLOOR or (n in support and support[n] >= top_support))
                           and support.get(n, top_support) >= top_support - SEVERAL_SUPPORT_MARGIN]
    return sorted(set(chosen) | set(named))[:SEVERAL_MAX_PAPERS]


def sides(question: str, part_similarities: dict[int, list[float]]) -> set[int]:
    """For a comparison, the source that best matches each part of the question
    (`part_similarities`: source n -> its best sentence similarity to each part), so
    both sides of "How do ReMax and RTO differ?" are cited even when one side's paper
    ranks well below the other's."""
    if not part_similarities or not COMPARE.search(question):
        return set()
    n_parts = min(len(v) for v in part_similarities.values())
    found = set()
    for j in range(n_parts):
        n = max(part_similarities, key=lambda k: (part_similarities[k][j], -k))
        if part_similarities[n][j] >= FLOOR:
            found.add(n)
    return found


def compared_names(question: str) -> list[str]:
    """The names a comparison uses for its sides: coined words and acronyms ("MAGNeT",
    "DMD2") and capitalised words after the first ("Lion", "Sophia"), generic
    acronyms ("LLMs") left out."""
    if not COMPARE.search(question):
        return []
    rest = question.split(None, 1)[1] if " " in question else ""
    found = NAME.findall(question) + CAPITALISED.findall(rest)
    return [w for w in dict.fromkeys(w.strip("-") for w in found) if len(w) > 2 and w.upper() not in GENERIC_ACRONYMS]


# The words on either side of a comparison's connector: the sides it names
# ("DPM-Solver and DDIM"), not every capitalised word ("... on ImageNet").
SIDE = re.compile(r"([\w-]+)\s+(?:and|or|vs\.?|versus|against|with|to)\s+(?:the\s+)?([\w-]+)", re.I)


_CLAUSE = re.compile(r"[:;,?]\s*")
_CONNECTOR = re.compile(r"\s+(?:versus|vs\.?|and|or)\s+", re.I)
_LEAD_IN = re.compile(r"^(?:compare|contrast|how (?:do|does|did)|what (?:is|are) the differences? between|"
                      r"(?:the )?differences? between|between)\s+(?:the\s+)?", re.I)


def side_phrases(question: str) -> list[str]:
    """A comparison's two sides as phrases: "ProDiff versus forward-backward decoding:
    how does each ..." -> ["ProDiff", "forward-backward decoding"], from the first
    clause joining two things; none for other questions. Only a phrase a title holds
    as written names a paper (`name_sides`): matched by similarity instead, "TimesNet
    vs transformers for time series" cited a skeleton action-recognition transformer."""
    if not COMPARE.search(question):
        return []
    for clause in _CLAUSE.split(question):
        pieces = _CONNECTOR.split(_LEAD_IN.sub("", clause.strip()), maxsplit=1)
        if len(pieces) == 2 and all(p.strip() for p in pieces):
            return [p.strip() for p in pieces]
    return []


def side_names(question: str) -> list[str]:
    """The names a comparison puts on its sides: coined or capitalised words beside a
    connector, the question's first word included ("Lion versus Sophia: ...")."""
    if not COMPARE.search(question):
        return []
    around = [w.strip("-") for m in SIDE.finditer(question) for w in m.groups()]
    return [w for w in dict.fromkeys(around) if (NAME.fullmatch(w) or CAPITALISED.fullmatch(w)) and len(w) > 2
            and w.lower() not in STOPWORDS and w.upper() not in GENERIC_ACRONYMS]


def introduced(name: str, sources: Sequence[Source]) -> bool:
    """Whether a source is about `name`: its title has it, or its abstract introduces
    it, as a name it defines (assistant/names.py) or followed by what it stands for
    ("Lion (EvoLved Sign Momentum)": no title names Lion). A claim sentence that only
    uses it ("we propose an adapter ... with DDIM inversion") does not count."""
    word = as_word(name, re.I)  # "Multi-student" titles Multi-Student
    coined = re.compile(rf"(?<![\w-]){re.escape(name)}\s*\(")
    return any(word.search(s.paper.title) or name in abstract_names(s.paper.abstract)
               or coined.search(s.paper.abstract) for s in sources)


def mentioning(name: str, sources: Sequence[Source]) -> list[int]:
    """The sources whose abstracts use `name` as a word of its own, in retrieval order."""
    word = as_word(name)
    return [s.n for s in sources if any(word.search(t) for t in s.sentences)]


def introducer(name: str, titles: dict[int, str], sentences: dict[int, list[str]]) -> int | None:
    """The source that introduces `name`: the one whose title opens with it, else whose
    abstract introduces it without its title being about it ("Lion Secretly Solves ..."
    studies Lion; "Symbolic Discovery of Optimization Algorithms" introduces it), else
    whose abstract introduces or uses it; retrieval order breaks ties. None when no
    source, or more than two, use it (then it names no one paper)."""
    word = as_word(name)
    using = [n for n in sorted(titles) if word.search(titles[n]) or any(word.search(t) for t in sentences[n])]
    if not using or len(using) > 2:
        return None

    def rank(n: int) -> int:
        head = title_head(titles[n])
        in_title, introduces = bool(word.search(titles[n])), any(defines(t, [name]) for t in sentences[n])
        return 0 if word.fullmatch(head) or head.startswith(name + " ") and len(head.split()) <= 2 else \
            1 if introduces and not in_title else 2 if introduces else 3 if in_title else 4
    return min(using, key=rank)


def name_sides(question: str, titles: dict[int, str], sentences: dict[int, list[str]]) -> list[int]:
    """For a comparison, the source introducing each name it uses, in question order,
    and the first source whose title holds a side's phrase as written ("ProDiff versus
    forward-backward decoding": the paper titled "Forward-Backward Decoding for ...",
    which similarity alone puts below a paper on speculative Jacobi decoding)."""
    found = [introducer(name, titles, sentences) for name in compared_names(question)]
    for phrase in (p for p in side_phrases(question) if len(p.split()) > 1):  # one word: a name, as above
        words = as_word(phrase, re.I)
        found.append(next((n for n in sorted(titles) if words.search(titles[n])), None))
    return list(dict.fromkeys(n for n in found if n is not None))


def spelling_out(question: str, sources: Sequence[Source], chosen: int) -> int:
    """For "What is DPO?" when no paper is named DPO: the first source (in retrieval
    order, above the floor) whose abstract spells the term out ("Direct Preference
    Optimization (DPO)") unless the chosen one does; a paper that only uses the term
    ("Step-DPO: ...") tells the user nothing of what it is."""
    names = defined_names(question)
    if not names:
        return chosen
    by_n = {s.n: s for s in sources}
    if chosen in by_n and spells_out(by_n[chosen].paper.abstract, names):
        return chosen
    return next((s.n for s in sources if s.similarities and max(s.similarities) >= FLOOR
                 and spells_out(s.paper.abstract, names)), chosen)


def ranked_sentences(question: str, source: Source, side: str | None = None) -> list[int]:
    """A source's sentences, best first (`sentence_scores`). For "What is DPO?" asked of a
    paper that only uses DPO, the sentence spelling DPO out comes first: what the term
    stands for is all such a paper says of it. `side`: a compared name this source is
    cited for (`focus`); the best sentence using it comes first."""
    ranks = sentence_scores(question, source.sentences, source.similarities)
    ranked = sorted(range(len(source.sentences)), key=lambda i: -ranks[i])
    if side is not None:
        word = as_word(side)
        lead = next((i for i in ranked if word.search(source.sentences[i])), None)
    else:
        names = [] if source.named else defined_names(question)
        lead = next((i for i in ranked if names and spells_out(source.sentences[i], names)), None)
    return ranked if lead is None else [lead] + [i for i in ranked if i != lead]


def focus(question: str, sources: Sequence[Source], judged: bool = False,
          unnamed: Sequence[str] = ()) -> list[Pick]:
    """The papers that answer and, for each, the sentences that carry the answer, best
    first, skipping a sentence another cited paper already says (the corpus has papers
    sharing sentences). A comparison whose names point at two sources cites those.
    `judged`: abstention judged the first source, which is then cited whatever its
    similarity (`choose_papers`). `unnamed`: sides of a comparison no paper of the
    corpus is named by ("DDIM"); the first source that mentions one is cited for it,
    leading with the sentence that does (what the corpus says of that side)."""
    sentences = {s.n: s.sentences for s in sources}
    best = {s.n: max(s.similarities) for s in sources if s.similarities}
    by_name = name_sides(question, {s.n: s.paper.title for s in sources}, sentences)
    named = sorted(by_name) if len(by_name) > 1 else sorted(s.n for s in sources if s.named)
    papers = choose_papers(question, best, {s.n: s.score for s in sources}, named,
                           {s.n: s.support.weighted for s in sources if s.support is not None},
                           {s.n: s.keyword for s in sources}, judged)
    if len(papers) == 1 and not named:
        papers = [spelling_out(question, sources, papers[0])]
    parts = {s.n: s.part_similarities for s in sources if s.part_similarities}
    if len(by_name) < 2 and not unnamed and (extra := sides(question, parts) - set(papers)):
        papers = sorted(set(papers) | extra)[:SEVERAL_MAX_PAPERS]
    leads: dict[int, str] = {}
    for name in unnamed:
        if users := mentioning(name, sources):
            cited = next((n for n in users if n in papers), None)
            leads[cited if cited is not None else users[0]] = name
    if leads:
        papers = sorted(set(papers) | set(leads))
    by_n = {s.n: s for s in sources}
    per_paper = LEAD_SENTENCES if len(papers) == 1 else 1 if asks_for_list(question) else SENTENCES_EACH
    used: list[str] = []
    picks = []
    for n in papers:
        texts = sentences[n]
        chosen: list[int] = []
        for i in ranked_sentences(question, by_n[n], leads.get(n)):
            if len(chosen) == per_paper:
                break
            if len(texts[i]) < MIN_CHARS or any(fuzz.ratio(texts[i], u) >= NEAR_DUPLICATE for u in used):
                continue
            chosen.append(i)
            used.append(texts[i])
        if chosen:
            picks.append(Pick(n, chosen))
    return picks


def listing_note(question: str, paper: Paper, name: str) -> str | None:
    """For a question about who wrote a paper, where or when: the abstract quoted
    cannot say, so the answer is told what the corpus's listing gives (an author
    count, an organisation, a date: a quarter of the papers have any of them) or
    that it gives nothing. None for every other question."""
    if not ASKS_FOR_LISTING.search(question):
        return None
    if paper.authors:
        return library_note(paper, name)
    known = [f"{paper.authors_count} authors" if paper.authors_count else "",
             f"organisation {paper.org}" if paper.org else "",
             f"dated {paper.published or paper.date}" if paper.published or paper.date else ""]
    known = [k for k in known if k]
    gives = ", ".join(known) if known else "none of them (no author count, organisation or date)"
    return (f"The corpus holds titles and abstracts, without author names; of who wrote {name}, where and when, "
            f"its listing gives {gives}.")


def side_note(name: str, mentioned: bool) -> str:
    """What the answer to a comparison says of a side no paper of the corpus is about."""
    if mentioned:
        return f"No paper in the corpus is about {name}; what is quoted of it comes from abstracts that mention it."
    return f"No paper in the corpus is about {name}, and no retrieved abstract mentions it: only the other side is answered."


def library_note(paper: Paper, name: str) -> str:
    """The listing notice for a paper a reference library described: its authors,
    venue and date, as the library gave them."""
    shown = "; ".join(paper.authors[:8]) + (f" and {len(paper.authors) - 8} more" if len(paper.authors) > 8 else "")
    known = [f"authors {shown}", f"venue {paper.venue}" if paper.venue else "",
             f"dated {paper.published or paper.date}" if paper.published or paper.date else "",
             f"DOI {paper.doi}" if paper.doi else "", f"arXiv {paper.arxiv_id}" if paper.arxiv_id else ""]
    return (f"Abstracts do not say who wrote a paper, where or when; for {name}, your reference library gives "
            + ", ".join(k for k in known if k) + ".")

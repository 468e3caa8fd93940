"""The corpus parser against the real listing files and against broken ones."""

from __future__ import annotations

from pathlib import Path

import pytest

from assistant.corpus import (
    CorpusError,
    extract_urls,
    load_corpus,
    normalize_title,
    paper_id_for,
    parse_file,
)
from tests.conftest import CORPUS

FILES = {
    "000_687525f68a13be73.txt": ("A", 75),
    "001_ed1b269fc01325b6.txt": ("B", 52),
    "002_35864b3586657c5a.txt": ("A", 164),
    "003_e9ba834958631419.txt": ("B", 47),
    "004_fe3f780eb27247e2.txt": ("C", 42),
}


@pytest.fixture(scope="module")
def corpus():
    return load_corpus(CORPUS)


def by_title(corpus, prefix: str):
    found = [p for p in corpus.papers if p.title.startswith(prefix)]
    assert len(found) == 1, f"{prefix!r} matched {len(found)} papers"
    return found[0]


@pytest.mark.parametrize("name", sorted(FILES))
def test_each_file_has_its_layout_and_entry_count(name: str) -> None:
    parsed = parse_file(CORPUS / name)
    assert (parsed.layout, len(parsed.entries)) == FILES[name]
    assert parsed.warnings == []


def test_totals_380_entries_356_unique_papers(corpus) -> None:
    assert corpus.entry_count == 380
    assert len(corpus.papers) == 356
    assert len({p.paper_id for p in corpus.papers}) == 356
    assert corpus.errors == []


def test_titles_and_abstracts_are_the_exact_lines(corpus) -> None:
    """Every title/abstract equals its source line after whitespace normalization."""
    for paper in corpus.papers:
        for occ in paper.occurrences:
            lines = (CORPUS / occ.file).read_text(encoding="utf-8").split("\n")
            title_line = lines[occ.line - 1].removeprefix("Subscribe")
            assert " ".join(title_line.split()) == paper.title
            abstract_line = next(ln for ln in lines[occ.line :] if ln.strip())
            assert " ".join(abstract_line.replace("\u00a0", " ").split()) == paper.abstract


def test_title_and_abstract_lengths_match_the_corpus_facts(corpus) -> None:
    assert min(len(p.title) for p in corpus.papers) >= 19
    assert max(len(p.title) for p in corpus.papers) <= 126
    assert min(len(p.abstract) for p in corpus.papers) >= 900
    assert not any(p.title.endswith(".") for p in corpus.papers)


def test_layout_c_glued_subscribe_title(corpus) -> None:
    paper = by_title(corpus, "h-Edit")
    assert paper.title == "h-Edit: Effective and Flexible Diffusion-Based Editing via Doob's h-Transform"
    assert paper.occurrences[0].file.startswith("004") and paper.occurrences[0].line == 3
    assert not any(p.title.startswith("Subscribe") for p in corpus.papers)


def test_lowercase_and_symbol_titles_survive(corpus) -> None:
    for prefix in ("diffGrad", "zkDL", "mGPT", "$BT^2$", "TÜLU 3", "PixArt-$α$"):
        by_title(corpus, prefix)


def test_metadata_block_with_authors_and_year_and_counter(corpus) -> None:
    kv = by_title(corpus, "KV Prediction for Improved Time to First Token")
    assert kv.authors_count == 7
    assert kv.date == "Oct 10, 2024"
    assert kv.published == "2024-10-10"
    assert kv.counter == 2


def test_counter_is_not_read_as_a_year(corpus) -> None:
    """`Nov 25 2`: day 25, no year, counter 2 (not the year 2)."""
    raw = [p for p in corpus.papers if p.date == "Nov 25"]
    assert raw, "the corpus has a `Nov 25 2` date line"
    assert all(p.published is None for p in raw)
    assert any(p.counter == 2 for p in raw)
    assert all(p.published is None or p.published[:4] >= "1990" for p in corpus.papers)


def test_organisation_lines_replace_author_counts(corpus) -> None:
    adamp = by_title(corpus, "AdamP")
    assert adamp.org == "naver-ai NAVER AI Lab"
    assert adamp.authors_count is None
    assert adamp.published == "2020-06-15"
    orgs = sorted(p.org for p in corpus.papers if p.org)
    assert orgs == ["SakanaAI Sakana AI", "facebook AI at Meta", "naver-ai NAVER AI Lab"]


def test_arxiv_checked_dates(corpus) -> None:
    assert by_title(corpus, "Timo").published == "2024-06-20"
    assert by_title(corpus, "TimesNet").published == "2022-10-05"


def test_entries_without_metadata(corpus) -> None:
    kinetics = by_title(corpus, "Kinetics")
    assert kinetics.authors_count is None and kinetics.date is None
    assert sorted((o.file[:3], o.line) for o in kinetics.occurrences) == [("001", 305), ("003", 157)]
    layout_a = [p for p in corpus.papers if all(o.file[:3] in ("000", "002", "004") for o in p.occurrences)]
    assert all(p.date is None and p.authors_count is None for p in layout_a)


def test_metadata_availability_counts(corpus) -> None:
    papers = corpus.papers
    assert sum(p.authors_count is not None for p in papers) == 90
    assert sum(p.date is not None for p in papers) == 93
    assert sum(p.published is not None for p in papers) == 63
    assert sum(p.counter is not None for p in papers) == 20


def test_duplicates_merge_and_remember_every_place(corpus) -> None:
    autolrs = by_title(corpus, "AutoLRS")
    assert sorted((o.file[:3], o.line) for o in autolrs.occurrences) == [("000", 291), ("001", 325), ("002", 43)]
    multi = [p for p in corpus.papers if len(p.occurrences) > 1]
    assert len(multi) == 23
    assert sum(len(p.occurrences) - 1 for p in multi) == 24


def test_metadata_from_a_later_duplicate_is_kept(corpus) -> None:
    """9 papers have no metadata in their first copy (000/002) but do in a later one."""
    filled = [p for p in corpus.papers if p.occurrences[0].file[:3] in ("000", "002") and p.date is not None]
    assert len(filled) == 9


def test_near_duplicates_stay_separate(corpus) -> None:
    by_title(corpus, "Temporal Feature Matters")
    by_title(corpus, "TFMQ-DM")
    by_title(corpus, "Improved Techniques for Training Consistency Models")
    by_title(corpus, "Improved Training Technique for Latent Consistency Models")


def test_paper_ids_are_stable_and_order_independent(tmp_path: Path) -> None:
    first = {p.title: p.paper_id for p in load_corpus(CORPUS).papers}
    # The same files under other names (other order) give the same ids.
    for i, src in enumerate(sorted(CORPUS.glob("*.txt"), reverse=True)):
        (tmp_path / f"{i}_{src.name}").write_bytes(src.read_bytes())
    second = {p.title: p.paper_id for p in load_corpus(tmp_path).papers}
    assert first == second
    assert paper_id_for("Attention as an RNN") == paper_id_for("  attention AS an rnn ")


def test_urls_total_and_repairs(corpus) -> None:
    assert sum(len(p.urls) for p in corpus.papers) == 110
    assert sum(bool(p.urls) for p in corpus.papers) == 108
    every = [u for p in corpus.papers for u in p.urls]
    assert not [u for u in every if u[-1] in ".)},;" or " " in u or u.endswith(".git") or "{" in u]
    assert "https://github.com/Graph-COM/Neighborhood-Aware-Temporal-Network" in every
    assert "https://github.com/facebookresearch/galactic" in every
    assert "https://github.com/yanyanSann/PromptTPP" in every
    assert "https://eval.ai/web/challenges/challenge-page/2082" in every
    assert "https://github.com/TianjinYellow/StableSPAM" in every


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("code at https: //github.com/a/b.", ["https://github.com/a/b"]),
        ("see github.com/facebookresearch/galactic.", ["https://github.com/facebookresearch/galactic"]),
        ("\\url{ https://github.com/x/PromptTPP}},", ["https://github.com/x/PromptTPP"]),
        ("Github:https://github.com/a/b and in~https://github.com/c/d.", ["https://github.com/a/b", "https://github.com/c/d"]),
        ("https://x.github.io/{https://x.github.io/}.", ["https://x.github.io/"]),
        ("https://v.github.io{https://v.github.io}.", ["https://v.github.io"]),
        ("\\url{https://eval.ai/web/challenges/challenge-page/2082.}", ["https://eval.ai/web/challenges/challenge-page/2082"]),
        ("(https://aka.ms/orca-lm), more", ["https://aka.ms/orca-lm"]),
        ("https://github.com/a/b.git.", ["https://github.com/a/b"]),
        ("no links at all, e.g. github or http", []),
    ],
)
def test_url_repair(text: str, expected: list[str]) -> None:
    assert extract_urls(text) == expected


def test_normalize_title_ignores_case_accents_and_punctuation() -> None:
    assert normalize_title("TÜLU 3: Pushing") == normalize_title("tulu 3 pushing")


# ------------------------------------------------------------ bad files


def test_empty_file_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "empty.txt"
    path.write_text("")
    with pytest.raises(CorpusError, match=r"empty\.txt: empty file"):
        parse_file(path)


def test_binary_file_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "blob.txt"
    path.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)))
    with pytest.raises(CorpusError, match=r"blob\.txt:1: binary"):
        parse_file(path)


def test_invalid_utf8_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "latin1.txt"
    path.write_bytes("Get trending papers in your email inbox!\n\nTitle\n\ncaf\xe9".encode("latin-1"))
    with pytest.raises(CorpusError, match=r"latin1\.txt:5: not valid UTF-8"):
        parse_file(path)


def test_foreign_layout_is_refused_with_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("\n\nMeeting notes\n\n" + "We talked about many things. " * 40 + "\n")
    with pytest.raises(CorpusError, match=r"notes\.txt:3: unrecognised layout"):
        parse_file(path)


def test_stray_lines_become_warnings_not_papers(tmp_path: Path) -> None:
    source = (CORPUS / "004_fe3f780eb27247e2.txt").read_text(encoding="utf-8").split("\n")
    broken = source[:6] + ["An orphan title with no abstract"] + source[6:10]
    path = tmp_path / "004_broken.txt"
    path.write_text("\n".join(broken), encoding="utf-8")
    parsed = parse_file(path)
    assert len(parsed.entries) == 4
    assert any(":7: skipped title without an abstract" in w for w in parsed.warnings)
    assert "An orphan title with no abstract" not in {e.title for e in parsed.entries}


def test_bad_file_is_skipped_and_the_rest_loads(corpus_copy: Path) -> None:
    (corpus_copy / "zzz_binary.txt").write_bytes(b"\x00\x01\x02" * 100)
    (corpus_copy / "yyy_empty.txt").write_text("")
    loaded = load_corpus(corpus_copy)
    assert len(loaded.papers) == 356
    assert len(loaded.errors) == 2
    assert any("zzz_binary.txt" in e for e in loaded.errors)


def test_missing_corpus_folder(tmp_path: Path) -> None:
    with pytest.raises(CorpusError, match="corpus folder not found"):
        load_corpus(tmp_path / "nope")

"""The UI's formatting functions: citation links, quote highlighting, escaping of
everything that comes from users or the corpus. No server, no index."""

from __future__ import annotations

import re

import pytest

from assistant.models import Answer, Citation, Hit, Notice, Occurrence, Paper
from ui import format as fmt
from ui.server import parse_auth

ABSTRACT = ("Normalization helps. We propose AdamP: it removes the radial component at each step. "
            "Code is at https://github.com/clovaai/AdamP.")
QUOTE = "We propose AdamP: it removes the radial component at each step."


def paper(**kw: object) -> Paper:
    base = dict(paper_id="adamp-1", title="AdamP: Slowing Down the Slowdown", abstract=ABSTRACT,
                occurrences=[Occurrence(file="001.txt", line=3)], date="Jun 15, 2020", published="2020-06-15",
                authors_count=5, org="NAVER", urls=["https://github.com/clovaai/AdamP"])
    return Paper(**{**base, **kw})  # type: ignore[arg-type]


def citation(n: int = 1, **kw: object) -> Citation:
    base = dict(n=n, paper_id="adamp-1", title="AdamP: Slowing Down the Slowdown", quote=QUOTE, sentence_index=1)
    return Citation(**{**base, **kw})  # type: ignore[arg-type]


def answer(text: str, citations: list[Citation], **kw: object) -> Answer:
    base = dict(question="q", answer=text, abstained=False, citations=citations, retrieved=[], mode="offline",
                timings_ms={"total": 230.0})
    return Answer(**{**base, **kw})  # type: ignore[arg-type]


# ---------------------------------------------------------------- citations


def test_citation_markers_become_links_to_their_turn() -> None:
    out = fmt.link_citations("AdamP removes it [1]. Both agree [1, 2].", turn=3, citations=[citation(1), citation(2, title="B")])
    assert out.count('href="#cite-3-1"') == 2 and out.count('href="#cite-3-2"') == 1
    assert '<a class="cite" href="#cite-3-1" title="AdamP: Slowing Down the Slowdown">[1]</a>' in out
    assert "[1, 2]" not in out  # a group becomes one link per source


def test_markers_without_a_citation_stay_text() -> None:
    out = fmt.link_citations("See [7] and [1].", turn=1, citations=[citation(1)])
    assert "See [7] and" in out and 'href="#cite-1-1"' in out and "cite-1-7" not in out


def test_answer_markdown_has_links_notices_and_footer() -> None:
    a = answer("**AdamP**: text [1]", [citation(1)], notices=[Notice(kind="llm_fallback",
                                                                     message="LLM endpoint x is unreachable; showing the offline answer instead.")])
    md = fmt.answer_markdown(a, turn=2)
    assert md.startswith("> ⚠️ LLM endpoint x is unreachable")
    assert 'href="#cite-2-1"' in md and "**AdamP**" in md  # the answer's own Markdown is kept
    assert "offline answer · 0.2 s · 1 source " in md


def test_the_listing_notice_informs_rather_than_warns() -> None:
    note = "The corpus holds titles and abstracts, without author names; of who wrote “AdamP”, where and when, its listing gives organisation NAVER AI Lab."
    a = answer("**AdamP**: text [1]", [citation(1)], notices=[Notice(kind="listing", message=note)])
    md = fmt.answer_markdown(a, turn=1)
    assert md.startswith("> ℹ️ The corpus holds titles and abstracts") and "⚠️" not in md


def test_a_follow_up_says_which_paper_it_was_read_about_above_the_answer() -> None:
    notices = [Notice(kind="follow_up", message="Read as a follow-up about DPM-Solver."),
               Notice(kind="not_in_paper", message="The abstract of DPM-Solver does not mention protein structures.")]
    a = answer("The abstract of DPM-Solver does not mention protein structures. The nearest it comes: x [1]",
               [citation(1)], notices=notices)
    md = fmt.answer_markdown(a, turn=3)
    assert md.startswith("> ℹ️ Read as a follow-up about DPM-Solver.")
    assert "> ⚠️ The abstract of DPM-Solver does not mention protein structures." in md


def test_abstained_answer_says_so() -> None:
    a = answer("The corpus has no paper that answers this question.", [], abstained=True)
    md = fmt.answer_markdown(a, turn=1)
    assert "abstained" in md and "cite-" not in md


# ---------------------------------------------------------------- highlighting


def test_quote_is_highlighted_inside_the_abstract() -> None:
    out = fmt.highlight_abstract(ABSTRACT, QUOTE)
    assert out.count("<mark>") == 1
    assert re.search(r"<mark>We propose AdamP: it removes the radial component at each step\.</mark>", out)
    assert out.startswith("Normalization helps. ") and out.endswith("clovaai/AdamP.")


def test_highlight_falls_back_to_the_sentence_index() -> None:
    out = fmt.highlight_abstract(ABSTRACT, "a paraphrase that is not in the abstract", sentence_index=1)
    assert "<mark>We propose AdamP" in out


def test_no_highlight_when_nothing_matches() -> None:
    assert "<mark>" not in fmt.highlight_abstract(ABSTRACT, "absent", sentence_index=None)
    assert "<mark>" not in fmt.highlight_abstract(ABSTRACT, "", sentence_index=99)


def test_source_card_shows_title_date_links_quote_and_marked_abstract() -> None:
    card = fmt.source_card(citation(1), paper(), turn=4)
    assert 'id="src-4-1"' in card and "AdamP: Slowing Down the Slowdown" in card and "Jun 15, 2020" in card
    assert '<a href="https://github.com/clovaai/AdamP" target="_blank" rel="noopener noreferrer">' in card
    assert "<mark>We propose AdamP" in card and "<details>" in card


def test_sources_panel_shows_only_the_latest_turn() -> None:
    turns = [fmt.SourcedTurn(1, "first", answer("x [1]", [citation(1)])),
             fmt.SourcedTurn(2, "second", answer("y [1]", [citation(1)]))]
    out = fmt.sources_html(turns, {"adamp-1": paper()})
    assert '<div class="turn" data-turn="1" hidden>' in out and '<div class="turn" data-turn="2">' in out
    assert "Sources appear here" in fmt.sources_html([], {})


def test_abstained_turn_lists_the_nearest_papers() -> None:
    a = answer("none", [], abstained=True, suggestions=[Hit(paper_id="p<1>", title="Near <b>paper</b>", score=0.1)])
    out = fmt.sources_html([fmt.SourcedTurn(1, "q", a)], {})
    assert "No source supports an answer" in out and "Near &lt;b&gt;paper&lt;/b&gt;" in out and "<b>paper" not in out


# ---------------------------------------------------------------- escaping


SCRIPT = '<script>alert("x")</script>'


def test_question_renders_as_text() -> None:
    md = fmt.question_markdown(f"{SCRIPT} **bold** [link](javascript:x) <img src=x onerror=alert(1)>")
    assert "<script" not in md and "<img" not in md
    assert "&lt;script&gt;" in md and "&lt;img src=x onerror=alert\\(1\\)&gt;" in md
    assert "\\*\\*bold\\*\\*" in md and "\\[link\\]\\(javascript:x\\)" in md


def test_long_question_is_shortened_for_display() -> None:
    assert len(fmt.question_markdown("a" * 5000)) < 700


def test_abstract_title_and_answer_are_escaped() -> None:
    evil = paper(title=f"Title {SCRIPT}", abstract=f"Before. {SCRIPT} is here. After.", urls=['javascript:alert(1)'])
    card = fmt.source_card(citation(1, title=evil.title, quote=f"{SCRIPT} is here."), evil, turn=1)
    view = fmt.paper_html(evil)
    for html in (card, view):
        assert "<script" not in html and "&lt;script&gt;" in html
        assert 'href="javascript' not in html  # unsafe links are shown as text
    assert "<mark>&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; is here.</mark>" in card
    md = fmt.answer_markdown(answer(f"{SCRIPT} claim [1]", [citation(1)]), turn=1)
    assert "<script" not in md and "&lt;script&gt;" in md


def test_attribute_values_are_quoted_safely() -> None:
    out = fmt.cite_link(1, 1, 'a" onmouseover="alert(1)')
    assert 'title="a&quot; onmouseover=&quot;alert(1)"' in out


def test_streaming_text_and_errors_are_escaped() -> None:
    assert "<script" not in fmt.streaming_markdown(SCRIPT)
    assert "<script" not in fmt.error_markdown(SCRIPT)


@pytest.mark.parametrize("url,ok", [("https://github.com/a/b", True), ("http://x.org", True),
                                    ("javascript:alert(1)", False), ('https://x.org/"onclick', False), (None, False)])
def test_safe_url(url: str | None, ok: bool) -> None:
    assert (fmt.safe_url(url) is not None) is ok


# ---------------------------------------------------------------- papers tab and helpers


def test_citation_text_has_title_date_and_url() -> None:
    assert fmt.citation_text(paper()) == "AdamP: Slowing Down the Slowdown (2020-06-15). https://github.com/clovaai/AdamP"
    assert fmt.citation_text(paper(urls=[], published=None, date=None)) == "AdamP: Slowing Down the Slowdown (date unknown)."


def test_dates_are_parsed_once_for_cli_ui_and_api() -> None:
    """A year or month means its first day as a lower bound and its last as an upper one,
    wherever the user types it (assistant ask --date-from, the UI's field, POST /api/ask)."""
    from assistant.retrieve import Filters

    assert Filters.parse() is None and Filters.parse("", " ") is None
    assert Filters.parse("2024") == Filters("2024-01-01", None, None)
    assert Filters.parse("2024-06", "2023") == Filters("2024-06-01", "2023-12-31", None)
    assert Filters.parse(" 2024-06-15 ", "2023-02") == Filters("2024-06-15", "2023-02-31", None)
    assert Filters.parse(source_file="003") == Filters(None, None, "003")
    for bad in ("last year", "2024-13", "2024-06-32", "24"):
        with pytest.raises(ValueError, match="YYYY"):
            Filters.parse(bad)


def test_parse_auth() -> None:
    assert parse_auth(None) is None and parse_auth("") is None
    assert parse_auth("ann:pa:ss") == ("ann", "pa:ss")
    with pytest.raises(ValueError):
        parse_auth("nopassword")


# ---------------------------------------------------------------- list answers


def list_answer(n: int) -> tuple[Answer, dict[str, Paper], dict[str, str]]:
    cites = [citation(i, paper_id=f"p{i}", title=f"Paper <{i}>", quote=f"Paper {i} quantizes diffusion models.")
             for i in range(1, n + 1)]
    papers = {f"p{i}": paper(paper_id=f"p{i}", title=f"Paper <{i}>", published=f"2024-01-{i:02d}") for i in range(1, n + 1)}
    topics = {f"p{i}": ("Diffusion" if i % 2 else "Optimizers") for i in range(1, n + 1)}
    text = "\n".join(f"- **Paper {i}**: Paper {i} quantizes diffusion models. [{i}]" for i in range(1, n + 1))
    return answer(text, cites, shape="list"), papers, topics


def test_a_list_answer_is_a_table_with_a_row_per_paper() -> None:
    a, papers, topics = list_answer(4)
    md = fmt.answer_markdown(a, 2, papers, topics)
    assert md.count("<tr>") == 1 + 4 and "group-head" not in md  # header + rows; under ten papers, no groups
    assert "Paper &lt;3&gt;" in md and "<3>" not in md  # escaped
    assert 'href="#cite-2-3"' in md and "2024-01-03" in md and "Paper 3 quantizes diffusion models." in md
    assert md.count('target="_blank"') == 4  # each paper's link
    assert "Copy as CSV" in md and "Copy as Markdown" in md and "#list-sort-2-2" in md
    assert "- **Paper 1**" not in md  # the table replaces the text lines


def test_ten_or_more_papers_are_grouped_under_topic_names_and_paged() -> None:
    a, papers, topics = list_answer(12)
    md = fmt.answer_markdown(a, 1, papers, topics)
    assert "Diffusion (6)" in md and "Optimizers (6)" in md
    assert md.count('<tr class="more">') == 12 - fmt.LIST_PAGE and "Show all 12 papers" in md
    a.shape = "text"
    assert "list-table" not in fmt.answer_markdown(a, 1, papers, topics)

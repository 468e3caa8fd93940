"""Pure formatting for the web UI: answers, citations, sources and paper views as
Markdown/HTML strings. No Gradio import, so every function is unit-testable.

Everything that came from a user or from the corpus (questions, answer text,
titles, abstracts, URLs) is escaped here; the caller never has to remember to.
Citation markers become `<a class="cite" href="#cite-T-N">` links: a small
script in the page (see `CLICK_JS`) opens source N of turn T in the sources
panel without a server round trip.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from assistant.citations import MARKER
from assistant.cite import from_listing, to_bibtex
from assistant.text import split_sentences
from assistant.models import Answer, Citation, Hit, Notice, Paper

INFORMING = ("listing", "follow_up", "spelling", "date_filter", "exclusion")  # notice kinds shown as information, not as a warning
_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-!|~])")


def esc(text: object) -> str:
    """HTML-escapes any value (quotes included, so it is safe inside attributes)."""
    return html.escape("" if text is None else str(text), quote=True)


def safe_url(url: str | None) -> str | None:
    """Only http(s) links become clickable; `javascript:` and the like never do."""
    if url and re.match(r"^https?://[^\s\"'<>]+$", url.strip(), re.IGNORECASE):
        return url.strip()
    return None


def link(url: str | None, label: str | None = None) -> str:
    """An external link that opens in a new tab, or the escaped text when the URL is unsafe."""
    good = safe_url(url)
    if good is None:
        return esc(label or url or "")
    return f'<a href="{esc(good)}" target="_blank" rel="noopener noreferrer">{esc(label or good)}</a>'


def question_markdown(question: str, limit: int = 600) -> str:
    """A user's question as chat Markdown that displays literally: HTML and Markdown
    characters are escaped, so `<script>` or `**x**` show as typed."""
    text = question if len(question) <= limit else question[:limit] + " …"
    return _MD_SPECIAL.sub(r"\\\1", html.escape(text, quote=False))


def cite_link(turn: int, n: int, title: str = "") -> str:
    return f'<a class="cite" href="#cite-{turn}-{n}" title="{esc(title)}">[{n}]</a>'


def link_citations(escaped: str, turn: int, citations: Sequence[Citation]) -> str:
    """Turns `[n]` / `[1, 2]` markers of already-escaped text into citation links.
    Markers without a matching citation stay as plain text."""
    titles = {c.n: c.title for c in citations}

    def one(match: re.Match[str]) -> str:
        numbers = [int(x) for x in re.split(r"[,;]", match.group(1))]
        if not all(n in titles for n in numbers):
            return match.group(0)
        return "".join(cite_link(turn, n, titles[n]) for n in numbers)

    return MARKER.sub(one, escaped)


def streaming_markdown(text: str) -> str:
    """Partial answer text while tokens arrive: escaped, markers left as typed
    (verification may still renumber or drop them)."""
    return html.escape(text, quote=False) + " ▍"


def notice_markdown(notice: Notice) -> str:
    """One notice as a quote line, while the answer streams and under the final one.
    The listing notice informs (what the corpus knows of who wrote a paper), and so does
    the follow-up notice (which paper a follow-up was read as being about); the rest warn."""
    return f"> {'ℹ️' if notice.kind in INFORMING else '⚠️'} {html.escape(notice.message, quote=False)}"


def notices_markdown(answer: Answer) -> str:
    """The notices a reader must see before trusting the answer: fallbacks, stale
    index, abstention."""
    lines = [notice_markdown(n) for n in answer.notices]
    if answer.abstained:
        lines.append("> No paper in the corpus supports an answer, so the assistant abstained.")
    return "\n>\n".join(lines)


LIST_PAGE = 10  # rows of a list answer shown before "Show all"
GROUP_FROM = 10  # papers from which a list answer is grouped under the corpus map's topics
LIST_COLUMNS = ("#", "Paper", "Date", "Why it fits", "Link")


def list_table(answer: Answer, turn: int, papers: dict[str, Paper] | None = None,
               topics: dict[str, str] | None = None) -> str:
    """A list answer as a table people can scan: paper, date, the sentence showing it
    fits, link; sortable by any column and copyable as CSV or Markdown (`CLICK_JS`),
    grouped under the corpus map's topic names (`topics`: paper id -> name) from
    GROUP_FROM papers on, and paged after LIST_PAGE rows."""
    papers = papers or {}
    groups: dict[str, list[Citation]] = {}
    grouped = bool(topics) and len(answer.citations) >= GROUP_FROM
    for c in answer.citations:
        groups.setdefault((topics or {}).get(c.paper_id, "Other topics") if grouped else "", []).append(c)
    head = "".join(f'<th><a class="list-sort" href="#list-sort-{turn}-{i}" title="Sort by {esc(name)}">{esc(name)}</a></th>'
                   for i, name in enumerate(LIST_COLUMNS))
    bodies, shown = [], 0
    for name, cites in groups.items():
        rows = []
        for c in cites:
            paper = papers.get(c.paper_id)
            date = (paper.published or paper.date) if paper else c.date
            url = c.url or (paper.url if paper else None)
            more = ' class="more"' if shown >= LIST_PAGE else ""
            shown += 1
            rows.append(f"<tr{more}><td>{cite_link(turn, c.n, c.title)}</td><td>{esc(c.title)}</td>"
                        f"<td>{esc(date or '')}</td><td>{esc(c.quote)}</td><td>{link(url, 'link') if url else ''}</td></tr>")
        label = f'<tr class="group-head"><th colspan="{len(LIST_COLUMNS)}">{esc(name)} ({len(cites)})</th></tr>' if name else ""
        bodies.append(f"<tbody>{label}{''.join(rows)}</tbody>")
    n = len(answer.citations)
    more = f'<a class="list-all" href="#list-all-{turn}">Show all {n} papers</a> · ' if n > LIST_PAGE else ""
    tools = (f'<div class="list-tools">{n} paper{"s" if n != 1 else ""} · {more}'
             f'<a class="list-copy" href="#list-csv-{turn}">Copy as CSV</a> · '
             f'<a class="list-copy" href="#list-md-{turn}">Copy as Markdown</a> <span class="list-status"></span></div>')
    return (f'<div class="list-answer" id="list-{turn}">{tools}<table class="list-table"><thead><tr>{head}</tr></thead>'
            f'{"".join(bodies)}</table></div>')


def answer_markdown(answer: Answer, turn: int, papers: dict[str, Paper] | None = None,
                    topics: dict[str, str] | None = None) -> str:
    """The final chat message: notices, the verified answer with citation links (a
    list answer as a table, `list_table`) and a one-line footer (mode, time, sources)."""
    if answer.shape == "list" and answer.citations:
        body = list_table(answer, turn, papers, topics)
    else:
        body = link_citations(html.escape(answer.answer, quote=False), turn, answer.citations)
    parts = [p for p in (notices_markdown(answer), body) if p]
    if also := answer.see_also():
        titles = " · ".join(esc(h.title) for h in also)
        parts.append(f'<span class="see-also">See also (related, not cited): {titles}</span>')
    seconds = answer.timings_ms.get("total", 0.0) / 1000
    footer = f"{answer.mode} answer · {seconds:.1f} s"
    if answer.citations:
        footer += f" · {len(answer.citations)} source{'s' if len(answer.citations) != 1 else ''} (click a [n] to see it)"
    parts.append(f'<span class="answer-footer">{esc(footer)}</span>')
    return "\n\n".join(parts)


def error_markdown(message: str) -> str:
    """Why a question was not answered, shown in the chat instead of an answer."""
    return f"> ⚠️ {html.escape(message, quote=False)}"


# ---------------------------------------------------------------- sources panel


def highlight_abstract(abstract: str, quote: str | None, sentence_index: int | None = None) -> str:
    """The abstract as escaped HTML with the supporting sentence in `<mark>`. The quote
    is an exact substring (sentences are cut from the abstract); when it is not
    found, the sentence at `sentence_index` is used; otherwise nothing is marked."""
    start = abstract.find(quote) if quote else -1
    if start < 0 and sentence_index is not None and sentence_index >= 0:
        sentences = split_sentences(abstract)
        if sentence_index < len(sentences):
            quote = sentences[sentence_index]
            start = abstract.find(quote)
    if start < 0 or not quote:
        return esc(abstract)
    end = start + len(quote)
    return f"{esc(abstract[:start])}<mark>{esc(abstract[start:end])}</mark>{esc(abstract[end:])}"


def authors_text(paper: Paper, most: int = 3) -> str:
    """"Heo, Chun, Oh et al." from a library's author list; "" when none is known."""
    if not paper.authors:
        return ""
    names = [a.split(",")[0].strip() for a in paper.authors]
    return ", ".join(names[:most]) + (" et al." if len(names) > most else "")


def paper_meta(paper: Paper) -> str:
    """One escaped line: date, authors (names when a library gave them), venue, organisation."""
    bits = [paper.date or "date unknown"]
    if paper.authors:
        bits.append(authors_text(paper))
    elif paper.authors_count:
        bits.append(f"{paper.authors_count} author{'s' if paper.authors_count != 1 else ''}")
    bits += [x for x in (paper.venue, paper.org) if x]
    return esc(" · ".join(bits))


def links_html(paper: Paper) -> str:
    links = [link(u) for u in paper.urls]
    if paper.doi:
        links.append(link(f"https://doi.org/{paper.doi}", f"doi:{paper.doi}"))
    if paper.arxiv_id and not any(paper.arxiv_id in u for u in paper.urls):
        links.append(link(f"https://arxiv.org/abs/{paper.arxiv_id}", f"arXiv:{paper.arxiv_id}"))
    return " · ".join(links) if links else '<span class="muted">no link in the corpus</span>'


def bibtex_html(paper: Paper) -> str:
    """A "BibTeX" copy button and the entry it copies (collapsed): the page script
    (`CLICK_JS`) puts the entry on the clipboard without a server round trip."""
    note = " (from a listing page: no authors or venue known)" if from_listing(paper) else ""
    return (f'<div class="bibtex-block"><button type="button" class="copy-bibtex" title="Copy BibTeX{esc(note)}">'
            f"BibTeX</button><details><summary>show</summary><pre class=\"bibtex\">{esc(to_bibtex([paper]))}</pre>"
            "</details></div>")


def source_card(citation: Citation, paper: Paper | None, turn: int) -> str:
    """One cited paper: number, title, date, links, the supporting quote, and the
    abstract (collapsed) with that quote highlighted."""
    title = esc(citation.title)
    if paper is None:  # the index changed since the answer; show what the answer kept
        return (f'<div class="src" id="src-{turn}-{citation.n}"><div class="src-head"><span class="src-n">[{citation.n}]</span> '
                f'<b>{title}</b></div><blockquote>{esc(citation.quote)}</blockquote></div>')
    return (
        f'<div class="src" id="src-{turn}-{citation.n}" data-paper="{esc(paper.paper_id)}">'
        f'<div class="src-head"><span class="src-n">[{citation.n}]</span> <b>{title}</b></div>'
        f'<div class="src-meta">{paper_meta(paper)} · {links_html(paper)}</div>'
        f'<blockquote class="src-quote">{esc(citation.quote)}</blockquote>'
        f"<details><summary>Abstract</summary>"
        f'<p class="abstract">{highlight_abstract(paper.abstract, citation.quote, citation.sentence_index)}</p>'
        f"</details>{bibtex_html(paper)}</div>"
    )


@dataclass
class SourcedTurn:
    """What the sources panel needs of one answered question."""

    turn: int
    question: str
    answer: Answer


def turn_sources(item: SourcedTurn, papers: dict[str, Paper], visible: bool) -> str:
    answer = item.answer
    head = f'<div class="turn-q">Sources for “{esc(_clip(item.question, 160))}”</div>'
    if answer.citations:
        cards = "".join(source_card(c, papers.get(c.paper_id), item.turn) for c in answer.citations)
    else:
        near = answer.suggestions or answer.retrieved[:3]
        items = "".join(f"<li>{esc(h.title)} <span class='muted'>({esc(h.paper_id)})</span></li>" for h in near)
        cards = ('<p class="muted">No source supports an answer to this question.'
                 + (f" The nearest papers are:</p><ul>{items}</ul>" if items else "</p>"))
    hidden = "" if visible else " hidden"
    return f'<div class="turn" data-turn="{item.turn}"{hidden}>{head}{cards}</div>'


def sources_html(turns: Sequence[SourcedTurn], papers: dict[str, Paper]) -> str:
    """All turns' sources; only the latest is shown, older ones appear when one of
    their citations is clicked (so old answers stay explorable)."""
    if not turns:
        return ('<div class="sources-empty">Sources appear here: for each paper an answer cites, its title, '
                "date, links and abstract with the supporting sentence highlighted. Click a [n] in an answer "
                "to open that source.</div>")
    last = turns[-1].turn
    return '<div class="sources">' + "".join(turn_sources(t, papers, t.turn == last) for t in turns) + "</div>"


def _clip(text: str, n: int) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"


# ---------------------------------------------------------------- papers tab


def citation_text(paper: Paper) -> str:
    """Plain text to paste into notes: authors and venue when a library gave them,
    title, date, DOI or URL (what the corpus knows)."""
    date = paper.published or paper.date or "date unknown"
    text = f"{paper.title} ({date})."
    if paper.authors:
        text = f"{authors_text(paper).rstrip('.')}. {text}"
    if paper.venue:
        text += f" {paper.venue}."
    link_to = f"https://doi.org/{paper.doi}" if paper.doi else paper.url
    return f"{text} {link_to}" if link_to else text


def paper_html(paper: Paper) -> str:
    """The paper view: title, metadata, links, where it is listed, the abstract."""
    listed = ", ".join(f"{o.file}:{o.line}" for o in paper.occurrences)
    return (
        f'<div class="paper-view" data-paper="{esc(paper.paper_id)}">'
        f"<h2>{esc(paper.title)}</h2>"
        f'<div class="src-meta">{paper_meta(paper)}</div>'
        f'<div class="src-meta">Links: {links_html(paper)}</div>'
        f'<div class="src-meta muted">id {esc(paper.paper_id)} · listed in {esc(listed)}</div>'
        + (f'<div class="src-meta">Authors: {esc("; ".join(paper.authors))}</div>' if paper.authors else "")
        + f'<p class="abstract">{esc(paper.abstract)}</p>{bibtex_html(paper)}</div>'
    )


def hit_choices(hits: Iterable[Hit]) -> list[tuple[str, str]]:
    """(label, paper id) pairs for a radio list of papers."""
    return [(h.title, h.paper_id) for h in hits]


def status_markdown(papers: int | None, built_at: str | None, mode: str) -> str:
    """The header's one-line status: index size and the default answer mode."""
    index = f"{papers} papers indexed" if papers is not None else "no index"
    if built_at:
        index += f" (built {built_at[:16].replace('T', ' ')})"
    return esc(f"{index} · default answer mode: {mode}")


CSS = """
#sources, .sources-empty { font-size: 0.92rem; }
#intro p, #status p { margin: 0.1rem 0; font-size: 0.9rem; }
#intro h3 { margin: 0 0 0.2rem; }
#status { color: var(--body-text-color-subdued); }
.sources-empty { color: var(--body-text-color-subdued); padding: 0.75rem; }
.turn-q { font-weight: 600; margin: 0.25rem 0 0.5rem; color: var(--body-text-color-subdued); }
.src { border: 1px solid var(--border-color-primary); border-radius: 8px; padding: 0.5rem 0.7rem; margin-bottom: 0.5rem; }
.src.active { border-color: var(--color-accent); box-shadow: 0 0 0 2px var(--color-accent-soft); }
.src-n { font-weight: 700; color: var(--color-accent); }
.src-meta { color: var(--body-text-color-subdued); font-size: 0.85rem; margin: 0.15rem 0; overflow-wrap: anywhere; }
.src-quote { margin: 0.35rem 0; padding-left: 0.6rem; border-left: 3px solid #f2c94c; font-style: italic; }
.src details summary { cursor: pointer; color: var(--color-accent); font-size: 0.85rem; }
.abstract { line-height: 1.5; margin: 0.4rem 0; }
.abstract mark { background: #fff2a8; color: inherit; padding: 0 2px; border-radius: 2px; }
.muted { color: var(--body-text-color-subdued); }
a.cite { font-weight: 600; text-decoration: none; padding: 0 1px; cursor: pointer; }
a.cite:hover { text-decoration: underline; }
.answer-footer, .see-also { font-size: 0.78rem; color: var(--body-text-color-subdued); }
.paper-view h2 { margin: 0 0 0.3rem; font-size: 1.2rem; }
#index-banner { border: 1px solid #e0a800; background: #fff8e1; border-radius: 8px; padding: 0.5rem 0.8rem; }
.corpus-map { width: 100%; height: 560px; }
.bibtex-block { margin-top: 0.3rem; font-size: 0.85rem; }
.bibtex-block details { display: inline-block; margin-left: 0.4rem; }
.bibtex-block pre { white-space: pre-wrap; font-size: 0.78rem; max-height: 14rem; overflow: auto; }
button.copy-bibtex { border: 1px solid var(--border-color-primary); border-radius: 4px; padding: 0 0.5rem; cursor: pointer; }
#build-progress progress { width: 40%; vertical-align: middle; }
.list-table { border-collapse: collapse; font-size: 0.88rem; width: 100%; }
.list-table th, .list-table td { border-bottom: 1px solid var(--border-color-primary); padding: 0.25rem 0.4rem;
  text-align: left; vertical-align: top; }
.list-table thead a { text-decoration: none; color: inherit; }
.list-table td:nth-child(1), .list-table td:nth-child(3) { white-space: nowrap; }
.list-table .group-head th { background: var(--background-fill-secondary); font-weight: 600; }
.list-table tr.more { display: none; }
.list-answer.all .list-table tr.more { display: table-row; }
.list-answer.all .list-all { display: none; }
.list-tools { font-size: 0.8rem; color: var(--body-text-color-subdued); margin-bottom: 0.3rem; }
@media (max-width: 640px) { .corpus-map { height: 380px; } }
"""

# Delegated click handling for citation links: works for every message the chat
# renders, old or new, and needs no server round trip.
CLICK_JS = """
<script>
(() => {
  function showSource(turn, n) {
    const panel = document.querySelector('#sources');
    if (!panel) return;
    panel.querySelectorAll('.turn').forEach(t => { t.hidden = t.dataset.turn !== turn; });
    panel.querySelectorAll('.src.active').forEach(s => s.classList.remove('active'));
    const card = panel.querySelector('#src-' + turn + '-' + n);
    if (!card) return;
    card.classList.add('active');
    const details = card.querySelector('details');
    if (details) details.open = true;
    // the supporting sentence, not just the card top: abstracts are long
    (card.querySelector('mark') || card).scrollIntoView({block: 'nearest', behavior: 'smooth'});
  }
  window.assistantShowSource = showSource;
  // List answers (ui/format.py list_table): sort by a column, show every row, copy.
  const cells = tr => Array.from(tr.children).map(td => {
    const a = td.querySelector('a[target]');
    return a ? a.href : td.innerText.trim();
  });
  function listText(box, format) {
    const head = Array.from(box.querySelectorAll('thead th')).map(th => th.innerText.trim());
    const rows = Array.from(box.querySelectorAll('tbody tr:not(.group-head)')).map(cells);
    if (format === 'csv') {
      const q = v => /[",\\n]/.test(v) ? '"' + v.replace(/"/g, '""') + '"' : v;
      return [head, ...rows].map(r => r.map(q).join(',')).join('\\n') + '\\n';
    }
    const md = v => v.replace(/\\|/g, '\\\\|').replace(/\\n/g, ' ');
    return [head, head.map(() => '---'), ...rows].map(r => '| ' + r.map(md).join(' | ') + ' |').join('\\n') + '\\n';
  }
  window.assistantListText = listText;
  function sortList(box, col) {
    const dir = box.dataset.sortCol === String(col) && box.dataset.sortDir !== 'desc' ? 'desc' : 'asc';
    box.dataset.sortCol = col; box.dataset.sortDir = dir;
    const key = tr => { const t = tr.children[col].innerText.trim(); const n = parseInt(t.replace(/[^0-9]/g, ''), 10);
      return col === 0 && !isNaN(n) ? n : t.toLowerCase(); };
    box.querySelectorAll('tbody').forEach(body => {
      const rows = Array.from(body.querySelectorAll('tr:not(.group-head)'));
      rows.sort((a, b) => { const x = key(a), y = key(b); const c = x < y ? -1 : x > y ? 1 : 0; return dir === 'asc' ? c : -c; });
      rows.forEach(r => body.appendChild(r));
    });
  }
  function copyText(text, status) {
    const done = () => { if (status) status.textContent = 'copied'; };
    if (navigator.clipboard && window.isSecureContext) { navigator.clipboard.writeText(text).then(done, () => fallback()); }
    else fallback();
    function fallback() {
      const ta = document.createElement('textarea'); ta.value = text; document.body.appendChild(ta); ta.select();
      try { document.execCommand('copy'); done(); } finally { ta.remove(); }
    }
  }
  document.addEventListener('click', (ev) => {
    const a = ev.target && ev.target.closest ? ev.target.closest('a[href^="#list-"]') : null;
    if (!a) return;
    const box = a.closest('.list-answer');
    if (!box) return;
    ev.preventDefault();
    ev.stopPropagation();
    const m = (a.getAttribute('href') || '').match(/^#list-(sort|all|csv|md)-\\d+(?:-(\\d+))?$/);
    if (!m) return;
    if (m[1] === 'sort') sortList(box, parseInt(m[2], 10));
    else if (m[1] === 'all') box.classList.add('all');
    else copyText(listText(box, m[1]), box.querySelector('.list-status'));
  }, true);
  // "BibTeX" buttons (sources panel, Papers tab): copy the entry beside the button; it then reads "copied"
  document.addEventListener('click', (ev) => {
    const b = ev.target && ev.target.closest ? ev.target.closest('button.copy-bibtex') : null;
    if (!b) return;
    ev.preventDefault();
    const pre = b.closest('.bibtex-block').querySelector('pre.bibtex');
    copyText(pre ? pre.textContent : '', b);
  }, true);
  document.addEventListener('click', (ev) => {
    const a = ev.target && ev.target.closest ? ev.target.closest('a[href^="#cite-"]') : null;
    if (!a) return;
    const m = (a.getAttribute('href') || '').match(/^#cite-(\\d+)-(\\d+)$/);
    if (!m) return;
    ev.preventDefault();
    ev.stopPropagation();
    showSource(m[1], m[2]);
  }, true);
})();
</script>
"""

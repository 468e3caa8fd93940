"""The Gradio UI: Chat (streamed, cited answers with a sources panel), Papers
(lookup and paper view) and Corpus map. Served by `ui.server.create_app`, which
mounts it beside the JSON API; `assistant serve` runs that.

Per-browser-session state lives in `gr.State` (the conversation as
`pipeline.Turn`s), so follow-ups work and two users never share history. All
formatting is in `ui.format` (escaped, unit-tested); this module wires events.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from typing import Any

import gradio as gr

from assistant.config import NO_ENDPOINT, Settings
from assistant.index import IndexProblem, read_manifest
from assistant.models import Answer, Notice, Paper
from assistant.pipeline import AnswerReader, Assistant, QuestionError, Turn
from assistant.retrieve import Filters
from assistant.topics import CorpusMap, Topic, load_map
from ui import format as fmt
from ui.corpus_map import MAP_JS, PLOTLY_JS_ROUTE, figure_json, highlight_json, topic_choices

log = logging.getLogger(__name__)

EXAMPLES = [
    "What does AdamP change in the optimizer step?",
    "How can diffusion models generate images with fewer sampling steps?",
    "Which papers improve temporal reasoning in language models?",
    "What is h-Edit?",
]
LLM_STATUS_TTL = 30.0  # seconds a checked endpoint status is reused across page loads
MAX_SOURCE_TURNS = 20  # turns whose sources stay in the page (older citations stop opening a card)
STREAM_INTERVAL = 0.05  # seconds between UI updates while LLM tokens arrive
# Per-browser-session state (the conversation's Turns, a few KB each) is bounded three
# ways: turns per conversation, sessions held (the oldest is forgotten beyond it), and
# an expiry after the session was last used (Gradio also drops it an hour after the
# tab closes). At the limits: 100 turns x ~5 KB x 1000 sessions, about 0.5 GB at most.
MAX_SESSION_TURNS = 100
MAX_SESSIONS = 1000
SESSION_TTL_S = 12 * 3600


def warm_up(assistant: Assistant) -> None:
    """Loads the embedder, Chroma and BM25 with one query and reads the corpus stamp
    the stale-index check compares against (57 ms of the first question otherwise), so
    the first user does not wait. A missing index is fine here (the UI offers to build it)."""
    try:
        assistant.index.search("warm up", k=1)
        assistant.index.files.stale_notice()
    except IndexProblem:
        pass


class AssistantUI:
    """Event handlers bound to one Assistant (shared by every session; it is thread-safe
    for reading, and the index is loaded once per process)."""

    def __init__(self, assistant: Assistant) -> None:
        self.assistant = assistant
        self.settings: Settings = assistant.settings
        self._llm_checked: tuple[float, bool, str] | None = None
        self._build_lock = threading.Lock()

    # ------------------------------------------------------------ status

    def index_ready(self) -> bool:
        try:
            _ = self.assistant.index  # opening it is the check
            return True
        except IndexProblem:
            return False

    def index_message(self) -> str:
        try:
            _ = self.assistant.index  # opening it is the check
            return ""
        except IndexProblem as exc:
            return str(exc)

    def llm_status(self, refresh: bool = False) -> tuple[float, bool, str]:
        """(checked at, reachable, message); reused for LLM_STATUS_TTL so page loads
        do not each ping the endpoint."""
        now = time.time()
        if refresh or self._llm_checked is None or now - self._llm_checked[0] > LLM_STATUS_TTL:
            ok, message = self.assistant.llm_status()
            self._llm_checked = (now, ok, message)
        return self._llm_checked

    def status_line(self) -> str:
        manifest = read_manifest(self.settings.index_dir) if self.index_ready() else None
        papers = len(self.assistant.index.papers) if manifest else None
        return fmt.status_markdown(papers, manifest.get("built_at") if manifest else None, self.settings.answer_mode())

    def llm_markdown(self, refresh: bool = False) -> str:
        checked, _, message = self.llm_status(refresh)
        return f"**LLM status** (checked {time.strftime('%H:%M:%S', time.localtime(checked))}): {fmt.esc(message)}"

    # ------------------------------------------------------------ chat

    def sources(self, turns: list[Turn]) -> str:
        papers = self.assistant.index.papers if self.index_ready() else {}
        items = [fmt.SourcedTurn(i, t.question, t.answer) for i, t in enumerate(turns, 1)][-MAX_SOURCE_TURNS:]
        return fmt.sources_html(items, papers)

    def corpus_map(self) -> CorpusMap | None:
        """The index's map (cached per index by `assistant.topics`); None without an index."""
        if not self.index_ready():
            return None
        index = self.assistant.index
        return load_map(self.settings, papers=index.papers, store=index.store)

    def list_context(self, answer: Answer) -> tuple[dict[str, Paper], dict[str, str]]:
        """What a list answer's table shows beside its citations: the papers (dates,
        links) and each one's topic on the corpus map (its grouping); empty otherwise."""
        if answer.shape != "list" or not answer.citations or not self.index_ready():
            return {}, {}
        corpus_map, papers = self.corpus_map(), self.assistant.index.papers
        topics = {c.paper_id: t.label for c in answer.citations
                  if corpus_map is not None and (t := corpus_map.topic_of(c.paper_id)) is not None}
        return papers, topics

    def map_value(self) -> str:
        """The whole map figure (page load, index build)."""
        corpus_map = self.corpus_map()
        return figure_json(corpus_map) if corpus_map is not None else ""

    def map_highlight(self, highlight: list[str]) -> Any:
        """What an answer changes on the map (ui/corpus_map.py); nothing without an index."""
        corpus_map = self.corpus_map()
        return highlight_json(corpus_map, highlight) if corpus_map is not None else gr.skip()

    def respond(self, question: str, messages: list[dict[str, Any]], turns: list[Turn], mode: str,
                top_k: float, date_from: str, fresh: bool = False) -> Iterator[tuple[Any, ...]]:
        """Streams one answer into the chat. Outputs: textbox, chat, turns, sources, map.
        Bad input and a missing index are answered in the chat, never raised. `fresh`:
        asked without the conversation (the "ask as a new question" button)."""
        messages = list(messages or [])
        turns = list(turns or [])
        shown = question or ""
        messages.append({"role": "user", "content": fmt.question_markdown(shown) if shown.strip() else "*(empty)*"})
        if len(turns) >= MAX_SESSION_TURNS:
            messages.append({"role": "assistant", "content": fmt.error_markdown(
                f"This conversation has reached {MAX_SESSION_TURNS} questions; press Clear conversation to start a new one.")})
            yield "", messages, turns, gr.skip(), gr.skip()
            return
        try:
            filters = Filters.parse(date_from)
            self.assistant.clean_question(question)
        except (QuestionError, ValueError) as exc:
            messages.append({"role": "assistant", "content": fmt.error_markdown(str(exc))})
            yield "", messages, turns, gr.skip(), gr.skip()
            return
        messages.append({"role": "assistant", "content": "*Searching the corpus…*"})
        yield "", messages, gr.skip(), gr.skip(), gr.skip()

        effective, extra = self._mode(mode)
        options = dict(mode=effective, top_k=int(top_k) if top_k else None, filters=filters)
        try:
            for update in self._stream(question, [] if fresh else turns, options, extra, len(turns) + 1):
                if isinstance(update, str):
                    messages[-1] = {"role": "assistant", "content": update}
                    yield gr.skip(), messages, gr.skip(), gr.skip(), gr.skip()
                    continue
                turns.append(Turn(update.question, update))
                messages[-1] = {"role": "assistant", "content": fmt.answer_markdown(update, len(turns),
                                                                                   *self.list_context(update))}
                highlight = [h.paper_id for h in update.retrieved]
                yield gr.skip(), messages, turns, self.sources(turns), self.map_highlight(highlight)
        except IndexProblem as exc:
            messages[-1] = {"role": "assistant", "content": fmt.error_markdown(f"{exc} (or use the Build index button above)")}
            yield gr.skip(), messages, gr.skip(), gr.skip(), gr.skip()
        except Exception as exc:  # keep the session usable and say what happened
            log.exception("answering failed")
            messages[-1] = {"role": "assistant", "content": fmt.error_markdown(f"Something went wrong while answering ({type(exc).__name__}). Try again.")}
            yield gr.skip(), messages, gr.skip(), gr.skip(), gr.skip()

    def _mode(self, mode: str | None) -> tuple[str, list[Notice]]:
        """LLM mode without a configured endpoint answers offline right away, with a
        notice, instead of waiting for a connection that cannot succeed."""
        if mode == "llm" and not self.settings.llm_configured:
            return "offline", [Notice(kind="llm_fallback", message=f"{NO_ENDPOINT} Showing the offline answer instead.")]
        return (mode if mode in ("offline", "llm") else self.settings.answer_mode()), []

    def _stream(self, question: str, turns: list[Turn], options: dict[str, Any], extra: list[Notice],
                turn: int) -> Iterator[Any]:
        """Pipeline events as chat updates: str (partial message) or the final Answer."""
        reader, last = AnswerReader(notices=list(extra)), 0.0
        for event in map(reader.read, self.assistant.stream(question, turns, **options)):
            if event.kind == "token" and time.monotonic() - last >= STREAM_INTERVAL:
                last = time.monotonic()
                head = "".join(f"{fmt.notice_markdown(n)}\n\n" for n in reader.notices)
                yield head + fmt.streaming_markdown(reader.text)
            elif event.kind == "answer" and reader.answer is not None:
                answer = reader.answer
                for n in extra:
                    if n not in answer.notices:
                        answer.notices.insert(0, n)
                yield answer

    def ask_as_new(self, messages: list[dict[str, Any]], turns: list[Turn], mode: str, top_k: float,
                   date_from: str) -> Iterator[tuple[Any, ...]]:
        """The last question again, read as a question of its own (no conversation)."""
        if turns:
            yield from self.respond(turns[-1].question, messages, turns, mode, top_k, date_from, fresh=True)

    @staticmethod
    def new_question_button(turns: list[Turn]) -> Any:
        """Shown under an answer read as a follow-up: one click asks it as a new question."""
        return gr.update(visible=bool(turns) and turns[-1].answer.has_notice("follow_up"))

    def clear(self) -> tuple[Any, ...]:
        return [], [], self.sources([]), self.map_highlight([]), ""

    # ------------------------------------------------------------ papers

    def find(self, query: str) -> tuple[Any, ...]:
        """Papers tab search: a lookup by id, title, acronym or description; the
        ranked matches are listed beside the paper it resolved to."""
        try:
            found = self.assistant.lookup(query)
            hits = self.assistant.search(query, k=8)
        except QuestionError as exc:
            return (gr.update(choices=[], value=None), fmt.error_markdown(str(exc))) + self._empty_paper()
        except IndexProblem as exc:
            return (gr.update(choices=[], value=None), fmt.error_markdown(str(exc))) + self._empty_paper()
        matches = found.candidates or hits
        if found.paper is not None:
            others = [h for h in hits if h.paper_id != found.paper.paper_id]
            choices = [(found.paper.title, found.paper.paper_id)] + fmt.hit_choices(others)
            return (gr.update(choices=choices, value=found.paper.paper_id), "") + self.paper_outputs(found.paper.paper_id)
        note = fmt.esc(found.message or f"No paper matches {query!r}.") + " Pick one below."
        return (gr.update(choices=fmt.hit_choices(matches), value=None), note) + self._empty_paper()

    def paper_outputs(self, paper_id: str | None) -> tuple[Any, ...]:
        """Paper view, citation text and related papers for one id."""
        if not paper_id:
            return self._empty_paper()
        try:
            paper = self.assistant.paper(paper_id)
            related = self.assistant.related(paper_id)
        except (KeyError, IndexProblem) as exc:
            return (fmt.error_markdown(str(exc)), "", gr.update(choices=[], value=None))
        return (fmt.paper_html(paper), fmt.citation_text(paper),
                gr.update(choices=fmt.hit_choices(related), value=None))

    def _empty_paper(self) -> tuple[Any, ...]:
        return ('<div class="muted">Search for a paper, or click one in the results, the related list or the corpus map.</div>',
                "", gr.update(choices=[], value=None))

    def open_from_map(self, evt: gr.EventData) -> tuple[Any, ...]:
        """A click on the map: a dot opens its paper in the Papers tab; a topic's name
        (on the map or in the legend) lists the topic's papers beside the map.
        Outputs: tab, the five Papers-tab outputs, then topic picker, summary, papers."""
        data = getattr(evt, "_data", None) or {}
        data = data if isinstance(data, dict) else {}
        if data.get("topic") is not None:
            try:
                topic_id = int(data["topic"])
            except (TypeError, ValueError):
                return (gr.skip(),) * 9
            return (gr.skip(),) * 6 + (gr.update(value=topic_id),) + self.topic_outputs(topic_id)
        return self.open_in_papers_tab(data.get("paper_id")) + (gr.skip(),) * 3

    def _topic(self, topic_id: int | None) -> Topic | None:
        corpus_map = self.corpus_map() if topic_id is not None else None
        if topic_id is None or corpus_map is None or not 0 <= int(topic_id) < len(corpus_map.topics):
            return None
        return corpus_map.topics[int(topic_id)]

    def topic_outputs(self, topic_id: int | None) -> tuple[Any, ...]:
        """Summary and paper list of one topic. Outputs: summary, papers."""
        topic = self._topic(topic_id)
        if topic is None:
            return "", gr.update(choices=[], value=None, visible=False)
        papers = self.assistant.index.papers
        terms = ", ".join(fmt.esc(t) for t in topic.terms)
        summary = (f"**{fmt.esc(topic.label)}** · {topic.size} papers\n\n"
                   f"Distinctive terms: {terms}")
        choices = [(papers[pid].title, pid) for pid in topic.paper_ids if pid in papers]
        return summary, gr.update(choices=choices, value=None, visible=True,
                                  label=f"Papers in this topic, most central first ({topic.size}; click to open)")

    def topic_search(self, topic_id: int | None) -> tuple[Any, ...]:
        """The topic's label as a Papers-tab search. Outputs: tab, query box."""
        topic = self._topic(topic_id)
        if topic is None:
            return gr.skip(), gr.skip()
        return gr.Tabs(selected="papers"), topic.query

    def topic_question(self, topic_id: int | None) -> tuple[Any, ...]:
        """A question about the topic, put in the chat box. Outputs: tab, question box."""
        topic = self._topic(topic_id)
        if topic is None:
            return gr.skip(), gr.skip()
        terms = topic.terms[:3]
        named = terms[0] if len(terms) == 1 else ", ".join(terms[:-1]) + " and " + terms[-1]
        return gr.Tabs(selected="chat"), f"What do the papers about {named} propose?"

    def topic_list(self) -> Any:
        corpus_map = self.corpus_map()
        return gr.update(choices=topic_choices(corpus_map) if corpus_map else [], value=None)

    def open_paper(self, paper_id: str | None) -> tuple[Any, ...]:
        """Outputs: matches list (just this paper), note, view, citation, related."""
        if not paper_id:
            return (gr.skip(),) * 5
        papers = self.assistant.index.papers
        title = papers[paper_id].title if paper_id in papers else paper_id
        return (gr.update(choices=[(title, paper_id)], value=paper_id), "") + self.paper_outputs(paper_id)

    def open_in_papers_tab(self, paper_id: str | None) -> tuple[Any, ...]:
        """Same as `open_paper`, switching to the Papers tab first (from the map)."""
        return (gr.Tabs(selected="papers") if paper_id else gr.skip(),) + self.open_paper(paper_id)

    def paper_list(self) -> list[tuple[str, str]]:
        if not self.index_ready():
            return []
        return sorted(((p.title, pid) for pid, p in self.assistant.index.papers.items()), key=lambda c: c[0].casefold())

    # ------------------------------------------------------------ index build

    def build_index(self) -> Iterator[tuple[Any, ...]]:
        """Runs the same incremental sync as `assistant index` in a worker thread and
        streams its progress (papers embedded so far) into the page every half second.
        Outputs: banner, progress text, status line, map, map picker."""
        from assistant.index import sync

        if not self._build_lock.acquire(blocking=False):
            yield gr.skip(), "Another build is running; wait for it to finish.", gr.skip(), gr.skip(), gr.skip()
            return
        try:
            bar, outcome = BuildProgress(), {}

            def work() -> None:
                try:
                    outcome["report"] = sync(self.settings, progress=bar.start)
                    self.assistant.reload()
                    warm_up(self.assistant)
                except Exception as exc:  # shown in the page; the server keeps running
                    log.exception("index build failed")
                    outcome["error"] = exc

            worker = threading.Thread(target=work, name="index-build", daemon=True)
            worker.start()
            while worker.is_alive():
                yield gr.skip(), bar.html(), gr.skip(), gr.skip(), gr.skip()
                worker.join(0.5)
        finally:
            self._build_lock.release()
        if "error" in outcome:
            yield gr.skip(), fmt.esc(f"Building the index failed: {outcome['error']}"), gr.skip(), gr.skip(), gr.skip()
            return
        report = outcome["report"]
        done = fmt.esc(f"Index built: {report.papers} papers in {report.seconds:.0f} s.")
        yield (gr.update(visible=False), done, self.status_line(), self.map_value(),
               gr.update(choices=self.paper_list()))


class BuildProgress:
    """The tqdm-like object `index.sync` drives (`start` is its progress factory),
    read by the UI while the build runs in another thread."""

    def __init__(self) -> None:
        self.total, self.done, self.desc = 0, 0, "Reading the corpus and loading the embedding model"
        self.t0 = time.monotonic()

    def start(self, total: int, desc: str) -> BuildProgress:
        self.total, self.done, self.desc = max(total, 1), 0, desc
        return self

    def update(self, n: int = 1) -> None:
        self.done += n

    def close(self) -> None:
        self.total, self.desc = 0, "Writing the keyword index and manifest"

    def html(self) -> str:
        elapsed = f"{time.monotonic() - self.t0:.0f} s"
        if not self.total:
            return f"<div id='build-progress'>{fmt.esc(self.desc)}… ({elapsed})</div>"
        pct = 100 * self.done // self.total
        return (f"<div id='build-progress'><progress max='{self.total}' value='{self.done}'></progress> "
                f"{fmt.esc(self.desc)}: {self.done} / {self.total} ({pct}%, {elapsed})</div>")


# ---------------------------------------------------------------- layout


def build_ui(assistant: Assistant) -> gr.Blocks:
    """The Blocks app; queue concurrency is bounded by settings.concurrency."""
    ui = AssistantUI(assistant)
    s = ui.settings
    ready = ui.index_ready()
    with gr.Blocks(title="Research assistant", fill_width=True, analytics_enabled=False) as demo:
        gr.Markdown("### Research assistant · ML paper abstracts\n"
                    "Answers cite the abstracts they rest on; every [n] was checked against the cited sentence. "
                    "JSON API: [/api/docs](/api/docs).", elem_id="intro")
        status = gr.Markdown(ui.status_line() if ready else "", elem_id="status")
        with gr.Column(visible=not ready, elem_id="index-banner") as banner:
            gr.Markdown(f"**The index is not ready.** {fmt.esc(ui.index_message())} "
                        "Or build it here; the page shows the progress.")
            build_btn = gr.Button("Build index", variant="primary")
        build_out = gr.HTML("", elem_id="build-out", js_on_load=None, visible=not ready)

        with gr.Tabs(elem_id="tabs") as tabs:
            with gr.Tab("Chat", id="chat"):
                chat_parts = _chat_tab(ui, s)
            with gr.Tab("Papers", id="papers"):
                papers_parts = _papers_tab(ui)
            with gr.Tab("Corpus map", id="map"):
                map_parts = _map_tab(ui)

        _wire_chat(ui, chat_parts, map_parts["map"])
        _wire_papers(ui, papers_parts)
        open_outputs = [tabs, papers_parts["results"], papers_parts["note"], papers_parts["view"],
                        papers_parts["citation"], papers_parts["related"]]
        _wire_map(ui, map_parts, tabs, open_outputs, chat_parts, papers_parts)
        build_btn.click(ui.build_index, None, [banner, build_out, status, map_parts["map"], map_parts["pick"]],
                        concurrency_limit=1, show_progress="hidden").then(ui.topic_list, None, map_parts["topic"])
        demo.load(ui.llm_markdown, None, chat_parts["llm"])
    demo.queue(default_concurrency_limit=s.concurrency, max_size=max(32, 8 * s.concurrency))
    demo.state_session_capacity = MAX_SESSIONS
    return demo


def _chat_tab(ui: AssistantUI, s: Settings) -> dict[str, Any]:
    parts: dict[str, Any] = {}
    with gr.Row(equal_height=False):
        with gr.Column(scale=3, min_width=340):
            parts["chat"] = gr.Chatbot(label="Conversation", elem_id="chat", height=430, latex_delimiters=[],
                                       sanitize_html=True, buttons=["copy"], feedback_options=None,
                                       placeholder="Ask about a method, a result or a paper in the corpus.")
            with gr.Row():
                parts["question"] = gr.Textbox(placeholder="Ask a question and press Enter", show_label=False,
                                               scale=5, min_width=200, elem_id="question", autofocus=True,
                                               max_length=s.max_question_chars + 2000)
                parts["send"] = gr.Button("Ask", variant="primary", scale=1, min_width=70, elem_id="send")
            parts["ask_new"] = gr.Button("Ask it as a new question instead", size="sm", visible=False,
                                         elem_id="ask-new")
            with gr.Row():
                parts["examples"] = [gr.Button(q, size="sm", elem_classes=["example"], min_width=120) for q in EXAMPLES]
            with gr.Row():
                parts["clear"] = gr.Button("Clear conversation", size="sm", elem_id="clear")
            with gr.Accordion("Settings", open=False, elem_id="settings"):
                parts["mode"] = gr.Radio(["offline", "llm"], value=s.answer_mode(), label="Answer mode",
                                         info="offline: sentences quoted from the abstracts; llm: written by the endpoint, then verified")
                with gr.Row():
                    parts["llm"] = gr.Markdown("**LLM status:** checking…", elem_id="llm-status")
                    parts["check"] = gr.Button("Check endpoint", size="sm", min_width=80)
                parts["top_k"] = gr.Slider(1, 10, value=s.top_k, step=1, label="Most papers cited (top-k)")
                parts["date_from"] = gr.Textbox(label="Only papers published on or after", placeholder="YYYY, YYYY-MM or YYYY-MM-DD",
                                                info="Papers whose listing gives no year are left out when this is set.")
        with gr.Column(scale=2, min_width=300):
            gr.Markdown("### Sources")
            parts["sources"] = gr.HTML(ui.sources([]), elem_id="sources", js_on_load=None, max_height=640)
    parts["turns"] = gr.State([], time_to_live=SESSION_TTL_S)
    return parts


def _wire_chat(ui: AssistantUI, p: dict[str, Any], corpus_map: gr.HTML) -> None:
    inputs = [p["question"], p["chat"], p["turns"], p["mode"], p["top_k"], p["date_from"]]
    outputs = [p["question"], p["chat"], p["turns"], p["sources"], corpus_map]
    show = (ui.new_question_button, p["turns"], p["ask_new"])
    p["question"].submit(ui.respond, inputs, outputs).then(*show)
    p["send"].click(ui.respond, inputs, outputs).then(*show)
    p["ask_new"].click(ui.ask_as_new, inputs[1:], outputs).then(*show)
    for button in p["examples"]:
        button.click(lambda q: q, button, p["question"], queue=False).then(ui.respond, inputs, outputs).then(*show)
    cleared = [p["chat"], p["turns"], p["sources"], corpus_map, p["question"]]
    p["clear"].click(ui.clear, None, cleared, queue=False)
    p["chat"].clear(ui.clear, None, cleared, queue=False)  # the chat's own trash icon forgets the history too
    for event in (p["clear"].click, p["chat"].clear):
        event(lambda: gr.update(visible=False), None, p["ask_new"], queue=False)
    p["check"].click(lambda: ui.llm_markdown(refresh=True), None, p["llm"])


def _papers_tab(ui: AssistantUI) -> dict[str, Any]:
    parts: dict[str, Any] = {}
    with gr.Row():
        parts["query"] = gr.Textbox(placeholder="Title, acronym (e.g. AdamP) or a description", show_label=False,
                                    scale=5, min_width=200, elem_id="paper-query")
        parts["find"] = gr.Button("Find", variant="primary", scale=1, min_width=70, elem_id="paper-find")
    with gr.Row(equal_height=False):  # the paper first, so narrow screens show it above the lists
        with gr.Column(scale=3, min_width=320):
            parts["note"] = gr.Markdown()
            parts["view"] = gr.HTML(ui._empty_paper()[0], elem_id="paper-view", js_on_load=None)
            parts["citation"] = gr.Textbox(label="Citation (authors when known, title, date, link)", buttons=["copy"], interactive=False,
                                           elem_id="paper-citation")
        with gr.Column(scale=2, min_width=280):
            parts["results"] = gr.Radio([], label="Matches", elem_id="paper-results")
            parts["related"] = gr.Radio([], label="Related papers (click to open)", elem_id="paper-related")
    return parts


def _wire_papers(ui: AssistantUI, p: dict[str, Any]) -> None:
    outputs = [p["results"], p["note"], p["view"], p["citation"], p["related"]]
    p["query"].submit(ui.find, p["query"], outputs)
    p["find"].click(ui.find, p["query"], outputs)
    p["results"].input(ui.paper_outputs, p["results"], [p["view"], p["citation"], p["related"]])
    p["related"].input(ui.open_paper, p["related"], outputs)


def _map_tab(ui: AssistantUI) -> dict[str, Any]:
    parts: dict[str, Any] = {}
    gr.Markdown("Each dot is a paper, placed by t-SNE of its embedding so that papers about similar things sit "
                "together; colours are topics, each named by its most distinctive words. Hover a dot for its title "
                "and date, click it to open the paper; click a topic's name, on the map or in the legend, to list "
                "its papers. Papers retrieved for your last question are orange, numbered by rank.")
    corpus_map = ui.corpus_map()
    with gr.Row(equal_height=False):
        with gr.Column(scale=3, min_width=320):
            parts["map"] = gr.HTML(ui.map_value(), html_template='<div class="corpus-map"></div>',
                                   js_on_load=MAP_JS, head=f'<script src="{PLOTLY_JS_ROUTE}"></script>',
                                   elem_id="corpus-map")
        with gr.Column(scale=1, min_width=260, elem_id="map-topic-panel"):
            parts["topic"] = gr.Dropdown(topic_choices(corpus_map) if corpus_map else [], value=None, label="Topic",
                                         elem_id="map-topic", filterable=True)
            parts["topic_info"] = gr.Markdown(elem_id="map-topic-info")
            with gr.Row():
                parts["topic_search"] = gr.Button("Search the Papers tab", size="sm", elem_id="map-topic-search")
                parts["topic_ask"] = gr.Button("Ask about this topic", size="sm", elem_id="map-topic-ask")
            parts["topic_papers"] = gr.Radio([], label="Papers in this topic", visible=False,
                                             elem_id="map-topic-papers")
    parts["pick"] = gr.Dropdown(ui.paper_list(), value=None, label="Or open a paper from the map by title",
                                filterable=True, elem_id="map-pick")
    return parts


def _wire_map(ui: AssistantUI, m: dict[str, Any], tabs: gr.Tabs, open_outputs: list[Any], chat: dict[str, Any],
              papers: dict[str, Any]) -> None:
    """Map to papers: a dot opens its paper, a topic lists its papers, and the topic's
    label becomes a Papers-tab search or a chat question."""
    topic_outputs = [m["topic_info"], m["topic_papers"]]
    m["map"].click(ui.open_from_map, None, open_outputs + [m["topic"]] + topic_outputs)
    m["topic"].input(ui.topic_outputs, m["topic"], topic_outputs)
    m["topic_papers"].input(ui.open_in_papers_tab, m["topic_papers"], open_outputs)
    m["pick"].input(ui.open_in_papers_tab, m["pick"], open_outputs)
    found = [papers["results"], papers["note"], papers["view"], papers["citation"], papers["related"]]
    m["topic_search"].click(ui.topic_search, m["topic"], [tabs, papers["query"]]).then(
        ui.find, papers["query"], found)
    asked = [chat["question"], chat["chat"], chat["turns"], chat["mode"], chat["top_k"], chat["date_from"]]
    answered = [chat["question"], chat["chat"], chat["turns"], chat["sources"], m["map"]]
    m["topic_ask"].click(ui.topic_question, m["topic"], [tabs, chat["question"]]).then(ui.respond, asked, answered)

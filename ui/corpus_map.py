"""The corpus map as a Plotly figure: papers placed by `assistant.topics` (t-SNE,
cached per index), coloured by topic, each topic named on the map and in the
legend; the papers retrieved for the last question ringed and numbered by rank.
The figure travels to the browser as JSON and is drawn by `MAP_JS`: whole once
(`figure_json`, on page load and after an index build), then for each answer only
what an answer changes (`highlight_json`: the ringed papers and the topic names'
places), since at 100k papers the whole figure is about 19 MB."""

from __future__ import annotations

import html
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from assistant.topics import CorpusMap, Topic

PLOTLY_JS_ROUTE = "/static-local/plotly.min.js"  # served by ui/server.py from the plotly package, never a CDN
MAP_FIGURE_ROUTE = "/static-local/corpus-map.json"  # the whole figure, for a page that has only seen a highlight

# Tableau's ten less its orange (the retrieved papers' colour), then d3's darker
# twenties; neighbouring topics get far-apart hues. Past the 19th, colours repeat.
PALETTE = ["#1f77b4", "#2ca02c", "#9467bd", "#e377c2", "#17becf", "#8c564b", "#bcbd22", "#d62728", "#7f7f7f",
           "#393b79", "#637939", "#7b4173", "#e7ba52", "#8c6d31", "#31a354", "#a55194", "#5254a3", "#843c39",
           "#6b6ecf"]
HIGHLIGHT = "#e8590c"


def plotly_js_path() -> Path:
    import plotly

    return Path(plotly.__file__).parent / "package_data" / "plotly.min.js"


def topic_color(topic_id: int) -> str:
    return PALETTE[topic_id % len(PALETTE)]


def figure_json(corpus_map: CorpusMap, highlight: Iterable[str] = ()) -> str:
    """Plotly figure (data + layout) as JSON: one trace per topic (its legend entry is
    the topic's name and size), the papers retrieved for the last question on top in
    orange, numbered by rank, and each topic's name at its densest point.
    `customdata` carries the paper id, `meta` the topic id, for the click handler."""
    size = 7 if len(corpus_map.points) < 2000 else 4
    members = _members(corpus_map)
    data = [_trace(corpus_map, members.get(topic.id, []), f"{topic.label} ({topic.size})", meta=topic.id,
                   marker={"size": size, "color": topic_color(topic.id), "opacity": 0.8})
            for topic in corpus_map.topics]
    ringed, annotations = _highlight(corpus_map, highlight, members)
    if ringed is not None:
        data.append(ringed)
    layout = {
        "margin": {"l": 10, "r": 10, "t": 10, "b": 10},
        "xaxis": {"visible": False}, "yaxis": {"visible": False},
        "showlegend": True,
        "legend": {"title": {"text": "Topics (click one for its papers):"}, "orientation": "h", "x": 0, "y": -0.01,
                   "yanchor": "top", "itemclick": False, "itemdoubleclick": False, "font": {"size": 11}},
        "annotations": annotations,
        "hovermode": "closest",
        "dragmode": "pan",
        "paper_bgcolor": "rgba(0,0,0,0)", "plot_bgcolor": "rgba(0,0,0,0)",
        "autosize": True,
    }
    return json.dumps({"data": data, "layout": layout})


def highlight_json(corpus_map: CorpusMap, highlight: Iterable[str] = ()) -> str:
    """What an answer changes on a figure already drawn: the ringed trace (null when
    nothing is retrieved) and the topic names' places; `MAP_JS` lays them over the
    figure it holds."""
    ringed, annotations = _highlight(corpus_map, highlight, _members(corpus_map))
    return json.dumps({"highlight": ringed, "annotations": annotations})


def _members(corpus_map: CorpusMap) -> dict[int, list[dict[str, Any]]]:
    """Each topic's points, in map order."""
    members: dict[int, list[dict[str, Any]]] = {}
    for p in corpus_map.points:
        members.setdefault(p["topic"], []).append(p)
    return members


def _highlight(corpus_map: CorpusMap, highlight: Iterable[str],
               members: dict[int, list[dict[str, Any]]]) -> tuple[dict[str, Any] | None, list[dict[str, Any]]]:
    """The ringed trace of the retrieved papers, by rank, and every topic's name placed
    clear of them."""
    rank = {pid: i for i, pid in enumerate(dict.fromkeys(highlight), 1)}
    top = sorted((p for p in corpus_map.points if p["paper_id"] in rank), key=lambda p: rank[p["paper_id"]])
    ringed = _trace(corpus_map, top, "retrieved for the last question (by rank)", meta=None, rank=rank,
                    marker={"size": 13, "color": HIGHLIGHT, "line": {"width": 2, "color": "#7a2e00"}}) if top else None
    return ringed, [_label(t, members.get(t.id, []), top) for t in corpus_map.topics]


def _trace(corpus_map: CorpusMap, pts: list[dict[str, Any]], name: str, marker: dict[str, Any], meta: int | None,
           rank: dict[str, int] | None = None) -> dict[str, Any]:
    """One Plotly trace; with `rank`, each dot is numbered by it."""
    return {
        "type": "scattergl" if len(corpus_map.points) > 2000 else "scatter",  # WebGL past a few thousand dots
        "mode": "markers+text" if rank else "markers",
        "name": name,
        "meta": meta,
        "x": [p["x"] for p in pts],
        "y": [p["y"] for p in pts],
        "customdata": [p["paper_id"] for p in pts],
        "hovertext": [_hover(p, corpus_map.topics) for p in pts],
        "hoverinfo": "text",
        "text": [str(rank[p["paper_id"]]) for p in pts] if rank else None,
        "textposition": "top center",
        "textfont": {"size": 13, "color": "#7a2e00"},
        "marker": marker,
    }


# Roughly how many pixels one unit of the map's [-1, 1] coordinates spans in the tab
# (about 900 x 400 px for 2.2 x 2.2 units): enough to tell whether a label covers a dot.
PX_PER_UNIT_X, PX_PER_UNIT_Y = 410.0, 180.0


def _label(topic: Topic, members: list[dict[str, Any]], retrieved: list[dict[str, Any]]) -> dict[str, Any]:
    """A topic's name on the map, clickable (`captureevents`): the click lists its
    papers. It sits on the topic's most central paper, unless it would cover a paper
    retrieved for the last question (labels are drawn above the dots): then it moves
    to just above the topic's region."""
    text = _short(topic.label)
    half_w, half_h = (len(text) * 3.5 + 6) / PX_PER_UNIT_X, 11 / PX_PER_UNIT_Y
    x, y, anchor = topic.x, topic.y, "middle"
    if members and any(abs(p["x"] - x) < half_w and abs(p["y"] - y) < half_h for p in retrieved):
        y, anchor = max(p["y"] for p in members) + 8 / PX_PER_UNIT_Y, "bottom"
    return {"x": x, "y": y, "yanchor": anchor, "text": html.escape(text, quote=False),
            "showarrow": False, "captureevents": True, "font": {"size": 11, "color": "#1b1b1b"},
            "bgcolor": "rgba(255,255,255,0.78)", "bordercolor": topic_color(topic.id), "borderwidth": 1.5,
            "borderpad": 2, "hovertext": html.escape(f"{topic.label}: {topic.size} papers (click to list them)",
                                                     quote=False)}


def _short(label: str, limit: int = 30) -> str:
    """On the map a label keeps its first terms, so neighbouring labels overlap less
    (the legend and the hover text have it whole)."""
    parts = label.split(" · ")
    parts = parts[:2]
    while len(parts) > 1 and len(" · ".join(parts)) > limit:
        parts.pop()
    return " · ".join(parts)


def _hover(point: dict[str, Any], topics: list[Topic]) -> str:
    """Plotly hover labels understand a little HTML, so titles are escaped."""
    lines = [html.escape(point["title"], quote=False)]
    if point["date"]:
        lines.append(html.escape(point["date"], quote=False))
    lines.append(f"<i>{html.escape(topics[point['topic']].label, quote=False)}</i>")
    return "<br>".join(lines)


def topic_choices(corpus_map: CorpusMap) -> list[tuple[str, int]]:
    return [(f"{t.label} ({t.size} papers)", t.id) for t in corpus_map.topics]


# Runs in the browser (gr.HTML js_on_load): draws the figure with the plotly.js
# bundled in the `plotly` Python package (served by the app, nothing fetched from
# the internet), redraws when the value changes, and reports clicks as a `click`
# event carrying the paper id (a dot) or the topic id (a name on the map or in
# the legend). On a narrow screen the legend would leave the map a strip, so it
# is dropped there (the Topic list beside the map lists the same topics).
MAP_JS = """
function draw() {
  const div = element.querySelector('.corpus-map');
  if (!div || !props.value) return;
  const msg = JSON.parse(props.value);
  if (msg.data) { element._base = msg; element._overlay = null; }  // the whole figure
  else element._overlay = msg;  // an answer's highlight, laid over the figure held
  const base = element._base;
  if (!base) {  // the map tab mounted after an answer: its value is a highlight only
    if (!element._fetching) {
      element._fetching = true;
      fetch('""" + MAP_FIGURE_ROUTE + """').then(r => r.json()).then(fig => {
        if (fig && !element._base) element._base = fig;
        draw();
      }).finally(() => { element._fetching = false; });
    }
    return;
  }
  if (!window.Plotly) return;
  const over = element._overlay;
  const data = over ? base.data.filter(t => t.meta !== null).concat(over.highlight ? [over.highlight] : []) : base.data;
  const layout = Object.assign({}, base.layout,
    {annotations: ((over ? over.annotations : base.layout.annotations) || []).map(a => Object.assign({}, a, {font: Object.assign({}, a.font)}))});
  if (div.clientWidth < 600) {  // a phone: the Topic list below stands in for the legend; names shortened
    layout.showlegend = false;
    for (const a of layout.annotations) { a.text = a.text.split(' · ')[0]; a.font.size = 10; }
  }
  const fig = {data: data, layout: layout};
  window.Plotly.react(div, fig.data, fig.layout, {responsive: true, displaylogo: false,
    modeBarButtonsToRemove: ['select2d', 'lasso2d', 'toImage']});
  if (!div.dataset.bound) {
    div.dataset.bound = '1';
    div.on('plotly_click', (ev) => {
      const pt = ev && ev.points && ev.points[0];
      if (pt && pt.customdata) trigger('click', {paper_id: pt.customdata});
    });
    div.on('plotly_clickannotation', (ev) => {
      if (ev && ev.index !== undefined) trigger('click', {topic: ev.index});
    });
    div.on('plotly_legendclick', (ev) => {
      const t = ev && div.data[ev.curveNumber];
      if (t && t.meta !== null && t.meta !== undefined) trigger('click', {topic: t.meta});
      return false;
    });
  }
}
draw();
watch('value', draw);
new ResizeObserver(() => {
  const div = element.querySelector('.corpus-map');
  if (div && div.data && window.Plotly) window.Plotly.Plots.resize(div);
}).observe(element);
"""

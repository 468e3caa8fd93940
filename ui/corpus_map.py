"""The corpus map: a 2-D PCA projection of the paper vectors (title + all sentences,
as stored in Chroma), computed once per index and cached beside it in
`<index_dir>/map.json`, keyed by the manifest's corpus fingerprint and model.

PCA rather than t-SNE/UMAP: deterministic, no extra dependency, and for 356
points it takes milliseconds; the cache mostly spares the Chroma read.
"""

from __future__ import annotations

import html
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from assistant.files import atomic_write_json
from assistant.retrieve import Index

MAP_FILE = "map.json"
PLOTLY_JS_ROUTE = "/static-local/plotly.min.js"  # served by ui/server.py from the plotly package, never a CDN


def plotly_js_path() -> Path:
    import plotly

    return Path(plotly.__file__).parent / "package_data" / "plotly.min.js"


def _key(index: Index) -> dict[str, Any]:
    return {"corpus_fingerprint": index.manifest.get("corpus_fingerprint"),
            "embed_model": index.manifest.get("embed_model"),
            "collection": index.store.names[0]}


def pca_2d(vectors: np.ndarray) -> np.ndarray:
    """First two principal components, signs fixed so reruns give the same picture."""
    centered = vectors - vectors.mean(axis=0, keepdims=True)
    _, _, vt = np.linalg.svd(centered, full_matrices=False)
    axes = vt[:2]
    signs = np.sign(axes[np.arange(2), np.abs(axes).argmax(axis=1)])
    return centered @ (axes * signs[:, None]).T


def compute_points(index: Index) -> list[dict[str, Any]]:
    """One point per paper: id, title, date and x/y."""
    got = index.store.papers.get(include=["embeddings", "metadatas"])
    rows = [(m["paper_id"], e) for m, e in zip(got["metadatas"], got["embeddings"]) if m["paper_id"] in index.papers]
    rows.sort(key=lambda r: r[0])
    if len(rows) < 3:
        return []
    xy = pca_2d(np.asarray([e for _, e in rows], dtype=np.float64))
    points = []
    for (pid, _), (x, y) in zip(rows, xy):
        paper = index.papers[pid]
        points.append({"paper_id": pid, "title": paper.title, "date": paper.published or paper.date or "",
                       "x": round(float(x), 5), "y": round(float(y), 5)})
    return points


def load_points(index: Index) -> list[dict[str, Any]]:
    """Cached points when the cache matches this index, else computed and cached."""
    path = Path(index.settings.index_dir) / MAP_FILE
    key = _key(index)
    try:
        cached = json.loads(path.read_text(encoding="utf-8"))
        if cached.get("key") == key:
            return cached["points"]
    except (OSError, ValueError, KeyError, AttributeError):
        pass
    points = compute_points(index)
    try:
        atomic_write_json(path, {"key": key, "points": points})
    except OSError:
        pass  # a read-only index folder still gets a map, just not a cached one
    return points


def figure_json(points: list[dict[str, Any]], highlight: Iterable[str] = ()) -> str:
    """Plotly figure (data + layout) as JSON: all papers in grey, the papers retrieved
    for the last question in colour and labelled by rank. `customdata` carries the
    paper id the click handler sends back."""
    chosen = list(dict.fromkeys(highlight))
    rank = {pid: i for i, pid in enumerate(chosen, 1)}
    base = [p for p in points if p["paper_id"] not in rank]
    top = sorted((p for p in points if p["paper_id"] in rank), key=lambda p: rank[p["paper_id"]])

    def trace(pts: list[dict[str, Any]], name: str, marker: dict[str, Any], text: bool) -> dict[str, Any]:
        return {
            "type": "scattergl" if len(pts) > 2000 else "scatter",
            "mode": "markers+text" if text else "markers",
            "name": name,
            "x": [p["x"] for p in pts],
            "y": [p["y"] for p in pts],
            "customdata": [p["paper_id"] for p in pts],
            "hovertext": [_hover(p) for p in pts],
            "hoverinfo": "text",
            "text": [str(rank[p["paper_id"]]) for p in pts] if text else None,
            "textposition": "top center",
            "marker": marker,
        }

    data = [trace(base, "papers", {"size": 7, "color": "#9aa5b1", "opacity": 0.75}, False)]
    if top:
        data.append(trace(top, "retrieved for the last question",
                          {"size": 12, "color": "#e8590c", "line": {"width": 1, "color": "#7a2e00"}}, True))
    layout = {
        "margin": {"l": 10, "r": 10, "t": 10, "b": 10},
        "xaxis": {"visible": False}, "yaxis": {"visible": False},
        "showlegend": bool(top),
        "legend": {"orientation": "h", "y": -0.02},
        "hovermode": "closest",
        "dragmode": "pan",
        "paper_bgcolor": "rgba(0,0,0,0)", "plot_bgcolor": "rgba(0,0,0,0)",
        "autosize": True,
    }
    return json.dumps({"data": data, "layout": layout})


def _hover(point: dict[str, Any]) -> str:
    """Plotly hover labels understand a little HTML, so titles are escaped."""
    title = html.escape(point["title"], quote=False)
    return f"{title}<br>{html.escape(point['date'], quote=False)}" if point["date"] else title


# Runs in the browser (gr.HTML js_on_load): draws the figure with the plotly.js
# bundled in the `plotly` Python package (served by the app, nothing fetched from
# the internet), redraws when the value changes, and reports clicks as a
# `click` event carrying the paper id.
MAP_JS = """
function draw() {
  const div = element.querySelector('.corpus-map');
  if (!div || !window.Plotly || !props.value) return;
  const fig = JSON.parse(props.value);
  window.Plotly.react(div, fig.data, fig.layout, {responsive: true, displaylogo: false,
    modeBarButtonsToRemove: ['select2d', 'lasso2d', 'toImage']});
  if (!div.dataset.bound) {
    div.dataset.bound = '1';
    div.on('plotly_click', (ev) => {
      const pt = ev && ev.points && ev.points[0];
      if (pt && pt.customdata) trigger('click', {paper_id: pt.customdata});
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

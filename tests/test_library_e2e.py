"""Your own papers end to end: `assistant add` a BibTeX and an RIS library to a small
corpus (real processes, real index), ask a question whose answer cites one of
them, and copy BibTeX from the CLI, the API and the UI (a real browser)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import bibtexparser
import httpx
import pytest
import rispy

from assistant.config import Settings
from assistant.corpus import paper_id_for
from evals.servers import free_port, running_server
from tests.conftest import write_small_corpus
from tests.test_cli import run as run_cli

pytestmark = pytest.mark.slow

LIBRARY = Path(__file__).parent / "data" / "library"
QUOKKA = paper_id_for("Quokka: Sparse Attention for Long-Read Genome Assembly")
KESTREL = paper_id_for("Kestrel: Forecasting Wind Gusts at Airports with Graph Networks")
SMALL_LISTING = "h-edit-effective-and-26cb24"  # a paper of the small listing corpus
def run(*args: str, settings: Settings) -> Any:
    """`assistant ...` with wide lines, so messages are not wrapped inside the text asserted on."""
    out = run_cli(*args, settings=settings, COLUMNS="400")
    out.stdout, out.stderr = out.stdout, " ".join(out.stderr.split())
    return out


QUOKKA_Q = "Which paper assembles genomes from long reads with sparse attention?"


@pytest.fixture(scope="module")
def added(tmp_path_factory: pytest.TempPathFactory) -> tuple[Settings, Any]:
    """A 6-paper listing corpus, indexed, then `assistant add library.bib library.ris`."""
    root = tmp_path_factory.mktemp("library-e2e")
    settings = Settings(corpus_dir=write_small_corpus(root / "corpus"), index_dir=root / "index",
                        collection_prefix="lib", mode="offline", llm_base_url=None, llm_api_key=None)
    assert run("index", "-q", settings=settings).returncode == 0
    result = run("add", str(LIBRARY / "library.bib"), str(LIBRARY / "library.ris"), "-q", settings=settings)
    return settings, result


def test_add_reports_files_skipped_records_and_entries_without_abstract(added: tuple[Settings, Any]) -> None:
    settings, out = added
    assert out.returncode == 0, out.stderr
    assert "library.bib: added; 6 entries (bibtex), 1 records skipped" in out.stdout
    assert "library.bib:48: skipped: malformed BibTeX entry" in out.stderr
    assert "library.ris:23: skipped: RIS record not closed" in out.stderr
    # AdamP and TempME match no paper of this small corpus, so their abstract-less entries are skipped too
    assert "3 entries without an abstract skipped" in out.stderr
    # Quokka, Lantern, TimesNet, Heron from the .bib; Kestrel from the .ris (its Quokka copy merges by DOI)
    assert "Index up to date: 11 papers (+5 new, 0 changed" in out.stdout
    assert sorted(p.name for p in settings.corpus_dir.iterdir()) == ["004_small.txt", "library.bib", "library.ris"]


def test_re_adding_the_same_file_embeds_nothing(added: tuple[Settings, Any]) -> None:
    settings, _ = added
    out = run("add", str(LIBRARY / "library.bib"), "-q", settings=settings)
    assert out.returncode == 0, out.stderr
    assert "already in the corpus, unchanged" in out.stdout
    assert "(+0 new, 0 changed, -0 removed, 0 repaired); embedded 0 units" in out.stdout


def test_a_refused_file_adds_nothing(added: tuple[Settings, Any], tmp_path: Path) -> None:
    settings, _ = added
    bad = tmp_path / "notes.bib"
    bad.write_text("% only a comment\n")
    good = tmp_path / "good.jsonl"
    shutil.copy(LIBRARY / "library.jsonl", good)
    out = run("add", str(good), str(bad), settings=settings)
    assert out.returncode == 1
    assert "notes.bib: no usable bibtex entry" in out.stderr and "Nothing was added." in out.stderr
    assert not (settings.corpus_dir / "good.jsonl").exists()


def test_ask_bibtex_prints_the_cited_library_entry(added: tuple[Settings, Any]) -> None:
    settings, _ = added
    out = run("ask", QUOKKA_Q, "--bibtex", settings=settings)
    assert out.returncode == 0, out.stderr
    assert "Quokka" in out.stderr and "[1]" in out.stderr  # the answer, on stderr
    entries = bibtexparser.parse_string(out.stdout).entries  # stdout is BibTeX only
    assert [e.key for e in entries] == ["lindqvist2024quokka"]
    assert entries[0].fields_dict["doi"].value == "10.5555/quokka.2024.17"


def test_source_file_filter_and_authors_notice(added: tuple[Settings, Any]) -> None:
    settings, _ = added
    out = run("ask", "Which paper forecasts wind gusts at airports?", "--json", "--source-file", "library.ris",
              settings=settings)
    assert out.returncode == 0, out.stderr
    assert '"paper_id": "' + KESTREL in out.stdout
    out = run("ask", "Who wrote Quokka?", settings=settings)
    assert "Lindqvist, Astrid; Müller, Jonas; O'Neil, Maeve" in out.stderr


def test_paper_bibtex_and_json(added: tuple[Settings, Any]) -> None:
    settings, _ = added
    out = run("paper", QUOKKA, "--json", settings=settings)
    paper = __import__("json").loads(out.stdout)["paper"]
    assert paper["authors"][0] == "Lindqvist, Astrid" and paper["doi"] == "10.5555/quokka.2024.17"
    assert paper["also_in"] == ["library.ris:11"]
    out = run("paper", SMALL_LISTING, "--bibtex", settings=settings)
    entry = bibtexparser.parse_string(out.stdout).entries[0]
    assert (entry.entry_type, entry.key) == ("misc", SMALL_LISTING)
    assert entry.fields_dict["note"].value.startswith("From a paper-listing page")


# ---------------------------------------------------------------- API and UI


@pytest.fixture(scope="module")
def base(added: tuple[Settings, Any]) -> Iterator[str]:
    with running_server(added[0], free_port(), name="library-server") as url:
        yield url


def test_api_bibtex_and_cite(base: str) -> None:
    with httpx.Client(base_url=base, timeout=60) as client:
        r = client.get(f"/api/papers/{QUOKKA}/bibtex")
        assert r.status_code == 200 and r.headers["content-type"].startswith("application/x-bibtex")
        assert bibtexparser.parse_string(r.text).entries[0].key == "lindqvist2024quokka"
        r = client.get("/api/cite", params={"ids": f"{QUOKKA},{KESTREL}", "format": "ris"})
        assert [x["id"] for x in rispy.loads(r.text)] == ["lindqvist2024quokka", "mbeki2022kestrel"]
        r = client.get("/api/cite", params=[("ids", QUOKKA), ("ids", SMALL_LISTING), ("format", "csl-json")])
        items = r.json()
        assert items[0]["author"][0] == {"family": "Lindqvist", "given": "Astrid"} and "note" in items[1]
        assert client.get(f"/api/papers/{QUOKKA}").json()["paper"]["venue"] == "Journal of Invented Bioinformatics"
        r = client.get("/api/cite", params={"ids": "no-such-paper"})
        assert r.status_code == 404 and "no-such-paper" in r.json()["error"]
        assert client.get("/api/cite", params={"ids": " , "}).status_code == 400
        assert client.get("/api/cite", params={"ids": QUOKKA, "format": "endnote"}).status_code == 422


@pytest.mark.browser
def test_bibtex_button_copies_the_entry(base: str) -> None:
    from playwright.sync_api import sync_playwright

    from tests.test_browser import ARGS, CHROMIUM

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        context = browser.new_context(viewport={"width": 1280, "height": 800})
        context.grant_permissions(["clipboard-read", "clipboard-write"], origin=base)
        page = context.new_page()
        page.goto(base + "/", wait_until="load")
        box = page.locator("#question textarea")
        box.wait_for(timeout=30_000)
        box.fill(QUOKKA_Q)
        box.press("Enter")
        button = page.locator("#sources .src button.copy-bibtex").first
        button.wait_for(timeout=60_000)
        button.click()
        page.wait_for_function("document.querySelector('#sources button.copy-bibtex').textContent === 'copied'",
                               timeout=5_000)
        copied = page.evaluate("navigator.clipboard.readText()")
        browser.close()
    entry = bibtexparser.parse_string(copied).entries[0]
    assert entry.key == "lindqvist2024quokka" and entry.fields_dict["author"].value.startswith("Lindqvist, Astrid")

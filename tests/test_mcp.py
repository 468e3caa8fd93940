"""The MCP server (ui/mcp_server.py) through the official SDK's own clients: the
in-memory session on the session's index (list, call each tool, read resources,
bad arguments as error results), a real `assistant mcp` subprocess over stdio, and
the streamable-HTTP transport that `assistant serve` mounts at /mcp behind its auth.
`ask` returns the citations /api/ask returns for the same question."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from importlib.metadata import entry_points
from typing import Any

import anyio
import httpx
import httpx2
import pytest
from mcp import Client, StdioServerParameters
from mcp.client.streamable_http import streamable_http_client

from assistant.config import PROJECT_ROOT, Settings
from evals.servers import free_port, running_server, server_env
from ui.api import Api
from ui.mcp_server import build_server

pytestmark = pytest.mark.slow

ADAMP = "adamp-slowing-down-the-d344cb"
ADAMP_Q = "What does AdamP change in the optimizer step?"
TOOLS = {"ask", "search_papers", "get_paper"}


def run(test: Any) -> Any:
    return anyio.run(test)


@pytest.fixture(scope="module")
def server(assistant: Any) -> Any:
    return build_server(Api(assistant))


async def call(client: Client, tool: str, **arguments: Any) -> Any:
    result = await client.call_tool(tool, arguments)
    assert not result.is_error, result.content
    return result.structured_content


# ---------------------------------------------------------------- in memory


def test_tools_have_typed_schemas(server: Any) -> None:
    async def test() -> None:
        async with Client(server) as c:
            tools = {t.name: t for t in (await c.list_tools()).tools}
            assert set(tools) == TOOLS
            ask, search, get = tools["ask"], tools["search_papers"], tools["get_paper"]
            assert ask.input_schema["required"] == ["question"] and "history" in ask.input_schema["properties"]
            top_k = search.input_schema["properties"]["top_k"]
            assert (top_k["type"], top_k["minimum"], top_k["maximum"], top_k["default"]) == ("integer", 1, 50, 10)
            assert get.input_schema["required"] == ["id_or_name"]
            assert set(ask.output_schema["properties"]) == {"answer", "abstained", "citations", "notices", "mode"}
            assert "best_sentence" in str(search.output_schema) and "candidates" in str(get.output_schema)
            assert all(t.annotations.read_only_hint for t in tools.values())
    run(test)


def test_ask_returns_the_pipeline_citations_and_follow_ups_resolve(server: Any, assistant: Any) -> None:
    async def test() -> None:
        async with Client(server) as c:
            first = await call(c, "ask", question=ADAMP_Q)
            contract = assistant.ask(ADAMP_Q).contract().model_dump(mode="json")
            assert first["citations"] == contract["citations"] and first["answer"] == contract["answer"]
            assert first["abstained"] is False and first["mode"] == "offline"
            follow = await call(c, "ask", question="and where is its code?",
                                history=[{"question": ADAMP_Q, "answer": first}])
            assert follow["citations"][0]["paper_id"] == ADAMP and "github.com/clovaai/AdamP" in follow["answer"]
            refused = await call(c, "ask", question="How do I cook pasta carbonara?")
            assert refused["abstained"] is True and refused["citations"] == []
            assert refused["answer"].startswith("The corpus has no paper")
    run(test)


def test_search_papers(server: Any, assistant: Any) -> None:
    async def test() -> None:
        async with Client(server) as c:
            found = await call(c, "search_papers", query="diffusion models sampling faster", top_k=5)
            papers = found["papers"]
            assert len(papers) == 5 and [p["paper_id"] for p in papers] == \
                [h.paper_id for h in assistant.search("diffusion models sampling faster", k=5)]
            assert papers == sorted(papers, key=lambda p: -p["score"])
            for p in papers:
                assert p["best_sentence"] in assistant.paper(p["paper_id"]).abstract
            dated = await call(c, "search_papers", query="diffusion models", top_k=20, date_from="2024-06",
                               date_to="2024-12-31")
            assert dated["papers"] and all("2024-06-01" <= p["date"] <= "2024-12-31" for p in dated["papers"])
            named = await call(c, "search_papers", query="AdamP", top_k=1)
            assert named["papers"][0]["paper_id"] == ADAMP and named["papers"][0]["url"]
    run(test)


def test_get_paper_found_ambiguous_and_not_found(server: Any) -> None:
    async def test() -> None:
        async with Client(server) as c:
            by_id = await call(c, "get_paper", id_or_name=ADAMP)
            assert by_id["status"] == "found" and by_id["paper"]["title"].startswith("AdamP")
            paper = by_id["paper"]
            assert paper["abstract"] and paper["urls"] == ["https://github.com/clovaai/AdamP"]
            assert paper["resource"] == f"paper://{ADAMP}" and len(paper["related"]) == 5
            assert (await call(c, "get_paper", id_or_name="Atention as an RNN"))["paper"]["title"].startswith(
                "Attention as an RNN")
            assert (await call(c, "get_paper", id_or_name="TFMQ"))["paper"]["title"].startswith("TFMQ-DM")
            missing = await call(c, "get_paper", id_or_name="quantum chromodynamics on a lattice")
            assert missing["status"] == "not_found" and missing["paper"] is None
            assert missing["message"].startswith("No paper matches") and len(missing["candidates"]) == 3
    run(test)


def test_paper_resources(server: Any, assistant: Any) -> None:
    async def test() -> None:
        async with Client(server) as c:
            listed = (await c.list_resources()).resources
            assert {str(r.uri) for r in listed} == {f"paper://{pid}" for pid in assistant.index.papers}
            templates = (await c.list_resource_templates()).resource_templates
            assert [t.uri_template for t in templates] == ["paper://{paper_id}"]
            text = (await c.read_resource(f"paper://{ADAMP}")).contents[0].text
            paper = assistant.paper(ADAMP)
            assert text.startswith(f"# {paper.title}\n") and paper.abstract in text and "Related papers:" in text
            with pytest.raises(Exception, match="No paper with id 'nope'"):
                await c.read_resource("paper://nope")
    run(test)


def test_the_resource_list_comes_in_pages(server: Any, assistant: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """A large reference library is listed a page at a time; following nextCursor gives
    every paper once, and a made-up cursor is refused by name."""
    import ui.mcp_server

    monkeypatch.setattr(ui.mcp_server, "RESOURCES_PAGE", 100)

    async def test() -> None:
        async with Client(server) as c:
            uris: list[str] = []
            cursor = None
            pages = 0
            while True:
                page = await c.list_resources(cursor=cursor)
                pages += 1
                assert len(page.resources) <= 100
                uris += [str(r.uri) for r in page.resources]
                cursor = page.next_cursor
                if cursor is None:
                    break
            assert pages == -(-len(assistant.index.papers) // 100)
            assert sorted(uris) == sorted(f"paper://{pid}" for pid in assistant.index.papers)
            with pytest.raises(Exception, match="Unknown resources cursor 'abc'"):
                await c.list_resources(cursor="abc")
    run(test)


BAD_CALLS = [
    ("ask", {}, "question"),
    ("ask", {"question": 42}, "question"),
    ("ask", {"question": "   "}, "The question is empty"),
    ("ask", {"question": "Why? " * 500}, "the limit is 2000"),
    ("ask", {"question": "and its code?", "history": [{"answer": "no question"}]}, "question"),
    ("search_papers", {"query": "x", "top_k": 0}, "top_k"),
    ("search_papers", {"query": "x", "top_k": "many"}, "top_k"),
    ("search_papers", {"query": "x", "date_from": "yesterday"}, "date_from"),
    ("search_papers", {"query": "x", "date_to": "2024-13"}, "'2024-13' is not a date"),
    ("get_paper", {}, "id_or_name"),
    ("get_paper", {"id_or_name": ""}, "The question is empty"),
    ("no_such_tool", {}, "no_such_tool"),
]


@pytest.mark.parametrize("tool,arguments,message", BAD_CALLS,
                         ids=[f"{t}-{i}" for i, (t, _, _) in enumerate(BAD_CALLS)])
def test_bad_arguments_are_error_results(server: Any, tool: str, arguments: dict, message: str) -> None:
    async def test() -> None:
        async with Client(server) as c:
            result = await c.call_tool(tool, arguments)
            assert result.is_error and message in result.content[0].text, result.content
            assert "Traceback" not in result.content[0].text
            assert (await call(c, "get_paper", id_or_name=ADAMP))["status"] == "found"  # still serving
    run(test)


# ---------------------------------------------------------------- real transports


async def round_trip(c: Client) -> dict[str, Any]:
    """Every tool and a resource through one client; what a test compares."""
    assert {t.name for t in (await c.list_tools()).tools} == TOOLS
    asked = await call(c, "ask", question=ADAMP_Q)
    found = await call(c, "search_papers", query="AdamP optimizer", top_k=3)
    paper = await call(c, "get_paper", id_or_name="AdamP")
    text = (await c.read_resource(f"paper://{ADAMP}")).contents[0].text
    bad = await c.call_tool("search_papers", {"query": "x", "top_k": 99})
    assert bad.is_error and "top_k" in bad.content[0].text
    assert found["papers"][0]["paper_id"] == ADAMP and paper["paper"]["paper_id"] == ADAMP and "AdamP" in text
    return asked


def test_stdio_subprocess(full_index: Settings, assistant: Any) -> None:
    """`assistant mcp` as a desktop client launches it; until the package is
    re-installed with its new entry point, the command function itself."""
    env = server_env(full_index) | {"PYTHONPATH": os.pathsep.join(filter(None, [str(PROJECT_ROOT),
                                                                                os.environ.get("PYTHONPATH")]))}
    installed = any(ep.name == "mcp" for ep in entry_points(group="assistant.commands"))
    args = ["-m", "assistant", "mcp"] if installed else ["-c", "from ui.cli import mcp; mcp()"]
    params = StdioServerParameters(command=sys.executable, args=args, env=env, cwd=str(PROJECT_ROOT))

    async def test() -> None:
        async with Client(params, read_timeout_seconds=240) as c:
            asked = await round_trip(c)
        assert asked["citations"] == assistant.ask(ADAMP_Q).contract().model_dump(mode="json")["citations"]
    run(test)


@pytest.fixture(scope="module")
def served(full_index: Settings) -> Iterator[str]:
    with running_server(full_index, free_port(), name="mcp-server", ASSISTANT_AUTH="agent:pa ss") as url:
        yield url


def test_streamable_http_behind_auth_matches_api_ask(served: str) -> None:
    api = httpx.post(f"{served}/api/ask", json={"question": ADAMP_Q}, auth=("agent", "pa ss"), timeout=120).json()

    async def test() -> None:
        async with httpx2.AsyncClient(auth=("agent", "pa ss"), timeout=120) as http:
            async with Client(streamable_http_client(f"{served}/mcp", http_client=http)) as c:
                asked = await round_trip(c)
        assert asked["citations"] == api["citations"] and asked["answer"] == api["answer"]
    run(test)
    for headers in ({}, {"authorization": "Basic YWdlbnQ6d3Jvbmc="}):  # none, agent:wrong
        r = httpx.post(f"{served}/mcp", headers=headers | {"accept": "application/json, text/event-stream"},
                       json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"})
        assert r.status_code == 401

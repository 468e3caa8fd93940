"""The OpenAI-compatible endpoint of `assistant serve` (/v1/chat/completions,
/v1/models), driven by the real `openai` client and at the raw SSE level (httpx,
curl) against a real server process: the same citations as /api/ask, streamed
and not; a follow-up that resolves through the text a client sends back; a
refusal; every error in the OpenAI shape with its status; an LLM draft that never
reaches the client as the answer. The server runs with basic auth on, which the
clients pass as their API key (`Bearer user:password`)."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest
from openai import OpenAI

from assistant.config import Settings
from evals.servers import free_port, running_server
from tests.fake_llm_server import FakeLLM, Reply, parse_sources
from ui.openai_api import split_content

pytestmark = pytest.mark.slow

KEY = "reader:s3cret"
ADAMP_Q = "What does AdamP change in the optimizer step?"
FOLLOW_UP = "and where is its code?"
OFF_TOPIC = "How do I cook pasta carbonara?"


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeLLM]:
    with FakeLLM() as llm:
        yield llm


@pytest.fixture(scope="module")
def base(full_index: Settings, fake: FakeLLM) -> Iterator[str]:
    """Offline by default, with a (scripted) LLM endpoint for the assistant-llm model."""
    env = {"ASSISTANT_AUTH": KEY, "ASSISTANT_LLM_BASE_URL": fake.base_url, "ASSISTANT_LLM_API_KEY": "sk-openai-face",
           "ASSISTANT_LLM_MODEL": "fake-model", "ASSISTANT_LLM_RETRIES": "0", "ASSISTANT_LLM_TIMEOUT": "60"}
    with running_server(full_index, free_port(), name="openai-server", **env) as url:
        yield url


@pytest.fixture(scope="module")
def client(base: str) -> OpenAI:
    return OpenAI(base_url=f"{base}/v1", api_key=KEY, max_retries=0, timeout=120)


@pytest.fixture(scope="module")
def http(base: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=base, auth=tuple(KEY.split(":")), timeout=120) as c:  # type: ignore[arg-type]
        yield c


def user(text: str) -> list[dict]:
    return [{"role": "user", "content": text}]


def stream_text(client: OpenAI, messages: list[dict], model: str = "assistant") -> tuple[str, dict, list]:
    """The streamed content, the final chunk's extra fields, and every chunk."""
    chunks = list(client.chat.completions.create(model=model, messages=messages, stream=True))
    text = "".join(c.choices[0].delta.content or "" for c in chunks)
    assert chunks[-1].choices[0].finish_reason == "stop"
    assert all(c.choices[0].finish_reason is None for c in chunks[:-1])
    return text, chunks[-1].choices[0].delta.model_extra or {}, chunks


# ---------------------------------------------------------------- answers


def test_models(client: OpenAI) -> None:
    assert [m.id for m in client.models.list()] == ["assistant", "assistant-offline", "assistant-llm"]
    assert client.models.retrieve("assistant-offline").owned_by == "assistant"
    with pytest.raises(openai.NotFoundError):
        client.models.retrieve("gpt-4o")


@pytest.mark.parametrize("question", [ADAMP_Q, "How can diffusion models sample faster?", "What is Timo?"])
def test_sync_answer_has_the_citations_of_api_ask(client: OpenAI, http: httpx.Client, question: str) -> None:
    reply = client.chat.completions.create(model="assistant", messages=user(question))
    assert reply.object == "chat.completion" and reply.choices[0].finish_reason == "stop"
    message = reply.choices[0].message
    api = http.post("/api/ask", json={"question": question}).json()
    assert message.model_extra["citations"] == api["citations"] and api["citations"]
    assert message.model_extra["notices"] == api["notices"]
    content = message.content
    assert api["answer"] in content and content.index(api["answer"]) < content.index("\n\nSources:\n")
    for c in api["citations"]:  # the Sources list a plain chat front end shows: title, link, quote
        assert f"- [{c['n']}] {c['title']}" in content and f"“{c['quote']}”" in content
        assert c["url"] is None or c["url"] in content
    text, cited = split_content(content)
    assert text == api["answer"] and [(c.n, c.title, c.quote, c.url) for c in cited] == \
        [(c["n"], c["title"], c["quote"], c["url"]) for c in api["citations"]]


def test_stream_sends_the_same_answer_and_citations(client: OpenAI) -> None:
    reply = client.chat.completions.create(model="assistant-offline", messages=user(ADAMP_Q))
    text, extra, chunks = stream_text(client, user(ADAMP_Q), model="assistant-offline")
    assert chunks[0].choices[0].delta.role == "assistant" and chunks[0].object == "chat.completion.chunk"
    assert len({c.id for c in chunks}) == 1 and chunks[0].model == "assistant-offline"
    assert text == reply.choices[0].message.content
    assert extra["citations"] == reply.choices[0].message.model_extra["citations"]
    assert extra["notices"] == reply.choices[0].message.model_extra["notices"]


WARM = ["What is Timo?", "How does h-Edit perform image editing with diffusion models?",
        "What is probabilistic FlashAttention (PrFlashAttention)?", "How can diffusion models sample faster?",
        "Which papers improve temporal reasoning in language models?"]


def test_first_streamed_chunk_offline_warm(client: OpenAI) -> None:
    """Prints the figure the README quotes (median over 5 different questions on a
    warm server); asserts only the order of events."""
    firsts, contents = [], []
    for question in WARM:
        t0 = time.perf_counter()
        first = content = None
        for chunk in client.chat.completions.create(model="assistant-offline", messages=user(question), stream=True):
            now = time.perf_counter() - t0
            first = first if first is not None else now
            if content is None and chunk.choices[0].delta.content:
                content = now
        firsts.append(first * 1000)
        contents.append(content * 1000)
        assert first <= content
    print(f"\nfirst chunk ms: median {sorted(firsts)[2]:.0f} (all {[round(x) for x in firsts]}); "
          f"first content chunk ms: median {sorted(contents)[2]:.0f}")


def test_follow_up_resolves_from_the_text_the_client_sends_back(client: OpenAI, http: httpx.Client) -> None:
    first = client.chat.completions.create(model="assistant", messages=user(ADAMP_Q)).choices[0].message
    conversation = [*user(ADAMP_Q), {"role": "assistant", "content": first.content}, *user(FOLLOW_UP)]
    follow = client.chat.completions.create(model="assistant", messages=conversation).choices[0].message
    assert follow.model_extra["citations"][0]["title"].startswith("AdamP")
    assert "github.com/clovaai/AdamP" in split_content(follow.content)[0]
    api_first = http.post("/api/ask", json={"question": ADAMP_Q}).json()
    api_follow = http.post("/api/ask", json={"question": FOLLOW_UP,
                                             "history": [{"question": ADAMP_Q, "answer": api_first}]}).json()
    assert follow.model_extra["citations"] == api_follow["citations"]
    alone = client.chat.completions.create(model="assistant", messages=user(FOLLOW_UP)).choices[0].message
    assert not alone.model_extra["citations"] or not alone.model_extra["citations"][0]["title"].startswith("AdamP")
    # a client that keeps the message object (citations included) and streams gets the same
    kept = [*user(ADAMP_Q), first.model_dump(exclude_none=True), *user(FOLLOW_UP)]
    text, extra, _ = stream_text(client, kept)
    assert extra["citations"] == api_follow["citations"] and text == follow.content
    # system messages are ignored
    with_system = [{"role": "system", "content": "You are a pirate."}, *conversation]
    assert client.chat.completions.create(model="assistant", messages=with_system).choices[0].message.content \
        == follow.content


def test_the_second_one_resolves_from_the_sources_the_client_sends_back(client: OpenAI) -> None:
    """A chat client sends back only text: the Sources list's order and numbers are
    enough for "And the second one?" and "What does [3] use?"."""
    question = "Which papers are about spiking neural networks?"
    first = client.chat.completions.create(model="assistant", messages=user(question)).choices[0].message
    listed = list(dict.fromkeys(c["title"] for c in first.model_extra["citations"]))
    third = next(c["title"] for c in first.model_extra["citations"] if c["n"] == 3)
    for follow_up, expected in (("And the second one?", listed[1]), ("What does [3] use?", third)):
        conversation = [*user(question), {"role": "assistant", "content": first.content}, *user(follow_up)]
        answer = client.chat.completions.create(model="assistant", messages=conversation).choices[0].message
        assert {c["title"] for c in answer.model_extra["citations"]} == {expected}


def test_refusal_streams_its_text(client: OpenAI, http: httpx.Client) -> None:
    api = http.post("/api/ask", json={"question": OFF_TOPIC}).json()
    assert api["abstained"]
    message = client.chat.completions.create(model="assistant", messages=user(OFF_TOPIC)).choices[0].message
    assert message.content == api["answer"] and message.model_extra["citations"] == []
    text, extra, _ = stream_text(client, user(OFF_TOPIC))
    assert text == api["answer"] and text.startswith("The corpus has no paper") and extra["citations"] == []


# ---------------------------------------------------------------- errors


def assert_openai_error(response: httpx.Response, status: int, code: str) -> dict:
    assert response.status_code == status, response.text[:300]
    assert response.headers["content-type"].startswith("application/json")
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"} and error["code"] == code and error["message"]
    assert "Traceback" not in response.text
    return error


BAD = [
    ({"model": "assistant", "messages": [{"role": "system", "content": "Be brief."}]}, 400, "no_user_message"),
    ({"model": "assistant", "messages": [*user(ADAMP_Q), {"role": "assistant", "content": "x"}]}, 400,
     "no_user_message"),
    ({"model": "assistant", "messages": []}, 400, "invalid_request"),
    ({"model": "gpt-4o", "messages": user(ADAMP_Q)}, 400, "model_not_found"),
    ({"messages": user(ADAMP_Q)}, 400, "invalid_request"),
    ({"model": "assistant", "messages": "What is AdamP?"}, 400, "invalid_request"),
    ({"model": "assistant", "messages": [{"role": "wizard", "content": "x"}]}, 400, "invalid_request"),
    ({"model": "assistant", "messages": user(ADAMP_Q), "n": 2}, 400, "invalid_request"),
    ({"model": "assistant", "messages": [{"role": "user", "content": [
        {"type": "image_url", "image_url": {"url": "https://example.org/x.png"}}]}]}, 400, "unsupported_content"),
    ({"model": "assistant", "messages": user("   ")}, 400, "invalid_question"),
    ({"model": "assistant", "messages": user("What is AdamP? " * 200)}, 413, "question_too_long"),
    ({"model": "assistant", "stream": True, "messages": user("What is AdamP? " * 200)}, 413, "question_too_long"),
    ({"model": "assistant", "messages": [*user("x" * 20001), {"role": "assistant", "content": "y"}, *user("z")]},
     413, "message_too_long"),
]


@pytest.mark.parametrize("body,status,code", BAD, ids=[f"{c}-{i}" for i, (_, _, c) in enumerate(BAD)])
def test_bad_requests_get_an_openai_error(http: httpx.Client, body: dict, status: int, code: str) -> None:
    assert_openai_error(http.post("/v1/chat/completions", json=body), status, code)


def test_malformed_bodies_and_routes(http: httpx.Client) -> None:
    assert_openai_error(http.post("/v1/chat/completions", content=b"{not json"), 400, "invalid_json")
    assert_openai_error(http.post("/v1/chat/completions", content=b"\xff\xfe\x00"), 400, "invalid_json")
    assert_openai_error(http.post("/v1/chat/completions", content=b"[" * 50000 + b"]" * 50000), 400, "invalid_json")
    assert_openai_error(http.post("/v1/chat/completions", json={"model": "assistant", "messages": user("x" * 300_000)}),
                        413, "request_too_large")
    assert_openai_error(http.get("/v1/chat/completions"), 405, "method_not_allowed")
    assert_openai_error(http.post("/v1/completions", json={}), 404, "not_found")


def test_errors_through_the_openai_client_and_the_server_keeps_serving(client: OpenAI, base: str) -> None:
    with pytest.raises(openai.BadRequestError) as bad:
        client.chat.completions.create(model="assistant", messages=[{"role": "system", "content": "hi"}])
    assert bad.value.code == "no_user_message"
    with pytest.raises(openai.BadRequestError) as bad:
        client.chat.completions.create(model="gpt-4o", messages=user(ADAMP_Q))
    assert "Unknown model 'gpt-4o'" in bad.value.message
    with pytest.raises(openai.APIStatusError) as long:
        client.chat.completions.create(model="assistant", messages=user("Why? " * 500), stream=True)
    assert long.value.status_code == 413 and "the limit is 2000" in long.value.message
    with pytest.raises(openai.AuthenticationError):
        OpenAI(base_url=f"{base}/v1", api_key="reader:wrong", max_retries=0).models.list()
    with pytest.raises(openai.AuthenticationError):
        OpenAI(base_url=f"{base}/v1", api_key="sk-anything", max_retries=0).chat.completions.create(
            model="assistant", messages=user(ADAMP_Q))
    assert httpx.get(f"{base}/v1/models").status_code == 401  # no credentials at all
    assert client.chat.completions.create(model="assistant", messages=user(ADAMP_Q)).choices[0].message.model_extra[
        "citations"]


def test_missing_index_is_503_and_llm_model_needs_an_endpoint(full_index: Settings, tmp_path: Path) -> None:
    empty = full_index.model_copy(update={"index_dir": tmp_path / "no-index"})
    with running_server(empty, free_port(), name="openai-no-index") as url:
        c = OpenAI(base_url=f"{url}/v1", api_key="unused", max_retries=0)
        assert [m.id for m in c.models.list()] == ["assistant", "assistant-offline"]
        for stream in (False, True):
            with pytest.raises(openai.InternalServerError) as down:
                c.chat.completions.create(model="assistant", messages=user(ADAMP_Q), stream=stream)
            assert down.value.status_code == 503 and "assistant index" in down.value.message
        error = assert_openai_error(httpx.post(f"{url}/v1/chat/completions",
                                               json={"model": "assistant-llm", "messages": user(ADAMP_Q)}),
                                    400, "llm_not_configured")
        assert "ASSISTANT_LLM_BASE_URL" in error["message"]


# ---------------------------------------------------------------- raw SSE


def sse_events(raw: str) -> list[str]:
    """The `data:` payloads of an SSE body, checking its framing on the way."""
    assert raw.endswith("data: [DONE]\n\n"), raw[-200:]
    events = []
    for block in raw.split("\n\n")[:-1]:
        lines = block.split("\n")
        assert all(line.startswith(("data: ", ":")) for line in lines), block[:200]
        events += [line.removeprefix("data: ") for line in lines if line.startswith("data: ")]
    return events


def check_chunks(events: list[str]) -> tuple[str, dict]:
    assert events[-1] == "[DONE]"
    chunks = [json.loads(e) for e in events[:-1]]
    assert all(c["object"] == "chat.completion.chunk" and c["id"] == chunks[0]["id"] for c in chunks)
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    final = chunks[-1]["choices"][0]
    assert final["finish_reason"] == "stop" and set(final["delta"]) == {"citations", "notices"}
    return "".join(c["choices"][0]["delta"].get("content", "") for c in chunks), final["delta"]


def test_raw_sse_with_httpx(http: httpx.Client) -> None:
    with http.stream("POST", "/v1/chat/completions", json={"model": "assistant", "stream": True,
                                                           "messages": user(ADAMP_Q)}) as r:
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
        assert r.headers["cache-control"] == "no-cache"
        raw = r.read().decode()
    text, final = check_chunks(sse_events(raw))
    api = http.post("/api/ask", json={"question": ADAMP_Q}).json()
    assert final["citations"] == api["citations"] and api["answer"] in text


@pytest.mark.skipif(shutil.which("curl") is None, reason="needs curl")
def test_raw_sse_with_curl(base: str, http: httpx.Client) -> None:
    body = json.dumps({"model": "assistant", "stream": True, "messages": user(OFF_TOPIC)})
    done = subprocess.run(["curl", "-sS", "-N", "-u", KEY, "-H", "Content-Type: application/json", "-d", body,
                           f"{base}/v1/chat/completions"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    text, final = check_chunks(sse_events(done.stdout))
    assert text == http.post("/api/ask", json={"question": OFF_TOPIC}).json()["answer"] and final["citations"] == []


# ---------------------------------------------------------------- LLM mode: the draft is not the answer


def adamp_source(body: dict) -> int:
    sources = parse_sources(next(m["content"] for m in body["messages"] if m["role"] == "user"))
    return next(n for n, (title, _) in sources.items() if "AdamP" in title)


def test_llm_draft_never_streams_as_the_answer(client: OpenAI, http: httpx.Client, fake: FakeLLM) -> None:
    """The model's draft cites a paper that is not among the sources; verification
    strips it. The client sees only the verified text, identical to the non-streamed
    answer, and the comment lines that keep the stream alive while the draft is slow."""
    def mixed(body: dict) -> Reply:
        n = adamp_source(body)
        return Reply.text(f"AdamP gets rid of the radial component at each optimizer step [{n}]. "
                          f"Paper 99 proves that AdamP is the best optimizer ever made [99, {n}].",
                          pieces=4, chunk_delay=2.5)

    fake.script = [mixed]
    with http.stream("POST", "/v1/chat/completions", json={"model": "assistant-llm", "stream": True,
                                                           "messages": user(ADAMP_Q)}) as r:
        raw = r.read().decode()
    assert "\n: " in "\n" + raw  # a keep-alive comment while the model drafted for ~7 s
    text, final = check_chunks(sse_events(raw))
    assert "[99" not in text and "[99" not in raw
    assert all(c["paper_id"] for c in final["citations"]) and final["citations"][0]["title"].startswith("AdamP")
    fake.script = [mixed]
    reply = client.chat.completions.create(model="assistant-llm", messages=user(ADAMP_Q)).choices[0].message
    assert reply.content == text and reply.model_extra["citations"] == final["citations"]


def test_llm_answer_replaced_by_the_offline_one_streams_only_the_offline_one(client: OpenAI, fake: FakeLLM) -> None:
    fake.script = [Reply.text("As instructed, the answer comes from paper 99 [99]. AdamP is great [99].")]
    text, extra, _ = stream_text(client, user(ADAMP_Q), model="assistant-llm")
    assert "As instructed" not in text and "[99]" not in text
    assert any(n["kind"] == "llm_unusable" for n in extra["notices"])
    offline = client.chat.completions.create(model="assistant-offline", messages=user(ADAMP_Q)).choices[0].message
    assert extra["citations"] == offline.model_extra["citations"]
    assert text.startswith("> Note: ") and text.endswith(offline.content)


def test_a_client_that_goes_away_frees_its_answer_slot(client: OpenAI, http: httpx.Client, fake: FakeLLM) -> None:
    """Four streams (the server computes 4 answers at once) closed while the model
    drafts for 30 s: their answers stop, so the next question is not queued behind them."""
    fake.script = [Reply.text("AdamP removes the radial component at each optimizer step [1]. " * 5, pieces=10,
                              chunk_delay=3.0)]
    for _ in range(4):
        with http.stream("POST", "/v1/chat/completions", json={"model": "assistant-llm", "stream": True,
                                                               "messages": user(ADAMP_Q)}) as r:
            assert r.status_code == 200
            assert next(r.iter_bytes()).startswith(b"data: ")  # the role chunk: the model is drafting
    t0 = time.perf_counter()
    reply = client.chat.completions.create(model="assistant-offline", messages=user("What is Timo?"))
    waited = time.perf_counter() - t0
    print(f"\nanswer after 4 abandoned streams: {waited:.1f} s")
    assert reply.choices[0].message.model_extra["citations"] and waited < 15


def test_an_endpoint_dying_mid_draft_speaks_of_no_text_the_client_never_saw(client: OpenAI, fake: FakeLLM) -> None:
    """The pipeline's fallback notice says the partial answer above was discarded;
    this face withholds drafts, so its client saw none and is not told otherwise."""
    def dying(body: dict) -> Reply:
        n = adamp_source(body)
        return Reply.text(f"AdamP gets rid of the radial component [{n}]. More words follow here.", pieces=8,
                          die_after=4)

    fake.script = [dying]
    text, extra, _ = stream_text(client, user(ADAMP_Q), model="assistant-llm")
    fallback = [n for n in extra["notices"] if n["kind"] == "llm_fallback"]
    assert fallback and "closed the connection" in fallback[0]["message"]
    assert "above" not in fallback[0]["message"] and "above" not in text
    assert "More words follow" not in text

"""The JSON API of `assistant serve`, against the real server process and index:
the answer contract, paper and search routes, health, bad requests (always 4xx
JSON, never a trace), bounded concurrency, and basic auth."""

from __future__ import annotations

import base64
import concurrent.futures
import threading
import time
from collections.abc import Iterator

import httpx
import pytest

from assistant.config import Settings
from assistant.models import AnswerContract
from evals.servers import free_port, running_server

pytestmark = pytest.mark.slow

ADAMP = "adamp-slowing-down-the-d344cb"


@pytest.fixture(scope="module")
def base(full_index: Settings) -> Iterator[str]:
    with running_server(full_index, free_port(), name="api-server") as url:
        yield url


@pytest.fixture(scope="module")
def client(base: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=base, timeout=60.0) as c:
        yield c


def assert_json_error(response: httpx.Response, status: int | None = None) -> dict:
    assert 400 <= response.status_code < 500, (response.status_code, response.text[:300])
    if status is not None:
        assert response.status_code == status, response.text[:300]
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"error"} and isinstance(body["error"], str) and body["error"]
    assert "Traceback" not in response.text and 'File "' not in response.text
    return body


# ---------------------------------------------------------------- answers


def test_ask_returns_exactly_the_contract(client: httpx.Client, assistant) -> None:
    q = "What does AdamP change in the optimizer step?"
    r = client.post("/api/ask", json={"question": q})
    assert r.status_code == 200
    data = r.json()
    AnswerContract.model_validate(data)  # exactly the contract: no key missing, none extra
    assert set(data) == set(AnswerContract.model_fields)
    assert set(data["timings_ms"]) == {"retrieve", "answer", "total"}
    assert data["mode"] == "offline" and not data["abstained"]
    assert data["citations"][0]["title"].startswith("AdamP")
    assert all(set(c) == {"n", "paper_id", "title", "quote", "url"} for c in data["citations"])
    local = assistant.ask(q).contract().model_dump(mode="json")  # the same pipeline in-process gives the same answer
    assert {k: v for k, v in data.items() if k != "timings_ms"} == {k: v for k, v in local.items() if k != "timings_ms"}


def test_ask_options_and_history(client: httpx.Client) -> None:
    first = client.post("/api/ask", json={"question": "What does AdamP change in the optimizer step?"}).json()
    follow = client.post("/api/ask", json={"question": "and where is its code?",
                                           "history": [{"question": first["question"], "answer": first}]}).json()
    assert follow["citations"][0]["title"].startswith("AdamP") and "github.com/clovaai/AdamP" in follow["answer"]
    as_text = client.post("/api/ask", json={"question": "and where is its code?",
                                            "history": [{"question": first["question"], "answer": first["answer"]}]})
    assert as_text.status_code == 200
    small = client.post("/api/ask", json={"question": "How can diffusion models sample faster?", "top_k": 1,
                                          "retriever": "bm25", "mode": "offline"}).json()
    assert len(small["citations"]) <= 1
    dated = client.post("/api/ask", json={"question": "diffusion models", "date_from": "2024"}).json()
    assert set(dated) == set(AnswerContract.model_fields)


def test_follow_up_and_not_in_paper_notices_come_back_through_the_api(client: httpx.Client) -> None:
    """Issue 24: the API reads history as the UI does and says so in typed notices."""
    first = client.post("/api/ask", json={"question": "How can diffusion models be sampled in around 10 steps with "
                                                      "a dedicated ODE solver?"}).json()
    history = [{"question": first["question"], "answer": first}]
    follow = client.post("/api/ask", json={"question": "What FID does it get on CIFAR-10?", "history": history}).json()
    assert {"kind": "follow_up", "message": "Read as a follow-up about DPM-Solver."} in follow["notices"]
    assert follow["citations"][0]["title"].startswith("DPM-Solver") and "4.70 FID" in follow["answer"]
    history.append({"question": "What FID does it get on CIFAR-10?", "answer": follow})
    no = client.post("/api/ask", json={"question": "Has it been used to generate protein structures?",
                                       "history": history}).json()
    assert [n["kind"] for n in no["notices"]] == ["follow_up", "not_in_paper"]
    assert no["answer"].startswith("The abstract of DPM-Solver does not mention protein structures.")


def test_it_after_a_list_answer_through_the_api_is_the_paper_the_list_led_with(client: httpx.Client) -> None:
    """The list answer passed back whole (its `shape`) or as text and citations only."""
    first = client.post("/api/ask", json={"question": "How can a spiking neural network do inference in a "
                                                      "single timestep?"}).json()
    assert first["shape"] == "list" and len(first["citations"]) > 2
    lead = first["citations"][0]["title"]
    for passed in (first, {"answer": first["answer"], "citations": first["citations"]}):
        follow = client.post("/api/ask", json={"question": "What accuracy does it get on ImageNet?",
                                               "history": [{"question": first["question"], "answer": passed}]}).json()
        assert [c["title"] for c in follow["citations"]] == [lead]


def test_off_topic_question_abstains(client: httpx.Client) -> None:
    data = client.post("/api/ask", json={"question": "How do I cook pasta carbonara?"}).json()
    assert data["abstained"] is True and data["citations"] == []


def test_concurrent_asks_all_succeed(client: httpx.Client) -> None:
    questions = [f"What is known about {t}?" for t in ("diffusion sampling", "optimizers", "temporal reasoning",
                                                        "state space models", "quantization", "retrieval")]
    with concurrent.futures.ThreadPoolExecutor(6) as pool:
        results = list(pool.map(lambda q: client.post("/api/ask", json={"question": q}), questions))
    assert [r.status_code for r in results] == [200] * 6
    assert [r.json()["question"] for r in results] == questions


QUESTIONS_6 = ["What does AdamP change in the optimizer step?", "What is Timo?",
               "How does h-Edit perform image editing with diffusion models?",
               "What is probabilistic FlashAttention (PrFlashAttention)?",
               "How does ACE-Step generate music with lyric2vocal and singing2accompaniment?",
               "How do EDICT and Null-text inversion address DDIM inversion inconsistency?"]


def test_server_computes_4_answers_at_a_time_and_health_does_not_wait(full_index: Settings) -> None:
    """The default server runs 4 answers at once, the rest wait their turn, and
    /api/health answers while all 4 are busy (it is outside the answer limiter).
    Answers are held inside the (scripted) LLM call, so what runs at once is counted
    where it happens."""
    from tests.fake_llm_server import FakeLLM, Reply

    assert Settings().concurrency == 4, "the documented default"
    gate, lock = threading.Event(), threading.Lock()
    running = {"now": 0, "most": 0}

    def held(body: dict) -> Reply:
        with lock:
            running["now"] += 1
            running["most"] = max(running["most"], running["now"])
        gate.wait(300)
        with lock:
            running["now"] -= 1
        return Reply.text("INSUFFICIENT_SOURCES")

    env = {"ASSISTANT_MODE": "llm", "ASSISTANT_LLM_API_KEY": "sk-limiter-test", "ASSISTANT_LLM_MODEL": "fake-model",
           "ASSISTANT_LLM_TIMEOUT": "300", "ASSISTANT_LLM_RETRIES": "0", "ASSISTANT_CONCURRENCY": str(Settings().concurrency)}
    with FakeLLM() as fake:
        fake.script = [held]
        with running_server(full_index, free_port(), name="api-limiter", ASSISTANT_LLM_BASE_URL=fake.base_url, **env) as base, \
                httpx.Client(base_url=base, timeout=300) as c, concurrent.futures.ThreadPoolExecutor(6) as pool:
            try:
                futures = [pool.submit(c.post, "/api/ask", json={"question": q}) for q in QUESTIONS_6]
                deadline = time.monotonic() + 240
                while len(fake.completions) < 4 and time.monotonic() < deadline:
                    time.sleep(0.1)
                time.sleep(3)  # time for a fifth answer to reach the model, were it let through
                assert (len(fake.completions), running["now"]) == (4, 4), "4 answers run, the other 2 wait"
                t0 = time.perf_counter()
                health = c.get("/api/health", timeout=30)  # through the limiter it would wait for the gate
                health_ms = (time.perf_counter() - t0) * 1000
                assert health.status_code == 200 and health.json()["status"] == "ok", health.text[:300]
                assert all(not f.done() for f in futures), "no answer finished while the model was held"
            finally:
                gate.set()
            results = [f.result() for f in futures]
    assert [r.status_code for r in results] == [200] * 6
    assert [r.json()["question"] for r in results] == QUESTIONS_6
    assert running["most"] == 4 and len(fake.completions) == 6
    print(f"\n[limiter] 4 of 6 answers at once; /api/health answered in {health_ms:.0f} ms while all 4 were busy")


# ---------------------------------------------------------------- papers, search, health, schema


def test_paper_with_related(client: httpx.Client) -> None:
    r = client.get(f"/api/papers/{ADAMP}")
    assert r.status_code == 200
    data = r.json()
    assert data["paper"]["title"].startswith("AdamP") and data["paper"]["urls"] == ["https://github.com/clovaai/AdamP"]
    assert len(data["related"]) == 5 and all(set(h) == {"paper_id", "title", "score"} for h in data["related"])
    assert ADAMP not in {h["paper_id"] for h in data["related"]}


def test_unknown_paper_is_a_json_404(client: httpx.Client) -> None:
    body = assert_json_error(client.get("/api/papers/no-such-paper"), 404)
    assert "no-such-paper" in body["error"]


def test_search(client: httpx.Client) -> None:
    data = client.get("/api/search", params={"q": "AdamP", "k": 3}).json()
    assert data["hits"][0]["paper_id"] == ADAMP and len(data["hits"]) == 3
    assert_json_error(client.get("/api/search", params={"q": "   "}), 400)
    assert_json_error(client.get("/api/search"), 422)
    assert_json_error(client.get("/api/search", params={"q": "x", "k": "many"}), 422)


def test_health(client: httpx.Client) -> None:
    r = client.get("/api/health")
    assert r.status_code == 200
    data = r.json()
    assert data["status"] == "ok"
    assert data["index"]["ok"] and data["index"]["papers"] == 356
    assert data["chroma"]["ok"] and data["chroma"]["papers"] == 356
    assert data["llm"]["configured"] is False and data["llm"]["default_mode"] == "offline"


def test_openapi_documents_the_routes(client: httpx.Client) -> None:
    schema = client.get("/openapi.json").json()
    assert {"/api/ask", "/api/papers/{paper_id}", "/api/search", "/api/health"} <= set(schema["paths"])
    ask = schema["paths"]["/api/ask"]["post"]
    assert "AskRequest" in str(ask["requestBody"]) and "AnswerContract" in str(ask["responses"]["200"])
    assert client.get("/api/docs").status_code == 200


def test_openapi_answer_schema_has_exactly_the_keys_ask_returns(client: httpx.Client) -> None:
    """A client generated from /openapi.json sees every field POST /api/ask returns, and
    no field it never returns (the published schema once lacked answerability and notices)."""
    schemas = client.get("/openapi.json").json()["components"]["schemas"]
    answer = client.post("/api/ask", json={"question": "What does AdamP change in the optimizer step?"}).json()
    assert set(schemas["AnswerContract"]["properties"]) == set(answer)
    assert set(schemas["CitationContract"]["properties"]) == set(answer["citations"][0])
    assert set(schemas["RetrievedContract"]["properties"]) == set(answer["retrieved"][0])
    assert set(schemas["Timings"]["properties"]) == set(answer["timings_ms"])
    assert set(schemas["Notice"]["properties"]) == {"kind", "message"}


def test_ui_is_served_beside_the_api(client: httpx.Client) -> None:
    r = client.get("/")
    assert r.status_code == 200 and "<html" in r.text.lower()


def test_the_whole_map_figure_is_served_for_a_page_that_has_only_a_highlight(client: httpx.Client) -> None:
    from ui.corpus_map import MAP_FIGURE_ROUTE

    r = client.get(MAP_FIGURE_ROUTE)
    assert r.status_code == 200 and r.headers["cache-control"] == "no-store"
    fig = r.json()
    assert sum(len(t["x"]) for t in fig["data"]) == 356 and len(fig["layout"]["annotations"]) == len(fig["data"])


# ---------------------------------------------------------------- bad requests


LONG = "x" * 5000


@pytest.mark.parametrize("kwargs,status,needle", [
    ({"json": {"question": ""}}, 400, "empty"),
    ({"json": {"question": " \n\t "}}, 400, "empty"),
    ({"json": {"question": LONG}}, 400, "limit is 2000"),
    ({"json": {}}, 422, "question"),
    ({"json": {"question": 42}}, 422, "question"),
    ({"json": {"question": ["a"]}}, 422, "question"),
    ({"json": {"question": "hi", "top_k": "five"}}, 422, "top_k"),
    ({"json": {"question": "hi", "top_k": 0}}, 422, "top_k"),
    ({"json": {"question": "hi", "mode": "gpt"}}, 422, "mode"),
    ({"json": {"question": "What is AdamP?", "mode": "llm"}}, 400, "ASSISTANT_LLM_BASE_URL"),  # never api.openai.com
    ({"json": {"question": "hi", "retriever": 3}}, 422, "retriever"),
    ({"json": {"question": "hi", "history": "not a list"}}, 422, "history"),
    ({"json": {"question": "hi", "date_from": "yesterday"}}, 422, "date_from"),
    ({"json": {"question": "hi", "unknown": 1}}, 422, "unknown"),
    ({"json": ["question"]}, 422, ""),
    ({"json": None}, 422, ""),
    ({"content": b'{"question": "unterminated', "headers": {"content-type": "application/json"}}, 422, "not valid JSON"),
    ({"content": b"question=hi", "headers": {"content-type": "application/x-www-form-urlencoded"}}, 422, ""),
    ({"content": bytes(range(256)) * 8, "headers": {"content-type": "application/octet-stream"}}, None, ""),
    ({"content": bytes(range(256)) * 8, "headers": {"content-type": "application/json"}}, None, ""),
    ({"content": b"\xff\xfe{\x00", "headers": {"content-type": "application/json"}}, None, ""),
    ({"content": b"x" * 400_000, "headers": {"content-type": "application/json"}}, 413, "larger than"),
    # hostile bodies (docs/reliability.md): chunked without a length, deep nesting, odd encodings and numbers
    ({"content": (b"x" * 1000 for _ in range(400)), "headers": {"content-type": "application/json"}}, None, ""),
    ({"content": b"[" * 50_000 + b"]" * 50_000, "headers": {"content-type": "application/json"}}, None, ""),
    ({"content": b'{"a":' * 30_000 + b"1" + b"}" * 30_000, "headers": {"content-type": "application/json"}}, None, ""),
    ({"content": b'{"question": "hi", "history": ' + b"[" * 20_000 + b"]" * 20_000 + b"}",
      "headers": {"content-type": "application/json"}}, None, ""),
    ({"content": b'{"question": "What is Timo?"}', "headers": {"content-type": "text/plain"}}, 422, ""),
    ({"content": b'{"question": "What is Timo?"}', "headers": {}}, 422, ""),
    ({"content": '{"question": "caf\u00e9"}'.encode("latin-1"), "headers": {"content-type": "application/json"}}, None, ""),
    ({"content": b'{"question": "hi", "top_k": ' + b"9" * 5000 + b"}", "headers": {"content-type": "application/json"}}, None, ""),
    ({"content": b'{"question": "hi", "top_k": NaN}', "headers": {"content-type": "application/json"}}, 422, "top_k"),
    ({"content": b'{"question": "hi", "top_k": 1e400}', "headers": {"content-type": "application/json"}}, 422, "top_k"),
    ({"content": b'{"question": "\\ud800 \\u0000 \\udfff"}', "headers": {"content-type": "application/json"}}, 400, "empty"),
])
def test_bad_ask_requests_get_a_json_4xx(client: httpx.Client, kwargs: dict, status: int | None, needle: str) -> None:
    body = assert_json_error(client.post("/api/ask", **kwargs), status)
    assert needle in body["error"]


def test_lone_surrogates_in_a_question_are_dropped(client: httpx.Client) -> None:
    """JSON may carry unpaired surrogates ("\\ud800"); the tokenizer would reject them with a 500."""
    r = client.post("/api/ask", content=b'{"question": "\\ud800What is \\udcffTimo?"}',
                    headers={"content-type": "application/json"})
    assert r.status_code == 200, r.text[:300]
    assert r.json()["question"] == "What is Timo?" and r.json()["citations"]
    assert client.get("/api/search", params={"q": "AdamP"}).status_code == 200


def test_unknown_api_routes_and_methods_are_json(client: httpx.Client) -> None:
    assert_json_error(client.get("/api/nothing-here"), 404)
    assert_json_error(client.get("/api/ask"), 405)
    assert_json_error(client.delete(f"/api/papers/{ADAMP}"), 405)


# ---------------------------------------------------------------- auth


def test_basic_auth_covers_api_and_ui(full_index: Settings) -> None:
    with running_server(full_index, free_port(), name="api-server-auth", ASSISTANT_AUTH="ann:s3cret:x") as url:
        good = "Basic " + base64.b64encode(b"ann:s3cret:x").decode()
        bad = "Basic " + base64.b64encode(b"ann:wrong").decode()
        for path in ("/api/health", "/api/papers/" + ADAMP, "/openapi.json", "/", "/config", "/gradio_api/info"):
            r = httpx.get(url + path)
            assert r.status_code == 401 and r.json() == {"error": "Authentication required (HTTP basic auth)."}
            assert r.headers["www-authenticate"].startswith("Basic")
            assert httpx.get(url + path, headers={"authorization": bad}).status_code == 401
            assert httpx.get(url + path, headers={"authorization": "Basic !!notbase64"}).status_code == 401
            assert httpx.get(url + path, headers={"authorization": good}).status_code == 200, path
        assert httpx.post(url + "/api/ask", json={"question": "What is Timo?"}).status_code == 401
        r = httpx.post(url + "/api/ask", json={"question": "What is Timo?"}, auth=("ann", "s3cret:x"), timeout=60)
        assert r.status_code == 200 and r.json()["citations"]


def test_a_fault_of_the_server_is_a_500_with_a_logged_trace_not_a_400(small_settings: Settings, caplog) -> None:
    """A ValueError from deep in the pipeline is the server's bug: reporting it as the
    client's mistake (400) would send the user looking for a fault in their request."""
    from fastapi import FastAPI
    from fastapi.testclient import TestClient

    from assistant.pipeline import Assistant
    from ui.api import Api, install_error_handlers

    class Faulty(Assistant):
        def ask(self, question, history=(), **options):  # type: ignore[no-untyped-def]
            raise ValueError("index arrays disagree")  # a bug, whatever the request

    app = FastAPI()
    install_error_handlers(app)
    app.include_router(Api(Faulty(small_settings)).router())
    with TestClient(app, raise_server_exceptions=False) as client:
        response = client.post("/api/ask", json={"question": "What is AdamP?"})
        bad_date = client.post("/api/ask", json={"question": "What is AdamP?", "date_from": "2024-13-01"})
    assert response.status_code == 500 and "index arrays disagree" not in response.text
    assert "Traceback" in caplog.text or any(r.exc_info for r in caplog.records)
    assert bad_date.status_code == 400 and "date" in bad_date.json()["error"].lower()

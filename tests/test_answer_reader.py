"""The one event reader (`pipeline.AnswerReader`) and the OpenAI face's text round
trip (`render` / `split_content`), without an index or a model."""

from __future__ import annotations

import pytest

from assistant.models import Answer, Citation, Notice
from assistant.pipeline import AnswerReader, Event, read_answer
from ui.openai_api import ChatMessage, conversation, render, split_content

CAUTION = Notice(kind="caution", message="Low confidence: these are the closest papers.")
FALLBACK = Notice(kind="llm_unusable", message="The LLM's answer carried no citation; showing the offline answer.")


def answer(text: str, citations: list[Citation], notices: list[Notice] | None = None) -> Answer:
    return Answer(question="q", answer=text, abstained=not citations, citations=citations, retrieved=[],
                  mode="offline", timings_ms={}, notices=list(notices or []))


CITED = [Citation(n=1, paper_id="a", title="AdamP: Slowing Down the Slowdown", quote="We propose “AdamP”: a remedy.",
                  url="https://github.com/clovaai/AdamP"),
         Citation(n=2, paper_id="b", title="Mamba — linear-time sequences", quote="It scales linearly.", url=None)]


def test_reader_keeps_only_the_text_after_the_last_reset() -> None:
    final = answer("Verified [1].", CITED[:1], [FALLBACK])
    events = [Event("token", "Draft "), Event("token", "[99]."), Event("notice", FALLBACK.message, notice=FALLBACK),
              Event("reset"), Event("token", "Verified [1]."), Event("answer", answer=final)]
    reader = AnswerReader()
    for event in events:
        reader.read(event)
    assert (reader.text, reader.draft, reader.notices, reader.answer) == ("Verified [1].", "Draft [99].", [FALLBACK],
                                                                          final)
    assert read_answer(iter(events)) is final
    offline = AnswerReader()
    for event in (Event("reset"), Event("token", "Offline [1]."), Event("answer", answer=final)):
        offline.read(event)
    assert (offline.text, offline.draft) == ("Offline [1].", "")
    with pytest.raises(RuntimeError):
        read_answer([Event("token", "no answer")])


@pytest.mark.parametrize("notices", [[], [CAUTION], [CAUTION, FALLBACK]])
def test_content_round_trip(notices: list[Notice]) -> None:
    text = "AdamP removes the radial component [1].\n\nMamba scales linearly [2]."
    content = render(answer(text, CITED, notices))
    assert content.count("> Note: ") == len(notices) and "\n\nSources:\n- [1] AdamP" in content
    back, cited = split_content(content)
    assert back == text
    assert [(c.n, c.title, c.quote, c.url) for c in cited] == [(c.n, c.title, c.quote, c.url) for c in CITED]
    refusal = "The corpus has no paper that answers this question."
    assert split_content(render(answer(refusal, [], notices))) == (refusal, [])


def test_conversation_pairs_turns() -> None:
    content = render(answer("AdamP removes the radial component [1].", CITED[:1]))
    messages = [ChatMessage(role="system", content="Be brief."), ChatMessage(role="user", content="What is AdamP?"),
                ChatMessage(role="assistant", content=content), ChatMessage(role="tool", content="ignored"),
                ChatMessage(role="user", content=[{"type": "text", "text": "and its code?"}])]
    question, history = conversation(messages)
    assert question == "and its code?" and [h.question for h in history] == ["What is AdamP?"]
    previous = history[0].answer
    assert previous.answer == "AdamP removes the radial component [1]." and not previous.abstained
    assert [c.title for c in previous.citations] == [CITED[0].title]

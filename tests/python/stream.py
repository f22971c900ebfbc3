"""A streamed answer read two ways: the raw events of messages.create(stream=True), in order,
and messages.stream(...) with its text_stream and get_final_message(). If the stream fails,
the events received before the failure are reported with the SDK's exception.
"""

import os

import anthropic

from sy import MODEL, client, dump, emit, error

PROMPT = os.environ.get("SCENARIO_PROMPT", "Tell me about streams")
sdk = client()
events = []
try:
    with sdk.messages.create(
        model=MODEL, max_tokens=256, stream=True,
        messages=[{"role": "user", "content": PROMPT}],
    ) as raw:
        for event in raw:
            events.append({"type": event.type, "index": getattr(event, "index", None)})
    with sdk.messages.stream(
        model=MODEL, max_tokens=256,
        messages=[{"role": "user", "content": PROMPT}],
    ) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    emit({"events": events, "text": text, "final": dump(final)})
except anthropic.APIError as e:
    emit({"events": events, "error": error(e)})

"""responses.stream(): the SDK's helper assembles the response from the events; its final
response, the event types in order, and the text the deltas carried.

SCENARIO_PROMPT: the user text (default "Hello").
"""

import os

import openai

from oai import MODEL, client, dump, emit, error

try:
    types = []
    deltas = []
    with client().responses.stream(
        model=MODEL, input=os.environ.get("SCENARIO_PROMPT", "Hello")
    ) as stream:
        for event in stream:
            types.append(event.type)
            if event.type == "response.output_text.delta":
                deltas.append(event.delta)
        final = stream.get_final_response()
    emit({"response": dump(final), "types": types, "deltas": "".join(deltas)})
except (openai.APIError, RuntimeError, AssertionError) as e:
    emit({"error": error(e)})

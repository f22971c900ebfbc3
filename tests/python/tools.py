"""A tool-use round trip: the model calls get_weather, the client answers with a tool_result,
the model reads it. SCENARIO_STREAM=1 uses messages.stream(...).get_final_message() for both turns.
"""

import os

from sy import MODEL, WEATHER_TOOL, client, dump, emit

sdk = client()
streamed = os.environ.get("SCENARIO_STREAM") == "1"


def ask(messages):
    params = dict(model=MODEL, max_tokens=512, tools=[WEATHER_TOOL], messages=messages)
    if streamed:
        with sdk.messages.stream(**params) as stream:
            return stream.get_final_message()
    return sdk.messages.create(**params)


question = {"role": "user", "content": "What's the weather in Paris?"}
first = ask([question])
calls = [block for block in first.content if block.type == "tool_use"]
if not calls:
    raise SystemExit("no tool_use block in the first answer: %r" % dump(first))
results = [
    {"type": "tool_result", "tool_use_id": call.id, "content": "Sunny, 21 degrees in %s" % call.input.get("city")}
    for call in calls
]
second = ask([
    question,
    {"role": "assistant", "content": [block.model_dump(exclude_none=True) for block in first.content]},
    {"role": "user", "content": results},
])
emit({"first": dump(first), "second": dump(second)})

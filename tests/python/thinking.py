"""A multi-turn conversation with extended thinking and tools: turn 1 answers with a signed
thinking block and a tool call; turn 2 replays turn 1's content unmodified (thinking block and
signature included) with the tool result, which the upstream accepts only if the signature
still verifies.

SCENARIO_STREAM=1 streams both turns (messages.stream + get_final_message).
SWITCHYARD_MODEL_TURN2: the model of turn 2 (default: the same), to replay across providers.
"""

import os

import anthropic

from sy import MODEL, WEATHER_TOOL, client, dump, emit, error

sdk = client()
streamed = os.environ.get("SCENARIO_STREAM") == "1"
THINKING = {"type": "enabled", "budget_tokens": 2048}


def ask(model, messages):
    params = dict(model=model, max_tokens=4096, thinking=THINKING, tools=[WEATHER_TOOL], messages=messages)
    if streamed:
        with sdk.messages.stream(**params) as stream:
            return stream.get_final_message()
    return sdk.messages.create(**params)


question = {"role": "user", "content": "Think first: what's the weather in Paris?"}
first = ask(MODEL, [question])
calls = [block for block in first.content if block.type == "tool_use"]
if not calls:
    raise SystemExit("no tool_use block in the first answer: %r" % dump(first))
replayed = [block.model_dump(exclude_none=True) for block in first.content]
turn2 = [
    question,
    {"role": "assistant", "content": replayed},
    {"role": "user", "content": [
        {"type": "tool_result", "tool_use_id": call.id, "content": "Rain, 12 degrees"} for call in calls
    ]},
]
try:
    second = ask(os.environ.get("SWITCHYARD_MODEL_TURN2", MODEL), turn2)
    emit({"first": dump(first), "replayed": replayed, "second": dump(second)})
except anthropic.APIError as e:
    emit({"first": dump(first), "replayed": replayed, "error": error(e)})

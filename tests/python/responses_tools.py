"""A function-call round trip: the model calls get_weather (streamed through the SDK's helper,
which parses the strict tool's arguments), the result goes back as a function_call_output,
and the model's answer to it.
"""

import json

import openai

from oai import MODEL, WEATHER_TOOL, client, dump, emit, error

try:
    sdk = client()
    question = [{"role": "user", "content": "What is the weather in Paris?"}]
    with sdk.responses.stream(model=MODEL, input=question, tools=[WEATHER_TOOL]) as stream:
        for _ in stream:
            pass
        first = stream.get_final_response()
    calls = [item for item in first.output if item.type == "function_call"]
    call = calls[0]
    args = json.loads(call.arguments)
    second = sdk.responses.create(
        model=MODEL,
        tools=[WEATHER_TOOL],
        input=question
        + [
            {"type": "function_call", "call_id": call.call_id, "name": call.name,
             "arguments": call.arguments},
            {"type": "function_call_output", "call_id": call.call_id, "output": "18C and sunny"},
        ],
    )
    emit({"first": dump(first), "arguments": args, "second": dump(second)})
except (openai.APIError, RuntimeError, AssertionError, IndexError) as e:
    emit({"error": error(e)})

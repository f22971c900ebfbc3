"""The simulators' Responses API read by the official OpenAI SDK with nothing in between
(tests/tests/responses_sim.rs): responses.create, responses.stream(...) with
get_final_response(), a function-call round trip through function_call_output, json_schema
structured output through responses.parse (plain and streamed), reasoning with a summary
and encrypted content replayed into the next turn, and the SDK's exception for
previous_response_id (the simulators keep no state).

Environment (set by tests/src/python.rs):
  SWITCHYARD_BASE_URL  the simulator's OpenAI base URL (ending in /v1)
  SWITCHYARD_KEY       the key, sent as Authorization: Bearer
  SWITCHYARD_MODEL     the model (the deployment on the Azure simulator)
"""

import json
import os
import sys

import openai
from pydantic import BaseModel

MODEL = os.environ["SWITCHYARD_MODEL"]
sdk = openai.OpenAI(
    base_url=os.environ["SWITCHYARD_BASE_URL"],
    api_key=os.environ["SWITCHYARD_KEY"],
    max_retries=0,
    timeout=20.0,
)

WEATHER_TOOL = {
    "type": "function",
    "name": "get_weather",
    "description": "The current weather in a city.",
    "strict": True,
    "parameters": {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
        "additionalProperties": False,
    },
}


class Weather(BaseModel):
    city: str
    temp: float


def dump(model):
    return model.model_dump(mode="json", exclude_none=False)


result = {}

plain = sdk.responses.create(model=MODEL, input="Hello there", store=False)
result["plain"] = {
    "id": plain.id,
    "status": plain.status,
    "output_text": plain.output_text,
    "usage": dump(plain.usage),
}

events = []
with sdk.responses.stream(model=MODEL, input="Stream please", store=False) as stream:
    for event in stream:
        events.append({"type": event.type, "seq": event.sequence_number})
    final = stream.get_final_response()
result["stream"] = {
    "events": events,
    "id": final.id,
    "status": final.status,
    "output_text": final.output_text,
    "usage": dump(final.usage),
}

question = [{"role": "user", "content": "What is the weather in Paris?"}]
with sdk.responses.stream(model=MODEL, input=question, tools=[WEATHER_TOOL], store=False) as stream:
    asked = stream.get_final_response()
call = next(item for item in asked.output if item.type == "function_call")
answered = sdk.responses.create(
    model=MODEL,
    tools=[WEATHER_TOOL],
    store=False,
    input=question
    + [
        {"type": "function_call", "call_id": call.call_id, "name": call.name, "arguments": call.arguments},
        {"type": "function_call_output", "call_id": call.call_id, "output": "18C and sunny"},
    ],
)
result["tools"] = {
    "name": call.name,
    "call_id": call.call_id,
    "arguments": json.loads(call.arguments),
    "parsed_arguments": call.parsed_arguments,
    "answer": answered.output_text,
}

parsed = sdk.responses.parse(model=MODEL, input="Weather as JSON", text_format=Weather, store=False)
with sdk.responses.stream(model=MODEL, input="Weather as JSON", text_format=Weather, store=False) as stream:
    parsed_stream = stream.get_final_response()
result["parsed"] = dump(parsed.output_parsed)
result["parsed_stream"] = dump(parsed_stream.output_parsed)

with sdk.responses.stream(
    model=MODEL,
    input="Think first",
    reasoning={"effort": "low", "summary": "auto"},
    include=["reasoning.encrypted_content"],
    store=False,
) as stream:
    reasoning_events = [event.type for event in stream]
    thought = stream.get_final_response()
reasoning = thought.output[0]
replayed = sdk.responses.create(
    model=MODEL,
    store=False,
    input=[
        {"role": "user", "content": "Think first"},
        {
            "type": "reasoning",
            "id": reasoning.id,
            "summary": [{"type": "summary_text", "text": part.text} for part in reasoning.summary],
            "encrypted_content": reasoning.encrypted_content,
        },
        {"role": "assistant", "content": thought.output_text},
        {"role": "user", "content": "And now?"},
    ],
)
result["reasoning"] = {
    "events": reasoning_events,
    "type": reasoning.type,
    "summary": [part.text for part in reasoning.summary],
    "encrypted_content": reasoning.encrypted_content,
    "reasoning_tokens": thought.usage.output_tokens_details.reasoning_tokens,
    "output_tokens": thought.usage.output_tokens,
    "replayed_status": replayed.status,
}

try:
    sdk.responses.create(model=MODEL, input="Continue", previous_response_id=plain.id)
    result["previous"] = {"exception": None}
except openai.APIStatusError as e:
    body = e.body if isinstance(e.body, dict) else {}
    result["previous"] = {"exception": type(e).__name__, "status": e.status_code, "code": body.get("code")}

# The API stores responses unless told otherwise: the test checks the simulator counted this one.
sdk.responses.create(model=MODEL, input="Store me")

sys.stdout.write(json.dumps(result) + "\n")

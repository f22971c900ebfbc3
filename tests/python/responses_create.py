"""responses.create, not streamed: the response (or the SDK exception) and Switchyard's headers.

SCENARIO_PROMPT: the user text (default "Hello").
SCENARIO_STORE: "false" sends store=False.
SCENARIO_PREVIOUS: a previous_response_id.
"""

import os

import openai

from oai import MODEL, client, dump, emit, error

kwargs = {}
if os.environ.get("SCENARIO_STORE") == "false":
    kwargs["store"] = False
if os.environ.get("SCENARIO_PREVIOUS"):
    kwargs["previous_response_id"] = os.environ["SCENARIO_PREVIOUS"]

try:
    raw = client().responses.with_raw_response.create(
        model=MODEL,
        input=os.environ.get("SCENARIO_PROMPT", "Hello"),
        instructions="Answer briefly.",
        **kwargs,
    )
    emit({"response": dump(raw.parse()), "provider": raw.headers.get("x-switchyard-provider")})
except openai.APIError as e:
    emit({"error": error(e)})

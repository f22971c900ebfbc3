"""messages.create, not streamed: the answer (or the SDK exception) and Switchyard's headers.

SCENARIO_PROMPT: the user text (default "Hello").
"""

import os

import anthropic

from sy import MODEL, client, dump, emit, error

try:
    raw = client().messages.with_raw_response.create(
        model=MODEL,
        max_tokens=256,
        messages=[{"role": "user", "content": os.environ.get("SCENARIO_PROMPT", "Hello")}],
    )
    emit({
        "message": dump(raw.parse()),
        "provider": raw.headers.get("x-switchyard-provider"),
        "attempts": raw.headers.get("x-switchyard-attempts"),
    })
except anthropic.APIError as e:
    emit({"error": error(e)})

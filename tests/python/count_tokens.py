"""client.messages.count_tokens: the count and whether Switchyard marked it an estimate."""

import anthropic

from sy import MODEL, WEATHER_TOOL, client, emit, error

try:
    raw = client().messages.with_raw_response.count_tokens(
        model=MODEL,
        system="You are terse.",
        tools=[WEATHER_TOOL],
        messages=[{"role": "user", "content": "How many tokens is this question?"}],
    )
    emit({
        "input_tokens": raw.parse().input_tokens,
        "estimated": raw.headers.get("x-switchyard-estimated"),
    })
except anthropic.APIError as e:
    emit({"error": error(e)})

"""Prompt caching: a tool, a system block (both with the 1-hour ttl, which must come first)
and the last user block (5 minutes) marked with cache_control, sent twice. The test compares what reached the upstream and the
usage of both answers (the first writes the cache, the second reads it).
"""

from sy import MODEL, WEATHER_TOOL, client, dump, emit

sdk = client()
long_rules = "You are a meticulous assistant. " * 80
params = dict(
    model=MODEL,
    max_tokens=256,
    system=[
        {"type": "text", "text": long_rules, "cache_control": {"type": "ephemeral", "ttl": "1h"}},
        {"type": "text", "text": "Answer briefly."},
    ],
    tools=[dict(WEATHER_TOOL, cache_control={"type": "ephemeral", "ttl": "1h"})],
    tool_choice={"type": "none"},
    messages=[{"role": "user", "content": [
        {"type": "text", "text": "Summarise the rules.", "cache_control": {"type": "ephemeral"}},
    ]}],
)
first = sdk.messages.create(**params)
second = sdk.messages.create(**params)
emit({"first": dump(first), "second": dump(second)})

"""text.format json_schema through responses.create: the response and its echoed format."""

import openai

from oai import MODEL, client, dump, emit, error

SCHEMA = {
    "type": "object",
    "properties": {"city": {"type": "string"}},
    "required": ["city"],
    "additionalProperties": False,
}

try:
    response = client().responses.create(
        model=MODEL,
        input="Name a city.",
        text={"format": {"type": "json_schema", "name": "place", "schema": SCHEMA, "strict": True}},
    )
    emit({"response": dump(response)})
except openai.APIError as e:
    emit({"error": error(e)})

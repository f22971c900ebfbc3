"""Stored responses through the SDK: retrieve, input_items.list and delete of SCENARIO_ID.

SCENARIO_ACTION: retrieve | input_items | delete.
"""

import os

import openai

from oai import client, dump, emit, error

response_id = os.environ["SCENARIO_ID"]
action = os.environ.get("SCENARIO_ACTION", "retrieve")
try:
    sdk = client()
    if action == "retrieve":
        emit({"response": dump(sdk.responses.retrieve(response_id))})
    elif action == "input_items":
        page = sdk.responses.input_items.list(response_id, order="asc")
        emit({"items": [dump(item) for item in page.data]})
    else:
        sdk.responses.delete(response_id)
        emit({"deleted": True})
except openai.APIError as e:
    emit({"error": error(e)})

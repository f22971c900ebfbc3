"""What every OpenAI SDK scenario shares (the Responses API tests, tests/tests/responses_sdk.rs):
the client the Rust test configures through the environment, and the one JSON result line.

Environment (set by tests/src/python.rs):
  SWITCHYARD_BASE_URL  the proxy's OpenAI base URL, e.g. http://127.0.0.1:PORT/v1
  SWITCHYARD_KEY       the team key
  SWITCHYARD_MODEL     the model name clients send
"""

import json
import os
import sys

import openai

MODEL = os.environ.get("SWITCHYARD_MODEL", "chat")

WEATHER_TOOL = {
    "type": "function",
    "name": "get_weather",
    "description": "The current weather in a city.",
    "parameters": {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
        "additionalProperties": False,
    },
    "strict": True,
}


def client():
    """An SDK client on the proxy. No SDK retries: failover must be the proxy's, invisible here."""
    return openai.OpenAI(
        base_url=os.environ["SWITCHYARD_BASE_URL"],
        api_key=os.environ["SWITCHYARD_KEY"],
        max_retries=0,
        timeout=20.0,
    )


def dump(model):
    """An SDK model as plain JSON, with the SDK's computed `output_text` when it has one."""
    value = model.model_dump(mode="json", exclude_none=False)
    text = getattr(model, "output_text", None)
    if text is not None:
        value["sdk_output_text"] = text
    return value


def error(e):
    """An SDK exception as what the test asserts on."""
    body = getattr(e, "body", None)
    return {
        "exception": type(e).__name__,
        "status": getattr(e, "status_code", None),
        "code": getattr(e, "code", None),
        "param": getattr(e, "param", None),
        "message": str(e),
        "body": body if isinstance(body, (dict, list, str)) else None,
    }


def emit(result):
    """The scenario's single result line on stdout."""
    sys.stdout.write(json.dumps(result) + "\n")
    sys.stdout.flush()

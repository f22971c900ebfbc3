"""What every scenario shares: the client the Rust test configures through the environment,
and the one JSON line a scenario prints for the test to assert on.

Environment (set by tests/src/python.rs):
  SWITCHYARD_BASE_URL  the proxy's root, e.g. http://127.0.0.1:PORT (the SDK appends /v1/messages)
  SWITCHYARD_KEY       the team key
  SWITCHYARD_AUTH      `api_key` (sent as x-api-key) or `auth_token` (Authorization: Bearer,
                       what Claude Code's ANTHROPIC_AUTH_TOKEN sends)
  SWITCHYARD_MODEL     the model name clients send
"""

import json
import os
import sys
import warnings

import anthropic

# The SDK warns about dated model ids it knows to be retired; the proxy's names are its own.
warnings.filterwarnings("ignore", category=DeprecationWarning)

MODEL = os.environ.get("SWITCHYARD_MODEL", "claude")


def client(**extra):
    """An SDK client on the proxy. No SDK retries: failover must be the proxy's, invisible here."""
    key = os.environ["SWITCHYARD_KEY"]
    auth = os.environ.get("SWITCHYARD_AUTH", "api_key")
    kwargs = dict(base_url=os.environ["SWITCHYARD_BASE_URL"], max_retries=0, timeout=20.0, **extra)
    if auth == "api_key":
        return anthropic.Anthropic(api_key=key, **kwargs)
    if auth == "auth_token":
        return anthropic.Anthropic(api_key=None, auth_token=key, **kwargs)
    raise SystemExit("SWITCHYARD_AUTH must be api_key or auth_token, not %r" % auth)


def dump(message):
    """A Message (or any SDK model) as plain JSON."""
    return message.model_dump(mode="json", exclude_none=False)


def error(e):
    """An SDK exception as what the test asserts on: its class, status and Anthropic error."""
    body = getattr(e, "body", None)
    inner = body.get("error", {}) if isinstance(body, dict) else {}
    return {
        "exception": type(e).__name__,
        "is_api_status_error": isinstance(e, anthropic.APIStatusError),
        "status": getattr(e, "status_code", None),
        "body_type": body.get("type") if isinstance(body, dict) else None,
        "error_type": inner.get("type"),
        "message": inner.get("message"),
        "request_id": getattr(e, "request_id", None),
    }


def emit(result):
    """The scenario's single result line on stdout."""
    sys.stdout.write(json.dumps(result) + "\n")
    sys.stdout.flush()


WEATHER_TOOL = {
    "name": "get_weather",
    "description": "The current weather in a city.",
    "input_schema": {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
    },
}

"""client.models.list() and client.models.retrieve(): the models the team may use, in
Anthropic's shape (the SDK sends anthropic-version, which selects it)."""

import anthropic

from sy import MODEL, client, emit, error

sdk = client()
try:
    listed = [m.model_dump(mode="json") for m in sdk.models.list()]
    one = sdk.models.retrieve(MODEL).model_dump(mode="json")
    emit({"models": listed, "retrieved": one})
except anthropic.APIError as e:
    emit({"error": error(e)})

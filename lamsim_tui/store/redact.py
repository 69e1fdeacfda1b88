"""Keep secrets out of stores and exports.

A value is replaced by `[redacted]` when its key names a secret (`api_key`, `authorization`, `token`,
`password`, ...), when it looks like a provider key (`sk-...`, `hf_...`, `Bearer ...`), or when it
contains the value of an environment variable whose name says it is secret (`*_API_KEY`, `*_TOKEN`).
Token *counts* (`prompt_tokens`, `max_tokens`) are not secrets and are kept. Names under
`properties` (a tool's parameters), `arguments` (a call's arguments) and `slots` are sandbox data,
not settings: a tool may well take a `password`; only values that look like real keys are redacted there.
"""

from __future__ import annotations

import os
import re
from typing import Any

REDACTED = "[redacted]"

_SECRET_KEY = re.compile(
    r"^(?:.*[_\-.])?(?:api[_\-]?key|apikey|authorization|auth|secret|client[_\-]?secret|password|passwd|"
    r"token|access[_\-]?token|refresh[_\-]?token|id[_\-]?token|bearer|credentials?|private[_\-]?key|cookie)$",
    re.IGNORECASE,
)
_SECRET_ENV = re.compile(r"(KEY|TOKEN|SECRET|PASSWORD|PASSWD|CREDENTIAL)", re.IGNORECASE)
_SECRET_VALUE = re.compile(
    r"(?:\bsk-[A-Za-z0-9_\-]{16,}|\bhf_[A-Za-z0-9]{20,}|\bgh[pousr]_[A-Za-z0-9]{20,}|\bxox[abpr]-[A-Za-z0-9\-]{10,}"
    r"|\bAKIA[0-9A-Z]{16}\b|\bBearer\s+[A-Za-z0-9_\-.=+/]{16,})"
)


def is_secret_key(key: str) -> bool:
    return bool(_SECRET_KEY.match(key))


def environment_secrets() -> list[str]:
    """Values of environment variables named like secrets (long enough not to match by chance)."""
    values = {v for k, v in os.environ.items() if _SECRET_ENV.search(k) and len(v) >= 8}
    return sorted(values, key=len, reverse=True)


def redact_text(text: str, env_secrets: list[str] | None = None) -> str:
    for secret in env_secrets if env_secrets is not None else environment_secrets():
        if secret in text:
            text = text.replace(secret, REDACTED)
    return _SECRET_VALUE.sub(REDACTED, text)


def redact(value: Any, env_secrets: list[str] | None = None) -> Any:
    """A copy of `value` (plain JSON data) with secrets replaced."""
    env = environment_secrets() if env_secrets is None else env_secrets
    return _redact(value, env)


_DATA_KEYS = frozenset({"properties", "arguments", "slots"})


def _redact(value: Any, env: list[str], by_key: bool = True) -> Any:
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            if by_key and isinstance(key, str) and is_secret_key(key) and item not in (None, "", [], {}):
                out[key] = REDACTED
            elif key in _DATA_KEYS and isinstance(item, dict):
                out[key] = {k: _redact(v, env) for k, v in item.items()}
            else:
                out[key] = _redact(item, env)
        return out
    if isinstance(value, list):
        return [_redact(item, env, by_key) for item in value]
    if isinstance(value, str):
        return redact_text(value, env)
    return value

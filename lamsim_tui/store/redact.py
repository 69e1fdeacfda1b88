"""Keep secrets out of stores and exports.

A value is replaced by `[redacted]` when its key names a secret (`api_key`, `authorization`, `token`,
`password`, ...), when it looks like a provider key (OpenAI/Anthropic `sk-...`, Stripe `sk_live_...`,
Hugging Face, GitHub, GitLab `glpat-...`, Slack, Google `AIza...`, AWS key ids, JWTs, `Bearer`/`Basic`
credentials, PEM private keys), when it is assigned in text (`password=...`,
`aws_secret_access_key=...`), a URL's password (`https://user:pass@host`), or when it contains the
value of an environment variable whose name says it is secret (`*_API_KEY`, `*_TOKEN`) or that the
session names as its `api_key_env`, whatever that name is.
Token *counts* (`prompt_tokens`, `max_tokens`) are not secrets and are kept. Names under
`properties` (a tool's parameters), `arguments` (a call's arguments) and `slots` are sandbox data,
not settings: a tool may well take a `password`; only values that look like real keys are redacted there.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from typing import Any

REDACTED = "[redacted]"

_SECRET_KEY = re.compile(
    r"^(?:.*[_\-.])?(?:api[_\-]?key|apikey|authorization|auth|secret|client[_\-]?secret|password|passwd|"
    r"token|access[_\-]?token|refresh[_\-]?token|id[_\-]?token|bearer|credentials?|private[_\-]?key|cookie)$",
    re.IGNORECASE,
)
_SECRET_ENV = re.compile(r"(KEY|TOKEN|SECRET|PASSWORD|PASSWD|CREDENTIAL)", re.IGNORECASE)
_SECRET_VALUE = re.compile(
    r"(?:\bsk-[A-Za-z0-9_\-]{16,}"  # OpenAI, Anthropic (sk-ant-...)
    r"|\b(?:sk|rk)_(?:live|test)_[A-Za-z0-9]{10,}|\bwhsec_[A-Za-z0-9]{16,}"  # Stripe
    r"|\bhf_[A-Za-z0-9]{20,}|\bgh[pousr]_[A-Za-z0-9]{20,}|\bgithub_pat_[A-Za-z0-9_]{20,}"  # Hugging Face, GitHub
    r"|\bglpat-[A-Za-z0-9_\-]{20,}"  # GitLab
    r"|\bxox[abpr]-[A-Za-z0-9\-]{10,}"  # Slack
    r"|\bAIza[0-9A-Za-z_\-]{35}"  # Google
    r"|\b(?:AKIA|ASIA)[0-9A-Z]{16}\b"  # AWS access key ids
    r"|\beyJ[A-Za-z0-9_\-]{8,}\.eyJ[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{8,}"  # JSON web tokens
    r"|\b(?:Bearer|Basic)\s+[A-Za-z0-9_\-.=+/]{16,})"
)
#: A PEM private key, whole (or cut off before its END line).
_PRIVATE_KEY = re.compile(r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY-----.*?(?:-----END (?:[A-Z0-9]+ )*PRIVATE KEY-----|\Z)",
                          re.DOTALL)
#: `password=...`, `aws_secret_access_key = ...` and the like, in text: the value goes.
_SECRET_ASSIGNMENT = re.compile(
    r"(?i)(\b(?:aws_secret_access_key|aws_session_token|aws_secret|password|passwd|pwd|secret|api[_\-]?key|"
    r"access[_\-]?token|client[_\-]?secret|auth[_\-]?token)\s*=\s*)(\"[^\"]*\"|'[^']*'|[^\s&,;\"']+)")
#: `scheme://user:password@host`: the password goes.
_URL_PASSWORD = re.compile(r"(\b[A-Za-z][A-Za-z0-9+.\-]*://[^/\s:@]+:)([^/\s@]+)(@)")


def is_secret_key(key: str) -> bool:
    return bool(_SECRET_KEY.match(key))


def environment_secrets(names: Iterable[str] = ()) -> list[str]:
    """Values of environment variables named like secrets (long enough not to match by chance),
    and of the variables in ``names`` whatever they are called (a session's `api_key_env`)."""
    values = {v for k, v in os.environ.items() if _SECRET_ENV.search(k) and len(v) >= 8}
    values.update(os.environ[n] for n in names if n in os.environ and len(os.environ[n]) >= NAMED_SECRET_CHARS)
    return sorted(values, key=len, reverse=True)


#: The shortest value of a variable a session names as its key that is still redacted everywhere.
NAMED_SECRET_CHARS = 6


def named_key_variables(record: Any) -> list[str]:
    """The environment variables a record's session names as API keys (`agent.models[].api_key_env`)."""
    try:
        models = record["session"]["settings"]["agent"]["models"]
    except (KeyError, TypeError):
        return []
    if not isinstance(models, list):
        return []
    return [m["api_key_env"] for m in models if isinstance(m, dict) and isinstance(m.get("api_key_env"), str)]


def redact_text(text: str, env_secrets: list[str] | None = None) -> str:
    for secret in env_secrets if env_secrets is not None else environment_secrets():
        if secret in text:
            text = text.replace(secret, REDACTED)
    if "PRIVATE KEY-----" in text:
        text = _PRIVATE_KEY.sub(REDACTED, text)
    text = _SECRET_VALUE.sub(REDACTED, text)
    if "=" in text:
        text = _SECRET_ASSIGNMENT.sub(lambda m: m.group(1) + REDACTED, text)
    if "@" in text:
        text = _URL_PASSWORD.sub(lambda m: m.group(1) + REDACTED + m.group(3), text)
    return text


def redact(value: Any, env_secrets: list[str] | None = None) -> Any:
    """A copy of `value` (plain JSON data) with secrets replaced."""
    env = environment_secrets() if env_secrets is None else env_secrets
    return _redact(value, _Redactor(env))


_CACHES: dict[tuple[str, ...], dict[str, str]] = {}  # per set of secrets: text -> redacted text
_CACHE_MAX = 20_000
_CACHE_TEXT_MAX = 20_000


class _Redactor:
    """`redact_text` for one set of secrets, remembering texts seen before: the tool schemas and the
    system prompt of a session are the same in every record, and the patterns cost more than a lookup."""

    __slots__ = ("env", "cache")

    def __init__(self, env: list[str]):
        self.env = env
        key = tuple(env)
        cache = _CACHES.get(key)
        if cache is None:
            if len(_CACHES) >= 4:
                _CACHES.clear()
            cache = _CACHES[key] = {}
        self.cache = cache

    def __call__(self, text: str) -> str:
        cached = self.cache.get(text)
        if cached is not None:
            return cached
        clean = redact_text(text, self.env)
        if len(text) <= _CACHE_TEXT_MAX:
            if len(self.cache) >= _CACHE_MAX:
                self.cache.clear()
            self.cache[text] = clean
        return clean


_DATA_KEYS = frozenset({"properties", "arguments", "slots"})


def _redact(value: Any, env: _Redactor, by_key: bool = True) -> Any:
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
        return env(value)
    return value

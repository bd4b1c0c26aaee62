"""The deployment's HMAC key for API keys, from Secrets Manager (cached per container)."""

from __future__ import annotations

from typing import Any


class SecretsManagerKeyring:
    def __init__(self, client: Any, secret_arn: str) -> None:
        self.client = client
        self.secret_arn = secret_arn
        self._key: bytes | None = None

    def hmac_key(self) -> bytes:
        if self._key is None:
            value = self.client.get_secret_value(SecretId=self.secret_arn)["SecretString"]
            self._key = value.encode()
        return self._key

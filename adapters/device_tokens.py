"""Device tokens as `<device id>.<HMAC-SHA256 of the account and the id>`, keyed by the service's
signing secret: stateless, so every worker and host verifies them, and bound to one account.
A login that presents its account's token counts its failures against that device only
(adapters.throttle), so failures from elsewhere cannot lock the device out (OWASP's "device
cookies"). They do not expire: a device is forgotten when the secret changes."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

MAX_TOKEN = 128  # characters: ours are 67


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


class HmacDeviceTokens:
    def __init__(self, secret: str) -> None:
        self._key = hashlib.sha256(b"user-service device tokens\0" + secret.encode()).digest()

    def issue(self, account: str) -> str:
        device = _b64(secrets.token_bytes(16))
        return f"{device}.{self._mac(account, device)}"

    def device_of(self, token: str, account: str) -> str | None:
        if len(token) > MAX_TOKEN:
            return None
        device, _, mac = token.partition(".")
        if not device or not hmac.compare_digest(mac.encode(), self._mac(account, device).encode()):
            return None
        return device

    def _mac(self, account: str, device: str) -> str:
        return _b64(hmac.new(self._key, f"{account}\0{device}".encode(), hashlib.sha256).digest())

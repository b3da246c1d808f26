"""Which token an application uses: a settings section, and the factory that opens it.

The section has no PIN field, and rejects one: the PIN comes from :func:`xroad_mn.tokens.pin.read_pin`.

    >>> from pathlib import Path
    >>> open_token(TokenSettings(), default_directory=Path("/var/lib/xroad-mn/token"))
    SoftwareToken('/var/lib/xroad-mn/token')
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import model_validator

from xroad_mn.settings import SettingsModel
from xroad_mn.tokens.base import Token
from xroad_mn.tokens.hsm import Pkcs11Token
from xroad_mn.tokens.software import SoftwareToken

__all__ = ["TokenSettings", "open_token"]


class TokenSettings(SettingsModel):
    """``type = "software"`` (default: ``directory``, else the application's own) or ``"pkcs11"``."""

    type: Literal["software", "pkcs11"] = "software"
    directory: Path | None = None
    """Software token directory."""
    module: Path | None = None
    """PKCS#11 module, e.g. ``/usr/lib/softhsm/libsofthsm2.so``."""
    label: str | None = None
    """PKCS#11 token label."""

    @model_validator(mode="after")
    def _complete(self) -> TokenSettings:
        if self.type == "pkcs11" and (self.module is None or not self.label):
            raise ValueError("a pkcs11 token needs `module` and `label`")
        return self


def open_token(settings: TokenSettings, *, default_directory: Path) -> Token:
    """The token ``settings`` names, logged out; nothing is read until it is used."""
    if settings.type == "pkcs11":
        assert settings.module is not None  # checked by the model
        assert settings.label is not None
        return Pkcs11Token(settings.module, settings.label)
    return SoftwareToken(settings.directory or default_directory)

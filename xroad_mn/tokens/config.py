"""Which token an application uses: a settings section, the factory that opens it, and its login.

The section has no PIN field, and rejects one: the PIN comes from :func:`xroad_mn.tokens.pin.read_pin`,
which :func:`login_with_pin` asks when no PIN is given.

    >>> from pathlib import Path
    >>> open_token(TokenSettings(), default_directory=Path("/var/lib/xroad-mn/token"))
    SoftwareToken('/var/lib/xroad-mn/token')
    >>> token = login_with_pin(open_token(settings.token, default_directory=home / "token"))  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from pydantic import Field, model_validator

from xroad_mn.errors import FaultCode, XRoadError
from xroad_mn.settings import SettingsModel
from xroad_mn.tokens.base import Token, TokenState, TokenType
from xroad_mn.tokens.hsm import Pkcs11Token
from xroad_mn.tokens.pin import read_pin
from xroad_mn.tokens.software import SoftwareToken

__all__ = ["TokenSettings", "login_with_pin", "open_token"]


class TokenSettings(SettingsModel):
    """The ``[token]`` section of an application's settings: where its keys live.

    ``type = "software"`` keeps keys PIN-encrypted in ``directory`` (default: the application's own token
    directory); ``"pkcs11"`` uses the token ``label`` of the PKCS #11 ``module``. There is no PIN here, by
    design: the PIN is entered when the token is logged in and is never stored, so a ``pin`` key is refused.
    """

    type: TokenType = TokenType.SOFTWARE
    directory: Path | None = None
    """Software only: the token directory."""
    module: Path | None = None
    """PKCS #11 only (and then required): the module, e.g. ``/usr/lib/softhsm/libsofthsm2.so``."""
    label: str | None = Field(default=None, min_length=1, max_length=32)
    """PKCS #11 only (and then required): the token's label (at most 32 characters, as PKCS #11 allows)."""

    @model_validator(mode="after")
    def _complete(self) -> TokenSettings:
        if self.type is TokenType.PKCS11:
            if self.module is None or not self.label:
                raise ValueError("a pkcs11 token needs `module` and `label`")
        elif self.module is not None or self.label is not None:
            raise ValueError("`module` and `label` are for pkcs11 tokens only")
        return self


def open_token(settings: TokenSettings, *, default_directory: Path) -> Token:
    """The token ``settings`` names, logged out; nothing is read until it is used."""
    if settings.type is TokenType.PKCS11:
        if settings.module is None or settings.label is None:  # the model refuses this; mypy cannot know
            raise XRoadError(FaultCode.INVALID_SETTINGS, "a pkcs11 token needs `module` and `label`")
        return Pkcs11Token(settings.module, settings.label)
    return SoftwareToken(settings.directory or default_directory)


def login_with_pin(token: Token, pin: str | None = None, *, env: Mapping[str, str] | None = None) -> Token:
    """Log ``token`` in unless it already is, with ``pin``, else the PIN of :func:`~xroad_mn.tokens.read_pin`
    (``XROAD_MN_TOKEN_PIN`` in ``env``, by default the process environment, or a prompt on a terminal), and
    return it ready to sign.

    Failures are the signer's, for the caller to show as they are: ``signer.pin_incorrect`` for a wrong
    PIN, ``signer.token_not_initialized`` for a token never set up, ``signer.login_failed`` when no PIN can
    be had. Blocks (key derivation from the PIN, the HSM): async code calls it through
    ``asyncio.to_thread``.
    """
    if token.info().state is not TokenState.LOGGED_IN:
        token.login(pin if pin is not None else read_pin(env))
    return token

"""Logging a token in with the PIN a person gives: the registry and the node start the same way.

>>> import tempfile
>>> from pathlib import Path
>>> from xroad_mn.tokens import SoftwareToken, TokenState
>>> token = SoftwareToken(Path(tempfile.mkdtemp()) / "token")
>>> token.initialize("1234")
>>> login_with_pin(token, env={"XROAD_MN_TOKEN_PIN": "1234"}).info().state is TokenState.LOGGED_IN
True
"""

from __future__ import annotations

from collections.abc import Mapping

from xroad_mn.tokens.base import Token, TokenState
from xroad_mn.tokens.pin import read_pin

__all__ = ["login_with_pin"]


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

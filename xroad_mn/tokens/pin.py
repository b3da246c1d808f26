"""The token PIN: from ``XROAD_MN_TOKEN_PIN`` or asked on the terminal, never from a settings file.

>>> read_pin({"XROAD_MN_TOKEN_PIN": "1234"})
'1234'
>>> read_new_pin({"XROAD_MN_TOKEN_PIN": "1234"})  # a new token's PIN: asked twice on a terminal
'1234'
"""

from __future__ import annotations

import getpass
import os
import sys
from collections.abc import Callable, Mapping
from typing import Final

from xroad_mn.errors import FaultCode
from xroad_mn.tokens.base import signer_error

__all__ = ["PIN_ENV", "read_new_pin", "read_pin"]

PIN_ENV: Final = "XROAD_MN_TOKEN_PIN"


def read_pin(
    env: Mapping[str, str] | None = None,
    *,
    prompt: str = "Token PIN: ",
    ask: Callable[[str], str] | None = None,
    interactive: bool | None = None,
) -> str:
    """The PIN from ``env`` (the process environment by default), else asked with ``ask`` (``getpass``).

    ``interactive`` defaults to whether standard input is a terminal; without a PIN in the environment and
    without a terminal, ``signer.login_failed`` says how to give one.
    """
    source = os.environ if env is None else env
    pin = source.get(PIN_ENV)
    if pin:
        return pin
    if interactive is None:
        interactive = sys.stdin is not None and sys.stdin.isatty()
    if not interactive:
        raise signer_error(
            FaultCode.LOGIN_FAILED, f"no token PIN: set {PIN_ENV} or run on a terminal to be asked for it"
        )
    answer = (ask or getpass.getpass)(prompt)
    if not answer:
        raise signer_error(FaultCode.LOGIN_FAILED, "no token PIN was entered")
    return answer


def read_new_pin(
    env: Mapping[str, str] | None = None,
    *,
    ask: Callable[[str], str] | None = None,
    interactive: bool | None = None,
) -> str:
    """The PIN of a new token: ``XROAD_MN_TOKEN_PIN``, else asked twice on a terminal (they must match,
    ``signer.token_pin_policy_failure`` else)."""
    source = os.environ if env is None else env
    if source.get(PIN_ENV):
        return source[PIN_ENV]
    if interactive is None:
        interactive = sys.stdin is not None and sys.stdin.isatty()
    pin = read_pin({}, prompt="New token PIN: ", ask=ask, interactive=interactive)
    again = read_pin({}, prompt="Repeat the token PIN: ", ask=ask, interactive=interactive)
    if pin != again:
        raise signer_error(FaultCode.TOKEN_PIN_POLICY_FAILURE, "the two PINs entered differ")
    return pin

"""The token PIN: from ``XROAD_MN_TOKEN_PIN`` or asked on the terminal, never from a settings file.

>>> read_pin({"XROAD_MN_TOKEN_PIN": "1234"})
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

__all__ = ["PIN_ENV", "read_pin"]

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

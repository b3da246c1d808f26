"""Archive encryption with GnuPG (X-Road 7's ``archive-encryption-enabled``), through the ``gpg`` binary.

An archive is signed with the GnuPG home's own key pair (the node's) and encrypted to the keys of the
member its group belongs to, else to the default key (``archive_default_encryption_key``, else the home's
own key, as X-Road falls back to the server's key pair). The result is an OpenPGP message; the file's name
gains ``.gpg``. Decrypt with ``gpg --decrypt FILE.zip.gpg --output FILE.zip`` and the member's secret key.

Example::

    >>> recipients = archive_recipients(settings, MemberId("MN", "GOV", "5012345"))  # doctest: +SKIP
    >>> await encrypt_archive(zip_bytes, out_path, gpg_home=settings.gpg_home(), recipients=recipients)
    ... # doctest: +SKIP
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from pathlib import Path
from typing import Final

from security_server.settings import NodeSettings
from xroad_mn.errors import FaultCode, XRoadError
from xroad_mn.identifiers import MemberId, parse_client_header

__all__ = [
    "ENCRYPTED_SUFFIX",
    "GPG_BINARY",
    "GPG_TIMEOUT_SECONDS",
    "archive_recipients",
    "encrypt_archive",
    "run_command",
]

ENCRYPTED_SUFFIX: Final = ".gpg"
GPG_BINARY: Final = "gpg"
GPG_TIMEOUT_SECONDS: Final = 600.0
"""Longest one archive's encryption may take (an archive is at most ``archive_max_filesize``)."""
MAX_DIAGNOSTIC_CHARS: Final = 2000
"""How much of gpg's standard error an error message quotes."""


def archive_recipients(settings: NodeSettings, member: MemberId | None) -> tuple[str, ...]:
    """The keys an archive of ``member`` (``None``: no grouping) is encrypted to: the member's keys from
    ``archive_encryption_keys``, else ``archive_default_encryption_key``; empty means the GnuPG home's own
    key."""
    if member is not None:
        for name, keys in settings.archive_encryption_keys.items():
            if parse_client_header(name, strict=False) == member:  # checked by the settings, in their mode
                return tuple(keys)
    default = settings.archive_default_encryption_key
    return (default,) if default is not None else ()


def _command(gpg_home: Path, recipients: Sequence[str], output: Path) -> list[str]:
    targets = [f"--recipient={key}" for key in recipients] or ["--default-recipient-self"]
    return [
        GPG_BINARY,
        f"--homedir={gpg_home}",
        "--batch",
        "--no-tty",
        "--quiet",
        "--yes",
        "--trust-model=always",
        "--sign",
        "--encrypt",
        *targets,
        f"--output={output}",
    ]


async def run_command(argv: Sequence[str], *, stdin: bytes | None, seconds: float) -> tuple[int, str]:
    """Run ``argv`` (no shell) feeding it ``stdin``; its exit status and the end of its standard error.
    The process is killed when ``seconds`` pass (``TimeoutError``) or the caller is cancelled; ``OSError``
    when it cannot start."""
    process = await asyncio.create_subprocess_exec(
        *argv,
        stdin=asyncio.subprocess.PIPE if stdin is not None else asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        async with asyncio.timeout(seconds):
            _, stderr = await process.communicate(stdin)
    finally:
        if process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            await process.wait()
    status = process.returncode
    assert status is not None
    return status, stderr.decode("utf-8", "replace").strip()[-MAX_DIAGNOSTIC_CHARS:]


async def encrypt_archive(data: bytes, output: Path, *, gpg_home: Path, recipients: Sequence[str]) -> None:
    """Sign ``data`` with the home's key and encrypt it to ``recipients`` (empty: the home's own key) into
    ``output``. ``internal_error`` naming gpg's complaint when gpg is missing or fails (a key not in the
    keyring, no secret key to sign with)."""
    try:
        status, reason = await run_command(
            _command(gpg_home, recipients, output), stdin=data, seconds=GPG_TIMEOUT_SECONDS
        )
    except OSError as e:
        raise XRoadError(FaultCode.INTERNAL_ERROR, f"cannot run {GPG_BINARY}: {e.strerror or e}") from e
    except TimeoutError as e:
        raise XRoadError(
            FaultCode.INTERNAL_ERROR, f"{GPG_BINARY} did not encrypt the archive in {GPG_TIMEOUT_SECONDS} s"
        ) from e
    if status != 0:
        raise XRoadError(
            FaultCode.INTERNAL_ERROR,
            f"{GPG_BINARY} could not encrypt the archive (exit status {status}): {reason}",
        )

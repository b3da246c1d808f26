"""The node's data subject key: the message log indexes a data subject as HMAC-SHA256 under this secret.

The index column (``message_records.subject_hash``) never holds a registration number in clear, and without
the key its hashes cannot be tested against guessed registration numbers (there are few enough to try them
all against a plain hash). The key is :data:`SUBJECT_KEY_BYTES` random bytes in
``HOME/messagelog-subject.key`` (mode 0600), made the first time a node needs it; losing it makes the
existing index unsearchable (the bodies still hold the subjects).

Example::

    >>> key = SubjectKey(bytes(32))
    >>> key.hash(" УБ99112233") == key.hash("УБ99112233")
    True
    >>> len(key.hash("УБ99112233"))
    64
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import os
import secrets
from pathlib import Path
from typing import Final

from xroad_mn.errors import FaultCode, XRoadError
from xroad_mn.fileio import write_private
from xroad_mn.wire.subject import normalise_data_subject

__all__ = ["SUBJECT_KEY_BYTES", "SUBJECT_KEY_FILE", "SubjectKey"]

SUBJECT_KEY_FILE: Final = "messagelog-subject.key"
SUBJECT_KEY_BYTES: Final = 32


class SubjectKey:
    """The keyed hash of data subjects."""

    def __init__(self, secret: bytes) -> None:
        if len(secret) != SUBJECT_KEY_BYTES:
            raise XRoadError(
                FaultCode.INVALID_SETTINGS,
                f"a data subject key has {SUBJECT_KEY_BYTES} bytes, not {len(secret)}",
            )
        self._secret = secret

    def __repr__(self) -> str:
        return "SubjectKey(...)"

    def hash(self, subject: str) -> str:
        """Hex HMAC-SHA256 of ``subject`` (normalised as the wire reads it: NFC, stripped)."""
        data = normalise_data_subject(subject).encode("utf-8")
        return hmac.new(self._secret, data, hashlib.sha256).hexdigest()

    @classmethod
    def open(cls, home: Path) -> SubjectKey:
        """The key of the node in ``home``, made (once, whichever process of the node comes first) when it
        does not exist. ``io_error`` when it cannot be read or written, ``invalid_settings`` when the file
        is not a key."""
        path = home / SUBJECT_KEY_FILE
        if not path.exists():
            _create(path)
        try:
            return cls(path.read_bytes())
        except OSError as e:
            raise XRoadError(FaultCode.IO_ERROR, f"cannot read {path}: {e.strerror or e}") from e


def _create(path: Path) -> None:
    """Write a new key beside ``path`` and link it into place: an existing key (made meanwhile by another
    process) is never replaced, and a crash leaves no partial key."""
    fresh = path.with_name(f".{path.name}.{secrets.token_hex(6)}.new")
    write_private(fresh, secrets.token_bytes(SUBJECT_KEY_BYTES))
    try:
        os.link(fresh, path)
    except FileExistsError:
        pass
    except OSError as e:
        raise XRoadError(FaultCode.IO_ERROR, f"cannot create {path}: {e.strerror or e}") from e
    finally:
        with contextlib.suppress(OSError):
            fresh.unlink()

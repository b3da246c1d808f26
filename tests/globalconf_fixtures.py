"""One table of INDEX.md verdicts for the anchor and global configuration fixtures of the interop corpus.

The module tests (``test_globalconf_anchor``, ``test_globalconf_directory``, ``test_globalconf_trust``) and
the command-line tests (``test_globalconf_cli``) both read these tables, so the library and the CLI are held
to the same verdict for every file.

    >>> from tests.globalconf_fixtures import SIGNED_CASES
    >>> [c.id for c in SIGNED_CASES if c.path.endswith("V6/internalconf")]
    ['V6-internalconf', 'V6-internalconf-expired']
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Final

from cryptography import x509

from xroad_mn.errors import FaultCode
from xroad_mn.globalconf.anchor import build_anchor

# -- anchors/ -----------------------------------------------------------------------------------------------

VALID_ANCHORS: Final = (
    "asic-verifier-configuration-anchor1.xml",
    "confclient-configuration-anchor1.xml",
    "confproxy-PROXY1-anchor.xml",
    "cs-core-trusted-anchor.xml",
    "cs-int-external-configuration-anchor.xml",
    "cs-int-internal-configuration-anchor.xml",
    "cs-int-trusted-anchor-2.xml",
    "cs-int-trusted-anchor.xml",
    "cs-ui-trusted-anchor-CS2-E2E.xml",
    "globalconf-core-configuration-anchor1.xml",
    "globalconf-core-configuration-anchor2.xml",
    "ss-admin-internal-configuration-anchor.xml",
    "system-test-configuration_anchor_CS_internal.xml",
)
INVALID_ANCHORS: Final = {
    "cs-int-trusted-anchor-invalid-1.xml": FaultCode.MALFORMED_ANCHOR,  # <instanceIdentifier> commented out
    "cs-int-trusted-anchor-invalid-2.xml": FaultCode.MALFORMED_ANCHOR,  # "not an xml."
}

_CS0_HASH: Final = "40:2A:4F:94:05:D2:9B:ED:C9:EE:A2:6D:EC:EC:11:94:5D:C9:A8:3E:29:1F:B2:92:A6:E4:DF:1D"
INDEX_COLON_HASHES: Final = {
    "cs-int-trusted-anchor.xml": _CS0_HASH,
    "cs-core-trusted-anchor.xml": _CS0_HASH,  # INDEX: same bytes as cs-int-trusted-anchor.xml
    "cs-int-trusted-anchor-2.xml": (
        "95:6C:C8:A5:9B:B5:51:5A:FB:9F:9C:84:38:C0:62:6B:93:48:AE:D7:54:44:16:0C:83:28:59:54"
    ),
}
"""Anchor hashes INDEX.md gives in the central server's form (SHA-224, upper hex, colon-separated)."""
INDEX_HEX_HASHES: Final = {
    "ss-admin-internal-configuration-anchor.xml": (
        "B37E02C0B310497C05D938A8C4446DFA80722F97123852BA8BF20D57",
        "",
    ),
    "system-test-configuration_anchor_CS_internal.xml": ("5470AFFE", "7CC7"),
}
"""Anchor hashes INDEX.md gives in the security server's form (no colons): full, or (prefix, suffix) where
INDEX abbreviates it."""

# -- globalconf/signed/ -------------------------------------------------------------------------------------

SYSTEM_TEST_ANCHOR: Final = "anchors/system-test-configuration_anchor_CS_internal.xml"
PUBLIC: Final = "globalconf/signed/system-test-public"
CONFCLIENT: Final = "globalconf/signed/confclient"
CONSUMER_CERT: Final = "certs/common-test/consumer.pem"
PRODUCER_CERT: Final = "certs/common-test/producer.pem"
_ROTATION_STAMPS: Final = {
    "V3": "20240408142911166434000",
    "V4": "20240529203822880997000",
    "V5": "20250303143911136407000",
}


@dataclass(frozen=True)
class SignedCase:
    """One signed configuration directory, the trust it is checked with, and INDEX.md's verdict."""

    id: str
    path: str
    """The signed directory, relative to the interop corpus."""
    signer: str
    """``anchor`` (the system-test anchor) or ``consumer`` / ``producer`` (an anchor we build with that
    common-test certificate, which signs the configuration client's test directories)."""
    at: datetime
    code: str | None = None
    """None: valid."""
    details: dict[str, str] = field(default_factory=dict)
    """Details the error must carry."""
    shared_params: str | None = None
    """Also trust this shared-params' source certificates (key rotation)."""
    external: bool = False
    files_root: str | None = None
    """Check the content files at ``<files_root>/<content-location>``."""


_2025: Final = datetime(2025, 1, 1, tzinfo=UTC)
_MISSING_CERT: Final = {"reason": "missing_verification_cert"}


def _rotation_cases() -> list[SignedCase]:
    cases: list[SignedCase] = []
    for version, stamp in _ROTATION_STAMPS.items():
        shared = f"{PUBLIC}/{version}/{stamp}/shared-params.xml"
        for kind in ("internalconf", "externalconf"):
            path = f"{PUBLIC}/{version}/{kind}"
            external = kind == "externalconf"
            cases += [
                # INDEX: not valid with the V6 anchor alone (its keys rotated out) ...
                SignedCase(f"{version}-{kind}-anchor-only", path, "anchor", _2025,
                           FaultCode.GLOBAL_CONF_INVALID, _MISSING_CERT),
                # ... valid with the source certificates of the same version's shared-params ...
                SignedCase(f"{version}-{kind}-rotation", path, "anchor", _2025, shared_params=shared,
                           external=external, files_root=PUBLIC),
                # ... of the right kind only.
                SignedCase(f"{version}-{kind}-wrong-kind", path, "anchor", _2025,
                           FaultCode.GLOBAL_CONF_INVALID, _MISSING_CERT, shared_params=shared,
                           external=not external),
            ]  # fmt: skip
    return cases


SIGNED_CASES: Final = (
    SignedCase("V6-internalconf", f"{PUBLIC}/V6/internalconf", "anchor", _2025, files_root=PUBLIC),
    SignedCase(
        "V6-internalconf-expired",
        f"{PUBLIC}/V6/internalconf",
        "anchor",
        datetime(2035, 11, 11, 3, 7, 41, tzinfo=UTC),
        FaultCode.GLOBAL_CONF_OUTDATED,
    ),
    *_rotation_cases(),
    # ConfigurationParserTest.parseConf: valid with consumer.pem, expired since 2026-05-20T17:42:55Z.
    SignedCase(
        "confclient-simple",
        f"{CONFCLIENT}/test-conf-simple.txt",
        "consumer",
        datetime(2026, 5, 20, 17, 42, 54, tzinfo=UTC),
        files_root=f"{CONFCLIENT}/test-conf-simple/EE",
    ),
    SignedCase(
        "confclient-simple-expired",
        f"{CONFCLIENT}/test-conf-simple.txt",
        "consumer",
        datetime(2026, 5, 20, 17, 42, 56, tzinfo=UTC),
        FaultCode.GLOBAL_CONF_OUTDATED,
    ),
    # ... and with producer.pem: GLOBAL_CONF_MISSING_VERIFICATION_CERT.
    SignedCase(
        "confclient-simple-producer",
        f"{CONFCLIENT}/test-conf-simple.txt",
        "producer",
        _2025,
        FaultCode.GLOBAL_CONF_INVALID,
        _MISSING_CERT,
    ),
    SignedCase(
        "confclient-detached",
        f"{CONFCLIENT}/test-conf-detached.txt",
        "consumer",
        _2025,
        files_root=f"{CONFCLIENT}/test-conf-detached/EE",
    ),
    # GLOBAL_CONF_SIGNATURE_VERIFICATION_FAILURE (checked before the expiry date: the signature fails).
    SignedCase(
        "confclient-invalid-signature",
        f"{CONFCLIENT}/test-conf-invalid-signature.txt",
        "consumer",
        datetime(2015, 1, 1, tzinfo=UTC),
        FaultCode.INVALID_SIGNATURE_VALUE,
    ),
    SignedCase(
        "confclient-missing-signature",
        f"{CONFCLIENT}/test-conf-missing-signature.txt",
        "consumer",
        datetime(2015, 1, 1, tzinfo=UTC),
        FaultCode.INVALID_SIGNATURE_VALUE,
    ),
    # GLOBAL_CONF_MISSING_SIGNED_DATA_EXPIRATION_DATE / GLOBAL_CONF_HEADER_FIELD_MISSING.
    SignedCase(
        "confclient-malformed",
        f"{CONFCLIENT}/test-conf-malformed.txt",
        "consumer",
        datetime(2014, 1, 1, tzinfo=UTC),
        FaultCode.MALFORMED_GLOBALCONF,
    ),
    SignedCase(
        "confclient-missing-date",
        f"{CONFCLIENT}/test-conf-missing-date.txt",
        "consumer",
        datetime(2014, 1, 1, tzinfo=UTC),
        FaultCode.MALFORMED_GLOBALCONF,
        {"missing": "Expire-date"},
    ),
    # INDEX: conf1.txt INVALID (its placeholder parts are "malformed; unused").
    SignedCase(
        "confclient-conf1",
        f"{CONFCLIENT}/conf1.txt",
        "consumer",
        datetime(2014, 1, 1, tzinfo=UTC),
        FaultCode.MALFORMED_GLOBALCONF,
    ),
    # INDEX: the pre-release 2013 "globalconf.signed" format is not supported: refused, never trusted.
    SignedCase(
        "legacy-2013",
        "globalconf/signed/legacy-2013/globalconf.signed",
        "anchor",
        datetime(2013, 3, 1, tzinfo=UTC),
        FaultCode.MALFORMED_GLOBALCONF,
        {"missing": "Expire-date"},
    ),
    SignedCase(
        "legacy-2013-new",
        "globalconf/signed/legacy-2013/NEW_globalconf.signed",
        "anchor",
        datetime(2013, 3, 1, tzinfo=UTC),
        FaultCode.MALFORMED_GLOBALCONF,
        {"missing": "Expire-date"},
    ),
)

LEGACY_2013_PUBKEYS: Final = (
    "globalconf/signed/legacy-2013/globalconf.signed.pubkey",
    "globalconf/signed/legacy-2013/NEW_globalconf.signed.pubkey",
)
CONF1_PLACEHOLDERS: Final = (
    f"{CONFCLIENT}/conf1/shared-parameters.xml",
    f"{CONFCLIENT}/conf1/private-parameters.xml",
)
XXE_PART: Final = "globalconf/xml-security/test-part-with-xxe.xml"


def signed_directory_files(interop_dir: Path) -> set[str]:
    """Every signed directory under ``globalconf/signed`` (not the parts, metadata, keys or file lists)."""
    root = interop_dir / "globalconf/signed"
    return {
        str(p.relative_to(interop_dir))
        for p in root.rglob("*")
        if p.is_file() and (p.suffix in (".txt", ".signed") or p.name in ("internalconf", "externalconf"))
    }


def anchor_for(interop_dir: Path, case: SignedCase) -> bytes:
    """The anchor bytes a case is checked with."""
    if case.signer == "anchor":
        return (interop_dir / SYSTEM_TEST_ANCHOR).read_bytes()
    pem = CONSUMER_CERT if case.signer == "consumer" else PRODUCER_CERT
    cert = x509.load_pem_x509_certificate((interop_dir / pem).read_bytes())
    return build_anchor("EE", [("http://cs/conf", [cert])], datetime(2014, 1, 1, tzinfo=UTC))


# -- globalconf/dirs/ ---------------------------------------------------------------------------------------

DIRS_AT: Final = datetime(2025, 6, 1, tzinfo=UTC)
"""Before every metadata expiry of the installed directories (signer-int-test: 2035-11-07)."""

# dir -> (own instance, {instance: (approved CAs, approved TSAs)}, freshness, time-stamping interval)
GOOD_DIRS: Final[dict[str, tuple[str, dict[str, tuple[int, int]], int, int | None]]] = {
    "cs-admin-int-test": ("EE", {"EE": (5, 1)}, 42, 123),
    "cs-management-int-test": ("EE", {"EE": (5, 1)}, 42, 123),
    "ss-admin-int-test": ("EE", {"EE": (5, 1)}, 42, 123),
    "globalconf_good2_v3": ("DEV", {"DEV": (1, 1)}, 3600, None),
    "messagelog-addon": ("CS", {"CS": (1, 1)}, 3600, None),
    "signer-int-test": ("DEV", {"DEV": (1, 1)}, 3600, 60),
    "globalconf_good_v2": ("EE", {"EE": (5, 1), "bar": (1, 1), "foo": (4, 1)}, 42, 123),
    "globalconf_good_v3": ("EE", {"EE": (5, 1), "bar": (1, 1), "foo_v2": (4, 1)}, 42, 123),
    "globalconf_good_v4": ("EE", {"EE": (5, 1), "bar": (1, 1), "baz_v3": (5, 1), "foo_v2": (4, 1)}, 42, 123),
    "globalconf_good_v5": (
        "EE",
        {"EE": (5, 1), "bar": (1, 1), "baz_v3": (5, 1), "foo_v2": (4, 1), "qux_v4": (5, 1)},
        42,
        123,
    ),
    "globalconf_good_v6": (
        "EE",
        {
            "EE": (2, 1),
            "bar": (1, 1),
            "baz_v3": (5, 1),
            "foo_v2": (4, 1),
            "quux_v5": (5, 1),
            "qux_v4": (5, 1),
        },
        42,
        123,
    ),
}

# dir -> (fault code, details reason, X-Road's FSGlobalConfValidator / directory verdict)
BAD_DIRS: Final = {
    "globalconf_empty": (FaultCode.MALFORMED_GLOBALCONF, "malformed", "FAILURE_MALFORMED"),
    # findPrivate/Shared(foo) empty: the malformed part is skipped, which leaves the own EE with nothing.
    "globalconf_malformed": (FaultCode.MALFORMED_GLOBALCONF, "malformed", "malformed parts ignored"),
    "globalconf_missing_identifier": (
        FaultCode.MALFORMED_GLOBALCONF,
        "missing_instance_identifier",
        "FAILURE_MISSING_INSTANCE_IDENTIFIER",
    ),
}

"""Trust material from real X-Road configuration directories (versions 2-6), federation, safe parsing."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.globalconf_fixtures import BAD_DIRS, CONF1_PLACEHOLDERS, GOOD_DIRS, XXE_PART
from xroad_mn.certs import load_certificate, same_certificate
from xroad_mn.confclient.installed import load_trust_material, load_trust_store
from xroad_mn.errors import FaultCode, XRoadError
from xroad_mn.globalconf.trust import TrustMaterial, parse_time_stamping_interval

# Parameter files outside installed directories: path -> (instance, approved CAs, approved TSAs, freshness)
SIGNED_PARAMS: dict[str, tuple[str, int, int, int]] = {
    "signed/confclient/V2/EE/shared-params.xml": ("EE", 5, 1, 42),
    "signed/confclient/V3/EE/shared-params.xml": ("EE", 5, 1, 42),
    "signed/confclient/V3-many-nodes/EE/shared-params.xml": ("EE", 5, 1, 42),
    "signed/confclient/test-conf-simple/EE/shared-params.xml": ("EE", 5, 1, 42),
    "signed/confclient/test-conf-detached/EE/shared-params.xml": ("EE", 5, 1, 42),
    "signed/confproxy/test-conf-simple/V2/PROXY1/EE/shared-params.xml": ("EE", 7, 6, 3600),
    "signed/system-test-public/V3/20240408142911166434000/shared-params.xml": ("CS", 1, 1, 3600),
    "signed/system-test-public/V4/20240529203822880997000/shared-params.xml": ("DEV", 1, 1, 3600),
    "signed/system-test-public/V5/20250303143911136407000/shared-params.xml": ("DEV", 1, 1, 3600),
    "signed/system-test-public/V6/20251110170000548026000/shared-params.xml": ("DEV", 2, 1, 3600),
}


@pytest.fixture(scope="module")
def globalconf(interop_dir: Path) -> Path:
    return interop_dir / "globalconf"


def test_every_interop_dir_has_a_verdict(globalconf: Path) -> None:
    assert {p.name for p in (globalconf / "dirs").iterdir()} == set(GOOD_DIRS) | set(BAD_DIRS)


@pytest.mark.parametrize("name", sorted(GOOD_DIRS))
def test_good_dirs_load(globalconf: Path, name: str) -> None:
    own, counts, freshness, interval = GOOD_DIRS[name]
    store = load_trust_store(globalconf / "dirs" / name)
    assert store.instance == own
    assert store.skipped == ()
    assert {i: (len(m.approved_cas), len(m.approved_tsas)) for i, m in store.by_instance.items()} == counts

    trust = load_trust_material(globalconf / "dirs" / name)
    assert trust.instance == own
    assert trust.ocsp_freshness_seconds == freshness
    assert trust.time_stamping_interval_seconds == interval
    assert len(trust.approved_cas) == sum(c for c, _ in counts.values())
    assert len(trust.approved_tsas) == sum(t for _, t in counts.values())
    assert set(trust.federated_instances) == set(counts) - {own}
    # Own instance first; every entry says where it comes from.
    assert trust.approved_cas[0].instance == own
    assert {ca.instance for ca in trust.approved_cas} <= set(counts)
    assert all(ca.certificate_profile_info for ca in trust.approved_cas)


def test_missing_instance_identifier(globalconf: Path) -> None:
    # X-Road: FAILURE_MISSING_INSTANCE_IDENTIFIER.
    with pytest.raises(XRoadError, match="instance-identifier") as e:
        load_trust_material(globalconf / "dirs/globalconf_missing_identifier")
    assert e.value.code == FaultCode.MALFORMED_GLOBALCONF


def test_malformed_federated_part_is_skipped(globalconf: Path) -> None:
    # INDEX: findShared(foo) must be empty (malformed parts ignored). The own instance EE is absent too.
    store = load_trust_store(globalconf / "dirs/globalconf_malformed")
    assert dict(store.by_instance) == {}
    assert len(store.skipped) == 1
    assert store.skipped[0].startswith("foo: ")
    with pytest.raises(XRoadError) as e:
        store.trust_material()
    assert e.value.code == FaultCode.MALFORMED_GLOBALCONF


def test_empty_dir_has_no_trust(globalconf: Path) -> None:
    with pytest.raises(XRoadError, match=r"no shared-params\.xml for instance EE"):
        load_trust_material(globalconf / "dirs/globalconf_empty")


def test_malformed_own_instance_fails(tmp_path: Path, globalconf: Path) -> None:
    (tmp_path / "instance-identifier").write_text("EE")
    (tmp_path / "EE").mkdir()
    (tmp_path / "EE/shared-params.xml").write_text("xxx")
    (tmp_path / "bar").mkdir()
    (tmp_path / "bar/shared-params.xml").write_bytes(
        (globalconf / "dirs/globalconf_good_v6/bar/shared-params.xml").read_bytes()
    )
    with pytest.raises(XRoadError, match="not well-formed") as e:
        load_trust_store(tmp_path)
    assert e.value.code == FaultCode.MALFORMED_GLOBALCONF


@pytest.mark.parametrize("rel", sorted(SIGNED_PARAMS))
def test_signed_parameter_files(globalconf: Path, rel: str) -> None:
    instance, cas, tsas, freshness = SIGNED_PARAMS[rel]
    trust = TrustMaterial.from_shared_params((globalconf / rel).read_bytes())
    assert (trust.instance, len(trust.approved_cas), len(trust.approved_tsas)) == (instance, cas, tsas)
    assert trust.ocsp_freshness_seconds == freshness
    assert trust.time_stamping_interval_seconds is None


def test_every_shared_params_file_is_covered(globalconf: Path) -> None:
    files = {str(p.relative_to(globalconf)) for p in globalconf.rglob("shared-params.xml")}
    covered = set(SIGNED_PARAMS) | {
        f"dirs/{d}/{i}/shared-params.xml" for d, (_, c, _, _) in GOOD_DIRS.items() for i in c
    }
    extra = {
        "dirs/globalconf_malformed/foo/shared-params.xml",
        "dirs/globalconf_missing_identifier/baz_v3/shared-params.xml",
    }
    assert files == covered | extra


def test_private_params_interval(globalconf: Path) -> None:
    shared = (globalconf / "dirs/signer-int-test/DEV/shared-params.xml").read_bytes()
    private = (globalconf / "dirs/signer-int-test/DEV/private-params.xml").read_bytes()
    assert (
        TrustMaterial.from_shared_params(shared, private_params=private).time_stamping_interval_seconds == 60
    )
    assert parse_time_stamping_interval(private) == 60
    with pytest.raises(XRoadError, match="expected 'EE'"):
        parse_time_stamping_interval(private, expected_instance="EE")


@pytest.mark.parametrize(
    ("rel", "derived"),
    [
        # base64 of PEM text (DEV 2024)
        ("dirs/globalconf_good2_v3/DEV/shared-params.xml", "dev2024-good2_v3"),
        # base64 of DER (EE test configuration)
        ("dirs/globalconf_good_v2/EE/shared-params.xml", "ee-good_v2"),
        ("signed/system-test-public/V6/20251110170000548026000/shared-params.xml", "dev2025-systemtest-V6"),
        ("dirs/messagelog-addon/CS/shared-params.xml", "cs2021-messagelog-addon"),
    ],
)
def test_both_certificate_encodings_decode(
    interop_dir: Path, globalconf: Path, rel: str, derived: str
) -> None:
    trust = TrustMaterial.from_shared_params((globalconf / rel).read_bytes())
    certs = interop_dir / "certs/derived-from-globalconf"

    def pem(kind: str, n: int) -> bytes:
        return (certs / f"{derived}-{kind}-{n}.pem").read_bytes()

    assert same_certificate(trust.approved_cas[0].top_ca, load_certificate(pem("topCA", 0)))
    responder = trust.approved_cas[0].ocsp_responders[0].certificate
    assert responder is not None
    assert same_certificate(responder, load_certificate(pem("topCA-ocsp", 0)))
    assert same_certificate(trust.approved_tsas[0].certificate, load_certificate(pem("tsa", 0)))


def test_intermediate_cas_and_their_responders(globalconf: Path) -> None:
    trust = TrustMaterial.from_shared_params(
        (globalconf / "dirs/globalconf_good_v6/EE/shared-params.xml").read_bytes()
    )
    pki5 = next(ca for ca in trust.approved_cas if ca.name == "pki5 with intermediate certs")
    assert pki5.authentication_only
    assert len(pki5.intermediates) == 3
    assert [len(r) for r in pki5.intermediate_ocsp_responders] == [5, 0, 0]
    first = pki5.intermediates[0]
    assert [r.url for r in pki5.responders_for(first)][:2] == [
        "http://127.0.0.1:8082/ocsp",
        "http://www.example.net/ocsp",
    ]
    assert len(trust.ocsp_responder_certs_for(first)) == 5
    assert trust.cas_for(first) == (pki5,)
    assert len(trust.ocsp_responder_certs_for(pki5.top_ca)) == 1
    assert len(trust.ocsp_responder_certificates) == 11


def test_unknown_elements_are_ignored(globalconf: Path) -> None:
    xml = (globalconf / "dirs/globalconf_good_v6/bar/shared-params.xml").read_bytes()
    future = xml.replace(b"<approvedCA>", b"<approvedCA><futureElement a='1'><x/></futureElement>", 1)
    future = future.replace(b"<globalSettings>", b"<somethingNew>v7</somethingNew><globalSettings>", 1)
    assert future != xml
    assert TrustMaterial.from_shared_params(future) == TrustMaterial.from_shared_params(xml)


@pytest.mark.parametrize("rel", CONF1_PLACEHOLDERS)
def test_conf1_placeholder_parameters_are_malformed(interop_dir: Path, rel: str) -> None:
    # INDEX: "malformed; unused" - one line of prose each, never trust material.
    data = (interop_dir / rel).read_bytes()
    with pytest.raises(XRoadError, match="not well-formed") as e:
        TrustMaterial.from_shared_params(data)
    assert e.value.code == FaultCode.MALFORMED_GLOBALCONF
    with pytest.raises(XRoadError) as e:
        parse_time_stamping_interval(data)
    assert e.value.code == FaultCode.MALFORMED_GLOBALCONF


def test_xxe_is_refused(interop_dir: Path) -> None:
    payload = (interop_dir / XXE_PART).read_bytes()
    with pytest.raises(XRoadError, match="DOCTYPE") as e:
        TrustMaterial.from_shared_params(payload)
    assert e.value.code == FaultCode.MALFORMED_GLOBALCONF
    assert "root:" not in e.value.message


def test_xxe_in_a_real_file_is_refused(globalconf: Path, tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET")
    xml = (globalconf / "dirs/globalconf_good_v6/bar/shared-params.xml").read_bytes()
    xml = xml.replace(
        b'<?xml version="1.0" encoding="UTF-8"?>',
        f'<?xml version="1.0" encoding="UTF-8"?><!DOCTYPE conf [<!ENTITY x SYSTEM "file://{secret}">]>'.encode(),
    ).replace(
        b"<instanceIdentifier>bar</instanceIdentifier>", b"<instanceIdentifier>&x;</instanceIdentifier>"
    )
    with pytest.raises(XRoadError) as e:
        TrustMaterial.from_shared_params(xml)
    assert "TOP-SECRET" not in e.value.message


@pytest.mark.parametrize(
    ("old", "new", "words"),
    [
        (b"<globalSettings>", b"<globalSettingsX>", "no globalSettings"),
        (b"<ocspFreshnessSeconds>420", b"<ocspFreshnessSeconds>soon", "not an integer"),
        (b"<cert>MII", b"<cert>!!!", "certificate cannot be decoded"),
        (b"<instanceIdentifier>bar</instanceIdentifier>", b"", "instanceIdentifier"),
        (b"<tns:conf ", b"<tns:other ", "root element"),
    ],
)
def test_malformed_shared_params(globalconf: Path, old: bytes, new: bytes, words: str) -> None:
    xml = (globalconf / "dirs/globalconf_good_v6/bar/shared-params.xml").read_bytes()
    assert old in xml
    broken = xml.replace(old, new, 1)
    if old == b"<tns:conf ":
        broken = broken.replace(b"</tns:conf>", b"</tns:other>")
    if old == b"<globalSettings>":
        broken = broken.replace(b"</globalSettings>", b"</globalSettingsX>")
    with pytest.raises(XRoadError, match=words) as e:
        TrustMaterial.from_shared_params(broken)
    assert e.value.code == FaultCode.MALFORMED_GLOBALCONF


def test_expected_instance(globalconf: Path) -> None:
    xml = (globalconf / "dirs/globalconf_good_v6/bar/shared-params.xml").read_bytes()
    assert TrustMaterial.from_shared_params(xml, expected_instance="bar").instance == "bar"
    with pytest.raises(XRoadError, match="expected 'EE'"):
        TrustMaterial.from_shared_params(xml, expected_instance="EE")


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=4096))
def test_parser_raises_only_xroad_errors(data: bytes) -> None:
    with pytest.raises(XRoadError):
        TrustMaterial.from_shared_params(b"<conf>" + data)


@settings(max_examples=100, deadline=None)
@given(st.text(max_size=200))
def test_parser_text_fields_fail_closed(text: str) -> None:
    xml = (
        f"<conf><instanceIdentifier>{text}</instanceIdentifier><approvedCA><name>x</name></approvedCA></conf>"
    )
    with pytest.raises(XRoadError):
        TrustMaterial.from_shared_params(xml.encode("utf-8", "surrogatepass"))

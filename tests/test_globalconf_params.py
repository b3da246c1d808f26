"""shared-params / private-params: tolerant parsing of every real file, generation that validates against
X-Road's XSDs of each version, and round trips."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
from cryptography import x509
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lxml import etree

from tests.globalconf_fixtures import CONF1_PLACEHOLDERS, XXE_PART
from tests.xroad_xsd import schema_within
from xroad_mn.errors import FaultCode, XRoadError
from xroad_mn.globalconf.anchor import parse_anchor
from xroad_mn.globalconf.params import (
    AcmeServer,
    ApprovedCAEntry,
    ApprovedTSAEntry,
    CaInfo,
    CentralService,
    ConfigurationSource,
    GlobalGroup,
    ManagementService,
    Member,
    MemberClass,
    OcspInfo,
    PrivateParameters,
    SecurityServer,
    SharedParameters,
    Subsystem,
    auth_cert_hash,
    build_private_params,
    build_shared_params,
    parse_private_params,
    parse_shared_params,
)
from xroad_mn.identifiers import MemberId, ServiceId

V6_DIR = "globalconf/signed/system-test-public/V6/20251110170000548026000"


@pytest.fixture(scope="module")
def schemas(interop_dir: Path) -> dict[str, etree.XMLSchema]:
    root = interop_dir / "globalconf"
    rels = [f"v{v}/shared-parameters.xsd" for v in range(2, 7)]
    rels += ["v2/private-parameters.xsd", "v3/private-parameters.xsd"]
    return {rel: schema_within(root / "xsd" / rel, root) for rel in rels}


def _validate(schema: etree.XMLSchema, data: bytes) -> None:
    doc = etree.fromstring(data)
    assert schema.validate(doc), schema.error_log


def _private_schema(schemas: dict[str, etree.XMLSchema], version: int) -> etree.XMLSchema:
    return schemas["v2/private-parameters.xsd" if version == 2 else "v3/private-parameters.xsd"]


def _cert(interop_dir: Path, rel: str) -> x509.Certificate:
    return x509.load_pem_x509_certificate((interop_dir / rel).read_bytes())


@pytest.fixture(scope="module")
def full_shared(interop_dir: Path) -> SharedParameters:
    """A model that uses every element of V6."""
    ca = _cert(interop_dir, "certs/derived-from-globalconf/dev2025-systemtest-V6-topCA-0.pem")
    ocsp = _cert(interop_dir, "certs/derived-from-globalconf/dev2025-systemtest-V6-topCA-ocsp-0.pem")
    tsa = _cert(interop_dir, "certs/derived-from-globalconf/dev2025-systemtest-V6-tsa-0.pem")
    internal = _cert(interop_dir, "certs/system-test-sign-keys/internal.crt")
    gov = MemberClass("GOV", "Government")
    owner = MemberId("MN", "GOV", "5012345")
    return SharedParameters(
        instance="MN",
        ocsp_freshness_seconds=3600,
        sources=(ConfigurationSource("cs.example.mn", (internal,), (internal,)),),
        approved_cas=(
            ApprovedCAEntry(
                name="MN Test CA",
                top_ca=CaInfo(ca, (OcspInfo("http://ocsp.example.mn", ocsp, "FREE"), OcspInfo("http://o2"))),
                certificate_profile_info="ee.ria.xroad.common.certificateprofile.impl.EjbcaCertificateProfileInfoProvider",
                intermediate_cas=(CaInfo(ca, (OcspInfo("http://ocsp2.example.mn", None, "PAID"),)),),
                authentication_only=False,
                default_csr_format="DER",
                acme_server=AcmeServer("https://acme.example.mn/directory", "10.0.0.1", "auth", "sign"),
            ),
        ),
        approved_tsas=(ApprovedTSAEntry("MN TSA", "http://tsa.example.mn", tsa, "UNDEFINED"),),
        members=(
            Member(
                gov, "5012345", "Ministry", (Subsystem("civil-registry", "Civil registry"), Subsystem("mgmt"))
            ),
            Member(MemberClass("COM", "Commercial"), "9011223", "Company"),
        ),
        security_servers=(
            SecurityServer(
                owner=owner,
                server_code="ss1",
                address="ss1.example.mn",
                auth_cert_hashes=(auth_cert_hash(internal),),
                clients=(owner.subsystem("civil-registry"), MemberId("MN", "COM", "9011223")),
                in_maintenance_mode=True,
                maintenance_message="upgrade",
            ),
            SecurityServer(owner=MemberId("MN", "COM", "9011223"), server_code="ss2"),
        ),
        global_groups=(
            GlobalGroup("security-server-owners", "Owners", (owner, owner.subsystem("civil-registry"))),
        ),
        central_services=(
            CentralService("getPerson", ServiceId("MN", "GOV", "5012345", "civil-registry", "getPerson")),
        ),
        member_classes=(gov, MemberClass("COM", "Commercial")),
    )


@pytest.fixture(scope="module")
def full_private(interop_dir: Path) -> PrivateParameters:
    partner = parse_anchor((interop_dir / "anchors/cs-int-trusted-anchor.xml").read_bytes())
    return PrivateParameters(
        instance="MN",
        management_service=ManagementService(
            "https://cs.example.mn:4001/managementservice/",
            MemberId("MN", "GOV", "5012345").subsystem("mgmt"),
            _cert(interop_dir, "certs/system-test-sign-keys/internal.crt"),
        ),
        time_stamping_interval_seconds=60,
        configuration_anchors=(partner,),
    )


# -- parsing real files ---------------------------------------------------------------------------------


def _real_params(interop_dir: Path, name: str) -> list[Path]:
    return sorted(
        p for p in (interop_dir / "globalconf").rglob(name) if "globalconf_malformed" not in p.parts
    )


def test_every_real_shared_params_parses(interop_dir: Path) -> None:
    files = _real_params(interop_dir, "shared-params.xml")
    assert len(files) > 30
    for f in files:
        shared = parse_shared_params(f.read_bytes())
        assert shared.instance, f


def test_every_real_private_params_parses(interop_dir: Path) -> None:
    files = _real_params(interop_dir, "private-params.xml")
    assert len(files) > 25
    for f in files:
        assert parse_private_params(f.read_bytes()).instance, f


@pytest.mark.parametrize("name", ["shared-params.xml", "private-params.xml"])
def test_malformed_params_are_refused(interop_dir: Path, name: str) -> None:
    data = (interop_dir / "globalconf/dirs/globalconf_malformed/foo" / name).read_bytes()
    parse = parse_shared_params if name.startswith("shared") else parse_private_params
    with pytest.raises(XRoadError) as exc:
        parse(data)
    assert exc.value.has_code(FaultCode.MALFORMED_GLOBALCONF)


def test_real_v6_shared_params_content(interop_dir: Path) -> None:
    shared = parse_shared_params((interop_dir / V6_DIR / "shared-params.xml").read_bytes())
    assert shared.instance == "DEV"
    assert shared.ocsp_freshness_seconds == 3600
    assert [m.member_code for m in shared.members] == ["1234", "4321"]
    ss0 = shared.security_servers[0]
    assert ss0.owner == MemberId("DEV", "COM", "1234")
    assert ss0.server_code == "SS0"
    assert ss0.address == "ss0"
    assert len(ss0.auth_cert_hashes[0]) == 32  # SHA-256 from V3
    assert MemberId("DEV", "COM", "4321").subsystem("TestClient") in ss0.clients
    assert shared.members[0].subsystems[0] == Subsystem("MANAGEMENT", "Management services")
    assert [ca.name for ca in shared.approved_cas] == ["Test CA", "New CA"]
    assert shared.approved_cas[0].top_ca.ocsp[0].url == "http://testca:8888"
    assert shared.approved_cas[0].top_ca.ocsp[0].cost_type == "FREE"
    assert shared.approved_cas[1].default_csr_format == "PEM"
    assert shared.approved_tsas[0].url == "http://testca:8899"
    assert shared.global_groups[0].code == "security-server-owners"
    assert [c.code for c in shared.member_classes] == ["COM", "GOV", "ORG"]
    internal = _cert(
        interop_dir, "certs/derived-from-globalconf/dev2025-systemtest-V6-internalVerificationCert-0.pem"
    )
    assert shared.verification_certs(external=False) == (internal,)


def test_base64_pem_certificates_decode(interop_dir: Path) -> None:
    shared = parse_shared_params(
        (interop_dir / "globalconf/dirs/globalconf_good2_v3/DEV/shared-params.xml").read_bytes()
    )
    top = _cert(interop_dir, "certs/derived-from-globalconf/dev2024-good2_v3-topCA-0.pem")
    tsa = _cert(interop_dir, "certs/derived-from-globalconf/dev2024-good2_v3-tsa-0.pem")
    assert shared.approved_cas[0].top_ca.cert == top
    assert shared.approved_tsas[0].cert == tsa


def test_real_private_params_content(interop_dir: Path) -> None:
    private = parse_private_params((interop_dir / V6_DIR / "private-params.xml").read_bytes())
    assert private.time_stamping_interval_seconds == 60
    assert private.management_service.auth_cert_reg_service_address == "https://cs:4001/managementservice/"
    assert private.management_service.management_request_service_provider_id == MemberId(
        "DEV", "COM", "1234"
    ).subsystem("MANAGEMENT")
    federated = parse_private_params(
        (interop_dir / "globalconf/dirs/globalconf_good_v6/EE/private-params.xml").read_bytes()
    )
    assert [a.instance for a in federated.configuration_anchors]


def test_unknown_elements_are_ignored(interop_dir: Path) -> None:
    data = (interop_dir / V6_DIR / "shared-params.xml").read_bytes()
    shared = parse_shared_params(data)
    extended = (
        data.replace(b"</globalSettings>", b"</globalSettings><futureThing><x>1</x></futureThing>")
        .replace(b"<serverCode>SS0</serverCode>", b"<serverCode>SS0</serverCode><newField>y</newField>")
        .replace(b"<name>Test CA</name>", b"<name>Test CA</name><extra/>")
    )
    assert parse_shared_params(extended) == shared


def test_xxe_payload_is_refused(interop_dir: Path) -> None:
    payload = (interop_dir / XXE_PART).read_bytes()
    for parse in (parse_shared_params, parse_private_params):
        with pytest.raises(XRoadError) as exc:
            parse(payload)
        assert exc.value.has_code(FaultCode.MALFORMED_GLOBALCONF)


@pytest.mark.parametrize("rel", CONF1_PLACEHOLDERS)
def test_conf1_placeholders_are_malformed(interop_dir: Path, rel: str) -> None:
    # INDEX: conf1/*-parameters.xml are "malformed; unused" (a sentence of prose, not XML).
    data = (interop_dir / rel).read_bytes()
    assert not data.lstrip().startswith(b"<")
    for parse in (parse_shared_params, parse_private_params):
        with pytest.raises(XRoadError) as exc:
            parse(data)
        assert exc.value.has_code(FaultCode.MALFORMED_GLOBALCONF)
        assert "not well-formed XML" in exc.value.message


def test_dangling_idref_is_malformed(interop_dir: Path) -> None:
    data = (
        (interop_dir / V6_DIR / "shared-params.xml")
        .read_bytes()
        .replace(b"<owner>id0</owner>", b"<owner>id99</owner>")
    )
    with pytest.raises(XRoadError) as exc:
        parse_shared_params(data)
    assert exc.value.has_code(FaultCode.MALFORMED_GLOBALCONF)


# -- generation -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("version", [2, 3, 4, 5, 6])
def test_generated_files_validate_against_xsd(
    schemas: dict[str, etree.XMLSchema],
    full_shared: SharedParameters,
    full_private: PrivateParameters,
    version: int,
) -> None:
    _validate(schemas[f"v{version}/shared-parameters.xsd"], build_shared_params(full_shared, version))
    _validate(_private_schema(schemas, version), build_private_params(full_private, version))


@pytest.mark.parametrize("version", [2, 3, 4, 5, 6])
def test_real_v6_regenerated_validates(
    interop_dir: Path, schemas: dict[str, etree.XMLSchema], version: int
) -> None:
    shared = parse_shared_params((interop_dir / V6_DIR / "shared-params.xml").read_bytes())
    private = parse_private_params((interop_dir / V6_DIR / "private-params.xml").read_bytes())
    _validate(schemas[f"v{version}/shared-parameters.xsd"], build_shared_params(shared, version))
    _validate(_private_schema(schemas, version), build_private_params(private, version))


def test_v6_round_trip_keeps_everything(
    full_shared: SharedParameters, full_private: PrivateParameters
) -> None:
    assert parse_shared_params(build_shared_params(full_shared)) == full_shared
    private = parse_private_params(build_private_params(full_private))
    assert private == full_private
    assert private.configuration_anchors[0].generated_at == full_private.configuration_anchors[0].generated_at


def test_older_versions_drop_newer_fields(full_shared: SharedParameters) -> None:
    v2 = parse_shared_params(build_shared_params(full_shared, 2))
    assert v2.sources == ()
    assert v2.approved_cas[0].acme_server is None
    assert v2.security_servers[0].in_maintenance_mode is False
    v4 = parse_shared_params(build_shared_params(full_shared, 4))
    assert v4.approved_cas[0].acme_server == full_shared.approved_cas[0].acme_server
    assert v4.members[0].subsystems[0].name is None
    assert v4.approved_cas[0].default_csr_format is None
    v5 = parse_shared_params(build_shared_params(full_shared, 5))
    assert v5.members[0].subsystems[0].name == "Civil registry"
    assert v5.security_servers[0].maintenance_message == "upgrade"
    assert v5.approved_tsas[0].cost_type is None


def test_layout_matches_real_output(interop_dir: Path) -> None:
    data = (interop_dir / V6_DIR / "shared-params.xml").read_bytes()
    ours = build_shared_params(parse_shared_params(data))
    assert ours.startswith(data.split(b"\n", 2)[0] + b"\n" + data.split(b"\n", 2)[1])
    assert b'<member id="id0">' in ours
    assert b'<subsystem id="id1">' in ours
    assert b'<member id="id5">' in ours
    assert b"<owner>id0</owner>" in ours


def test_auth_cert_hash_versions(interop_dir: Path) -> None:
    cert = _cert(interop_dir, "certs/system-test-sign-keys/internal.crt")
    assert len(auth_cert_hash(cert, 2)) == 20
    assert len(auth_cert_hash(cert, 3)) == 32


def test_generation_refuses_unknown_clients(full_shared: SharedParameters) -> None:
    bad = replace(full_shared, security_servers=(SecurityServer(MemberId("MN", "GOV", "404"), "x"),))
    with pytest.raises(XRoadError):
        build_shared_params(bad)
    with pytest.raises(XRoadError):
        build_shared_params(full_shared, 7)
    with pytest.raises(XRoadError):
        build_shared_params(replace(full_shared, sources=()), 3)


_CODES = st.text(alphabet="abcdefghijklmnopqrstuvwxyzABCDEFGHIJ0123456789-_", min_size=1, max_size=12)


@settings(
    max_examples=60,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    deadline=None,
)
@given(
    st.lists(
        st.tuples(_CODES, st.lists(_CODES, max_size=3, unique=True)), max_size=5, unique_by=lambda t: t[0]
    ),
    st.text(max_size=30).filter(lambda s: s == s.strip() and all(c.isprintable() for c in s)),
)
def test_round_trip_property(
    full_shared: SharedParameters, members: list[tuple[str, list[str]]], name: str
) -> None:
    gov = MemberClass("GOV", "Government")
    model = replace(
        full_shared,
        members=tuple(
            Member(gov, code, name, tuple(Subsystem(s, name or None) for s in subs)) for code, subs in members
        ),
        security_servers=tuple(
            SecurityServer(
                MemberId("MN", "GOV", code),
                f"ss{i}",
                clients=tuple(MemberId("MN", "GOV", code).subsystem(s) for s in subs),
            )
            for i, (code, subs) in enumerate(members)
        ),
    )
    assert parse_shared_params(build_shared_params(model)) == model

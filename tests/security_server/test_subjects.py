"""CSR subjects per certificate profile: each builder is the inverse of xroad_mn.certs' parser."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from hypothesis import given, settings
from hypothesis import strategies as st

from security_server.certs.subjects import TEST_MEMBER_CLASS, auth_subject, sign_subject
from trust_services.ca import member_from_subject, server_from_subject
from xroad_mn.certs import (
    BASIC_PROFILE,
    EJBCA_PROFILE,
    FIVRK_PROFILE,
    TEST_PROFILE,
    XROAD_MN_PROFILE,
    profile_for,
)
from xroad_mn.errors import XRoadError
from xroad_mn.identifiers import MemberId

_KEY = ec.generate_private_key(ec.SECP256R1())
_STRICT = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789'()+,-.=?"
PART = st.text(alphabet=_STRICT, min_size=1, max_size=40).filter(lambda s: s not in (".", ".."))
NAME = st.one_of(st.none(), st.text(min_size=1, max_size=60).filter(lambda s: s.strip() == s and s != ""))
CA_INSTANCE = "MN"


def _cert(subject: x509.Name) -> x509.Certificate:
    """A throwaway certificate carrying ``subject``: what the parsers read."""
    now = datetime.now(UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "issuer")]))
        .public_key(_KEY.public_key())
        .serial_number(1)
        .not_valid_before(now)
        .not_valid_after(now + timedelta(days=1))
        .sign(_KEY, hashes.SHA256())
    )


def _round_trip(profile: str, member: MemberId, name: str | None) -> MemberId:
    subject = sign_subject(profile, CA_INSTANCE, member, server_code="ss1", member_name=name)
    return profile_for(profile, CA_INSTANCE).member_id(_cert(subject))


@settings(max_examples=60, deadline=None)
@given(instance=PART, member_class=PART, code=PART, name=NAME)
@pytest.mark.parametrize("profile", [EJBCA_PROFILE, XROAD_MN_PROFILE, FIVRK_PROFILE])
def test_sign_subject_round_trips(
    profile: str, instance: str, member_class: str, code: str, name: str | None
) -> None:
    member = MemberId(instance, member_class, code)
    assert _round_trip(profile, member, name) == member


@settings(max_examples=60, deadline=None)
@given(member_class=PART, code=PART, name=NAME)
def test_basic_sign_subject_round_trips(member_class: str, code: str, name: str | None) -> None:
    member = MemberId(CA_INSTANCE, member_class, code)
    assert _round_trip(BASIC_PROFILE, member, name) == member


@settings(max_examples=30, deadline=None)
@given(code=PART)
def test_test_profile_round_trips_its_members(code: str) -> None:
    member = MemberId(CA_INSTANCE, TEST_MEMBER_CLASS, code)
    assert _round_trip(TEST_PROFILE, member, None) == member


@pytest.mark.parametrize(
    ("profile", "member"),
    [
        (TEST_PROFILE, MemberId(CA_INSTANCE, "GOV", "1")),  # the test profile reads no class
        (TEST_PROFILE, MemberId("EE", TEST_MEMBER_CLASS, "1")),  # nor an instance
        (BASIC_PROFILE, MemberId("EE", "GOV", "1")),  # the basic profile takes the CA's instance
        (EJBCA_PROFILE, MemberId(CA_INSTANCE, "GOV", "x" * 65)),  # CN holds at most 64 characters
    ],
)
def test_members_a_profile_cannot_name_are_refused(profile: str, member: MemberId) -> None:
    with pytest.raises(XRoadError) as e:
        sign_subject(profile, CA_INSTANCE, member, server_code="ss1")
    assert e.value.has_code("invalid_csr")


def test_unknown_profile_is_refused() -> None:
    with pytest.raises(XRoadError) as e:
        sign_subject("com.example.Unknown", CA_INSTANCE, MemberId("MN", "GOV", "1"), server_code="ss1")
    assert e.value.has_code("incorrect_certificate")


@given(member_class=PART, code=PART)
@settings(max_examples=30, deadline=None)
def test_our_ca_reads_back_ejbca_subjects(member_class: str, code: str) -> None:
    """Our CA's sign and auth profiles accept exactly what the node asks for (strict characters)."""
    member = MemberId(CA_INSTANCE, member_class, code)
    sign = sign_subject(EJBCA_PROFILE, CA_INSTANCE, member, server_code="ss1")
    assert member_from_subject(sign, CA_INSTANCE) == member
    server = member.server("ss1")
    seen = server_from_subject(auth_subject(EJBCA_PROFILE, CA_INSTANCE, server), CA_INSTANCE)
    assert (seen.instance, seen.member_class, seen.server_code, seen.member_code) == (
        CA_INSTANCE,
        member_class,
        "ss1",
        code,
    )


def test_auth_subject_layouts() -> None:
    server = MemberId("MN", "GOV", "5012345").server("ss1")
    assert (
        auth_subject(XROAD_MN_PROFILE, "MN", server).rfc4514_string() == "2.5.4.5=5012345,CN=ss1,O=GOV,C=MN"
    )
    assert (
        auth_subject(BASIC_PROFILE, "MN", server, owner_name="Gov", dns_name="ss1.example").rfc4514_string()
        == "O=Gov,2.5.4.5=5012345,CN=ss1.example"
    )
    assert (
        auth_subject(FIVRK_PROFILE, "MN", server, owner_name="Gov", dns_name="ss1.example").rfc4514_string()
        == "CN=ss1.example,2.5.4.5=MN/ss1/GOV,O=Gov,C=FI"
    )


def test_a_long_cyrillic_member_name_is_cut_to_fit_and_the_member_still_reads_back() -> None:
    name = "Нийгмийн даатгалын ерөнхий газрын мэдээллийн технологийн төв"  # 61 letters, 113 bytes
    member = MemberId(CA_INSTANCE, "GOV", "9010003")
    subject = sign_subject(BASIC_PROFILE, CA_INSTANCE, member, server_code="ss1", member_name=name)
    (common_name,) = subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    assert isinstance(common_name.value, str)
    assert name.startswith(common_name.value)
    assert len(common_name.value.encode()) <= 64
    assert profile_for(BASIC_PROFILE, CA_INSTANCE).member_id(_cert(subject)) == member

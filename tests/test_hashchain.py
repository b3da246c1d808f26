"""Hash chains: the interop fixtures reach X-Road's verdicts, built chains verify, tampering is caught."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import io
import random
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import ClassVar

import pytest
from asn1crypto.core import OctetString, Sequence, SequenceOf, UTF8String
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lxml import etree

from xroad_mn.errors import FaultCode, XRoadError
from xroad_mn.hashchain import (
    HASHCHAIN_NS,
    MAX_STEPS,
    MAX_VALUES,
    MAX_XML_BYTES,
    SIG_HASH_CHAIN,
    TS_DATA_REF,
    TS_HASH_CHAIN,
    XMLDSIG_NS,
    InputDigest,
    MessagePart,
    build_hash_chains,
    digest_list,
    verify_hash_chain,
)

SHA256 = "http://www.w3.org/2001/04/xmlenc#sha256"
SHA512 = "http://www.w3.org/2001/04/xmlenc#sha512"
Inputs = Mapping[str, bytes | InputDigest | None]


def _hc(interop_dir: Path, name: str) -> bytes:
    return (interop_dir / "signatures" / "hashchain" / name).read_bytes()


def _code(err: pytest.ExceptionInfo[XRoadError]) -> str:
    return err.value.code


# --- Interop fixtures (signatures/hashchain, INDEX.md rows) ------------------------------------------------


def _fixture_cases(d: Path) -> list[tuple[str, bytes, bytes, Inputs, Mapping[str, bytes], str | None]]:
    def r(name: str) -> bytes:
        return _hc(d, name)

    def sha(b: bytes) -> InputDigest:
        return InputDigest(b, SHA256)

    return [
        ("simpleCorrect", r("hc-verifier1-hashchainresult.xml"), r("hc-verifier1-hashchain.xml"),
         {"/message.xml": r("hc-verifier1-message.xml")}, {}, None),
        ("simpleAttachedInput", r("hc-verifier1-hashchainresult.xml"), r("hc-verifier1-hashchain.xml"),
         {"/message.xml": sha(hashlib.sha256(r("hc-verifier1-message.xml")).digest())}, {}, None),
        ("simpleUnusedInputs", r("hc-verifier1-hashchainresult.xml"), r("hc-verifier1-hashchain.xml"),
         {"/message.xml": r("hc-verifier1-message.xml"), "/unused1": None, "/unused2": None}, {},
         FaultCode.HASHCHAIN_UNUSED_INPUTS),
        ("simpleDigestMismatch", r("hc-verifier1-hashchainresult.xml"), r("hc-verifier1-hashchain.xml"),
         {"/message.xml": sha(hashlib.sha256(r("hc-verifier1-hashchain.xml")).digest())}, {},
         FaultCode.INVALID_HASH_CHAIN_RESULT),
        ("attachments", r("hc-verifier2-hashchainresult.xml"), r("hc-verifier2-hashchain.xml"),
         {"/message.xml": sha(b"\x0b"), "/attachment1": sha(b"\x0c"), "/attachment2": sha(b"\x0d"),
          "/attachment3": sha(b"\x0e")}, {}, None),
        ("attachmentsCannotResolve", r("hc-verifier2-hashchainresult.xml"), r("hc-verifier2-hashchain.xml"),
         {"/message.xml": sha(b"\x0b")}, {}, None),
        ("transforms", r("hc-verifier3-hashchainresult.xml"), r("hc-verifier3-hashchain.xml"),
         {"/message.xml": r("hc-verifier3-message.xml")}, {}, None),
        ("transformsError", r("hc-verifier3-hashchainresult.xml"), r("hc-verifier3-hashchain-invalid.xml"),
         {"/message.xml": r("hc-verifier3-message.xml")}, {}, FaultCode.INVALID_HASH_CHAIN_REF),
        ("simpleTwoHashChains", r("hc-verifier4-hashchainresult.xml"), r("hc-verifier4-hashchain1.xml"),
         {"/message.xml": r("hc-verifier4-message.xml")},
         {"/hashchain2.xml": r("hc-verifier4-hashchain2.xml")}, None),
        ("invalidSchema", r("hc-verifier3-hashchainresult.xml"),
         r("hc-verifier5-hashchain-invalid-schema.xml"),
         {"/message.xml": r("hc-verifier3-message.xml")}, {}, FaultCode.MALFORMED_HASH_CHAIN),
    ]  # fmt: skip


CASE_NAMES = [
    "simpleCorrect", "simpleAttachedInput", "simpleUnusedInputs", "simpleDigestMismatch", "attachments",
    "attachmentsCannotResolve", "transforms", "transformsError", "simpleTwoHashChains", "invalidSchema",
]  # fmt: skip


@pytest.mark.parametrize("case", CASE_NAMES)
def test_interop_fixture_reaches_index_verdict(interop_dir: Path, case: str) -> None:
    cases = {c[0]: c for c in _fixture_cases(interop_dir)}
    _, result, chain, inputs, others, expected = cases[case]
    if expected is None:
        verify_hash_chain(result, chain, inputs, other_chains=others)
    else:
        with pytest.raises(XRoadError) as err:
            verify_hash_chain(result, chain, inputs, other_chains=others)
        assert _code(err) == expected


def test_unresolvable_attachments_are_unverified_not_invalid(interop_dir: Path) -> None:
    out = verify_hash_chain(
        _hc(interop_dir, "hc-verifier2-hashchainresult.xml"),
        _hc(interop_dir, "hc-verifier2-hashchain.xml"),
        {"/message.xml": InputDigest(b"\x0b", SHA256), "/attachment1": None},
    )
    assert out.verified == ("/message.xml",)
    assert out.unverified == ("/attachment1", "/attachment2", "/attachment3")
    with pytest.raises(XRoadError) as err:
        out.require_complete()
    assert _code(err) == FaultCode.INVALID_HASH_CHAIN_REF


def test_valid_signed_hashchain_container_attachment_missing(interop_dir: Path) -> None:
    d = interop_dir / "asic" / "asic-verifier-cli" / "unpacked" / "valid-signed-hashchain"
    out = verify_hash_chain(
        (d / "sig-hashchainresult.xml").read_bytes(),
        (d / "sig-hashchain.xml").read_bytes(),
        {"/message.xml": (d / "message.xml").read_bytes(), "/attachment1": None},
    )
    assert out.digest_method == SHA512
    assert out.unverified == ("/attachment1",)


def test_batch_timestamp_chain_over_signatures_xml(interop_dir: Path) -> None:
    d = interop_dir / "asic" / "asic-verifier-cli" / "unpacked" / "valid-batch-ts"
    out = verify_hash_chain(
        (d / "ts-hashchainresult.xml").read_bytes(),
        (d / "ts-hashchain.xml").read_bytes(),
        {TS_DATA_REF: (d / "META-INF" / "signatures.xml").read_bytes()},
    )
    assert out.verified == (TS_DATA_REF,)


def _real_container(interop_dir: Path) -> dict[str, bytes]:
    asic = next((interop_dir / "asic" / "log-archives" / "unpacked" / "message-archive-0").glob("*.asice"))
    with zipfile.ZipFile(io.BytesIO(asic.read_bytes())) as zf:
        return {name: zf.read(name) for name in zf.namelist()}


def test_builder_reproduces_real_java_output_byte_for_byte(interop_dir: Path) -> None:
    """Rebuild the sig-hashchain of a real 2023 container (message + 3 attachments) from its digests."""
    entries = _real_container(interop_dir)
    chain = entries["sig-hashchain.xml"]
    refs = etree.fromstring(chain).iter(f"{{{HASHCHAIN_NS}}}DataRef")
    parts = [
        MessagePart(
            str(r.get("URI")), digest=base64.b64decode(r.findtext(f"{{{XMLDSIG_NS}}}DigestValue") or "")
        )
        for r in refs
    ]
    built = build_hash_chains([parts])
    assert built.chains == (chain,)
    assert built.result_xml == entries["sig-hashchainresult.xml"]
    out = verify_hash_chain(built.result_xml, chain, {"/message.xml": entries["message.xml"]})
    assert out.verified == ("/message.xml",)


def test_builder_reproduces_real_two_input_timestamp_chain(interop_dir: Path) -> None:
    d = interop_dir / "asic" / "asic-verifier-cli" / "unpacked" / "valid-batch-ts"
    chain = (d / "ts-hashchain.xml").read_bytes()
    root = etree.fromstring(chain)
    other = base64.b64decode(
        root.findtext(f".//{{{HASHCHAIN_NS}}}HashValue/{{{XMLDSIG_NS}}}DigestValue") or ""
    )
    mine = (d / "META-INF" / "signatures.xml").read_bytes()
    built = build_hash_chains(
        [[MessagePart("/other", digest=other)], [MessagePart(TS_DATA_REF, mine)]],
        hash_algorithm="SHA-256",
        chain_uri=TS_HASH_CHAIN,
    )
    assert built.result_xml.split(b"\n")[2:] == (d / "ts-hashchainresult.xml").read_bytes().split(b"\n")[2:]
    assert built.chains[1].split(b"\n")[2:] == chain.split(b"\n")[2:]


# --- DER --------------------------------------------------------------------------------------------------


class _Transforms(Sequence):  # type: ignore[misc]
    _fields: ClassVar[list[tuple[str, type]]] = []


class _SingleDigest(Sequence):  # type: ignore[misc]
    _fields: ClassVar[list[tuple[str, type]]] = [
        ("digest", OctetString),
        ("method", UTF8String),
        ("transforms", _Transforms),
    ]


class _DigestList(SequenceOf):  # type: ignore[misc]
    _child_spec = _SingleDigest


@given(st.lists(st.binary(min_size=0, max_size=300), min_size=0, max_size=5))
def test_digest_list_matches_asn1crypto(digests: list[bytes]) -> None:
    items = [(SHA512, d) for d in digests]
    expected = _DigestList(
        [{"digest": d, "method": SHA512, "transforms": _Transforms.load(b"\x30\x00")} for d in digests]
    ).dump(force=True)
    assert digest_list(items) == expected


# --- Built chains verify; tampering fails -----------------------------------------------------------------


def _inputs(rng: random.Random, n: int) -> list[list[MessagePart]]:
    out = []
    for i in range(n):
        parts = [MessagePart("/message.xml", f"<m{i}>{rng.random()}</m{i}>".encode())]
        parts += [
            MessagePart(f"/attachment{k}", rng.randbytes(rng.randint(0, 40)))
            for k in range(1, rng.randint(1, 3))
        ]
        out.append(parts)
    return out


def _data_of(parts: list[MessagePart]) -> dict[str, bytes | InputDigest | None]:
    return {p.name: p.data for p in parts}


@pytest.mark.parametrize("seed", range(40))
def test_every_chain_verifies_against_the_result(seed: int) -> None:
    rng = random.Random(seed)
    n = rng.randint(1, 64)
    inputs = _inputs(rng, n)
    if n == 1 and len(inputs[0]) == 1:
        with pytest.raises(XRoadError):
            build_hash_chains(inputs)
        return
    built = build_hash_chains(inputs, hash_algorithm=rng.choice(["SHA-256", "SHA-512"]))
    assert len(built.chains) == n
    for parts, chain in zip(inputs, built.chains, strict=True):
        out = verify_hash_chain(built.result_xml, chain, _data_of(parts))
        assert out.verified == tuple(p.name for p in parts)
        assert out.unverified == ()


@pytest.mark.parametrize("n", [2, 3, 5, 7, 8, 9, 17, 33, 64])
def test_tree_shapes(n: int) -> None:
    inputs = [[MessagePart("/message.xml", bytes([i]))] for i in range(n)]
    built = build_hash_chains(inputs)
    for i, chain in enumerate(built.chains):
        verify_hash_chain(built.result_xml, chain, {"/message.xml": bytes([i])})
        # a chain proves only its own message
        with pytest.raises(XRoadError) as err:
            verify_hash_chain(built.result_xml, chain, {"/message.xml": bytes([(i + 1) % n])})
        assert _code(err) == FaultCode.INVALID_HASH_CHAIN_REF


def test_single_input_without_attachments_is_refused() -> None:
    with pytest.raises(XRoadError):
        build_hash_chains([[MessagePart("/message.xml", b"x")]])
    with pytest.raises(XRoadError):
        build_hash_chains([])


def _flip(data: bytes, index: int) -> bytes:
    return data[:index] + bytes([data[index] ^ 0x01]) + data[index + 1 :]


@pytest.mark.parametrize("seed", range(6))
def test_flipping_any_input_byte_fails_with_invalid_ref(seed: int) -> None:
    rng = random.Random(seed)
    inputs = _inputs(rng, rng.randint(2, 9))
    built = build_hash_chains(inputs)
    which = rng.randrange(len(inputs))
    for part in inputs[which]:
        assert part.data is not None
        for index in range(len(part.data)):
            data = _data_of(inputs[which])
            data[part.name] = _flip(part.data, index)
            with pytest.raises(XRoadError) as err:
                verify_hash_chain(built.result_xml, built.chains[which], data)
            assert _code(err) == FaultCode.INVALID_HASH_CHAIN_REF


def _digest_value_spans(xml: bytes) -> list[tuple[int, int]]:
    spans, start = [], 0
    while (i := xml.find(b"<DigestValue>", start)) >= 0:
        j = xml.index(b"</DigestValue>", i)
        spans.append((i + len(b"<DigestValue>"), j))
        start = j
    return spans


def _tamper_b64(xml: bytes, span: tuple[int, int], byte: int) -> bytes:
    raw = bytearray(base64.b64decode(xml[span[0] : span[1]]))
    raw[byte] ^= 0x01
    return xml[: span[0]] + base64.b64encode(bytes(raw)) + xml[span[1] :]


@pytest.mark.parametrize("seed", range(4))
def test_flipping_chain_digest_values_fails(seed: int) -> None:
    rng = random.Random(seed)
    inputs = _inputs(rng, rng.randint(2, 12))
    built = build_hash_chains(inputs)
    which = rng.randrange(len(inputs))
    chain = built.chains[which]
    for span in _digest_value_spans(chain):
        for byte in rng.sample(range(64), 4):
            tampered = _tamper_b64(chain, span, byte)
            with pytest.raises(XRoadError) as err:
                verify_hash_chain(built.result_xml, tampered, _data_of(inputs[which]))
            # A DataRef digest no longer matches its data; a HashValue no longer leads to the result.
            assert _code(err) in (FaultCode.INVALID_HASH_CHAIN_REF, FaultCode.INVALID_HASH_CHAIN_RESULT)
    for byte in range(64):
        tampered = _tamper_b64(built.result_xml, _digest_value_spans(built.result_xml)[0], byte)
        with pytest.raises(XRoadError) as err:
            verify_hash_chain(tampered, chain, _data_of(inputs[which]))
        assert _code(err) == FaultCode.INVALID_HASH_CHAIN_RESULT


def test_hash_value_tamper_is_a_result_mismatch() -> None:
    inputs = [[MessagePart("/message.xml", bytes([i]))] for i in range(4)]
    built = build_hash_chains(inputs)
    chain = built.chains[0]
    root = etree.fromstring(chain)
    hv = root.find(f".//{{{HASHCHAIN_NS}}}HashValue/{{{XMLDSIG_NS}}}DigestValue")
    assert hv is not None
    assert hv.text
    hv.text = base64.b64encode(bytes(64)).decode()
    with pytest.raises(XRoadError) as err:
        verify_hash_chain(built.result_xml, etree.tostring(root), {"/message.xml": b"\x00"})
    assert _code(err) == FaultCode.INVALID_HASH_CHAIN_RESULT


def test_unused_inputs_and_wrong_uris() -> None:
    inputs = [
        [MessagePart("/message.xml", b"a"), MessagePart("/attachment1", b"b")],
        [MessagePart("/message.xml", b"c")],
    ]
    built = build_hash_chains(inputs)
    with pytest.raises(XRoadError) as err:
        verify_hash_chain(
            built.result_xml, built.chains[0], {"/message.xml": b"a", "/attachment1": b"b", "/x": b""}
        )
    assert _code(err) == FaultCode.HASHCHAIN_UNUSED_INPUTS
    # The result points at /sig-hashchain.xml#STEP0: a chain that lacks the step is malformed.
    bad = built.chains[0].replace(b'id="STEP0"', b'id="STEPX"')
    with pytest.raises(XRoadError) as err:
        verify_hash_chain(built.result_xml, bad, {})
    assert _code(err) == FaultCode.MALFORMED_HASH_CHAIN
    # A step reference to a document nobody gave is an unresolvable reference.
    other = built.chains[0].replace(b'URI="#STEP1"', b'URI="/elsewhere.xml#STEP1"')
    with pytest.raises(XRoadError) as err:
        verify_hash_chain(built.result_xml, other, {})
    assert _code(err) == FaultCode.INVALID_REFERENCE


def test_input_digest_with_other_algorithm_is_a_ref_error() -> None:
    built = build_hash_chains([[MessagePart("/message.xml", b"a"), MessagePart("/attachment1", b"b")]])
    with pytest.raises(XRoadError) as err:
        verify_hash_chain(
            built.result_xml,
            built.chains[0],
            {"/message.xml": InputDigest(hashlib.sha256(b"a").digest(), SHA256)},
        )
    assert _code(err) == FaultCode.INVALID_HASH_CHAIN_REF


# --- Hostile documents ------------------------------------------------------------------------------------


def _cyclic_chain() -> bytes:
    return (
        f'<ns2:HashChain xmlns="{XMLDSIG_NS}" xmlns:ns2="{HASHCHAIN_NS}">'
        f'<ns2:DefaultDigestMethod Algorithm="{SHA256}"/>'
        '<ns2:HashStep id="STEP0"><ns2:StepRef URI="#STEP1"/></ns2:HashStep>'
        '<ns2:HashStep id="STEP1"><ns2:StepRef URI="#STEP0"/></ns2:HashStep>'
        "</ns2:HashChain>"
    ).encode()


def _result(uri: str = "/hashchain.xml#STEP0") -> bytes:
    return (
        f'<ns2:HashChainResult URI="{uri}" xmlns="{XMLDSIG_NS}" xmlns:ns2="{HASHCHAIN_NS}">'
        f'<DigestMethod Algorithm="{SHA256}"/><DigestValue>AA==</DigestValue></ns2:HashChainResult>'
    ).encode()


def _deep_chain(depth: int) -> bytes:
    steps = "".join(
        f'<ns2:HashStep id="S{i}"><ns2:StepRef URI="#S{i + 1}"/></ns2:HashStep>' for i in range(depth)
    )
    return (
        f'<ns2:HashChain xmlns="{XMLDSIG_NS}" xmlns:ns2="{HASHCHAIN_NS}">'
        f'<ns2:DefaultDigestMethod Algorithm="{SHA256}"/>{steps}<ns2:HashStep id="S{depth}"/></ns2:HashChain>'
    ).encode()


def _wide_chain(width: int) -> bytes:
    """A step that references the next step ``width`` times, repeated: exponential without memoisation."""
    levels = 40
    steps = "".join(
        f'<ns2:HashStep id="S{i}">' + f'<ns2:StepRef URI="#S{i + 1}"/>' * width + "</ns2:HashStep>"
        for i in range(levels)
    )
    return (
        f'<ns2:HashChain xmlns="{XMLDSIG_NS}" xmlns:ns2="{HASHCHAIN_NS}">'
        f'<ns2:DefaultDigestMethod Algorithm="{SHA256}"/>{steps}'
        f'<ns2:HashStep id="S{levels}"/></ns2:HashChain>'
    ).encode()


def test_cycles_depth_and_size_are_bounded() -> None:
    with pytest.raises(XRoadError) as err:
        verify_hash_chain(_result(), _cyclic_chain(), {})
    assert _code(err) == FaultCode.MALFORMED_HASH_CHAIN
    with pytest.raises(XRoadError) as err:
        verify_hash_chain(_result("/hashchain.xml#S0"), _deep_chain(100), {})
    assert _code(err) == FaultCode.MALFORMED_HASH_CHAIN
    assert "deeper" in err.value.message
    # Memoised: a wide, repeated reference pattern resolves quickly and ends in a result mismatch.
    with pytest.raises(XRoadError) as err:
        verify_hash_chain(_result("/hashchain.xml#S0"), _wide_chain(8), {})
    assert _code(err) == FaultCode.INVALID_HASH_CHAIN_RESULT
    with pytest.raises(XRoadError) as err:
        verify_hash_chain(_result(), b"<a>" + b" " * MAX_XML_BYTES + b"</a>", {})
    assert _code(err) == FaultCode.MALFORMED_HASH_CHAIN
    assert MAX_STEPS >= 64


def test_xxe_and_dtd_are_refused(tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("top secret")
    xxe = (
        f'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x SYSTEM "file://{secret}">]>'
        f'<ns2:HashChainResult URI="/h.xml#STEP0" xmlns="{XMLDSIG_NS}" xmlns:ns2="{HASHCHAIN_NS}">'
        f'<DigestMethod Algorithm="{SHA256}"/><DigestValue>&x;</DigestValue></ns2:HashChainResult>'
    ).encode()
    with pytest.raises(XRoadError) as err:
        verify_hash_chain(xxe, _cyclic_chain(), {})
    assert _code(err) == FaultCode.MALFORMED_HASH_CHAIN
    assert "top secret" not in err.value.message


@pytest.mark.parametrize(
    "result",
    [
        b"",
        b"not xml",
        b"foobar\n",
        b"<HashChainResult/>",
        f'<ns2:HashChainResult xmlns:ns2="{HASHCHAIN_NS}"/>'.encode(),
        _result().replace(b"AA==", b"!!"),
        _result().replace(b"xmlenc#sha256", b"xmlenc#md5"),
    ],
)
def test_malformed_results(result: bytes) -> None:
    with pytest.raises(XRoadError) as err:
        verify_hash_chain(result, _cyclic_chain(), {})
    assert _code(err) == FaultCode.MALFORMED_HASH_CHAIN


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=2000), st.binary(max_size=2000))
def test_fuzz_parsers_raise_only_xroad_errors(result: bytes, chain: bytes) -> None:
    with contextlib.suppress(XRoadError):
        verify_hash_chain(result, chain, {"/message.xml": b"x"})


_TEMPLATE = build_hash_chains(
    [
        [MessagePart("/message.xml", b"a"), MessagePart("/attachment1", b"b")],
        [MessagePart("/message.xml", b"c")],
    ]
)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_fuzz_mutated_real_chains_raise_only_xroad_errors(data: st.DataObject) -> None:
    which = data.draw(st.sampled_from(["result", "chain"]))
    doc = _TEMPLATE.result_xml if which == "result" else _TEMPLATE.chains[0]
    pos = data.draw(st.integers(0, len(doc) - 1))
    length = data.draw(st.integers(0, 8))
    insert = data.draw(st.binary(max_size=8))
    mutated = doc[:pos] + insert + doc[pos + length :]
    result, chain = (mutated, _TEMPLATE.chains[0]) if which == "result" else (_TEMPLATE.result_xml, mutated)
    try:
        out = verify_hash_chain(result, chain, {"/message.xml": b"a", "/attachment1": b"b"})
    except XRoadError:
        return
    # A mutation that still verifies must not have changed what the chain binds.
    assert out.verified == ("/message.xml", "/attachment1")


def _chain_doc(steps: str) -> bytes:
    return (
        f'<ns2:HashChain xmlns="{XMLDSIG_NS}" xmlns:ns2="{HASHCHAIN_NS}">'
        f'<ns2:DefaultDigestMethod Algorithm="{SHA256}"/>{steps}</ns2:HashChain>'
    ).encode()


def test_step_and_value_counts_are_bounded() -> None:
    # A shallow tree of distinct steps (depth 11) with more steps than MAX_STEPS.
    count = 2 * MAX_STEPS + 1
    steps = "".join(
        f'<ns2:HashStep id="S{i}">'
        + "".join(f'<ns2:StepRef URI="#S{c}"/>' for c in (2 * i + 1, 2 * i + 2) if c < count)
        + "</ns2:HashStep>"
        for i in range(count)
    )
    with pytest.raises(XRoadError) as err:
        verify_hash_chain(_result("/hashchain.xml#S0"), _chain_doc(steps), {})
    assert _code(err) == FaultCode.MALFORMED_HASH_CHAIN
    assert "steps" in err.value.message
    # One step with more values than MAX_VALUES.
    wide = (
        '<ns2:HashStep id="S0">'
        + "<ns2:HashValue><DigestValue>AA==</DigestValue></ns2:HashValue>" * (MAX_VALUES + 1)
        + "</ns2:HashStep>"
    )
    with pytest.raises(XRoadError) as err:
        verify_hash_chain(_result("/hashchain.xml#S0"), _chain_doc(wide), {})
    assert _code(err) == FaultCode.MALFORMED_HASH_CHAIN
    assert "values" in err.value.message


def test_result_must_name_the_expected_chain_document() -> None:
    # Review finding 1d: X-Road's URI resolvers serve only /sig-hashchain.xml (signature) or
    # /ts-hashchain.xml (time-stamp); a result naming any other document is malformed there.
    parts = [MessagePart("/message.xml", b"<m/>"), MessagePart("/attachment1", b"a")]
    built = build_hash_chains([parts], chain_uri="/hashchain.xml")
    data: Inputs = {"/message.xml": b"<m/>", "/attachment1": b"a"}
    assert verify_hash_chain(built.result_xml, built.chains[0], data).verified
    assert verify_hash_chain(
        built.result_xml, built.chains[0], data, expected_chain_uri="/hashchain.xml"
    ).verified
    for expected in (SIG_HASH_CHAIN, TS_HASH_CHAIN):
        with pytest.raises(XRoadError) as e:
            verify_hash_chain(built.result_xml, built.chains[0], data, expected_chain_uri=expected)
        assert e.value.has_code(FaultCode.MALFORMED_HASH_CHAIN)
    sig = build_hash_chains([parts], chain_uri=SIG_HASH_CHAIN)
    assert verify_hash_chain(sig.result_xml, sig.chains[0], data, expected_chain_uri=SIG_HASH_CHAIN).verified

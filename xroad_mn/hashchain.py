"""X-Road hash chains (BATCH-TS): one Merkle tree over many messages, a ``HashChain`` per message.

X-Road signs (batch signatures) and time-stamps (batch time-stamps) the root of a Merkle tree instead of
each message. The root travels as ``HashChainResult`` XML (``sig-hashchainresult.xml``,
``ts-hashchainresult.xml``); each message carries the path from the root to its own leaf as ``HashChain``
XML (``sig-hashchain.xml``, ``ts-hashchain.xml``). A step's value is the hash of a DER ``DigestList``; see
:func:`digest_list`.

Build the chains for three messages, the second with an attachment, and verify one of them::

    >>> from xroad_mn.hashchain import MessagePart, build_hash_chains, verify_hash_chain
    >>> built = build_hash_chains(
    ...     [
    ...         [MessagePart("/message.xml", b"<a/>")],
    ...         [MessagePart("/message.xml", b"<b/>"), MessagePart("/attachment1", b"file")],
    ...         [MessagePart("/message.xml", b"<c/>")],
    ...     ],
    ...     chain_uri="/sig-hashchain.xml",
    ... )
    >>> built.result_xml.splitlines()[1][:47]
    b'<ns2:HashChainResult URI="/sig-hashchain.xml#ST'
    >>> checked = verify_hash_chain(
    ...     built.result_xml, built.chains[1], {"/message.xml": b"<b/>", "/attachment1": b"file"}
    ... )
    >>> checked.verified
    ('/message.xml', '/attachment1')

Verification follows X-Road's ``HashChainVerifier``: every input the caller names must be referenced by
the chain (``hashchain_unused_inputs``); a data reference whose data the caller does not have (value
``None``, or a URI the caller does not name) is *unverified*, not invalid, and is listed in the result;
wrong data gives ``invalid_hash_chain_ref``; a chain that does not lead to the signed result gives
``invalid_hash_chain_result``; anything that is not a well-formed hash chain gives ``malformed_hash_chain``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Final

from lxml import etree

from xroad_mn import xmlsafe
from xroad_mn.errors import FaultCode, XRoadError

__all__ = [
    "DEFAULT_HASH_ALGORITHM",
    "DIGEST_URIS",
    "HASHCHAIN_NS",
    "MAX_DEPTH",
    "MAX_INPUTS",
    "MAX_STEPS",
    "MAX_VALUES",
    "MAX_XML_BYTES",
    "SIG_HASH_CHAIN",
    "SIG_HASH_CHAIN_RESULT",
    "TS_DATA_REF",
    "TS_HASH_CHAIN",
    "TS_HASH_CHAIN_RESULT",
    "XMLDSIG_NS",
    "HashChainVerification",
    "HashChains",
    "InputDigest",
    "MessagePart",
    "algorithm_uri",
    "build_hash_chains",
    "digest_list",
    "verify_hash_chain",
]

HASHCHAIN_NS: Final = "http://cyber.ee/hashchain"
XMLDSIG_NS: Final = "http://www.w3.org/2000/09/xmldsig#"

SIG_HASH_CHAIN: Final = "/sig-hashchain.xml"
SIG_HASH_CHAIN_RESULT: Final = "/sig-hashchainresult.xml"
TS_HASH_CHAIN: Final = "/ts-hashchain.xml"
TS_HASH_CHAIN_RESULT: Final = "/ts-hashchainresult.xml"
TS_DATA_REF: Final = "/META-INF/signatures.xml"
"""The data reference of every batch time-stamp hash chain: the signature of the logged message."""

DEFAULT_HASH_ALGORITHM: Final = "SHA-512"

MAX_XML_BYTES: Final = 1024 * 1024
"""Largest hash-chain or hash-chain-result document read; a real one is a few kilobytes."""
MAX_DEPTH: Final = 64
"""Longest chain of step references followed (X-Road's ``MAX_DEPTH``); 64 levels cover 2**64 messages."""
MAX_STEPS: Final = 1024
"""Most hash steps resolved in one verification (X-Road's ``MAX_STEPS``)."""
MAX_VALUES: Final = 10_000
"""Most values (HashValue, StepRef, DataRef) resolved in one verification (X-Road's ``MAX_VALUES``)."""
MAX_INPUTS: Final = 1 << 20
"""Most inputs one tree is built over; X-Road batches at most 10 000 records."""

DIGEST_URIS: Final[Mapping[str, str]] = {
    "http://www.w3.org/2000/09/xmldsig#sha1": "sha1",
    "http://www.w3.org/2001/04/xmlenc#sha256": "sha256",
    "http://www.w3.org/2001/04/xmldsig-more#sha384": "sha384",
    "http://www.w3.org/2001/04/xmlenc#sha384": "sha384",
    "http://www.w3.org/2001/04/xmlenc#sha512": "sha512",
}
"""Digest-method URIs X-Road writes into hash chains, and the hashlib name of each."""

_NAME_TO_URI: Final[Mapping[str, str]] = {
    "SHA-1": "http://www.w3.org/2000/09/xmldsig#sha1",
    "SHA-256": "http://www.w3.org/2001/04/xmlenc#sha256",
    "SHA-384": "http://www.w3.org/2001/04/xmldsig-more#sha384",
    "SHA-512": "http://www.w3.org/2001/04/xmlenc#sha512",
}

_C14N: Final[Mapping[str, tuple[bool, bool]]] = {
    # algorithm URI -> (exclusive, with_comments)
    "http://www.w3.org/TR/2001/REC-xml-c14n-20010315": (False, False),
    "http://www.w3.org/TR/2001/REC-xml-c14n-20010315#WithComments": (False, True),
    "http://www.w3.org/2001/10/xml-exc-c14n#": (True, False),
    "http://www.w3.org/2001/10/xml-exc-c14n#WithComments": (True, True),
}

_STEP: Final = "STEP"
_HC: Final = f"{{{HASHCHAIN_NS}}}"
_DS: Final = f"{{{XMLDSIG_NS}}}"


def algorithm_uri(name: str) -> str:
    """The digest-method URI of a hash algorithm named as X-Road names it (``SHA-512``) or by URI."""
    if name in DIGEST_URIS:
        return name
    key = name.strip().upper().replace("_", "-")
    if key.startswith("SHA") and not key.startswith("SHA-"):
        key = "SHA-" + key[3:]
    try:
        return _NAME_TO_URI[key]
    except KeyError:
        raise XRoadError(FaultCode.INTERNAL_ERROR, f"unsupported hash algorithm {name!r}") from None


def _hash(method_uri: str, data: bytes) -> bytes:
    try:
        name = DIGEST_URIS[method_uri]
    except KeyError:
        raise XRoadError(
            FaultCode.MALFORMED_HASH_CHAIN, f"unsupported digest method {method_uri!r}"
        ) from None
    return hashlib.new(name, data).digest()


# --- DER ---------------------------------------------------------------------------------------------------


def _der(tag: int, content: bytes) -> bytes:
    n = len(content)
    if n < 0x80:
        length = bytes([n])
    else:
        raw = n.to_bytes((n.bit_length() + 7) // 8, "big")
        length = bytes([0x80 | len(raw)]) + raw
    return bytes([tag]) + length + content


def digest_list(items: Sequence[tuple[str, bytes]]) -> bytes:
    """DER ``DigestList`` of ``(digest-method URI, digest)`` pairs, in order.

    ``DigestList ::= SEQUENCE OF SingleDigest``;
    ``SingleDigest ::= SEQUENCE { digest OCTET STRING, digestMethod UTF8String, transforms SEQUENCE {} }``.
    """
    singles = b"".join(
        _der(0x30, _der(0x04, digest) + _der(0x0C, uri.encode("utf-8")) + _der(0x30, b""))
        for uri, digest in items
    )
    return _der(0x30, singles)


def _digest_step(method_uri: str, *digests: bytes) -> bytes:
    return _hash(method_uri, digest_list([(method_uri, d) for d in digests]))


# --- Building ----------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class MessagePart:
    """One part of a message: its DataRef URI (``/message.xml``, ``/attachment1``) and its data or digest.

    ``digest`` is a precomputed digest in the tree's hash algorithm; when it is absent the digest of
    ``data`` is computed.
    """

    name: str
    data: bytes | None = None
    digest: bytes | None = None

    def digest_with(self, method_uri: str) -> bytes:
        """The part's digest under ``method_uri``."""
        if self.digest is not None:
            return self.digest
        if self.data is None:
            raise XRoadError(
                FaultCode.INTERNAL_ERROR, f"message part {self.name!r} has neither data nor digest"
            )
        return _hash(method_uri, self.data)


@dataclass(frozen=True, slots=True)
class HashChains:
    """The outcome of :func:`build_hash_chains`: the shared result and one chain per input, in input order."""

    result_xml: bytes
    chains: tuple[bytes, ...]
    tree_top: bytes
    digest_method: str


def _escape_attr(value: str) -> str:
    return value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


_XML_DECL: Final = '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
_NS_DECL: Final = f'xmlns="{XMLDSIG_NS}" xmlns:ns2="{HASHCHAIN_NS}"'


@dataclass(frozen=True, slots=True)
class _Value:
    kind: str  # "HashValue" | "StepRef" | "DataRef"
    digest: bytes = b""
    uri: str = ""

    def render(self) -> str:
        if self.kind == "StepRef":
            return f'        <ns2:StepRef URI="{_escape_attr(self.uri)}"/>\n'
        open_tag = (
            f'<ns2:DataRef URI="{_escape_attr(self.uri)}">' if self.kind == "DataRef" else "<ns2:HashValue>"
        )
        return (
            f"        {open_tag}\n"
            f"            <DigestValue>{_b64(self.digest)}</DigestValue>\n"
            f"        </ns2:{self.kind}>\n"
        )


def _render_chain(method_uri: str, steps: Sequence[Sequence[_Value]]) -> bytes:
    out = [_XML_DECL, f"<ns2:HashChain {_NS_DECL}>\n"]
    out.append(f'    <ns2:DefaultDigestMethod Algorithm="{_escape_attr(method_uri)}"/>\n')
    for i, values in enumerate(steps):
        out.append(f'    <ns2:HashStep id="{_STEP}{i}">\n')
        out.extend(v.render() for v in values)
        out.append("    </ns2:HashStep>\n")
    out.append("</ns2:HashChain>\n")
    return "".join(out).encode("utf-8")


def _render_result(method_uri: str, chain_uri: str, top: bytes) -> bytes:
    return (
        f'{_XML_DECL}<ns2:HashChainResult URI="{_escape_attr(chain_uri)}#{_STEP}0" {_NS_DECL}>\n'
        f'    <DigestMethod Algorithm="{_escape_attr(method_uri)}"/>\n'
        f"    <DigestValue>{_b64(top)}</DigestValue>\n"
        "</ns2:HashChainResult>\n"
    ).encode()


@dataclass
class _Tree:
    """X-Road's Merkle tree layout: ``nodes`` (internal) then ``inputs`` (leaves) as one heap array."""

    method: str
    inputs: list[bytes]
    nodes: list[bytes | None] = field(default_factory=list)
    max_index: int = 0

    def build(self) -> None:
        n = len(self.inputs)
        self.nodes = [None] * ((1 << _ceil_log2(n)) - 1)
        if n < 2:
            return
        self.max_index = len(self.nodes) + n
        # Hash input pairs into the lowest level of internal nodes.
        for i in range(0, n - 1, 2):
            self.nodes[_parent(len(self.nodes) + i)] = _digest_step(
                self.method, self.inputs[i], self.inputs[i + 1]
            )
        # Hash internal nodes bottom-up, each level left to right, stopping at the first gap.
        level_start = len(self.nodes) // 2
        while level_start > 0:
            i = level_start
            while i < level_start * 2:
                left, right = self.nodes[i], self.nodes[i + 1]
                if left is None or right is None:
                    break
                self.nodes[_parent(i)] = _digest_step(self.method, left, right)
                i += 2
            level_start //= 2
        self._fix(0)

    def get(self, index: int) -> bytes | None:
        if index < len(self.nodes):
            return self.nodes[index]
        if index < self.max_index:
            return self.inputs[index - len(self.nodes)]
        return None

    def get_deep(self, index: int) -> bytes | None:
        value = self.get(index)
        while value is None and index < self.max_index:
            index = _child(index, 0)
            value = self.get(index)
        return value

    def _fix(self, index: int) -> bytes | None:
        """Fill the internal nodes of an incomplete tree; a node with one child takes that child's value."""
        if index >= self.max_index:
            return None
        existing = self.get(index)
        if existing is not None:
            return existing
        left = self.get(_child(index, 0))
        if left is None:
            return self._fix(_child(index, 0))
        right = self._fix(_child(index, 1))
        if right is None:
            return left
        value = _digest_step(self.method, left, right)
        self.nodes[index] = value
        return value

    def top(self) -> bytes:
        if len(self.inputs) == 1:
            return self.inputs[0]
        root = self.nodes[0]
        assert root is not None
        return root


def _ceil_log2(n: int) -> int:
    return (n - 1).bit_length()


def _parent(index: int) -> int:
    return (index - 1) // 2


def _child(index: int, direction: int) -> int:
    return 2 * index + 1 + direction


def build_hash_chains(
    inputs: Sequence[Sequence[MessagePart]],
    *,
    hash_algorithm: str = DEFAULT_HASH_ALGORITHM,
    chain_uri: str = SIG_HASH_CHAIN,
) -> HashChains:
    """Build the Merkle tree over ``inputs`` and the X-Road XML for its result and each input's chain.

    Each input is one message: a single part (its digest is the leaf and its chain ends in a ``DataRef``) or
    several parts (message plus attachments: the leaf is the hash of the parts' ``DigestList`` and the chain
    ends in a step of ``DataRef`` s, one per part). The ``DataRef`` URI of each part is its ``name``.
    ``chain_uri`` names the file that will hold the chains (``/sig-hashchain.xml``, ``/ts-hashchain.xml``).
    As in X-Road, a single message without attachments needs no hash chain and is refused.
    """
    method = algorithm_uri(hash_algorithm)
    if not inputs:
        raise XRoadError(FaultCode.INTERNAL_ERROR, "a hash chain needs at least one input")
    if len(inputs) > MAX_INPUTS:
        raise XRoadError(FaultCode.INTERNAL_ERROR, f"too many hash-chain inputs (more than {MAX_INPUTS})")
    leaves: list[bytes] = []
    multiparts: dict[int, list[tuple[str, bytes]]] = {}
    for i, parts in enumerate(inputs):
        if not parts:
            raise XRoadError(FaultCode.INTERNAL_ERROR, f"hash-chain input {i} has no parts")
        digests = [(p.name, p.digest_with(method)) for p in parts]
        if len(digests) == 1:
            leaves.append(digests[0][1])
        else:
            leaves.append(_digest_step(method, *(d for _, d in digests)))
            multiparts[i] = digests
    if len(leaves) == 1 and not multiparts:
        raise XRoadError(
            FaultCode.INTERNAL_ERROR,
            "a single input without attachments is signed directly, not hash-chained",
        )
    tree = _Tree(method, leaves)
    tree.build()
    single_refs = {i: parts[0].name for i, parts in enumerate(inputs) if i not in multiparts}
    chains = tuple(_chain_for(tree, i, multiparts.get(i), single_refs.get(i, "")) for i in range(len(leaves)))
    return HashChains(_render_result(method, chain_uri, tree.top()), chains, tree.top(), method)


def _multipart_step(parts: Sequence[tuple[str, bytes]]) -> list[_Value]:
    return [_Value("DataRef", digest, name) for name, digest in parts]


def _chain_for(tree: _Tree, item: int, parts: Sequence[tuple[str, bytes]] | None, data_ref: str) -> bytes:
    steps: list[list[_Value]] = []
    if len(tree.inputs) > 1:
        node = 0
        level = _ceil_log2(len(tree.inputs)) - 1
        while node < len(tree.nodes):
            direction = (item >> level) & 1 if level >= 0 else 0
            mine = _child(node, direction)
            other = _child(node, 1 - direction)
            # Promoted (missing) nodes are skipped by always descending to the left.
            while tree.get(mine) is None:
                mine = _child(mine, 0)
                level -= 1
            other_value = tree.get_deep(other)
            assert other_value is not None
            is_leaf = mine >= len(tree.nodes)
            if is_leaf and parts is None:
                mine_value = tree.get(mine)
                assert mine_value is not None
                my_data = _Value("DataRef", mine_value, data_ref)
            else:
                my_data = _Value("StepRef", uri=f"#{_STEP}{len(steps) + 1}")
            pair = [my_data, _Value("HashValue", other_value)]
            steps.append(pair if direction == 0 else pair[::-1])
            node = mine
            level -= 1
    if parts is not None:
        steps.append(_multipart_step(parts))
    return _render_chain(tree.method, steps)


# --- Verification ------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class InputDigest:
    """An input given by its digest instead of its data (X-Road's ``DigestValue`` input)."""

    digest: bytes
    method_uri: str = _NAME_TO_URI[DEFAULT_HASH_ALGORITHM]


@dataclass(frozen=True, slots=True)
class HashChainVerification:
    """What a successful :func:`verify_hash_chain` established.

    ``verified``: data references whose digest was recomputed from the caller's data or taken from the
    caller's digest. ``unverified``: data references whose data was not available (the caller passed ``None``
    or did not name the URI); their digest was taken from the chain itself. Both in document order.
    """

    digest_method: str
    digest_value: bytes
    verified: tuple[str, ...]
    unverified: tuple[str, ...]

    def require_complete(self) -> None:
        """Raise ``invalid_hash_chain_ref`` unless every data reference was verified."""
        if self.unverified:
            raise XRoadError(
                FaultCode.INVALID_HASH_CHAIN_REF,
                "hash chain references data that was not available: " + ", ".join(self.unverified),
            )


@dataclass(frozen=True, slots=True)
class _ParsedValue:
    kind: str
    uri: str | None
    method: str | None
    digest: bytes | None
    transforms: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class _ParsedChain:
    default_method: str | None
    steps: Mapping[str, tuple[_ParsedValue, ...]]


def _malformed(message: str) -> XRoadError:
    return XRoadError(FaultCode.MALFORMED_HASH_CHAIN, message)


def _parse_xml(data: bytes, what: str) -> etree._Element:
    return xmlsafe.parse(
        data, code=FaultCode.MALFORMED_HASH_CHAIN, what=what, max_bytes=MAX_XML_BYTES, remove_comments=True
    )


def _children(element: etree._Element, what: str) -> list[etree._Element]:
    """Element children; text other than whitespace, processing instructions and entities are refused."""
    if element.text is not None and element.text.strip():
        raise _malformed(f"{what} contains unexpected text")
    out: list[etree._Element] = []
    for child in element:
        if not isinstance(child.tag, str):
            raise _malformed(f"{what} contains an unexpected node")
        if child.tail is not None and child.tail.strip():
            raise _malformed(f"{what} contains unexpected text")
        out.append(child)
    return out


def _check_attributes(element: etree._Element, allowed: frozenset[str], what: str) -> None:
    for name in element.attrib:
        if name not in allowed:
            raise _malformed(f"{what} has an unexpected attribute {name!r}")


def _required_attr(element: etree._Element, name: str, what: str) -> str:
    value = element.get(name)
    if value is None:
        raise _malformed(f"{what} has no {name} attribute")
    return value


def _digest_method(element: etree._Element) -> str:
    _check_attributes(element, frozenset({"Algorithm"}), "DigestMethod")
    return _required_attr(element, "Algorithm", "DigestMethod")


def _digest_value(element: etree._Element) -> bytes:
    _check_attributes(element, frozenset(), "DigestValue")
    if len(element):
        raise _malformed("DigestValue must contain only base64 text")
    text = "".join((element.text or "").split())
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as e:
        raise _malformed(f"DigestValue is not base64: {e}") from e


def _transforms(element: etree._Element) -> tuple[str, ...]:
    _check_attributes(element, frozenset(), "Transforms")
    out: list[str] = []
    for child in _children(element, "Transforms"):
        if child.tag != f"{_DS}Transform":
            raise _malformed(f"unexpected element {child.tag} in Transforms")
        out.append(_required_attr(child, "Algorithm", "Transform"))
    if not out:
        raise _malformed("Transforms has no Transform")
    return tuple(out)


def _parse_value(element: etree._Element) -> _ParsedValue:
    kind = etree.QName(element).localname
    uri = element.get("URI")
    if kind in ("StepRef", "DataRef"):
        _check_attributes(element, frozenset({"URI"}), kind)
        uri = _required_attr(element, "URI", kind)
    else:
        _check_attributes(element, frozenset(), kind)
    children = _children(element, kind)
    pos = 0
    method: str | None = None
    transforms: tuple[str, ...] = ()
    digest: bytes | None = None
    if pos < len(children) and children[pos].tag == f"{_DS}DigestMethod":
        method = _digest_method(children[pos])
        pos += 1
    if kind != "StepRef":
        if pos < len(children) and children[pos].tag == f"{_DS}Transforms":
            transforms = _transforms(children[pos])
            pos += 1
        if pos >= len(children) or children[pos].tag != f"{_DS}DigestValue":
            raise _malformed(f"{kind} has no DigestValue")
        digest = _digest_value(children[pos])
        pos += 1
    if pos != len(children):
        raise _malformed(f"unexpected element {children[pos].tag} in {kind}")
    return _ParsedValue(kind, uri, method, digest, transforms)


_VALUE_TAGS: Final = frozenset({f"{_HC}HashValue", f"{_HC}StepRef", f"{_HC}DataRef"})


def _parse_chain(data: bytes, uri: str) -> _ParsedChain:
    root = _parse_xml(data, f"hash chain {uri}")
    if root.tag != f"{_HC}HashChain":
        raise _malformed(f"hash chain {uri} has root {root.tag}, expected {{{HASHCHAIN_NS}}}HashChain")
    _check_attributes(root, frozenset(), "HashChain")
    children = _children(root, "HashChain")
    default: str | None = None
    pos = 0
    if children and children[0].tag == f"{_HC}DefaultDigestMethod":
        default = _digest_method(children[0])
        pos = 1
    steps: dict[str, tuple[_ParsedValue, ...]] = {}
    for step in children[pos:]:
        if step.tag != f"{_HC}HashStep":
            raise _malformed(f"unexpected element {step.tag} in HashChain")
        _check_attributes(step, frozenset({"id"}), "HashStep")
        step_id = step.get("id")
        values: list[_ParsedValue] = []
        for value in _children(step, "HashStep"):
            if value.tag not in _VALUE_TAGS:
                raise _malformed(f"unexpected element {value.tag} in HashStep")
            values.append(_parse_value(value))
        if step_id is None:
            continue  # unreachable by reference, as in X-Road
        if step_id in steps:
            raise _malformed(f"duplicate hash step id {step_id!r}")
        steps[step_id] = tuple(values)
    return _ParsedChain(default, steps)


def _parse_result(data: bytes) -> tuple[str, str, bytes]:
    root = _parse_xml(data, "hash chain result")
    if root.tag != f"{_HC}HashChainResult":
        raise _malformed(f"hash chain result has root {root.tag}, expected {{{HASHCHAIN_NS}}}HashChainResult")
    _check_attributes(root, frozenset({"URI"}), "HashChainResult")
    uri = _required_attr(root, "URI", "HashChainResult")
    children = _children(root, "HashChainResult")
    if (
        len(children) != 2
        or children[0].tag != f"{_DS}DigestMethod"
        or children[1].tag != f"{_DS}DigestValue"
    ):
        raise _malformed("HashChainResult must hold DigestMethod and DigestValue")
    return uri, _digest_method(children[0]), _digest_value(children[1])


def _canonicalize(data: bytes, algorithm: str, uri: str) -> bytes:
    exclusive, with_comments = _C14N[algorithm]
    try:
        root = etree.fromstring(data, xmlsafe.parser())
    except (etree.XMLSyntaxError, ValueError) as e:
        raise XRoadError(
            FaultCode.INVALID_HASH_CHAIN_REF, f"data of {uri} is not XML, cannot canonicalize it: {e}"
        ) from e
    return bytes(
        etree.tostring(root.getroottree(), method="c14n", exclusive=exclusive, with_comments=with_comments)
    )


def _split_uri(uri: str) -> tuple[str, str | None]:
    base, sep, fragment = uri.partition("#")
    return (base, fragment) if sep else (uri, None)


@dataclass
class _Verifier:
    documents: Mapping[str, bytes]
    inputs: Mapping[str, bytes | InputDigest | None]
    chains: dict[str, _ParsedChain] = field(default_factory=dict)
    memo: dict[str, bytes] = field(default_factory=dict)
    active: set[str] = field(default_factory=set)
    steps_resolved: int = 0
    values_resolved: int = 0
    used: set[str] = field(default_factory=set)
    verified: list[str] = field(default_factory=list)
    unverified: list[str] = field(default_factory=list)

    def chain(self, base: str) -> _ParsedChain:
        parsed = self.chains.get(base)
        if parsed is None:
            data = self.documents.get(base)
            if data is None:
                raise XRoadError(FaultCode.INVALID_REFERENCE, f"cannot resolve hash chain URI {base!r}")
            parsed = _parse_chain(data, base)
            self.chains[base] = parsed
        return parsed

    def resolve_step(self, uri: str, current: str | None) -> bytes:
        base, fragment = _split_uri(uri)
        if not fragment:
            raise _malformed(f"invalid hash step URI {uri!r}")
        if not base:
            if current is None:
                raise _malformed(f"hash chain result URI {uri!r} names no hash chain")
            base = current
        full = f"{base}#{fragment}"
        if full in self.memo:
            return self.memo[full]
        if full in self.active:
            raise _malformed(f"cycle in hash chain at step {full}")
        if len(self.active) >= MAX_DEPTH:
            raise _malformed(f"hash chain is deeper than {MAX_DEPTH} steps")
        if self.steps_resolved >= MAX_STEPS:
            raise _malformed(f"hash chain has more than {MAX_STEPS} steps")
        self.active.add(full)
        self.steps_resolved += 1
        try:
            chain = self.chain(base)
            values = chain.steps.get(fragment)
            if values is None:
                raise _malformed(f"invalid hash step URI {uri!r}: no such step")
            if len(values) > MAX_VALUES - self.values_resolved:
                raise _malformed(f"hash chain has more than {MAX_VALUES} values")
            self.values_resolved += len(values)
            digests = [self.resolve_value(v, chain, base) for v in values]
            result = digest_list(digests)
        finally:
            self.active.discard(full)
        self.memo[full] = result
        return result

    def method_of(self, value: _ParsedValue, chain: _ParsedChain) -> str:
        method = value.method or chain.default_method
        if method is None:
            raise _malformed(f"{value.kind} has no DigestMethod and the chain has no DefaultDigestMethod")
        if method not in DIGEST_URIS:
            raise _malformed(f"unsupported digest method {method!r}")
        return method

    def resolve_value(self, value: _ParsedValue, chain: _ParsedChain, base: str) -> tuple[str, bytes]:
        method = self.method_of(value, chain)
        if value.kind == "HashValue":
            assert value.digest is not None
            return method, value.digest
        assert value.uri is not None
        if value.kind == "StepRef":
            return method, _hash(method, self.resolve_step(value.uri, base))
        return method, self.resolve_data_ref(value, method)

    def resolve_data_ref(self, value: _ParsedValue, method: str) -> bytes:
        assert value.uri is not None
        assert value.digest is not None
        uri = value.uri
        if uri not in self.inputs:
            self.unverified.append(uri)
            return value.digest
        self.used.add(uri)
        given = self.inputs[uri]
        if given is None:
            self.unverified.append(uri)
            return value.digest
        if isinstance(given, InputDigest):
            if given.method_uri != method:
                raise XRoadError(
                    FaultCode.INVALID_HASH_CHAIN_REF,
                    f"input {uri} is given as a {given.method_uri} digest, the chain uses {method}",
                )
            self.verified.append(uri)
            return given.digest
        data = given
        for algorithm in value.transforms:
            if algorithm not in _C14N:
                raise _malformed(f"unsupported transform {algorithm!r} on {uri}")
            data = _canonicalize(data, algorithm, uri)
        digest = _hash(method, data)
        if digest != value.digest:
            raise XRoadError(
                FaultCode.INVALID_HASH_CHAIN_REF, f"invalid digest value in hash chain reference to {uri}"
            )
        self.verified.append(uri)
        return digest


def verify_hash_chain(
    result_xml: bytes,
    chain_xml: bytes,
    inputs: Mapping[str, bytes | InputDigest | None],
    *,
    other_chains: Mapping[str, bytes] | None = None,
    expected_chain_uri: str | None = None,
) -> HashChainVerification:
    """Verify that ``inputs`` are bound by ``chain_xml`` to the (signed or time-stamped) ``result_xml``.

    ``inputs`` maps DataRef URIs (``/message.xml``, ``/attachment1``, ``/META-INF/signatures.xml``) to the
    data (bytes, after which any c14n transform on the reference is applied), to an :class:`InputDigest`, or
    to ``None`` when the data is known to be absent. ``chain_xml`` is the document the result's URI names;
    ``other_chains`` maps further chain URIs (``/hashchain2.xml``) to their documents.
    ``expected_chain_uri`` pins the document the result must name (``/sig-hashchain.xml`` for a batch
    signature, ``/ts-hashchain.xml`` for a batch time-stamp), as X-Road's URI resolvers only serve that one.

    Steps: 1. parse the result (``malformed_hash_chain``); 2. resolve the step it names, recursively,
    hashing each DataRef's data (``invalid_hash_chain_ref``) under hard bounds; 3. compare the digest of the
    first step with the result (``invalid_hash_chain_result``); 4. check that every input was referenced
    (``hashchain_unused_inputs``).
    """
    # 1. The result and where it points.
    uri, method, expected = _parse_result(result_xml)
    if method not in DIGEST_URIS:
        raise _malformed(f"unsupported digest method {method!r} in hash chain result")
    base, _ = _split_uri(uri)
    if expected_chain_uri is not None and base != expected_chain_uri:
        raise _malformed(f"hash chain result names {base!r}, expected {expected_chain_uri!r}")
    documents = dict(other_chains or {})
    documents[base] = chain_xml
    verifier = _Verifier(documents, inputs)
    # 2. Resolve the chain from the step the result names.
    step = verifier.resolve_step(uri, None)
    # 3. The chain must lead to the result.
    if _hash(method, step) != expected:
        raise XRoadError(
            FaultCode.INVALID_HASH_CHAIN_RESULT, "hash chain result does not match hash chain calculation"
        )
    # 4. Every input the caller named must be referenced.
    unused = sorted(set(inputs) - verifier.used)
    if unused:
        raise XRoadError(
            FaultCode.HASHCHAIN_UNUSED_INPUTS,
            "some inputs were not referenced by the hash chain: " + ", ".join(unused),
        )
    return HashChainVerification(method, expected, tuple(verifier.verified), tuple(verifier.unverified))

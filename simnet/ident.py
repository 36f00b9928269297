"""Identifiers the registry and pages carry: USCC, IDN names, badge codes, verification ids, numbers."""

from __future__ import annotations

import functools
import hashlib

import idna

USCC_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
USCC_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)
ORG_WEIGHTS = (3, 7, 9, 10, 5, 8, 4, 2)

# Unit kinds as the registry writes them.
PARTY = "党政机关"
INSTITUTION = "事业单位"

ZH_GOV = "政务"  # xn--zfr164b
ZH_PUBLIC = "公益"  # xn--55qw42g


def org_code(seq: int) -> str:
    """A 9-character organisation code (GB 11714) with its check character, from a sequence number."""
    body = f"{seq % 10**8:08d}"
    total = sum(int(c) * w for c, w in zip(body, ORG_WEIGHTS, strict=True))
    check = 11 - total % 11
    return body + ("X" if check == 10 else "0" if check == 11 else str(check))


def uscc_check(first17: str) -> str:
    """The GB 32100 check character for the first 17 characters."""
    total = sum(USCC_ALPHABET.index(c) * w for c, w in zip(first17, USCC_WEIGHTS, strict=True))
    return USCC_ALPHABET[(31 - total % 31) % 31]


@functools.lru_cache(maxsize=16384)
def make_uscc(kind: str, division: str, seq: int) -> str:
    """A valid USCC: registered by 机构编制 (1), category 1 (党政机关) or 2 (事业单位)."""
    category = "1" if kind == PARTY else "2"
    first17 = "1" + category + division + org_code(seq)
    return first17 + uscc_check(first17)


def uscc_valid(code: str) -> bool:
    """True when ``code`` is 18 characters of the alphabet with the right check character."""
    return len(code) == 18 and all(c in USCC_ALPHABET for c in code) and uscc_check(code[:17]) == code[17]


def to_ascii(name: str) -> str:
    """The A-label form of a host name (IDNA 2008 with UTS #46), lower case."""
    if name.isascii():
        # Plain host names need no mapping; only the checks idna would do for them matter here.
        lowered = name.lower()
        if all(
            0 < len(p) <= 63
            and p.replace("-", "").isalnum()
            and not p.startswith("-")
            and not p.endswith("-")
            for p in lowered.split(".")
        ):
            return lowered
    labels = name.split(".")
    if all(_plain_cjk(label) or (label.isascii() and label.replace("-", "").isalnum()) for label in labels):
        # Common CJK ideographs are PVALID and unchanged by UTS #46: punycode them directly (the idna
        # package does the same after checks that cannot fail for these characters).
        out = [label.lower() if label.isascii() else _punycode_label(label) for label in labels]
        if all(0 < len(p) <= 63 for p in out):
            return ".".join(out)
    return idna.encode(name, uts46=True).decode("ascii").lower()


@functools.lru_cache(maxsize=1024)
def _punycode_label(label: str) -> str:
    # Cached per label: suffixes such as 政务 recur in every name.
    return "xn--" + label.encode("punycode").decode("ascii")


def _plain_cjk(label: str) -> bool:
    """Common CJK ideographs, optionally with lower-case ASCII letters and digits (no hyphens)."""
    return (
        bool(label)
        and not label.isascii()
        and all("\u4e00" <= c <= "\u9fff" or "0" <= c <= "9" or "a" <= c <= "z" for c in label)
    )


@functools.lru_cache(maxsize=16384)
def try_ascii(name: str) -> str | None:
    """The A-label form, or None when ``name`` is not a valid domain name."""
    try:
        return to_ascii(name)
    except idna.IDNAError:
        return None


def label_fits(label: str) -> bool:
    """True when one Unicode label encodes to at most 63 octets."""
    return try_ascii(label + ".cn") is not None


def verify_id(badge_code: str, salt: str = "simnet") -> str:
    """The 32 upper-case hex verification id CONAC gives a badge.

    The last 8 hex digits carry the badge's serial (N8) so that a generated farm can find the badge
    from the id alone; the rest is a hash.
    """
    serial = int(badge_code[11:19])
    return hashlib.md5(f"{salt}:{badge_code}".encode()).hexdigest()[:24].upper() + f"{serial:08X}"


def serial_of_verify_id(vid: str) -> int | None:
    """The N8 serial carried by a verification id made by :func:`verify_id`."""
    try:
        return int(vid[24:], 16)
    except ValueError:
        return None


def badge_code(p2: str, c3: str, d4: str, n8: int, s4: int = 1) -> str:
    """``CA`` + 21 digits: province, city, county, serial, suffix."""
    return f"CA{p2}{c3}{d4}{n8:08d}{s4:04d}"


def badge_script_path(code: str) -> str:
    """The path of a badge's script on dcs.conac.cn."""
    d = code[2:]
    return f"/js/{d[0:2]}/{d[2:5]}/{d[5:9]}/{d[9:17]}/{code}.js"


def stable_int(*parts: object) -> int:
    """A deterministic 64-bit number from ``parts`` (Python's hash() is salted per process)."""
    digest = hashlib.blake2b("\x1f".join(map(str, parts)).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big")

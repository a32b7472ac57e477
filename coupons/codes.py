"""Code engine: unguessable codes drawn from the OS CSPRNG, in bulk, without modulo bias."""

import math
import secrets
from dataclasses import dataclass
from functools import cached_property

from coupons.errors import invalid
from coupons.models import DEFAULT_CODE_ALPHABET, Coupon

DIGITS = "23456789"
LETTERS = "ABCDEFGHJKMNPQRSTUVWXYZ"
PATTERN_SLOTS = {"#": "digits", "?": "letters", "*": "alphabet"}
MIN_ENTROPY_BITS = 40
CODE_MAX_LENGTH = Coupon._meta.get_field("code").max_length  # generated, imported or vanity
MAX_SHARE_OF_CODE_SPACE = 0.01  # past 1 % of the space, codes become guessable and collisions costly


def _unbiased_table(alphabet: str) -> tuple[bytes, bytes]:
    """A bytes.translate table mapping each byte to a character, and the bytes to drop.

    Bytes at or above the largest multiple of len(alphabet) are dropped, so every character
    is equally likely (no modulo bias) while the whole mapping still runs in C.
    """
    size = len(alphabet)
    limit = 256 - (256 % size)
    table = bytes(ord(alphabet[b % size]) if b < limit else 0 for b in range(256))
    return table, bytes(range(limit, 256))


def random_chars(alphabet: str, count: int) -> str:
    """`count` characters drawn uniformly from `alphabet` with `secrets`."""
    table, rejected = _unbiased_table(alphabet)
    keep_ratio = (256 - len(rejected)) / 256
    out = bytearray()
    while len(out) < count:
        missing = count - len(out)
        out += secrets.token_bytes(int(missing / keep_ratio) + 16).translate(table, rejected)
    return out[:count].decode("ascii")


@dataclass(frozen=True)
class CodeFormat:
    """How an offer's codes look: length over an alphabet, or a pattern; an optional prefix."""

    alphabet: str = DEFAULT_CODE_ALPHABET
    length: int = 10
    prefix: str = ""
    pattern: str = ""

    @classmethod
    def for_offer(cls, offer) -> "CodeFormat":
        return cls(
            alphabet=offer.code_alphabet or DEFAULT_CODE_ALPHABET,
            length=offer.code_length,
            prefix=offer.code_prefix or "",
            pattern=offer.code_pattern or "",
        )

    def __post_init__(self) -> None:
        if len(set(self.alphabet)) != len(self.alphabet) or len(self.alphabet) < 2:
            raise invalid(
                "The code alphabet needs at least two distinct characters.", code_alphabet="invalid"
            )
        if not self.alphabet.isascii() or not self.alphabet.isalnum():
            raise invalid(
                "The code alphabet may hold only ASCII letters and digits.", code_alphabet="invalid"
            )

    @cached_property
    def slot_alphabets(self) -> list[str | None]:
        """Per character position: the alphabet it is drawn from, or None for a literal."""
        if not self.pattern:
            return [self.alphabet] * self.length
        classes = {
            "digits": "".join(c for c in self.alphabet if c.isdigit()) or DIGITS,
            "letters": "".join(c for c in self.alphabet if c.isalpha()) or LETTERS,
            "alphabet": self.alphabet,
        }
        return [classes[PATTERN_SLOTS[c]] if c in PATTERN_SLOTS else None for c in self.pattern]

    @cached_property
    def space(self) -> int:
        """How many distinct codes the format can make."""
        return math.prod(len(a) for a in self.slot_alphabets if a)

    @property
    def entropy_bits(self) -> float:
        return math.log2(self.space) if self.space > 1 else 0.0

    @property
    def code_length(self) -> int:
        return len(self.prefix) + len(self.slot_alphabets)

    @property
    def capacity(self) -> int:
        """The most codes an offer may hold before they become guessable."""
        return int(self.space * MAX_SHARE_OF_CODE_SPACE)

    def generate(self, count: int) -> list[str]:
        """`count` random codes (possibly repeating: callers drop collisions and top up)."""
        if not self.pattern:
            stream = random_chars(self.alphabet, count * self.length)
            n = self.length
            return [self.prefix + stream[i : i + n] for i in range(0, count * n, n)]
        return self._generate_from_pattern(count)

    def _generate_from_pattern(self, count: int) -> list[str]:
        slots = self.slot_alphabets
        streams = {a: iter(random_chars(a, count * slots.count(a))) for a in set(slots) if a}
        return [
            self.prefix
            + "".join(
                next(streams[a]) if a else literal for a, literal in zip(slots, self.pattern, strict=True)
            )
            for _ in range(count)
        ]

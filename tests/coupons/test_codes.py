"""The code engine: alphabet, length, prefix, pattern, entropy and the 1 % guard."""

import math
from collections import Counter

import pytest

from coupons import services
from coupons.codes import CodeFormat, random_chars
from coupons.errors import ApplicationError
from coupons.models import DEFAULT_CODE_ALPHABET, Coupon
from tests.factories import OfferFactory


def test_the_default_alphabet_leaves_out_characters_people_misread():
    assert not set("0O1IL") & set(DEFAULT_CODE_ALPHABET)


def test_default_codes_carry_at_least_forty_bits_of_entropy():
    assert CodeFormat().entropy_bits >= 40


def test_codes_have_the_offers_length_alphabet_and_prefix():
    codes = CodeFormat(alphabet="ABC234", length=12, prefix="SUM-").generate(200)
    assert all(len(c) == 16 and c.startswith("SUM-") and set(c[4:]) <= set("ABC234") for c in codes)


def test_a_pattern_places_digits_letters_and_literals():
    codes = CodeFormat(pattern="SUMMER-####-????").generate(100)
    for code in codes:
        assert code.startswith("SUMMER-") and code[11] == "-"
        assert code[7:11].isdigit() and code[12:].isalpha()


def test_a_pattern_star_draws_from_the_whole_alphabet():
    assert all(set(c) <= set("XY") for c in CodeFormat(alphabet="XY", pattern="**********").generate(20))


def test_characters_are_drawn_without_modulo_bias():
    # 31 characters: a plain `byte % 31` would favour the first 8 by 1/8; rejection sampling must not.
    counts = Counter(random_chars(DEFAULT_CODE_ALPHABET, 310_000))
    expected = 10_000
    assert max(abs(n - expected) for n in counts.values()) < 6 * math.sqrt(expected)
    assert len(counts) == 31


def test_the_code_space_of_a_pattern_is_the_product_of_its_slots():
    assert CodeFormat(pattern="##-??", alphabet="AB23").space == 2 * 2 * 2 * 2


def test_an_alphabet_with_repeated_or_odd_characters_is_refused():
    with pytest.raises(ApplicationError):
        CodeFormat(alphabet="AAB")
    with pytest.raises(ApplicationError):
        CodeFormat(alphabet="AB€")


def test_an_offer_refuses_codes_past_one_percent_of_its_code_space(offer):
    offer.code_alphabet, offer.code_length = "ABCDEFGHJK", 12  # 10^12 codes, fine
    offer.code_pattern = "####-####-####"  # 8^12 ≈ 6.9e10: still plenty
    offer.save()
    tiny = OfferFactory(
        site=offer.site, merchant=offer.merchant, code_pattern="", code_alphabet="AB", code_length=12
    )
    # 2^12 = 4096 codes: 1 % is 40.
    services.coupons_create(offer=tiny, count=40)
    with pytest.raises(ApplicationError) as refused:
        services.coupons_create(offer=tiny, count=1)
    assert refused.value.code == "invalid_request" and "count" in refused.value.fields
    assert Coupon.objects.filter(offer=tiny).count() == 40


def test_an_offer_whose_codes_would_be_guessable_is_refused(merchant, site):
    with pytest.raises(ApplicationError) as refused:
        services.offer_create(merchant=merchant, site=site, name="Short", coupon_type="fixedAmount",
                              discount_value="5", code_length=4)  # fmt: skip
    assert refused.value.fields == {"code_length": ["too_guessable"]}

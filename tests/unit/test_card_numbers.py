"""Member card numbers (会员卡号): 12 digits, the last a Luhn check digit (ISO/IEC 7812)."""

from loyalty.domain.members import luhn_digit, new_card_number, valid_card_number


def test_the_check_digit_is_luhns():
    assert luhn_digit("7992739871") == "3"  # the textbook example: 79927398713
    assert valid_card_number("000000000000") and not valid_card_number("000000000001")


def test_new_numbers_pass_their_check_and_a_typo_fails_it():
    for _ in range(200):
        number = new_card_number()
        assert len(number) == 12 and number.isdigit() and valid_card_number(number)
        typo = number[:3] + str((int(number[3]) + 1) % 10) + number[4:]
        assert not valid_card_number(typo)
    assert not valid_card_number("12345678901")  # too short

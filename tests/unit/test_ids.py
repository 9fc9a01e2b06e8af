"""ULIDs sort in the order a process made them, even within one millisecond (timelines, notes, changes)."""

from loyalty.ids import new_ulid


def test_ids_made_in_a_row_sort_in_that_order_and_never_repeat():
    made = [new_ulid() for _ in range(5000)]  # thousands in the same milliseconds
    assert made == sorted(made) and len(set(made)) == len(made)
    assert all(len(i) == 26 for i in made)


def test_an_id_for_a_given_moment_starts_with_that_moment():
    assert new_ulid(0)[:10] == "0000000000" and new_ulid(1_700_000_000_000)[:10] == new_ulid(1_700_000_000_000)[:10]

"""`compare` (dit_mini.course.exercises), the judge of every exercise check, on sequences: the
length counts, so a prefix of the expected answer is not the answer."""

import torch

from dit_mini.course.exercises import compare


def test_sequences_of_another_length_are_refused():
    assert compare([1, 2, 3], [1, 2, 3]) is None
    for short_or_long in ([1, 2], [1, 2, 3, 4], (), [1, 2, 3, 3]):
        reason = compare(short_or_long, [1, 2, 3])
        assert reason is not None and "expected 3 items" in reason, short_or_long
    assert compare([torch.ones(2)], [torch.ones(2), torch.zeros(2)]) is not None
    assert "item 0: expected 2 items" in compare([[1]], [[1, 2]])  # nested lists too


def test_a_sequence_is_not_a_number_or_a_string():
    assert compare("abc", ["a", "b", "c"]) is not None
    assert compare(3, [3]) is not None

"""Reference solutions of the auto-graded exercises, one module per page (`solutions.<chapter>.<page>`).

They are kept off the site: the assignments (`make assignments`) put them between nbgrader's solution markers,
and `tests/test_assignments.py` checks that each one passes its page's checker.
"""

from dataclasses import dataclass


@dataclass(frozen=True)
class Graded:
    """One auto-graded exercise: the student defines `answer` (a function or a value), as the solution does."""

    exercise: int  # its number in the page's "## Exercises" list
    answer: str  # the name the student defines, e.g. "basic_block_params"
    check: str  # the page's visible check, e.g. "check_basic_block_params(basic_block_params)"
    hidden: tuple[str, ...] = ()  # expressions whose value on the student's answer must equal the reference's
    points: int = 2

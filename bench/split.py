"""The one split of the dev photos into a tuning half and a reporting half.

Parameters are chosen on ``tune`` only; the figures we publish come from ``report``. The rule
is fixed and simple so that anyone can check it: the photos sorted by name, every other one
from the first (``tune``: indexes 0, 2, 4, ...) and the rest (``report``: 1, 3, 5, ...). On the
13 alphamatting.com dev photos that is 7 to tune and 6 to report:

* tune:   am_GT01, am_GT03, am_GT05, am_GT07, am_GT11, am_GT19, am_GT25
* report: am_GT02, am_GT04, am_GT06, am_GT10, am_GT13, am_GT22
"""

from __future__ import annotations

from collections.abc import Sequence

SPLITS = ("tune", "report", "all")


def select(names: Sequence[str], split: str) -> list[str]:
    """The names of ``split`` (``tune``, ``report`` or ``all``) among ``names``."""
    ordered = sorted(names)
    if split == "tune":
        return ordered[0::2]
    if split == "report":
        return ordered[1::2]
    if split == "all":
        return ordered
    raise ValueError(f"split {split!r}: expected one of {', '.join(SPLITS)}")


def missing_data_message(path: object) -> str:
    """What to say when the evaluation data is not where the bench looks."""
    return (f"no evaluation data at {path}: these figures need the dev set (images/, alpha/, "
            "trimap/), which is not part of the repository. Pass --data DIR pointing at a "
            "folder laid out like ../shared/data/dev")

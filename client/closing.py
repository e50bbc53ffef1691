"""A base for the client's objects that hold something to release (a video capture, a
stream, pooled connections): leaving a ``with`` block closes them."""

from __future__ import annotations

from typing import Self


class Closing:
    """``with obj:`` returns ``obj`` and calls :meth:`close` on the way out, error or not.
    A subclass gives :meth:`close`; it must be safe to call twice."""

    def close(self) -> None:
        """Release what the object holds."""

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

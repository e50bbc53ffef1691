"""Keyframes and carried mattes (client.motion): the flow carries a matte along a real
motion, large motion and new content fall back to the full path, and the scheduler sends
keyframes at fixed indices and the frames between with their keyframe's carried matte."""

from __future__ import annotations

import threading
from dataclasses import dataclass

import cv2
import numpy as np
import pytest

from client.motion import KeyframeMatter, Reuse, carry, grey_small, warp_back


def _scene(shift: int, size: tuple[int, int] = (160, 120)) -> tuple[np.ndarray, np.ndarray]:
    """A textured background and a textured disc whose centre is ``shift`` px right of
    the middle: ``(frame H x W x 3 uint8 BGR, alpha H x W float32)``."""
    width, height = size
    rng = np.random.default_rng(0)
    bg = cv2.GaussianBlur(rng.integers(0, 255, (height, width, 3), dtype=np.uint8), (0, 0), 2)
    texture = cv2.GaussianBlur(rng.integers(0, 255, (height, width + 64, 3), dtype=np.uint8), (0, 0), 1.5)
    alpha = np.zeros((height, width), np.float32)
    cv2.circle(alpha, (width // 2 + shift, height // 2), 30, 1.0, -1, lineType=cv2.LINE_AA)
    fg = np.roll(texture, shift, axis=1)[:, :width]
    frame = (alpha[..., None] * fg + (1 - alpha[..., None]) * bg).astype(np.uint8)
    return frame, alpha


def test_a_matte_is_carried_along_the_motion() -> None:
    key_frame, key_alpha = _scene(0)
    frame, truth = _scene(6)
    reuse = Reuse(flow_width=160)
    carried = carry(key_alpha, grey_small(key_frame, 160), grey_small(frame, 160), reuse)
    assert carried.usable and 3 < carried.motion_px < 10
    # the carried matte is far closer to the moved disc than the keyframe's own matte
    assert np.abs(carried.prior - truth).mean() < 0.6 * np.abs(key_alpha - truth).mean()


def test_large_motion_or_new_content_is_not_carried() -> None:
    key_frame, key_alpha = _scene(0)
    frame, _ = _scene(6)
    tight = Reuse(flow_width=160, max_motion_px=2.0)
    assert not carry(key_alpha, grey_small(key_frame, 160), grey_small(frame, 160), tight).usable
    other = np.full_like(frame, 255)  # the picture changed completely
    loose = Reuse(flow_width=160)
    assert not carry(key_alpha, grey_small(key_frame, 160), grey_small(other, 160), loose).usable


def test_warp_back_with_zero_flow_is_the_identity() -> None:
    image = np.random.default_rng(1).random((30, 40)).astype(np.float32)
    np.testing.assert_allclose(warp_back(image, np.zeros((15, 20, 2), np.float32)), image, atol=1e-6)


@dataclass
class _Matted:
    frame: np.ndarray
    alpha: np.ndarray
    no_subject: bool = False
    prior: np.ndarray | None = None


class _Service:
    """Stands in for the matting service: records which frames got the full path."""

    def __init__(self, no_subject: bool = False) -> None:
        self.full_calls: list[int] = []
        self.prior_calls: list[int] = []
        self.no_subject = no_subject
        self.lock = threading.Lock()

    def full(self, frame: np.ndarray) -> _Matted:
        with self.lock:
            self.full_calls.append(int(frame[0, 0, 0]))
        alpha = _scene(0)[1] if not self.no_subject else np.zeros(frame.shape[:2], np.float32)
        return _Matted(frame, alpha, self.no_subject)

    def with_prior(self, frame: np.ndarray, prior: np.ndarray) -> _Matted:
        with self.lock:
            self.prior_calls.append(int(frame[0, 0, 0]))
        return _Matted(frame, prior, prior=prior)


def _frames(n: int) -> list[np.ndarray]:
    frames = []
    for i in range(n):
        frame = _scene(i)[0].copy()
        frame[0, 0, 0] = i  # the frame's number, for the fake service
        frames.append(frame)
    return frames


def test_keyframes_at_fixed_indices_and_the_frames_between_carried() -> None:
    service = _Service()
    keyed = KeyframeMatter(service.full, service.with_prior, Reuse(interval=3, flow_width=160))
    tasks = [keyed.plan(i, f) for i, f in enumerate(_frames(7))]
    assert [t.is_key for t in tasks] == [True, False, False, True, False, False, True]
    for task in tasks:
        keyed(task)
    assert service.full_calls == [0, 3, 6] and service.prior_calls == [1, 2, 4, 5]
    assert (keyed.carried, keyed.fallbacks) == (4, 0)


def test_frames_wait_for_their_keyframe_when_run_out_of_order() -> None:
    service = _Service()
    keyed = KeyframeMatter(service.full, service.with_prior, Reuse(interval=3, flow_width=160))
    tasks = [keyed.plan(i, f) for i, f in enumerate(_frames(3))]
    waiting = threading.Thread(target=keyed, args=(tasks[1],))
    waiting.start()
    waiting.join(timeout=0.5)
    assert waiting.is_alive() and service.prior_calls == []  # blocked on frame 0's answer
    keyed(tasks[0])
    waiting.join(timeout=30)
    assert not waiting.is_alive() and service.prior_calls == [1]


def test_a_keyframe_without_subject_gives_the_full_path_to_the_next_frames() -> None:
    service = _Service(no_subject=True)
    keyed = KeyframeMatter(service.full, service.with_prior, Reuse(interval=3, flow_width=160))
    for i, frame in enumerate(_frames(3)):
        keyed(keyed.plan(i, frame))
    assert service.full_calls == [0, 1, 2] and keyed.fallbacks == 2


def test_a_resume_sends_the_last_keyframe_again_for_its_matte_only() -> None:
    service = _Service()
    keyed = KeyframeMatter(service.full, service.with_prior, Reuse(interval=3, flow_width=160))
    frames = _frames(6)
    assert keyed.last_keyframe(5) == 3 and keyed.warm(3, frames[3]) is None  # 3 is a keyframe
    warm = keyed.warm(5, frames[3])
    assert warm is not None and warm.prior_only and warm.index == 3
    keyed(warm)
    keyed(keyed.plan(5, frames[5]))
    assert service.full_calls == [3] and service.prior_calls == [5]


def test_reuse_refuses_an_interval_below_one() -> None:
    with pytest.raises(ValueError, match="1 or more"):
        Reuse(interval=0)

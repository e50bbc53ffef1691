"""Atomic writes and folder listing."""

from __future__ import annotations

from pathlib import Path

import pytest

from client.files import atomic_write, list_images, same_file


def test_atomic_write_replaces_whole_and_leaves_no_temp(tmp_path: Path):
    target = tmp_path / "sub" / "out.png"
    atomic_write(target, b"first")
    atomic_write(target, b"second version")
    assert target.read_bytes() == b"second version"
    assert sorted(p.name for p in target.parent.iterdir()) == ["out.png"]


def test_atomic_write_failure_leaves_nothing(tmp_path: Path):
    target = tmp_path / "out.png"

    with pytest.raises(TypeError):
        atomic_write(target, object())  # type: ignore[arg-type]
    assert list(tmp_path.iterdir()) == []


def test_list_images_recurses_skips_hidden_and_output(tmp_path: Path):
    for rel in ["a.jpg", "b.PNG", "notes.txt", ".hidden.png", "sub/c.webp", "out/a.png",
                ".cache/d.png"]:
        path = tmp_path / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"x")
    found = [p.relative_to(tmp_path).as_posix() for p in list_images(tmp_path, tmp_path / "out")]
    assert found == ["a.jpg", "b.PNG", "sub/c.webp"]


def test_same_file(tmp_path: Path):
    a = tmp_path / "a.png"
    a.write_bytes(b"x")
    link = tmp_path / "link.png"
    link.symlink_to(a)
    assert same_file(a, link)
    assert same_file(a, tmp_path / "." / "a.png")
    assert not same_file(a, tmp_path / "b.png")


def test_atomic_write_gives_ordinary_permissions(tmp_path) -> None:
    import os
    import stat

    from client.files import _umask, atomic_write

    _umask.cache_clear()
    old = os.umask(0o022)
    try:
        atomic_write(tmp_path / "out.png", b"data")
    finally:
        os.umask(old)
        _umask.cache_clear()
    assert stat.S_IMODE((tmp_path / "out.png").stat().st_mode) == 0o644

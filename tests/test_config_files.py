"""What `-c FILE` may be besides a config file: a directory, an endless device, a huge file.
Each is a one-line error naming the file, never a traceback, an endless read or gigabytes of
memory."""

from __future__ import annotations

from pathlib import Path

from tests.test_config import watchkeeper


def test_a_directory_is_a_one_line_error(tmp_path: Path) -> None:
    folder = tmp_path / "watchkeeper.yaml"
    folder.mkdir()
    for command in (
        ["validate", str(folder)],
        ["token", "create", "--role", "admin", "-c", str(folder)],
    ):
        done = watchkeeper(*command)
        assert done.returncode == 1
        assert "Traceback" not in done.stderr and "IsADirectoryError" not in done.stderr
        assert f"config file {folder}: " in done.stderr, done.stderr
        assert "directory" in done.stderr.lower()


def test_an_endless_device_is_refused_after_the_size_limit() -> None:
    """`/dev/zero` was read until memory ran out (3.6 GB after 15 s)."""
    done = watchkeeper("validate", "/dev/zero")  # the helper gives up after 60 s
    assert done.returncode == 1
    assert "/dev/zero:1: (file): larger than 16 MiB" in done.stderr, done.stderr


def test_a_config_file_over_the_limit_is_refused_before_parsing(tmp_path: Path) -> None:
    path = tmp_path / "big.yaml"
    path.write_bytes(b"checks: []\n" + b"#" * (16 * 1024 * 1024))
    done = watchkeeper("validate", str(path))
    assert done.returncode == 1
    assert f"{path}:1: (file): larger than 16 MiB" in done.stderr, done.stderr

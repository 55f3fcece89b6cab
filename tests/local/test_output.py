"""Bounded output on a full disk (issue 15): a command's output that cannot go to the data dir
ends its head there, is still counted and its tail kept, and nothing raises (a pump that raised
took the whole engine down)."""

from __future__ import annotations

from pathlib import Path

from scenario_mcp.local.output import TAIL_CAP, OutputLog

from .test_store import _fill, small_disk  # noqa: F401  (the fixture, used by name)


def test_output_past_a_full_disk_is_counted_and_its_tail_kept(small_disk: Path) -> None:  # noqa: F811
    log = OutputLog(small_disk / "exec" / "x.out")
    log.write(b"first line\n")
    filler = _fill(small_disk)
    chunk = b"0123456789abcdef" * 4096  # 64 KiB
    for _ in range(64):  # 4 MiB: more than the disk had
        log.write(chunk)
    log.write(b"last line\n")
    log.close()  # the tail and its account cannot be written either: no exception
    assert log.total == len(b"first line\n") + 64 * len(chunk) + len(b"last line\n")
    assert log.text().endswith("last line\n")
    assert log.head(64)[0].startswith("first line\n")  # what the command's result shows inline
    assert log.dropped >= log.total - log.head_cap - TAIL_CAP
    filler.unlink()
    again = OutputLog(small_disk / "exec" / "y.out")  # space again: output goes to disk as before
    again.write(b"ok\n")
    again.close()
    assert (small_disk / "exec" / "y.out").read_bytes() == b"ok\n"

"""Two checks, reported as pytest -rA reports them."""

from pathlib import Path


def test_file_exists() -> bool:
    return Path("/app/hello.txt").is_file()


def test_contents() -> bool:
    return Path("/app/hello.txt").is_file() and Path("/app/hello.txt").read_text() == "hello terminal-bench\n"


print("=========================== short test summary info ============================")
for test in (test_file_exists, test_contents):
    print(f"{'PASSED' if test() else 'FAILED'} tests/test_outputs.py::{test.__name__}")

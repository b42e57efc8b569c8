"""The FinOps Foundation's focus-validator, run on a file: 1.0.0 through its Python API, 2.x through its CLI.

focus-validator 1.0.0 (the only version for Python 3.11) knows FOCUS 0.5 and 1.0 rules; 2.x knows 1.2 but needs
Python 3.12, so it lives in its own virtual environment: FOCUS_VALIDATOR_2 (the path of its `focus-validator`
script) when set, else tests/.focus-validator, made on first use with any Python >= 3.12 on the machine
(`python3.12` on PATH or a pyenv version; `.ci/run` makes it before the tests). Without one, the 1.2 checks are
skipped, saying how to enable them.
"""

from __future__ import annotations

import fcntl
import glob
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

VALIDATOR_2_ENV = "FOCUS_VALIDATOR_2"
_FAIL_LINE = re.compile(r"^\S*\s*(?P<rule>[A-Za-z]+-[A-Z]-\d{3}-[MOC]): FAIL\b", re.MULTILINE)
_TOTAL_LINE = re.compile(r"Total: (?P<total>\d+) \| Pass: (?P<passed>\d+) \| Fail: (?P<failed>\d+)")


def failures_10(path: Path) -> set[str]:
    """The FOCUS 1.0 checks of focus-validator 1.0.0 that fail on `path` (CSV or Parquet)."""
    from focus_validator.data_loaders.data_loader import DataLoader
    from focus_validator.rules.spec_rules import SpecRules
    from focus_validator.validator import DEFAULT_VERSION_SETS_PATH

    rules = SpecRules(
        override_filename=None, rule_set_path=DEFAULT_VERSION_SETS_PATH, rules_version="1.0", column_namespace=None
    )
    rules.load()
    result = rules.validate(DataLoader(data_filename=str(path)).load())
    assert len(result.checklist) > 100, "the 1.0 rule set did not load"
    return {name for name, item in result.checklist.items() if item.status.value != "passed"}


LOCAL_VENV = Path(__file__).resolve().parent / ".focus-validator"
VALIDATOR_2_PINS = ["focus-validator==2.2.1", "pyarrow<19"]  # 2.2.1's pandas/pyarrow pair, as tested


def _python_312() -> str | None:
    """An interpreter of Python 3.12 or newer, if the machine has one."""
    candidates = [shutil.which(f"python3.{minor}") for minor in range(12, 16)]
    candidates += sorted(glob.glob(os.path.expanduser("~/.pyenv/versions/3.1[2-9]*/bin/python3")))
    for candidate in filter(None, candidates):
        done = subprocess.run([candidate, "-c", "import sys; print(sys.version_info >= (3, 12))"],
                              capture_output=True, text=True, check=False)
        if done.returncode == 0 and done.stdout.strip() == "True":
            return candidate
    return None


def install_validator_2() -> Path | None:
    """tests/.focus-validator with focus-validator 2.x (made once; xdist workers wait for each other)."""
    script = LOCAL_VENV / "bin" / "focus-validator"
    LOCAL_VENV.parent.mkdir(parents=True, exist_ok=True)
    with open(LOCAL_VENV.parent / ".focus-validator.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if script.is_file():
            return script
        python = _python_312()
        if python is None:
            return None
        subprocess.run([python, "-m", "venv", "--clear", str(LOCAL_VENV)], check=True)
        subprocess.run([str(LOCAL_VENV / "bin" / "pip"), "install", "--quiet", *VALIDATOR_2_PINS], check=True)
    return script if script.is_file() else None


def validator_2() -> Path:
    """The focus-validator 2.x script, or skip the test saying how to get one."""
    configured = os.environ.get(VALIDATOR_2_ENV)
    if configured and Path(configured).is_file():
        return Path(configured)
    local = install_validator_2()
    if local is not None:
        return local
    pytest.skip(
        f"FOCUS 1.2 rules need focus-validator 2.x, which needs Python >= 3.12 (none found): python3.12 -m venv V"
        f" && V/bin/pip install {' '.join(VALIDATOR_2_PINS)}, then {VALIDATOR_2_ENV}=V/bin/focus-validator"
    )


def failures_12(path: Path) -> set[str]:
    """The FOCUS 1.2 rules focus-validator 2.x reports failed on `path`, with no applicability criteria
    declared (the provider-capability rules are skipped), offline."""
    script = validator_2()
    # It opens focus_validator/rules/currency_codes.csv by a relative path: run it from its site-packages.
    site = next((script.parent.parent / "lib").glob("python3*/site-packages"))
    done = subprocess.run(
        [str(script), "--data-file", str(path), "--validate-version", "1.2", "--output-type", "console",
         "--block-download"],
        cwd=site, capture_output=True, text=True, timeout=120, check=False,
    )
    output = done.stdout + done.stderr
    assert _TOTAL_LINE.search(output), output[-2000:]
    return set(_FAIL_LINE.findall(output))


if __name__ == "__main__":  # `.ci/run`: make the 1.2 validator before the tests
    made = install_validator_2()
    print(f"focus-validator 2.x: {made}" if made else "no Python >= 3.12 here: the FOCUS 1.2 checks will be skipped")
    sys.exit(0)

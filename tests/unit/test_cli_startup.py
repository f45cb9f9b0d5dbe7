"""The command line starts fast: a command imports only what it needs.

Each case runs one command in a fresh interpreter and lists which heavy libraries it
imported. They are what made every command take 2-5 s (docs/performance.md): a light
command importing one of them again is a regression, caught here rather than by a timing,
which would be flaky on a busy machine. ``benchmarks/bench_startup.py`` measures the time.

The last tests run the real ``ketapath`` entry point on bad input.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PATIENT = str(ROOT / "docs" / "examples" / "patient-crps.json")
SESSION_LOG = str(ROOT / "docs" / "examples" / "session-log.yaml")

# What a clinical command must not import: the database, the web server, password hashing,
# plotting, units parsing, numerics.
SERVER = ("sqlalchemy", "alembic", "fastapi", "starlette", "uvicorn", "argon2", "jinja2")
NUMERICS = ("numpy", "scipy", "matplotlib", "pint")

PROBE = """
import json, sys
from ketapath.cli import app
try:
    app(sys.argv[1:])
except SystemExit as exit:
    code = exit.code
print(json.dumps({"code": code, "modules": sorted(m.split(".")[0] for m in sys.modules)}))
"""


def imported_by(*args: str) -> set[str]:
    """Top-level modules imported by ``ketapath ARGS`` in a fresh interpreter."""
    done = subprocess.run(
        [sys.executable, "-c", PROBE, *args], capture_output=True, text=True, cwd=ROOT, timeout=60
    )
    last = done.stdout.strip().splitlines()[-1]
    report = json.loads(last)
    assert report["code"] in (0, None), done.stderr
    return set(report["modules"])


@pytest.mark.parametrize(
    ("args", "forbidden"),
    [
        (["protocols", "list"], SERVER + NUMERICS),
        (["protocols", "show", "asra-initial"], SERVER + NUMERICS),
        (["screen", PATIENT, "--json"], SERVER + NUMERICS),
        (["plan", "asra-initial", "--weight-kg", "70"], SERVER + NUMERICS),
        (["score", "phq9", "--items"], SERVER + NUMERICS),
        (["knowledge", "adverse-effects"], SERVER + NUMERICS),
        (["sessions", "replay", SESSION_LOG], SERVER + NUMERICS),
        (["fhir", "--help"], (*SERVER, *NUMERICS, "fhir")),
        (["research", "export", "--help"], (*SERVER, *NUMERICS, "pyarrow")),
        (["registry", "--help"], SERVER + NUMERICS),
        (["registry", "synth", "--help"], SERVER + NUMERICS),
        (["outcomes", "--help"], SERVER + NUMERICS),
        (["outcomes", "show", "--help"], SERVER + NUMERICS),
        (["outcomes", "follow-ups", "--help"], SERVER + NUMERICS),
        (
            [
                "simulate",
                "--model",
                "kamp",
                "--weight-kg",
                "72",
                "--infusion",
                "0:240:25",
                "--times",
                "0,60,240",
            ],
            (*SERVER, "scipy", "matplotlib", "pint"),
        ),
    ],
)
def test_a_command_imports_only_what_it_needs(args: list[str], forbidden: tuple[str, ...]) -> None:
    heavy = imported_by(*args) & set(forbidden)
    assert not heavy, f"`ketapath {' '.join(args)}` imported {sorted(heavy)}"


def test_importing_the_command_line_imports_no_command_s_libraries() -> None:
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            "import json, sys; import ketapath.cli; "
            "print(json.dumps(sorted({m.split('.')[0] for m in sys.modules})))",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    modules = set(json.loads(done.stdout))
    assert not modules & {*SERVER, *NUMERICS, "pydantic", "yaml"}


def _ketapath() -> list[str]:
    script = Path(sys.executable).with_name("ketapath")
    if script.exists():
        return [str(script)]
    return [sys.executable, "-c", "from ketapath.cli import main; main()"]


def test_the_real_entry_point_refuses_a_binary_patient_file_in_one_line(tmp_path: Path) -> None:
    binary = tmp_path / "scan.json"
    binary.write_bytes(b"\x89PNG\r\n\x1a\n\x00\xff" * 100)
    done = subprocess.run(
        [*_ketapath(), "screen", str(binary)],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PYTHONPATH": str(ROOT / "src")},
    )
    assert done.returncode == 2
    assert done.stdout == ""
    assert done.stderr.startswith("error: ") and done.stderr.count("\n") == 1
    assert "not a text file" in done.stderr


def test_the_real_entry_point_answers_a_weight_of_5e_324_kg_in_strict_json() -> None:
    done = subprocess.run(
        [
            *_ketapath(),
            "simulate",
            "--model",
            "kamp",
            "--weight-kg",
            "5e-324",
            "--infusion",
            "0:240:25",
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PYTHONPATH": str(ROOT / "src")},
    )
    assert done.returncode == 2
    assert done.stdout == ""
    error = json.loads(done.stderr, parse_constant=lambda c: pytest.fail(f"not JSON: {c}"))
    assert "outside what a human weighs" in error["message"]

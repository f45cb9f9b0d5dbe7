from typer.testing import CliRunner

import ketapath
from ketapath.cli import app


def test_the_package_has_a_version() -> None:
    assert ketapath.__version__


def test_the_command_line_shows_help() -> None:
    result = CliRunner().invoke(app, ["--help"])
    assert result.exit_code == 0
    assert "ketapath" in result.output.lower() or "Usage" in result.output

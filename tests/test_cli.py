"""The command line assembles and answers --help."""

from click.testing import CliRunner

import badgewatch


def test_help_lists_program() -> None:
    result = CliRunner().invoke(badgewatch.cli, ["--help"])
    assert result.exit_code == 0, result.output
    assert "网标巡检" in result.output

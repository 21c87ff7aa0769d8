"""The README's two commands are what the repository runs: CI's script runs the test command."""

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def readme_commands():
    """Lines of the README's first ```bash block."""
    lines = (ROOT / "README.md").read_text().splitlines()
    start = lines.index("```bash") + 1
    return lines[start : lines.index("```", start)]


def test_ci_runs_the_readme_test_command():
    setup_and_run, test = readme_commands()
    ci_command = (ROOT / ".ci" / "run").read_text().strip().splitlines()[-1]
    assert ci_command == test, f".ci/run runs {ci_command!r}, the README tells users to run {test!r}"
    commands = [line for line in (ROOT / ".ci" / "run").read_text().splitlines() if line.strip() and not line.startswith("#")]
    assert commands == [test], f".ci/run runs {commands!r}, and nothing but the README's {test!r} may run there"
    assert (ROOT / test.split()[-1]).is_file() and (ROOT / setup_and_run.split()[-1]).is_file()

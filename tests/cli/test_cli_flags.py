"""Every boolean flag of every ``monai-bone`` command has an opposite form, and the command line beats a ``--config``
file both ways: a flag switched on in the file is switched off by its opposite, and the other way round."""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from pathlib import Path

import pytest

from monai_bone.cli import build_parser, main, parse_args
from monai_bone.cli.arguments import FlagPair, add_flag, opposite_option

#: the required arguments of each command (values are never used: parsing only)
REQUIRED: dict[tuple[str, ...], list[str]] = {
    (): [],
    ("synth",): ["--task", "hip", "--n", "3", "--out", "o"],
    ("index",): ["src", "--out", "o"],
    ("demo",): [],
    ("cv",): ["--task", "hip", "--data", "d.json"],
    ("export",): ["bundle", "--out", "o.zip"],
    ("import",): ["a.zip", "--out", "o"],
    ("label", "serve"): ["--studies", "s"],
    ("watch",): ["http://127.0.0.1:1/dicom-web"],
}


def _commands(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple, object]]:
    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _commands(sub, (*path, name))


def _flags(with_config: bool = False) -> list[tuple[tuple[str, ...], argparse.Action]]:
    """(command path, flag action) of every command (``with_config``: of the commands taking ``--config``)."""
    out = []
    for path, parser in _commands(build_parser(full=True)):
        if with_config and "config" not in {a.dest for a in parser._actions}:
            continue
        for action in parser._actions:
            if action.nargs == 0 and not isinstance(action, (argparse._HelpAction, argparse._VersionAction)):
                out.append((path, action))
    return out


def _ids(flags: list) -> list[str]:
    return [f"{' '.join(p) or 'monai-bone'} {a.dest}" for p, a in flags]


FLAGS = _flags()
CONFIG_FLAGS = _flags(with_config=True)


def test_every_flag_has_its_opposite() -> None:
    assert len(FLAGS) >= 20  # all commands were built
    lonely = [(p, a.option_strings) for p, a in FLAGS if not isinstance(a, (FlagPair, argparse.BooleanOptionalAction))]
    assert lonely == []
    for _, action in FLAGS:
        longs = [o for o in action.option_strings if o.startswith("--")]
        assert longs[-1] == opposite_option(longs[0]), action.option_strings


def _parse(path: tuple[str, ...], *extra: str) -> argparse.Namespace:
    """Parse ``path``'s command line with ``extra`` options (top-level options go before a sub-command)."""
    return parse_args([*path, *REQUIRED[path], *extra] if path else [*extra, "demo"])


@pytest.mark.parametrize(("path", "action"), FLAGS, ids=_ids(FLAGS))
def test_last_flag_wins_on_the_command_line(path: tuple[str, ...], action: argparse.Action) -> None:
    """Default, on, on then off, off then on: for every flag of every command."""
    if isinstance(action, argparse.BooleanOptionalAction):  # --dedup: tri-state, None = decided by the data
        on, off, value_on = action.option_strings[0], action.option_strings[1], True
    else:
        on, off, value_on = action.option_strings[-2], action.option_strings[-1], action.const
    assert getattr(_parse(path), action.dest) == action.default
    assert getattr(_parse(path, on), action.dest) == value_on
    assert getattr(_parse(path, on, off), action.dest) == (not value_on)
    assert getattr(_parse(path, off, on), action.dest) == value_on


@pytest.mark.parametrize(("path", "action"), CONFIG_FLAGS, ids=_ids(CONFIG_FLAGS))
def test_command_line_beats_the_config_file_both_ways(
    path: tuple[str, ...], action: argparse.Action, tmp_path: Path
) -> None:
    on, off = action.option_strings[-2], action.option_strings[-1]
    key = on[2:].replace("-", "_")
    value_on = True if isinstance(action, argparse.BooleanOptionalAction) else action.const
    cfg_on, cfg_off = tmp_path / "on.yaml", tmp_path / "off.yaml"
    cfg_on.write_text(f"{key}: true\n")
    cfg_off.write_text(f"{key}: false\n")
    # the file alone
    assert getattr(_parse(path, "--config", str(cfg_on)), action.dest) == value_on
    assert getattr(_parse(path, "--config", str(cfg_off)), action.dest) == (not value_on)
    # switched on in the file, off on the command line; off in the file, on on the command line
    assert getattr(_parse(path, "--config", str(cfg_on), off), action.dest) == (not value_on)
    assert getattr(_parse(path, "--config", str(cfg_off), on), action.dest) == value_on
    # the opposite's own key works too (no_progress: false is --progress)
    cfg_neg = tmp_path / "neg.yaml"
    cfg_neg.write_text(f"{off[2:].replace('-', '_')}: true\n")
    assert getattr(_parse(path, "--config", str(cfg_neg), on), action.dest) == value_on
    assert getattr(_parse(path, "--config", str(cfg_neg)), action.dest) == (not value_on)


def test_config_commands_are_covered() -> None:
    names = {" ".join(p) for p, _ in CONFIG_FLAGS}
    assert {"synth", "demo", "cv", "label serve"} <= names
    overwrite = [a for p, a in CONFIG_FLAGS if p == ("demo",) and a.dest == "overwrite"]
    assert overwrite and overwrite[0].option_strings == ["--overwrite", "--no-overwrite"]


def test_add_flag_spellings_and_errors(capsys: pytest.CaptureFixture) -> None:
    parser = argparse.ArgumentParser(prog="t")
    add_flag(parser, "--no-progress", dest="progress", const=False, help="hide bars")
    add_flag(parser, "-q", "--quiet", help="less output")
    assert vars(parser.parse_args([])) == {"progress": True, "quiet": False}
    assert vars(parser.parse_args(["--no-progress", "-q"])) == {"progress": False, "quiet": True}
    assert vars(parser.parse_args(["-q", "--no-quiet", "--no-progress", "--progress"])) == {
        "progress": True,
        "quiet": False,
    }
    parser.print_help()
    text = capsys.readouterr().out
    assert (
        "--no-progress, --progress" in text and "(undo: --progress)" in text and "[-q | --quiet | --no-quiet]" in text
    )
    with pytest.raises(ValueError, match="not a long option"):
        opposite_option("-q")
    with pytest.raises(ValueError, match="a flag and its opposite"):
        FlagPair(["--x"], "x")


def test_verbose_can_be_undone(capsys: pytest.CaptureFixture) -> None:
    """The top-level flag too, through ``main`` (a real run of a light command)."""
    assert parse_args(["-v", "--no-verbose", "bundle", "path", "hip"]).verbose is False
    assert main(["-v", "--no-verbose", "bundle", "path", "hip"]) == 0
    assert "hip_bmd_xattn" in capsys.readouterr().out

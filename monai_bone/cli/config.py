"""``--config FILE``: a sub-command's options read from a YAML file, with the command line winning over the file.

A study becomes a reviewed file instead of a long flag list (examples in the repository's ``configs/``)::

    monai-bone cv --config configs/hip_ablation.yaml --data cohort/datalist.json --n-boot 200

Keys are the long option names with ``_`` for ``-`` (``batch_size: 8`` is ``--batch-size 8``, ``no_progress: true``
is ``--no-progress``); a value is what the option takes on the command line. Flags take ``true``/``false`` (``false``
leaves the flag off); repeatable options (``--set``, ``--override``, ``--clinical``) take a list; ``null`` leaves the
option at its default. Paths are read like on the command line (relative to the current directory).

How it works: the file's options are checked against the sub-command's parser (an unknown key, a positional
argument or a bad value is a one-line :class:`ConfigError` naming the file and the key) and inserted into the command
line right after the sub-command, before the options typed by the user. ``argparse`` then parses everything as usual:
a later option overrides an earlier one, so an option given on the command line wins over the file; repeatable
options collect the file's values, then the command line's. Every flag has an opposite form (``--overwrite`` /
``--no-overwrite``, ``--no-progress`` / ``--progress``; :func:`~monai_bone.cli.arguments.add_flag`), so a flag switched
on in the file is switched off on the command line, and the other way round. In the file, ``key: false`` is that
opposite form (``overwrite: false`` is ``--no-overwrite``, ``no_progress: false`` is ``--progress``).

``--config`` also takes the name of a config shipped with monai-bone (the repository's ``configs/``, package data of
``monai_bone.cli.shipped_configs`` in a wheel): ``--config hip_ablation``, ``--config realistic``, or the repository
path ``configs/hip_ablation.yaml`` from any folder. An existing file always wins over a shipped name.

The file is untrusted input: at most :data:`MAX_CONFIG_BYTES`, parsed with ``yaml.safe_load`` only (no Python tags),
a mapping of option names to scalars or lists of scalars.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from monai_bone.cli.arguments import FlagPair

__all__ = [
    "MAX_CONFIG_BYTES",
    "ConfigError",
    "add_config_argument",
    "config_arguments",
    "expand_config",
    "load_config",
    "resolve_config",
    "shipped_configs",
]

#: Largest config file read (bytes): an experiment config is a page of options, not data.
MAX_CONFIG_BYTES = 256 * 1024
_SCALARS = (str, int, float, bool)


class ConfigError(ValueError):
    """A config file that cannot be used; the message names the file (and the key) and says why."""


#: Where the shipped configs are: the wheel's package data, then a source checkout's ``configs/``.
_SHIPPED_ROOTS: tuple[Path, ...] = (
    Path(__file__).resolve().parent / "shipped_configs",
    Path(__file__).resolve().parents[2] / "configs",
)
_SUFFIXES = (".yaml", ".yml")


def _shipped_root() -> Path | None:
    """The first of :data:`_SHIPPED_ROOTS` holding a config file."""
    for root in _SHIPPED_ROOTS:
        if any(p.is_file() for suffix in _SUFFIXES for p in root.rglob(f"*{suffix}")):
            return root
    return None


def shipped_configs() -> dict[str, Path]:
    """Name (path inside the configs folder, without suffix: ``hip_ablation``, ``synthetic/realistic``) -> file."""
    root = _shipped_root()
    if root is None:
        return {}
    files = sorted(p for suffix in _SUFFIXES for p in root.rglob(f"*{suffix}") if p.is_file())
    return {p.relative_to(root).with_suffix("").as_posix(): p for p in files}


def resolve_config(value: str | Path) -> Path:
    """The config file ``--config VALUE`` means: an existing file, else a shipped config by name or repository path.

    ``hip_ablation``, ``hip_ablation.yaml`` and ``configs/hip_ablation.yaml`` (the repository path the README uses,
    run from a folder without it) name the shipped ``hip_ablation.yaml``; ``realistic`` and ``synthetic/realistic``
    name ``configs/synthetic/realistic.yaml``.

    Raises:
        ConfigError: neither an existing file nor a shipped config (the message lists the shipped names).
    """
    path = Path(value)
    if path.is_file():
        return path
    shipped = shipped_configs()
    parts = [p for p in Path(str(value)).parts if p not in ("", ".")]
    if parts[:1] == ["configs"]:
        parts = parts[1:]
    if parts and ".." not in parts and not Path(str(value)).is_absolute():
        wanted = Path(*parts)
        name = (wanted.with_suffix("") if wanted.suffix in _SUFFIXES else wanted).as_posix()
        matches = [p for n, p in shipped.items() if n == name or (len(parts) == 1 and n.rsplit("/", 1)[-1] == name)]
        if len(matches) == 1:
            return matches[0]
    names = ", ".join(shipped) or "none found"
    raise ConfigError(f"{value}: no such config file, and not a config shipped with monai-bone (shipped: {names})")


def add_config_argument(parser: argparse.ArgumentParser) -> None:
    """Give ``parser`` (a sub-command parser) the ``--config FILE`` option."""
    parser.add_argument(
        "--config",
        metavar="FILE",
        default=None,
        help="read options from this YAML file first (keys: long option names with _ for -, e.g. batch_size: 8); "
        "options on the command line win over the file. FILE may also name a config shipped with monai-bone "
        "(e.g. hip_ablation, knee_ablation, demo_small, label_serve, realistic; an existing file wins)",
    )


def load_config(path: str | Path) -> dict[str, Any]:
    """Read a config file: bounded size, ``yaml.safe_load``, a mapping with string keys.

    Raises:
        ConfigError: a missing/unreadable/oversized file, invalid YAML, or a top level that is not a mapping.
    """
    import yaml  # PyYAML (a MONAI dependency) is imported only when a config is given: CLI start-up stays light

    path = Path(path)
    try:
        with path.open("rb") as handle:
            data = handle.read(MAX_CONFIG_BYTES + 1)
    except OSError as err:
        raise ConfigError(f"{path}: cannot read the config file ({err.strerror or err})") from None
    if len(data) > MAX_CONFIG_BYTES:
        raise ConfigError(f"{path}: config file larger than {MAX_CONFIG_BYTES // 1024} KiB; it should hold options")
    try:
        values = yaml.safe_load(data.decode("utf-8"))
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not a UTF-8 text file") from None
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark is not None else ""
        problem = getattr(err, "problem", None) or type(err).__name__
        raise ConfigError(f"{path}: not a valid YAML config{where}: {problem}") from None
    if values is None:
        return {}
    if not isinstance(values, dict) or not all(isinstance(k, str) for k in values):
        raise ConfigError(f"{path}: expected a mapping of option names to values (key: value lines)")
    return values


def _options(parser: argparse.ArgumentParser) -> dict[str, tuple[argparse.Action, str]]:
    """Config key -> (action, option string) for every long option of ``parser`` except help and --config."""
    out = {}
    for action in parser._actions:
        if isinstance(action, (argparse._HelpAction, argparse._VersionAction)) or action.dest == "config":
            continue
        for opt in action.option_strings:
            if opt.startswith("--"):
                out[opt[2:].replace("-", "_")] = (action, opt)
    return out


def _text(value: Any) -> str:
    """A YAML scalar as the command line would spell it."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _check(action: argparse.Action, text: str, where: str) -> None:
    """Raise :class:`ConfigError` when ``text`` is not a valid value of ``action`` (type and choices)."""
    try:
        value = action.type(text) if callable(action.type) else text
    except (argparse.ArgumentTypeError, TypeError, ValueError) as err:
        raise ConfigError(f"{where}: invalid value {text!r} ({err})") from None
    if action.choices is not None and value not in action.choices:
        choices = ", ".join(map(str, action.choices))
        raise ConfigError(f"{where}: invalid value {text!r} (choose from {choices})")


def _flag_tokens(action: argparse.Action, opt: str, value: Any, where: str) -> list[str]:
    if not isinstance(value, bool):
        raise ConfigError(f"{where}: expected true or false, got {value!r}")
    if value:
        return [opt]
    if isinstance(action, (argparse.BooleanOptionalAction, FlagPair)):  # `dedup: false` -> --no-dedup
        return [o for o in action.option_strings if o != opt and o.startswith("--")][:1]
    return []  # a plain flag set to false: left off


def config_arguments(parser: argparse.ArgumentParser, values: dict[str, Any], source: str) -> list[str]:
    """The command-line tokens equivalent to the config ``values`` for ``parser``.

    Args:
        parser: the sub-command's parser.
        values: the loaded config (:func:`load_config`).
        source: the file name, for messages.

    Raises:
        ConfigError: an unknown key, a positional argument, a value of the wrong kind or not accepted by the option.
    """
    known = _options(parser)
    positionals = {a.dest for a in parser._actions if not a.option_strings}
    tokens: list[str] = []
    for key, value in values.items():
        where = f"{source}: key {key!r}"
        if key not in known:
            hint = "given on the command line only" if key in positionals else "not an option of this command"
            raise ConfigError(f"{where}: unknown key ({hint}; known keys: {', '.join(sorted(known))})")
        if value is None:
            continue
        action, opt = known[key]
        if action.nargs == 0:
            tokens += _flag_tokens(action, opt, value, where)
            continue
        if action.nargs not in (None, "?"):
            raise ConfigError(f"{where}: this option cannot be set from a config file")
        items = value if isinstance(action, argparse._AppendAction) and isinstance(value, list) else [value]
        for item in items:
            if not isinstance(item, _SCALARS):
                raise ConfigError(f"{where}: expected a single value, got {type(item).__name__}")
            text = _text(item)
            _check(action, text, where)
            tokens.append(f"{opt}={text}")  # one token: a value starting with "-" is not taken for an option
    return tokens


def _find_subparser(parser: argparse.ArgumentParser, argv: Sequence[str]) -> tuple[argparse.ArgumentParser, int] | None:
    """The innermost sub-command parser named in ``argv`` and the index just after its name (``label serve``)."""
    found = None
    index = 0
    while True:
        actions = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
        if not actions:
            return found
        while index < len(argv) and argv[index].startswith("-") and argv[index] != "--":
            index += 1
        if index >= len(argv) or argv[index] not in actions[0].choices:
            return found
        parser = actions[0].choices[argv[index]]
        index += 1
        found = (parser, index)


def _config_path(argv: Sequence[str]) -> str | None:
    """The value of the last ``--config`` in ``argv`` (before any ``--``)."""
    path = None
    for i, token in enumerate(argv):
        if token == "--":
            break
        if token == "--config" and i + 1 < len(argv):
            path = argv[i + 1]
        elif token.startswith("--config="):
            path = token.split("=", 1)[1]
    return path


def expand_config(parser: argparse.ArgumentParser, argv: Sequence[str]) -> list[str]:
    """``argv`` with the options of its ``--config FILE`` inserted right after the sub-command (see module docstring).

    A command line without ``--config``, or whose sub-command has no ``--config`` option, is returned unchanged.

    Raises:
        ConfigError: as :func:`load_config` and :func:`config_arguments`.
    """
    argv = list(argv)
    found = _find_subparser(parser, argv)
    if found is None:
        return argv
    sub, start = found
    path = _config_path(argv[start:])
    if path is None or "config" not in {a.dest for a in sub._actions}:
        return argv
    tokens = config_arguments(sub, load_config(resolve_config(path)), path)
    return argv[:start] + tokens + argv[start:]

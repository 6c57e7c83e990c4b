"""``--config FILE`` (YAML) on ``synth``, ``cv``, ``demo`` and ``label serve``: the file is read, command-line options
win over it, and a bad file is one error line naming the file and the key. Also: every example file in ``configs/``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from monai_bone.cli import config as config_mod
from monai_bone.cli import main, parse_args
from monai_bone.cli.config import MAX_CONFIG_BYTES, ConfigError, resolve_config, shipped_configs

REPO = Path(__file__).resolve().parents[2]

#: Every shipped example config -> the sub-command that reads it and the options it leaves to the command line.
EXAMPLES: dict[str, list[str]] = {
    "configs/hip_ablation.yaml": ["cv", "--data", "dl.json"],
    "configs/knee_ablation.yaml": ["cv", "--data", "dl.json"],
    "configs/label_serve.yaml": ["label", "serve", "--studies", "studies"],
    "configs/demo_small.yaml": ["demo"],
    "configs/synthetic/realistic.yaml": ["synth", "--task", "hip", "--n", "5", "--out", "o"],
    "configs/synthetic/simple.yaml": ["synth", "--task", "knee", "--n", "5", "--out", "o"],
    "configs/synthetic/hip_hertfordshire.yaml": ["synth", "--out", "o"],
    "configs/synthetic/knee_kop.yaml": ["synth", "--out", "o"],
}


def _write(path: Path, text: str) -> str:
    path.write_text(text, encoding="utf-8")
    return str(path)


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_example_configs_parse(name: str) -> None:
    command = EXAMPLES[name]
    split = 2 if command[0] == "label" else 1
    args = parse_args([*command[:split], "--config", str(REPO / name), *command[split:]])
    assert args.config == str(REPO / name)


def test_every_example_config_is_checked() -> None:
    shipped = {p.relative_to(REPO).as_posix() for p in (REPO / "configs").rglob("*.y*ml")}
    assert shipped == set(EXAMPLES)


def test_knee_kop_preset_values() -> None:
    args = parse_args(["synth", "--config", str(REPO / "configs/synthetic/knee_kop.yaml"), "--out", "o"])
    assert (args.task, args.n, args.fmt, args.n_classes, args.preset, args.size) == (
        "knee",
        372,
        "kop",
        2,
        "realistic",
        1024,
    )


def test_synth_reads_the_file_and_a_flag_wins(tmp_path: Path) -> None:
    cfg = _write(tmp_path / "c.yaml", "task: hip\nn: 3\nsize: 64\nseed: 7\npreset: simple\nno_progress: true\n")
    out = tmp_path / "cohort"
    assert main(["synth", "--config", cfg, "--out", str(out), "--seed", "11"]) == 0
    info = json.loads((out / "cohort.json").read_text())
    assert info["n"] == 3 and info["size"] == 64  # from the file
    assert info["seed"] == 11  # the command line wins over seed: 7
    assert len(list((out / "dicom").rglob("*.dcm"))) == 3


def test_cv_reads_the_file_and_a_flag_wins(tmp_path: Path) -> None:
    cfg = _write(
        tmp_path / "cv.yaml",
        "task: hip\nfolds: 5\nepochs: 2\nbatch_size: 4\nno_loss_ablation: true\nset: [learning_rate=0.001]\n",
    )
    args = parse_args(["cv", "--config", cfg, "--data", "dl.json", "--epochs", "1", "--set", "max_epochs=3"])
    assert (args.task, args.folds, args.batch_size, args.no_loss_ablation) == ("hip", 5, 4, True)
    assert args.epochs == 1  # the command line wins
    assert args.set == ["learning_rate=0.001", "max_epochs=3"]  # repeatable: the file's, then the command line's


def test_demo_reads_the_file_and_a_flag_wins(tmp_path: Path) -> None:
    cfg = _write(tmp_path / "demo.yaml", "task: knee\nn_knee: 20\nepochs: 2\nquick: true\nout: from_file\n")
    args = parse_args(["demo", "--config", cfg, "--out", "from_cli"])
    assert (args.task, args.n_knee, args.epochs, args.quick) == ("knee", 20, 2, True)
    assert args.out == "from_cli"


def test_label_serve_reads_the_file_and_a_flag_wins(tmp_path: Path) -> None:
    cfg = _write(
        tmp_path / "serve.yaml",
        "studies: /data/x\nport: 8100\nmodels: hip\nhip_bundle: hip.zip\noverride: [hip.spatial_size=128]\n",
    )
    args = parse_args(["label", "serve", "--config", cfg, "--port", "8200", "--", "--ssl_keyfile", "k"])
    assert (args.studies, args.models, args.hip_bundle, args.knee_bundle) == ("/data/x", "hip", "hip.zip", None)
    assert args.override == ["hip.spatial_size=128"]
    assert args.port == 8200  # the command line wins
    assert args.monailabel_args[-2:] == ["--ssl_keyfile", "k"]


def test_required_options_may_come_from_the_file(tmp_path: Path) -> None:
    cfg = _write(tmp_path / "c.yaml", "task: knee\nn: 4\nout: somewhere\n")
    args = parse_args(["synth", "--config", cfg])
    assert (args.task, args.n, args.out) == ("knee", 4, "somewhere")


def test_boolean_optional_false_and_negative_values(tmp_path: Path) -> None:
    cfg = _write(tmp_path / "c.yaml", "task: hip\nn: 2\nout: o\nseed: -3\noverwrite: false\n")
    args = parse_args(["synth", "--config", cfg])
    assert args.seed == -3 and args.overwrite is False


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("task: hip\nn: 2\nout: o\nepochs: 3\n", "key 'epochs': unknown key (not an option of this command"),
        ("task: lung\n", "key 'task': invalid value 'lung' (choose from hip, knee)"),
        ("n: many\n", "key 'n': invalid value 'many'"),
        ("n: 0\n", "key 'n': invalid value '0' (must be at least 1"),
        ("overwrite: yes please\n", "key 'overwrite': expected true or false"),
        ("size: [64, 128]\n", "key 'size': expected a single value, got list"),
        ("- task\n- hip\n", "expected a mapping of option names to values"),
        ("task: [unclosed\n", "not a valid YAML config (line 2)"),
        ("task: !!python/object/apply:os.system [echo pwned]\n", "not a valid YAML config"),
    ],
)
def test_bad_config_is_one_line_naming_file_and_key(tmp_path: Path, capsys, text: str, message: str) -> None:
    cfg = _write(tmp_path / "bad.yaml", text)
    assert main(["synth", "--config", cfg, "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0, err
    assert err.startswith(f"monai-bone: error: {cfg}: ") and message in err, err
    assert not (tmp_path / "o").exists()


def test_positional_argument_is_not_a_config_key(tmp_path: Path) -> None:
    cfg = _write(tmp_path / "c.yaml", "label_command: serve\n")
    with pytest.raises(ConfigError, match="label_command.*unknown key"):
        parse_args(["label", "serve", "--config", cfg, "--studies", "s"])


def test_oversized_and_missing_files_are_refused(tmp_path: Path) -> None:
    big = _write(tmp_path / "big.yaml", "# padding\n" * (MAX_CONFIG_BYTES // 10 + 1) + "task: hip\n")
    with pytest.raises(ConfigError, match=r"big\.yaml: config file larger than"):
        parse_args(["synth", "--config", big])
    with pytest.raises(ConfigError, match=r"nope\.yaml: no such config file, and not a config shipped"):
        parse_args(["synth", "--config", str(tmp_path / "nope.yaml")])


def test_commands_without_config_reject_it(capsys) -> None:
    with pytest.raises(SystemExit) as exc:
        parse_args(["export", "b", "--out", "x.zip", "--config", "c.yaml"])
    assert exc.value.code == 2 and "unrecognized arguments: --config c.yaml" in capsys.readouterr().err


def test_config_by_shipped_name_from_any_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # no configs/ folder here
    for value in ("hip_ablation", "hip_ablation.yaml", "configs/hip_ablation.yaml"):
        args = parse_args(["cv", "--config", value, "--data", "dl.json", "--n-boot", "5"])
        assert (args.task, args.folds, args.out, args.n_boot) == ("hip", 10, "cv_hip_ablation", 5), value
    assert (
        resolve_config("realistic")
        == resolve_config("synthetic/realistic")
        == REPO / "configs/synthetic/realistic.yaml"
    )
    assert set(shipped_configs()) >= {"hip_ablation", "knee_ablation", "demo_small", "synthetic/realistic"}

    # a file that exists wins over a shipped name
    _write(tmp_path / "hip_ablation", "task: knee\nfolds: 3\n")
    args = parse_args(["cv", "--config", "hip_ablation", "--data", "dl.json"])
    assert (args.task, args.folds) == ("knee", 3)

    for bad in ("no_such_study", "../configs/hip_ablation", "/nowhere/hip_ablation.yaml", "hip_ablation.json"):
        with pytest.raises(ConfigError, match="not a config shipped with monai-bone .shipped: demo_small"):
            resolve_config(bad)
    assert main(["cv", "--config", "no_such_study", "--data", "dl.json"]) == 2


def test_config_names_come_from_the_package_data_first(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    wheel = tmp_path / "site" / "shipped_configs"  # the layout of an installed wheel
    (wheel / "synthetic").mkdir(parents=True)
    _write(wheel / "only_in_wheel.yaml", "folds: 4\n")
    _write(wheel / "synthetic" / "preset.yaml", "n: 7\n")
    monkeypatch.setattr(config_mod, "_SHIPPED_ROOTS", (wheel, REPO / "configs"))
    assert shipped_configs() == {
        "only_in_wheel": wheel / "only_in_wheel.yaml",
        "synthetic/preset": wheel / "synthetic" / "preset.yaml",
    }
    assert resolve_config("preset") == wheel / "synthetic" / "preset.yaml"
    with pytest.raises(ConfigError, match="shipped: only_in_wheel, synthetic/preset"):
        resolve_config("hip_ablation")

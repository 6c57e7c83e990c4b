"""CLI start-up stays light: ``monai-bone --help`` and ``monai-bone export --help`` do not import torch or MONAI, and no
sub-command module imports torch when it is loaded (each runs a fresh interpreter: ``sys.modules`` is per process)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from monai_bone.cli.commands import COMMANDS

REPO = Path(__file__).resolve().parents[2]

_PROBE = """
import json, sys
from monai_bone.cli import main
code = None
try:
    code = main(sys.argv[1:])
except SystemExit as exc:
    code = exc.code
heavy = sorted(m for m in ("torch", "monai", "ignite", "scipy", "pydicom") if m in sys.modules)
cli = sorted(m for m in sys.modules if m.startswith("monai_bone.cli."))
print(json.dumps({"code": code, "heavy": heavy, "cli": cli}))
"""


def _probe(*argv: str, code: str = _PROBE) -> dict:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]))
    proc = subprocess.run(
        [sys.executable, "-c", code, *argv], capture_output=True, text=True, env=env, cwd=REPO, timeout=300, check=False
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_top_level_help_imports_no_subcommand_module_and_no_torch() -> None:
    result = _probe("--help")
    assert result["code"] == 0
    assert result["heavy"] == []
    # no sub-command module imported: only the command table and the option helpers (--config, flag pairs)
    assert result["cli"] == ["monai_bone.cli.arguments", "monai_bone.cli.commands", "monai_bone.cli.config"]


def test_export_help_does_not_import_torch_or_monai() -> None:
    result = _probe("export", "--help")
    assert result["code"] == 0
    assert "torch" not in result["heavy"] and "monai" not in result["heavy"]
    assert "monai_bone.cli.export" in result["cli"]


def test_version_is_light() -> None:
    result = _probe("--version")
    assert result["code"] == 0 and result["heavy"] == []


@pytest.mark.parametrize("module", sorted({m for m, _ in COMMANDS.values()}))
def test_subcommand_modules_do_not_import_torch(module: str) -> None:
    code = f"import json, sys\nimport monai_bone.cli.{module}\nprint(json.dumps({{'torch': 'torch' in sys.modules}}))"
    assert _probe(code=code) == {"torch": False}


def test_package_root_is_lazy_until_monai_is_imported() -> None:
    code = (
        "import json, sys\nimport monai_bone\nlazy = 'monai_bone.networks' in sys.modules\n"
        "import monai_bone.networks as n\nok = monai_bone.networks is n\n"
        "print(json.dumps({'lazy': not lazy, 'torch_after_access': 'torch' in sys.modules, 'same': ok}))"
    )
    assert _probe(code=code) == {"lazy": True, "torch_after_access": True, "same": True}
    # in a process that already imported MONAI (a bundle run), `import monai_bone` registers every sub-package
    code = "import json, sys\nimport monai\nimport monai_bone\n"
    code += "print(json.dumps({'eager': 'monai_bone.handlers' in sys.modules}))"
    assert _probe(code=code) == {"eager": True}

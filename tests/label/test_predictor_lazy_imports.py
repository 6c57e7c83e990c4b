"""``monai_bone.label.predictor`` keeps MONAI, Ignite and ``monai_bone.handlers`` out of its import (the launcher of the
MONAI Label server and ``monai-bone watch`` import it for ``resolve_bundle``): they load only when a ``BundlePredictor``
is built (the reason is commented at each function-level import)."""

from __future__ import annotations

import json
import subprocess
import sys

CODE = """import json, sys
import monai_bone.label.predictor
heavy = ("monai", "ignite", "monai_bone.handlers", "monai_bone.data.collate")
print(json.dumps(sorted(m for m in heavy if m in sys.modules)))
"""


def test_importing_the_predictor_loads_no_monai():
    proc = subprocess.run([sys.executable, "-c", CODE], capture_output=True, text=True, timeout=300, check=True)
    assert json.loads(proc.stdout.splitlines()[-1]) == []

"""``python -m monai_bone`` runs the ``monai-bone`` command line."""

import sys

from monai_bone.cli import main

sys.exit(main())

"""Rebuild every bundled model: ONNX file, manifest, reference predictions and model card.

Run: npm run models:build   (or /usr/bin/python3 models/build/build_all.py [--out MODELS_DIR])

Needs Debian's python3-sklearn and python3-onnx (use /usr/bin/python3, not a pyenv python).
"""

from __future__ import annotations

import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402
import diabetes_regressor  # noqa: E402
import iris_classifier  # noqa: E402
import wine_classifier  # noqa: E402

BUILDS = [diabetes_regressor, iris_classifier, wine_classifier]


def main() -> None:
    out_dir = common.out_dir_from_argv(__doc__)
    for module in BUILDS:
        print(json.dumps(module.build(out_dir)))


if __name__ == "__main__":
    main()

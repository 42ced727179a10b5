import json

import numpy as np

from benchmarks.report import strip_private


def test_report_json_drops_private_keys_and_numpy_scalars_become_python():
    report = {"ok": np.bool_(True), "psnr": np.float64(40.0), "same": float("inf"), "_images": [np.zeros(3)],
              "rows": [{"n": np.int64(3)}]}
    clean = json.loads(json.dumps(strip_private(report)))
    assert clean == {"ok": True, "psnr": 40.0, "same": "inf", "rows": [{"n": 3}]}

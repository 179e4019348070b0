"""The usual hand-made Python stack as a baseline: FastAPI on uvicorn serving the bundled diabetes
regressor with scikit-learn. Trains the identical pipeline with the model's own `train()`
(models/build/), so both servers answer with the same weights.

Run: /usr/bin/python3 scripts/bench/fastapi_baseline.py PORT
"""

from __future__ import annotations

import os
import sys
from typing import Dict, List

import numpy as np
import uvicorn
from fastapi import FastAPI
from pydantic import BaseModel

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "models", "build"))
import diabetes_regressor  # noqa: E402

pipeline = diabetes_regressor.train()
FEATURES = diabetes_regressor.FEATURE_NAMES


class PredictRequest(BaseModel):
    instances: List[Dict[str, float]]


app = FastAPI()


@app.get("/health")
def health() -> dict:
    return {"status": "ok"}


@app.post("/v1/models/diabetes-regressor:predict")
def predict(req: PredictRequest) -> dict:
    X = np.array([[inst[f] for f in FEATURES] for inst in req.instances], dtype=np.float64)
    return {"predictions": pipeline.predict(X).tolist()}


if __name__ == "__main__":
    uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning", access_log=False)

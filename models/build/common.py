"""Shared pieces of the bundled-model builds: ONNX assembly, deterministic file output, model cards.

Everything here is written against Debian's python3-onnx 1.12 and python3-sklearn; there is no
skl2onnx, so graphs are assembled by hand with `onnx.helper` and checked with `onnx.checker`.
"""

from __future__ import annotations

import json
import os
import platform
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np
import onnx
import sklearn
from onnx import TensorProto, helper, numpy_helper

# ONNX Runtime supports far newer opsets, but these keep the files loadable by older runtimes and
# by every ONNX tool that understands IR 8 (ONNX 1.10+).
ONNX_OPSET = 17
ONNX_ML_OPSET = 3
IR_VERSION = 8
BATCH_DIM = "batch"
PRODUCER = "inferstack-models"

SEED = 20240521

# Parity tolerance between scikit-learn (float64) and the exported graph (float32), checked as
# |onnx - sklearn| <= ABS_TOL + REL_TOL * |sklearn| by the tests.
REL_TOL = 1e-4
ABS_TOL = 1e-5

MODELS_DIR = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))


@dataclass(frozen=True)
class Feature:
    """One named tabular input column, with the plausible domain the API accepts."""

    name: str
    description: str
    minimum: float
    maximum: float
    unit: str = ""
    enum: Sequence[float] | None = None
    kind: str = "number"  # the manifest's feature type: number | integer | boolean

    def manifest(self) -> dict[str, Any]:
        entry: dict[str, Any] = {"name": self.name, "type": self.kind, "min": self.minimum, "max": self.maximum}
        if self.enum is not None:
            entry["enum"] = list(self.enum)
        if self.unit:
            entry["unit"] = self.unit
        entry["description"] = self.description
        return entry


@dataclass
class Split:
    X_train: np.ndarray
    X_test: np.ndarray
    y_train: np.ndarray
    y_test: np.ndarray
    source_rows: int = 0
    extra: dict[str, Any] = field(default_factory=dict)


def f32(name: str, values: Any) -> TensorProto:
    return numpy_helper.from_array(np.asarray(values, dtype=np.float32), name=name)


def tensor_input(name: str, width: int) -> onnx.ValueInfoProto:
    return helper.make_tensor_value_info(name, TensorProto.FLOAT, [BATCH_DIM, width])


def make_model(
    *,
    graph_name: str,
    nodes: list[onnx.NodeProto],
    inputs: list[onnx.ValueInfoProto],
    outputs: list[onnx.ValueInfoProto],
    initializers: list[TensorProto],
    doc: str,
    metadata: dict[str, str],
    uses_ml_domain: bool = False,
) -> onnx.ModelProto:
    graph = helper.make_graph(nodes, graph_name, inputs, outputs, initializer=initializers, doc_string=doc)
    opsets = [helper.make_opsetid("", ONNX_OPSET)]
    if uses_ml_domain:
        opsets.append(helper.make_opsetid("ai.onnx.ml", ONNX_ML_OPSET))
    model = helper.make_model(
        graph,
        opset_imports=opsets,
        producer_name=PRODUCER,
        producer_version="1",
        model_version=1,
        doc_string=doc,
    )
    model.ir_version = IR_VERSION
    # Build provenance travels with the file so `GET /v2/models/<name>` users can trace it.
    base_meta = {
        "training_library": f"scikit-learn {sklearn.__version__}",
        "numpy": np.__version__,
        "onnx": onnx.__version__,
        "python": platform.python_version(),
    }
    helper.set_model_props(model, {**base_meta, **metadata})
    onnx.checker.check_model(model, full_check=True)
    return model


def write_bytes(path: str, data: bytes) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as handle:
        handle.write(data)


def write_json(path: str, value: Any) -> None:
    write_bytes(path, (json.dumps(value, indent=2, ensure_ascii=False) + "\n").encode("utf-8"))


def write_text(path: str, text: str) -> None:
    write_bytes(path, text.encode("utf-8"))


def save_onnx(path: str, model: onnx.ModelProto) -> None:
    # SerializeToString is deterministic for a given proto, so identical training gives identical bytes.
    write_bytes(path, model.SerializeToString(deterministic=True))


def instances(X: np.ndarray, features: Sequence[Feature]) -> list[dict[str, float]]:
    """Rows as feature-keyed objects: the V1 `instances` form the API validates against the manifest."""
    return [{f.name: float(v) for f, v in zip(features, row)} for row in X]


def check_domain(X: np.ndarray, features: Sequence[Feature], dataset: str) -> None:
    """The manifest's ranges must admit every real row, or the API would refuse genuine inputs."""
    for i, feature in enumerate(features):
        column = X[:, i]
        if column.min() < feature.minimum or column.max() > feature.maximum:
            raise ValueError(
                f"{dataset}: feature {feature.name} spans [{column.min()}, {column.max()}], "
                f"outside the manifest domain [{feature.minimum}, {feature.maximum}]"
            )
        if feature.enum is not None and not set(np.unique(column)).issubset(set(feature.enum)):
            raise ValueError(f"{dataset}: feature {feature.name} has values outside {feature.enum}")


def md_table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def feature_table(X: np.ndarray, features: Sequence[Feature]) -> str:
    rows = []
    for i, f in enumerate(features):
        column = X[:, i]
        accepted = f"{g(f.minimum)} – {g(f.maximum)}" + (f" (one of {', '.join(g(v) for v in f.enum)})" if f.enum else "")
        rows.append([f"`{f.name}`", f.description, f.unit or "–", f"{g(column.min())} – {g(column.max())}", accepted])
    return md_table(["feature", "meaning", "unit", "range in data", "accepted by the API"], rows)


def g(value: float, digits: int = 4) -> str:
    """Compact number for cards: 4 significant digits, no trailing zeros."""
    return f"{float(value):.{digits}g}"


def build_environment() -> str:
    return (
        f"scikit-learn {sklearn.__version__}, numpy {np.__version__}, onnx {onnx.__version__}, "
        f"Python {platform.python_version()}"
    )


def classification_metrics(y_true: np.ndarray, proba: np.ndarray) -> dict[str, float]:
    from sklearn.metrics import accuracy_score, f1_score, log_loss

    predicted = proba.argmax(axis=1)
    return {
        "accuracy": float(accuracy_score(y_true, predicted)),
        "macroF1": float(f1_score(y_true, predicted, average="macro")),
        "logLoss": float(log_loss(y_true, proba, labels=list(range(proba.shape[1])))),
    }


@dataclass
class ClassifierEvaluation:
    """A fitted classifier's held-out predictions and the metrics every model card reports."""
    proba: np.ndarray
    predicted: np.ndarray
    held_out: dict[str, float]
    train: dict[str, float]
    cv_accuracy: float


def evaluate_classifier(model: Any, split: Split, cv: Any) -> ClassifierEvaluation:
    from sklearn.model_selection import cross_val_score

    proba = model.predict_proba(split.X_test)
    return ClassifierEvaluation(
        proba=proba,
        predicted=model.predict(split.X_test),
        held_out=classification_metrics(split.y_test, proba),
        train=classification_metrics(split.y_train, model.predict_proba(split.X_train)),
        cv_accuracy=float(np.mean(cross_val_score(model, split.X_train, split.y_train, cv=cv))),
    )


def out_dir_from_argv(doc: str | None) -> str:
    """The `--out` model repository of a build script's command line."""
    import argparse

    parser = argparse.ArgumentParser(description=(doc or "").splitlines()[0])
    parser.add_argument("--out", default=MODELS_DIR, help="model repository to write into")
    return parser.parse_args().out


def classification_reference(
    *, name: str, version: int, script: str, features: Sequence[Feature], labels: Sequence[str],
    X: np.ndarray, y: np.ndarray, predicted: np.ndarray, proba: np.ndarray, metrics: dict[str, Any],
) -> dict[str, Any]:
    """reference.json of a classifier: held-out rows with scikit-learn's predict() and predict_proba()."""
    return {
        "model": name,
        "version": version,
        "kind": "classification",
        "about": "Held-out rows with scikit-learn's own predict() and float64 predict_proba(), written "
        f"by {script}. The ONNX model must reproduce them within tolerance.",
        "environment": build_environment(),
        "tolerance": {"relative": REL_TOL, "absolute": ABS_TOL},
        "input": "input",
        "labelOutput": "label",
        "probabilitiesOutput": "probabilities",
        "features": [f.name for f in features],
        "labels": list(labels),
        "metrics": metrics,
        "cases": [
            {
                "instance": instance,
                "labelIndex": int(label),
                "label": labels[int(label)],
                "probabilities": [float(p) for p in row],
                "target": labels[int(truth)],
            }
            for instance, label, row, truth in zip(instances(X, features), predicted, proba, y)
        ],
    }


def classifier_manifest(description: str, features: Sequence[Feature], labels: Sequence[str]) -> dict[str, Any]:
    return {
        "platform": "onnxruntime_onnx",
        "description": description,
        "versionPolicy": {"latest": {"numVersions": 1}},
        "inputs": [
            {
                "name": "input",
                "datatype": "FP32",
                "shape": [-1, len(features)],
                "features": [f.manifest() for f in features],
            }
        ],
        "outputs": [
            {"name": "label", "datatype": "INT64", "shape": [-1], "description": "predicted class index into labels"},
            {
                "name": "probabilities",
                "datatype": "FP32",
                "shape": [-1, len(labels)],
                "description": "class probabilities in labels order; each row sums to 1",
            },
        ],
        "labels": list(labels),
        "classification": {"probabilitiesOutput": "probabilities", "labelOutput": "label"},
        "batching": {"maxBatchSize": 64, "maxQueueDelayMicros": 2000},
        "cache": {"ttlSeconds": 300},
    }


def confusion_table(confusion: np.ndarray, labels: Sequence[str]) -> str:
    rows = [[f"**{labels[i]}**"] + [str(n) for n in row] for i, row in enumerate(confusion)]
    return md_table(["", *labels], rows)

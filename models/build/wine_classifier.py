"""Build `models/wine-classifier`: gradient-boosted trees on the UCI wine recognition data.

Run: /usr/bin/python3 models/build/wine_classifier.py [--out MODELS_DIR]

The tabular model most teams actually ship is a tree ensemble, so this one exercises ONNX-ML's
TreeEnsembleRegressor in the runtime. `train()` returns the fitted GradientBoostingClassifier.
"""

from __future__ import annotations

import os
import sys
from typing import Any

import numpy as np
from onnx import TensorProto, helper
from sklearn.datasets import load_wine
from sklearn.dummy import DummyClassifier
from sklearn.ensemble import GradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import confusion_matrix
from sklearn.model_selection import GridSearchCV, StratifiedKFold, cross_val_score, train_test_split
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402
import tree_ensemble  # noqa: E402
from common import Feature, Split  # noqa: E402

NAME = "wine-classifier"
VERSION = 1
TEST_SIZE = 0.3
LABELS = ["cultivar_1", "cultivar_2", "cultivar_3"]
FIXED = {"learning_rate": 0.05, "subsample": 0.8, "max_features": "sqrt"}
GRID = {"max_depth": [1, 2], "n_estimators": [100, 200]}
EDGE_THRESHOLDS = 40

# sklearn's column names, with the one containing a slash made JSON- and URL-friendly.
FEATURES = [
    Feature("alcohol", "alcohol content", 10, 15.5, "% vol"),
    Feature("malic_acid", "malic acid", 0.5, 6.5),
    Feature("ash", "ash", 1, 3.5),
    Feature("alcalinity_of_ash", "alcalinity of ash", 8, 32),
    Feature("magnesium", "magnesium", 60, 170),
    Feature("total_phenols", "total phenols", 0.5, 4.5),
    Feature("flavanoids", "flavanoids", 0.2, 5.5),
    Feature("nonflavanoid_phenols", "nonflavanoid phenols", 0.05, 0.8),
    Feature("proanthocyanins", "proanthocyanins", 0.2, 4),
    Feature("color_intensity", "colour intensity", 1, 14),
    Feature("hue", "hue", 0.3, 2),
    Feature("od280_od315", "OD280/OD315 of diluted wines (protein content)", 1, 4.5),
    Feature("proline", "proline", 200, 1800),
]
FEATURE_NAMES = [f.name for f in FEATURES]


def load_split() -> Split:
    data = load_wine()
    if len(data.feature_names) != len(FEATURES) or data.feature_names[0] != "alcohol" or data.feature_names[-1] != "proline":
        raise RuntimeError(f"unexpected wine columns {data.feature_names}")
    X = np.asarray(data.data, dtype=np.float64)
    y = np.asarray(data.target, dtype=np.int64)
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=TEST_SIZE, random_state=common.SEED, stratify=y
    )
    return Split(X_train, X_test, y_train, y_test, source_rows=len(X))


def cv_folds() -> StratifiedKFold:
    return StratifiedKFold(n_splits=5, shuffle=True, random_state=common.SEED)


def _search(split: Split) -> GridSearchCV:
    model = GradientBoostingClassifier(random_state=common.SEED, **FIXED)
    search = GridSearchCV(model, GRID, cv=cv_folds(), scoring="neg_log_loss")
    search.fit(split.X_train, split.y_train)
    return search


def train(split: Split | None = None) -> GradientBoostingClassifier:
    """The fitted classifier; rows ordered as FEATURE_NAMES, class indices as LABELS."""
    return _search(split or load_split()).best_estimator_


def export_onnx(model: GradientBoostingClassifier, check_rows: np.ndarray) -> Any:
    classes = len(LABELS)
    if list(model.classes_) != list(range(classes)) or model.estimators_.shape[1] != classes:
        raise RuntimeError("expected one regression tree per class per stage")
    # Raw score of class k = log prior_k + learning_rate * sum of the stage trees for k; the
    # probabilities are their softmax (scikit-learn's multinomial deviance).
    base = model._raw_predict_init(check_rows[:1])[0]
    trees = [(estimator.tree_, k) for stage in model.estimators_ for k, estimator in enumerate(stage)]
    ensemble = tree_ensemble.tree_ensemble_regressor(
        trees, n_targets=classes, scale=model.learning_rate, base_values=base,
        input_name="input", output_name="scores", node_name="boosted_trees",
    )
    _check_same_scores(model, trees, base, check_rows)
    nodes = [
        ensemble,
        helper.make_node("Softmax", ["scores"], ["probabilities"], name="softmax", axis=1),
        helper.make_node("ArgMax", ["scores"], ["label"], name="argmax", axis=1, keepdims=0),
    ]
    return common.make_model(
        graph_name="wine_boosted_trees",
        nodes=nodes,
        inputs=[common.tensor_input("input", len(FEATURES))],
        outputs=[
            helper.make_tensor_value_info("label", TensorProto.INT64, [common.BATCH_DIM]),
            helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, [common.BATCH_DIM, classes]),
        ],
        initializers=[],
        doc=f"GradientBoostingClassifier ({model.n_estimators_} stages x {classes} trees, depth {model.max_depth}) "
        f"recognising the cultivar of a wine; input columns: {', '.join(FEATURE_NAMES)}; classes: {', '.join(LABELS)}.",
        metadata={
            "dataset": "scikit-learn load_wine, UCI wine recognition data (Forina et al.)",
            "features": ",".join(FEATURE_NAMES),
            "labels": ",".join(LABELS),
        },
        uses_ml_domain=True,
    )


def _check_same_scores(model: GradientBoostingClassifier, trees: list, base: np.ndarray, X: np.ndarray) -> None:
    """Guards the export against a scikit-learn whose internals moved: rebuild the raw scores from
    the very trees exported and compare them with decision_function()."""
    scores = np.tile(base, (len(X), 1))
    X32 = X.astype(np.float32)
    for tree, k in trees:
        scores[:, k] += model.learning_rate * tree.predict(X32)[:, 0]
    if not np.allclose(scores, model.decision_function(X), rtol=1e-9, atol=1e-9):
        raise RuntimeError("exported trees do not reproduce decision_function")


def manifest() -> dict[str, Any]:
    return common.classifier_manifest(
        "Recognises which of three cultivars an Italian wine comes from, from 13 chemical measurements. "
        "Gradient-boosted trees on the UCI wine recognition data; see README.md for the model card.",
        FEATURES,
        LABELS,
    )


def build(out_dir: str = common.MODELS_DIR) -> dict[str, Any]:
    split = load_split()
    common.check_domain(np.vstack([split.X_train, split.X_test]), FEATURES, NAME)
    search = _search(split)
    model: GradientBoostingClassifier = search.best_estimator_
    evaluation = common.evaluate_classifier(model, split, cv_folds())
    proba, predicted, held_out = evaluation.proba, evaluation.predicted, evaluation.held_out
    train_metrics, cv_accuracy = evaluation.train, evaluation.cv_accuracy
    logistic = Pipeline([("scaler", StandardScaler()), ("logistic", LogisticRegression(max_iter=5000))])
    logistic_cv = float(np.mean(cross_val_score(logistic, split.X_train, split.y_train, cv=cv_folds())))
    logistic_test = float(logistic.fit(split.X_train, split.y_train).score(split.X_test, split.y_test))
    baseline_cv = float(np.mean(cross_val_score(DummyClassifier(), split.X_train, split.y_train, cv=cv_folds())))

    model_dir = os.path.join(out_dir, NAME)
    onnx_model = export_onnx(model, np.vstack([split.X_train, split.X_test]))
    common.save_onnx(os.path.join(model_dir, str(VERSION), "model.onnx"), onnx_model)
    common.write_json(os.path.join(model_dir, "model.json"), manifest())
    reference = common.classification_reference(
        name=NAME, version=VERSION, script="models/build/wine_classifier.py", features=FEATURES,
        labels=LABELS, X=split.X_test, y=split.y_test, predicted=predicted, proba=proba,
        metrics={"heldOut": held_out, "train": train_metrics, "cvAccuracy": cv_accuracy},
    )
    trees = [(estimator.tree_, k) for stage in model.estimators_ for k, estimator in enumerate(stage)]
    edge_rows, risky, thresholds = tree_ensemble.boundary_rows(trees, split.X_test, EDGE_THRESHOLDS)
    edge_proba = model.predict_proba(edge_rows)
    reference["edgeCases"] = {
        "about": "Rows with one feature exactly at a float32 neighbour of a split threshold, on both "
        "sides; scikit-learn's predictions. A threshold rounded to nearest instead of down flips these.",
        "cases": [
            {"instance": instance, "labelIndex": int(p.argmax()), "label": LABELS[int(p.argmax())],
             "probabilities": [float(v) for v in p]}
            for instance, p in zip(common.instances(edge_rows, FEATURES), edge_proba)
        ],
    }
    common.write_json(os.path.join(model_dir, "reference.json"), reference)
    confusion = confusion_matrix(split.y_test, predicted, labels=list(range(len(LABELS))))
    common.write_text(
        os.path.join(model_dir, "README.md"),
        _card(split, model, cv_accuracy, (logistic_cv, logistic_test), baseline_cv, held_out, train_metrics, confusion,
              (risky, thresholds, len(edge_rows))),
    )
    return {"model": NAME, "heldOut": held_out, **search.best_params_}


def _card(split: Split, model: GradientBoostingClassifier, cv_accuracy: float, logistic: tuple[float, float],
          baseline_cv: float, held_out: dict[str, float], train_metrics: dict[str, float], confusion: np.ndarray,
          edges: tuple[int, int, int]) -> str:
    g = common.g
    X_all = np.vstack([split.X_train, split.X_test])
    n_trees = model.n_estimators_ * len(LABELS)
    n_nodes = sum(e.tree_.node_count for e in model.estimators_.ravel())
    return f"""# wine-classifier — model card

*Generated by `models/build/wine_classifier.py` (`npm run models:build`); edit the script, not this file.*

Recognises which of three grape cultivars a wine comes from, from 13 chemical measurements.
Gradient-boosted decision trees, exported exactly to ONNX-ML as one `TreeEnsembleRegressor`
({n_trees} trees, {n_nodes} nodes) followed by `Softmax / ArgMax` (opset {common.ONNX_OPSET}, ai.onnx.ml {common.ONNX_ML_OPSET},
IR {common.IR_VERSION}, symbolic batch dimension). Tree ensembles are what most tabular models in production
are, so this model keeps the ONNX-ML path of the runtime under test.

| | |
|---|---|
| task | 3-class classification |
| input | `input`, FP32 [-1, {len(FEATURES)}], columns in the order below; V1 accepts feature-keyed objects |
| outputs | `label` (INT64 [-1], class index) and `probabilities` (FP32 [-1, {len(LABELS)}], softmax, rows sum to 1) |
| labels | index 0 `{LABELS[0]}`, 1 `{LABELS[1]}`, 2 `{LABELS[2]}` (UCI classes 1–3; scikit-learn's `class_0`–`class_2`) |
| model | `GradientBoostingClassifier({model.n_estimators_} stages, max_depth {model.max_depth}, learning_rate {g(model.learning_rate)}, subsample {g(model.subsample)}, max_features "{model.max_features}")`; depth and stages chosen by 5-fold CV log loss on the training rows |
| versions | 1 |
| intended use | demonstrating and testing the inference stack |

**Exactness.** scikit-learn compares float32 inputs with float64 thresholds; the export rounds each
threshold down to the nearest float32, which keeps every branch identical for every float32 input
(rounding to nearest could flip one: it would for {edges[0]} of the {edges[1]} distinct thresholds of this
model). `reference.json` carries {edges[2]} `edgeCases` rows sitting exactly on either side of such thresholds,
which the parity test runs too. The build also re-derives the raw class scores from the exported
trees and refuses to write the file if they differ from `decision_function`.

## Data

The UCI wine recognition data: chemical analysis of {split.source_rows} wines grown in the same region of Italy
from three cultivars (M. Forina et al., PARVUS, Institute of Pharmaceutical and Food Analysis and
Technologies, Genoa; UCI Machine Learning Repository, <https://archive.ics.uci.edu/dataset/109/wine>).
Read from the copy bundled with scikit-learn (`sklearn.datasets.load_wine`, Debian package
`python3-sklearn`).

**Licence.** UCI distributes the data under CC BY 4.0 (attribution above); scikit-learn redistributes
it under BSD-3-Clause. The model in this directory is ours (Apache-2.0, like the repository).

## Features

The source does not state units beyond alcohol (% by volume); values are as in the UCI file. The
accepted range is a plausible domain a little wider than the data; values outside it get a 400
that names the feature.

{common.feature_table(X_all, FEATURES)}

## Split and metrics

Stratified random split ({g(1 - TEST_SIZE)}/{g(TEST_SIZE)}, seed {common.SEED}): {len(split.y_train)} training rows,
{len(split.y_test)} held out. The held-out rows were used once, for the figures below.

| rows | accuracy | macro F1 | log loss |
|---|---|---|---|
| held out ({len(split.y_test)}) | {held_out['accuracy']:.3f} | {held_out['macroF1']:.3f} | {held_out['logLoss']:.3f} |
| training ({len(split.y_train)}) | {train_metrics['accuracy']:.3f} | {train_metrics['macroF1']:.3f} | {train_metrics['logLoss']:.3f} |

Compared on the same folds and held-out rows:

{common.md_table(["model", "CV accuracy", "held-out accuracy"], [
    ["gradient-boosted trees (this model)", f"{cv_accuracy:.3f}", f"{held_out['accuracy']:.3f}"],
    ["scaler + multinomial logistic regression", f"{logistic[0]:.3f}", f"{logistic[1]:.3f}"],
    ["always the most frequent class", f"{baseline_cv:.3f}", "–"],
])}

The classes are nearly separable, so both model families do well; the trees are kept for the reason
above, not because they win. Held-out confusion matrix (rows: true cultivar, columns: predicted):

{common.confusion_table(confusion, LABELS)}

## Parity

`reference.json` holds the {len(split.y_test)} held-out rows as feature-keyed objects with scikit-learn's own
`predict` and float64 `predict_proba`. `models/test/` checks the ONNX file with onnxruntime-node, and
the API over HTTP (V1 and V2), against them: labels equal, probabilities within
|Δ| ≤ {common.ABS_TOL:g} + {common.REL_TOL:g}·|reference|.

Built with {common.build_environment()}.
"""


def main() -> None:
    print(build(common.out_dir_from_argv(__doc__)))


if __name__ == "__main__":
    main()

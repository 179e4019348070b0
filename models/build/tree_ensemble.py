"""Exact export of scikit-learn gradient-boosted trees to ONNX-ML `TreeEnsembleRegressor`.

scikit-learn casts inputs to float32 and then compares `x32 <= threshold64`. ONNX stores float32
thresholds, so each threshold is rounded DOWN to the largest float32 not above it: for any float32
x, `x <= t64` and `x <= floor32(t64)` then agree, and the exported trees branch exactly as
scikit-learn's do (plain rounding to nearest can flip a branch for an x right at the threshold).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
from onnx import NodeProto, helper
from sklearn.tree._tree import TREE_LEAF


def floor_float32(values: np.ndarray) -> np.ndarray:
    rounded = values.astype(np.float32)
    too_high = rounded.astype(np.float64) > values
    rounded[too_high] = np.nextafter(rounded[too_high], np.float32(-np.inf))
    return rounded


def tree_ensemble_regressor(
    trees: Sequence[tuple[object, int]],
    *,
    n_targets: int,
    scale: float,
    base_values: Sequence[float],
    input_name: str,
    output_name: str,
    node_name: str,
) -> NodeProto:
    """One TreeEnsembleRegressor summing `scale * leaf value` of each (sklearn tree, target index)."""
    attrs: dict[str, list] = {k: [] for k in (
        "nodes_treeids", "nodes_nodeids", "nodes_featureids", "nodes_values", "nodes_modes",
        "nodes_truenodeids", "nodes_falsenodeids", "nodes_missing_value_tracks_true", "nodes_hitrates",
        "target_treeids", "target_nodeids", "target_ids", "target_weights",
    )}
    for tree_id, (tree, target) in enumerate(trees):
        left = tree.children_left  # type: ignore[attr-defined]
        right = tree.children_right  # type: ignore[attr-defined]
        thresholds = floor_float32(np.asarray(tree.threshold, dtype=np.float64))  # type: ignore[attr-defined]
        leaf_values = np.asarray(tree.value, dtype=np.float64)[:, 0, 0]  # type: ignore[attr-defined]
        for node in range(tree.node_count):  # type: ignore[attr-defined]
            is_leaf = left[node] == TREE_LEAF
            attrs["nodes_treeids"].append(tree_id)
            attrs["nodes_nodeids"].append(node)
            attrs["nodes_featureids"].append(0 if is_leaf else int(tree.feature[node]))  # type: ignore[attr-defined]
            attrs["nodes_values"].append(0.0 if is_leaf else float(thresholds[node]))
            attrs["nodes_modes"].append("LEAF" if is_leaf else "BRANCH_LEQ")
            attrs["nodes_truenodeids"].append(0 if is_leaf else int(left[node]))
            attrs["nodes_falsenodeids"].append(0 if is_leaf else int(right[node]))
            attrs["nodes_missing_value_tracks_true"].append(0)
            attrs["nodes_hitrates"].append(1.0)
            if is_leaf:
                attrs["target_treeids"].append(tree_id)
                attrs["target_nodeids"].append(node)
                attrs["target_ids"].append(target)
                attrs["target_weights"].append(float(np.float32(scale * leaf_values[node])))
    return helper.make_node(
        "TreeEnsembleRegressor",
        [input_name],
        [output_name],
        name=node_name,
        domain="ai.onnx.ml",
        n_targets=n_targets,
        aggregate_function="SUM",
        post_transform="NONE",
        base_values=[float(np.float32(v)) for v in base_values],
        **attrs,
    )


def boundary_rows(trees: Sequence[tuple[object, int]], base_rows: np.ndarray, limit: int) -> tuple[np.ndarray, int, int]:
    """Rows that reach a split node with its feature exactly on either side of the threshold.

    Picks split nodes whose threshold rounded to the nearest float32 would land above the float64
    threshold (the cases a naive export gets wrong), evenly spread, at most `limit`; for each, a
    base row whose path passes through the node, once at the largest float32 <= t (goes left) and
    once at the next float32 (goes right). Returns the rows, the number of such risky distinct
    thresholds, and the number of distinct thresholds.
    """
    splits = []  # (tree, node, feature, threshold)
    for tree, _ in trees:
        for node in range(tree.node_count):  # type: ignore[attr-defined]
            if tree.children_left[node] != TREE_LEAF:  # type: ignore[attr-defined]
                splits.append((tree, node, int(tree.feature[node]), float(tree.threshold[node])))  # type: ignore[attr-defined]
    distinct = {(f, t) for _, _, f, t in splits}
    risky = {(f, t) for f, t in distinct if float(np.float32(t)) > t}
    candidates = [s for s in splits if (s[2], s[3]) in risky]
    base32 = base_rows.astype(np.float32)
    rows: list[np.ndarray] = []
    for index in np.linspace(0, len(candidates) - 1, len(candidates)).astype(int):
        if len(rows) >= 2 * limit:
            break
        tree, node, feature, threshold = candidates[index]
        below = floor_float32(np.asarray([threshold]))[0]
        pair = []
        for value in (below, np.nextafter(below, np.float32(np.inf))):
            probe = base32.copy()
            probe[:, feature] = value
            reaches = np.asarray(tree.decision_path(probe)[:, node].todense()).ravel() > 0  # type: ignore[attr-defined]
            pair.append(reaches)
        both = np.flatnonzero(pair[0] & pair[1])
        if both.size == 0:
            continue
        row = base32[both[0]].astype(np.float64)
        for value in (below, np.nextafter(below, np.float32(np.inf))):
            edge = row.copy()
            edge[feature] = float(value)
            rows.append(edge)
    return np.asarray(rows), len(risky), len(distinct)

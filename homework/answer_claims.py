"""What the model answers of the written questions claim about a run, checked on a run.

The model answers (the markdown after ``# BEGIN SOLUTION`` in ``homework/source``) quote the
numbers of one executed run of the solutions and draw conclusions from them.  Each claim
below is a Python expression over the names the executed notebook defines (``runs``,
``experiments``, ``worst``, ``table``, ...); ``tests/test_homework.py`` executes the
solution notebooks and evaluates every claim in the kernel, so an answer that quotes numbers
a run does not give fails the tests.  The bounds are wide enough for another machine's
rounding, narrow enough to keep the conclusions true.

Claims marked robust hold for every seed of the run (part 5 trains each setting with seeds
0, 1 and 2); the others are what the default run shows and the answers say so.
"""

from __future__ import annotations

from typing import Any

#: notebook -> [(question, what the answer says, expression that must be true)]
CLAIMS: dict[str, list[tuple[str, str, str]]] = {
    "hw2_training.ipynb": [
        # q4c: mean pooling on a total energy
        (
            "q4c",
            "mean pooling: test MAE about 45-50 eV/cell",
            "all(38 < runs[f'{c}, mean'].metrics['test_mae'] < 58 for c in ('gated', 'shared'))",
        ),
        (
            "q4c",
            "mean pooling: R² below 0.25",
            "all(runs[f'{c}, mean'].metrics['test_r2'] < 0.25 for c in ('gated', 'shared'))",
        ),
        ("q4c", "predicting the training mean: MAE 77 eV/cell", "76 < baseline < 78"),
        (
            "q4c",
            "mean pooling beats the training mean only by about a third",
            "0.5 < runs['gated, mean'].metrics['test_mae'] / baseline < 0.75",
        ),
        (
            "q4c",
            "the worst crystal is the 112-atom cell, off by about 600 eV",
            "worst.n_atoms.iloc[0] == 112 and 500 < worst.abs_error.iloc[0] < 700",
        ),
        (
            "q4c",
            "the worst crystals' predictions stay between -140 and -50 eV",
            "worst.prediction.between(-140, -50).all()",
        ),
        # q4d: the extensive model
        (
            "q4d",
            "extensive: test MAE 4-5 eV/cell, R² above 0.99",
            "all(3.5 < runs[f'{c}, extensive'].metrics['test_mae'] < 5.5 "
            "and runs[f'{c}, extensive'].metrics['test_r2'] > 0.99 for c in ('gated', 'shared'))",
        ),
        (
            "q4d",
            "about ten times lower than mean pooling",
            "8 < runs['gated, mean'].metrics['test_mae'] "
            "/ runs['gated, extensive'].metrics['test_mae'] < 14",
        ),
        (
            "q4d",
            "gated and shared extensive within 1 eV/cell of each other in one run",
            "abs(runs['gated, extensive'].metrics['test_mae'] "
            "- runs['shared, extensive'].metrics['test_mae']) < 1.0",
        ),
        (
            "q4d",
            "every extensive run of part 5 but softplus without batch norm within 4-10 eV, "
            "every run that is not extensive above 33 eV, for every seed (robust)",
            "all(per_seed(experiments[e]).drop(index='activation=softplus, batchnorm=off', "
            "errors='ignore').stack().between(4, 10).all() "
            "for e in ('neighbours', 'activation', 'convolution')) "
            "and (per_seed(experiments['pooling']).stack() > 33).all()",
        ),
        (
            "q4d",
            "the gated extensive model differs by more than 0.5 eV between seeds",
            "np.ptp(per_seed(experiments['convolution']).loc['conv=gated'].to_numpy()) > 0.5",
        ),
        (
            "q4c",
            "mean pooling 47-50 eV for every seed of part 5 (robust)",
            "per_seed(experiments['pooling']).loc['pooling=mean'].between(45, 52).all()",
        ),
        # q5b: the experiments
        (
            "q5b",
            "neighbours: no setting significantly worse",
            "(experiments['neighbours'].significant != 'yes').all()",
        ),
        (
            "q5b",
            "neighbours: a different best setting for different seeds (not robust)",
            "per_seed(experiments['neighbours']).idxmin().nunique() > 1",
        ),
        (
            "q5b",
            "activation: softplus without batch norm worst, 11-20 eV, for every seed (robust)",
            "(per_seed(experiments['activation']).idxmax() "
            "== 'activation=softplus, batchnorm=off').all() "
            "and per_seed(experiments['activation']).loc"
            "['activation=softplus, batchnorm=off'].between(10, 22).all()",
        ),
        (
            "q5b",
            "activation: the other three within 4-7.5 eV, none significantly worse than the best",
            "(experiments['activation'].query('not (activation == \"softplus\" and not batchnorm)')"
            ".significant != 'yes').all() and experiments['activation'].query("
            "'not (activation == \"softplus\" and not batchnorm)')['mean'].between(4, 7.5).all()",
        ),
        (
            "q5b",
            "pooling: sum best for every seed, mean worst for every seed (robust)",
            "(per_seed(experiments['pooling']).idxmin() == 'pooling=sum').all() "
            "and (per_seed(experiments['pooling']).idxmax() == 'pooling=mean').all()",
        ),
        (
            "q5b",
            "pooling: mean and max significantly worse than sum; every pooling above 30 eV/cell",
            "(experiments['pooling'].set_index('pooling').loc[['mean', 'max'], 'significant'] "
            "== 'yes').all() "
            "and (experiments['pooling']['mean'] > 30).all()",
        ),
        (
            "q5b",
            "convolution: none and gated not significantly different, the best differs by seed",
            "(experiments['convolution'].significant != 'yes').all() "
            "and per_seed(experiments['convolution']).idxmin().nunique() > 1",
        ),
        # q6c: invariance
        (
            "q6c",
            "permutation, rotation, translation: changes below 1e-4 eV",
            "table.loc[['permuted', 'rotated', 'translated'], "
            "[c for c in table.columns if c.endswith('change')]].abs().max().max() < 1e-4",
        ),
        (
            "q6c",
            "supercell: the same prediction with mean pooling, twice with the extensive model",
            "abs(table.loc['supercell 2×1×1', 'gated, mean: change']) < 1e-4 and abs("
            "table.loc['supercell 2×1×1', 'gated, extensive'] "
            "/ table.loc['original', 'gated, extensive'] - 2) < 1e-4",
        ),
        # q7c: classification
        (
            "q7c",
            "about 4 % non-metals",
            "0.03 < labels.mean() < 0.07 and 0.03 < (perov5.ind_gap > 0).mean() < 0.05",
        ),
        (
            "q7c",
            "ROC-AUC informative (above 0.7), balanced accuracy near 0.5, PR-AUC low",
            "imbalance_metrics(labels, prob)['roc_auc'] > 0.7 "
            "and imbalance_metrics(labels, prob)['balanced_accuracy'] < 0.6 "
            "and imbalance_metrics(labels, prob)['pr_auc'] < 0.5",
        ),
        (
            "q7c",
            "accuracy no better than always answering 'metal'",
            "np.mean((prob >= 0.5) == labels) <= np.mean(labels == 0) + 0.01",
        ),
    ],
}


def per_seed(summary: Any) -> Any:
    """The test metric of every configuration (rows) and seed (columns) of a
    ``cgcnn.compare`` summary (from its ``attrs["results"]``)."""
    results = summary.attrs["results"]
    return results.pivot_table(index="config", columns="seed", values=summary["metric"].iloc[0])


def failed_claims(notebook: str, namespace: dict[str, Any]) -> list[str]:
    """The claims about ``notebook`` that do not hold in ``namespace`` (an executed run)."""
    scope = {**namespace, "per_seed": per_seed}
    failed = []
    for question, claim, expression in CLAIMS.get(notebook, []):
        try:
            ok = bool(eval(expression, scope))  # the instructor's own expressions
        except Exception as exc:
            failed.append(f"{question}: {claim}: {type(exc).__name__}: {exc}")
            continue
        if not ok:
            failed.append(f"{question}: {claim}: not true in this run")
    return failed

"""The notebooks' experiments, built on the engine and the measurements; one module per kind of experiment.

    sweeps.py       prune-and-evaluate, accuracy-vs-sparsity curves, where "free" pruning ends   (01, 04, 05)
    speedups.py     CSR and slim-model speedup sweeps, the break-even sparsity                  (02, 03)
    diagrams.py     a picture of a Torch-Pruning dependency group                                (03)
    oracle.py       the true loss change of removing one weight; rank correlation               (04)
    sensitivity.py  one-layer-at-a-time scans, per-layer sparsity allocation                     (05, 08)
    tradeoffs.py    operating points, Pareto fronts, picking under a budget                      (07)

Everything here is exported by `course` itself (`from course import sparsity_curve, ...`).
"""

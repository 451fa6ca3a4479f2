"""Installed size of otel-llmcost, against openai alone installed in the same run.

Builds fresh venvs in a temporary directory and installs, with the venv's own pip from the
configured index (PyPI):

* ``pip install "<checkout>[openai]"``: what an instrumented app needs;
* ``pip install "<checkout>[openai,embedded]"``: with the embedded ClickHouse (chdb);
* ``pip install openai==<the version the first venv resolved>``: the baseline;
* with ``--ref REV`` (repeatable): ``pip install "<git archive of REV>[openai]"``, an older
  commit measured the same way in the same run (the checkout itself is not touched).

It prints each venv's site-packages size (file sizes summed, MB = 10^6 bytes, the .pyc files
pip compiles included; and the space on disk as ``du -sm`` reports it, in MiB of allocated
blocks, which is larger for many small files), the difference to the baseline, and the 10 largest distributions of
each venv (the files listed in each ``*.dist-info/RECORD``, sized on disk). The checkout is
installed as it is on disk, uncommitted changes included.

Slow (a few minutes, most of it downloading and unpacking chdb): run by hand, not in CI.

    python benchmarks/install_size.py
    python benchmarks/install_size.py --ref fa705f0 --keep   # also an older commit; keep the venvs
"""

from __future__ import annotations

import argparse
import csv
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

CHECKOUT = Path(__file__).resolve().parent.parent
MB = 1_000_000


@dataclass
class Venv:
    label: str
    path: Path
    spec: str
    seconds: float = 0.0
    site_packages: Path = Path()
    total: int = 0
    disk: int = 0
    dists: dict[str, int] = field(default_factory=dict)


def _run(cmd: list[str], **kwargs: object) -> str:
    done = subprocess.run(cmd, capture_output=True, text=True, **kwargs)  # type: ignore[call-overload]
    if done.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed ({done.returncode}):\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}")
    return done.stdout


def build(python: str, venv: Venv) -> None:
    """Create the venv and pip install its spec into it."""
    started = time.perf_counter()
    _run([python, "-m", "venv", str(venv.path)])
    pip = [str(venv.path / "bin" / "python"), "-m", "pip", "install", "--disable-pip-version-check", "-q"]
    _run([*pip, venv.spec])
    venv.seconds = time.perf_counter() - started
    venv.site_packages = Path(
        _run([str(venv.path / "bin" / "python"), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"])
        .strip()
        .splitlines()[-1]
    )


def tree_size(root: Path) -> tuple[int, int]:
    """(bytes in files, bytes on disk as ``du`` counts them: allocated blocks of files and directories)."""
    files_total = disk = 0
    seen: set[tuple[int, int]] = set()
    for directory, _, files in os.walk(root):
        disk += os.lstat(directory).st_blocks * 512
        for name in files:
            stat = os.lstat(os.path.join(directory, name))
            files_total += stat.st_size
            if (stat.st_dev, stat.st_ino) not in seen:  # hard links count once, as in du
                seen.add((stat.st_dev, stat.st_ino))
                disk += stat.st_blocks * 512
    return files_total, disk


def distribution_sizes(site_packages: Path) -> dict[str, int]:
    """Bytes per distribution: the files its RECORD lists inside site-packages, sized on disk."""
    sizes: dict[str, int] = {}
    for record in site_packages.glob("*.dist-info/RECORD"):
        name = record.parent.name.removesuffix(".dist-info").rsplit("-", 1)[0]
        total = 0
        with record.open(newline="") as handle:
            for row in csv.reader(handle):
                if not row:
                    continue
                path = os.path.normpath(site_packages / row[0])
                if not path.startswith(str(site_packages) + os.sep):
                    continue  # console scripts in bin/, outside site-packages
                try:
                    total += os.lstat(path).st_size
                except OSError:
                    if len(row) > 2 and row[2].isdigit():
                        total += int(row[2])
        sizes[name] = total
    return sizes


def installed_version(venv: Venv, dist: str) -> str:
    code = f"import importlib.metadata as m; print(m.version({dist!r}))"
    return _run([str(venv.path / "bin" / "python"), "-c", code]).strip()


def export_ref(rev: str, into: Path) -> Path:
    """The tree of commit ``rev`` as plain files (git archive; the checkout is not touched)."""
    target = into / f"ref-{rev}"
    archive = into / f"ref-{rev}.tar"
    with archive.open("wb") as handle:
        subprocess.run(["git", "-C", str(CHECKOUT), "archive", rev], stdout=handle, check=True)
    with tarfile.open(archive) as tar:
        tar.extractall(target, filter="data")
    archive.unlink()
    return target


def checkout_state() -> str:
    head = subprocess.run(
        ["git", "-C", str(CHECKOUT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True
    ).stdout.strip()
    dirty = subprocess.run(
        ["git", "-C", str(CHECKOUT), "status", "--porcelain", "--untracked-files=no"], capture_output=True, text=True
    ).stdout.strip()
    return f"{head or 'unknown'}{' + uncommitted changes' if dirty else ''}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--python", default=sys.executable, help="interpreter the venvs are made from")
    parser.add_argument("--ref", action="append", default=[], help="also install this commit's [openai] (repeatable)")
    parser.add_argument("--top", type=int, default=10, help="largest distributions listed per venv")
    parser.add_argument("--keep", action="store_true", help="keep the venvs (their directory is printed)")
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="llmcost-install-size-"))
    started = time.perf_counter()
    try:
        venvs = [
            Venv("otel-llmcost[openai]", workdir / "openai", f"{CHECKOUT}[openai]"),
            Venv("otel-llmcost[openai,embedded]", workdir / "embedded", f"{CHECKOUT}[openai,embedded]"),
        ]
        build(args.python, venvs[0])
        openai_version = installed_version(venvs[0], "openai")
        baseline = Venv(f"openai=={openai_version} alone (baseline)", workdir / "baseline", f"openai=={openai_version}")
        for rev in args.ref:
            source = export_ref(rev, workdir)
            venvs.append(Venv(f"{rev}: otel-llmcost[openai]", workdir / f"ref-{rev}-venv", f"{source}[openai]"))
        for venv in [*venvs[1:], baseline]:
            build(args.python, venv)
        for venv in [baseline, *venvs]:
            venv.total, venv.disk = tree_size(venv.site_packages)
            venv.dists = distribution_sizes(venv.site_packages)

        python_version = _run([args.python, "-c", "import sys; print(sys.version.split()[0])"]).strip()
        pip_version = installed_version(baseline, "pip")
        print(
            f"checkout: {CHECKOUT} at {checkout_state()}; Python {python_version}, pip {pip_version} (the venvs' own)"
        )
        print(f"venvs in {workdir}; {time.perf_counter() - started:.0f} s in all")
        print()
        print("| venv | site-packages MB | vs baseline MB | ratio | on disk MiB (du -sm) | distributions | install s |")
        print("|---|---|---|---|---|---|---|")
        for venv in [baseline, *venvs]:
            delta = "" if venv is baseline else f"{(venv.total - baseline.total) / MB:+,.1f}"
            ratio = "" if venv is baseline else f"{venv.total / baseline.total:.1f}x"
            size = f"{venv.total / MB:,.1f}"
            disk = f"{venv.disk / 2**20:,.0f}"
            print(f"| {venv.label} | {size} | {delta} | {ratio} | {disk} | {len(venv.dists)} | {venv.seconds:.0f} |")
        for venv in [baseline, *venvs]:
            print()
            listed = sum(venv.dists.values())
            print(
                f"{venv.label}: {args.top} largest distributions "
                f"({max(venv.total - listed, 0) / MB:.1f} MB of site-packages is in no RECORD)"
            )
            print("| distribution | MB | in baseline |")
            print("|---|---|---|")
            for name, size in sorted(venv.dists.items(), key=lambda item: -item[1])[: args.top]:
                print(f"| {name} | {size / MB:,.1f} | {'yes' if name in baseline.dists else 'no'} |")
    finally:
        if args.keep:
            print(f"\nkept: {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""The one entry point for local runs and CI: creates .venv, installs the project, then serves or tests.

    python3 scripts/dev.py serve [verifymock serve options]   # the mock on 127.0.0.1:4010
    python3 scripts/dev.py test [pytest options]              # the whole test suite (installs Chromium if root)
    python3 scripts/dev.py bench [benchmark options]          # the load benchmark

Standard library only, so it runs on a machine that has nothing but Python 3.11.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
PYTHON = BIN / "python"
STAMP = VENV / ".installed"
PACKAGES = ("verifymock", "handlers")


def ensure_venv() -> None:
    if sys.version_info < (3, 11):  # noqa: UP036 - this script is the one place an older Python is told so
        sys.exit(f"verifymock needs Python 3.11 or newer; this is {sys.version.split()[0]}")
    if not PYTHON.exists():
        print(f"creating {VENV}", flush=True)
        venv.EnvBuilder(with_pip=True).create(VENV)
    wanted = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()
    if STAMP.exists() and STAMP.read_text() == wanted:
        return
    print("installing verifymock and its test tools into .venv", flush=True)
    pip = [str(PYTHON), "-m", "pip", "--disable-pip-version-check", "install", "--quiet"]
    subprocess.run([*pip, "--upgrade", "pip"], check=True)
    subprocess.run([*pip, "--editable", f"{ROOT}[test]"], check=True)
    STAMP.write_text(wanted)


def compile_sources() -> None:
    """Byte-compile the project's own modules, as pip does for an installed package. An editable install leaves
    that to the first import, which writes nothing where PYTHONDONTWRITEBYTECODE is set (as on some CI images):
    every start then compiled them again, a third of a second of the server's start-up. Only stale files are
    rewritten, so this costs a few ms when nothing changed."""
    packages = [str(ROOT / name) for name in PACKAGES]
    subprocess.run([str(PYTHON), "-m", "compileall", "-q", *packages], check=True, stdout=subprocess.DEVNULL)


def ensure_chromium() -> None:
    """The browser tests drive the system Chromium; as root on Debian it is installed here, else we say how."""
    if os.environ.get("CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser"):
        return
    if shutil.which("apt-get") and hasattr(os, "geteuid") and os.geteuid() == 0:
        print("installing Debian's chromium for the browser tests", flush=True)
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        subprocess.run(["apt-get", "update", "-qq"], check=True, env=env)
        subprocess.run(["apt-get", "install", "-y", "-qq", "chromium"], check=True, env=env, stdout=subprocess.DEVNULL)
    else:
        print("Chromium not found: install it (Debian: apt-get install chromium) or set CHROMIUM=/path", flush=True)


def main() -> int:
    if len(sys.argv) < 2 or sys.argv[1] not in ("serve", "test", "bench"):
        print(__doc__)
        return 2
    command, rest = sys.argv[1], sys.argv[2:]
    ensure_venv()
    compile_sources()
    if command == "serve":
        return subprocess.call([str(BIN / "verifymock"), "serve", *rest])
    if command == "bench":
        return subprocess.call([str(PYTHON), str(ROOT / "benchmarks" / "load.py"), *rest], cwd=ROOT)
    ensure_chromium()
    return subprocess.call([str(PYTHON), "-m", "pytest", *rest], cwd=ROOT)


if __name__ == "__main__":
    sys.exit(main())

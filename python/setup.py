"""Build step of the sparsedb wheel: compile the Swift library and put it inside the package.

Everything else is declared in pyproject.toml. `pip install ./python` (from the repository root)
runs `swift build -c release --product SparseDBC` in the repository that holds this folder and
copies `libSparseDBC.so` (and the C header) into the wheel. No binary is downloaded: the Swift
toolchain and the Debian packages that `tools/setup.sh` installs are all it needs.

Environment:
    SPARSEDB_SWIFT        the swift executable (default: `swift` on PATH)
    SPARSEDB_SWIFT_FLAGS  extra flags for `swift build`, split on white space
"""
import os
import shlex
import shutil
import subprocess
from pathlib import Path

from setuptools import Extension, setup
from setuptools.command.build_py import build_py

try:  # setuptools >= 70.1 ships bdist_wheel itself
    from setuptools.command.bdist_wheel import bdist_wheel
except ImportError:  # pragma: no cover - older setuptools
    from wheel.bdist_wheel import bdist_wheel

HERE = Path(__file__).resolve().parent
LIBRARY = "libSparseDBC.so"


def repository_root() -> Path:
    for candidate in (HERE.parent, *HERE.parents):
        if (candidate / "Package.swift").is_file() and (candidate / "Sources" / "SparseDBCAPI").is_dir():
            return candidate
    raise RuntimeError(
        f"cannot find the SparseDB repository (Package.swift with Sources/SparseDBCAPI) above {HERE}; "
        "build the package from a checkout: pip install ./python"
    )


class build_swift_then_py(build_py):
    """build_py, plus the Swift library built in release mode and copied into the package."""

    def run(self):
        super().run()
        root = repository_root()
        swift = os.environ.get("SPARSEDB_SWIFT", "swift")
        if shutil.which(swift) is None:
            raise RuntimeError(f"'{swift}' not found: the Swift toolchain is needed to build sparsedb")
        command = [swift, "build", "-c", "release", "--product", "SparseDBC"]
        command += shlex.split(os.environ.get("SPARSEDB_SWIFT_FLAGS", ""))
        self.announce("running " + " ".join(command) + f" in {root}", level=2)
        subprocess.run(command, cwd=root, check=True)
        bin_dir = subprocess.run(
            command + ["--show-bin-path"], cwd=root, check=True, capture_output=True, text=True
        ).stdout.strip().splitlines()[-1]
        built = Path(bin_dir) / LIBRARY
        if not built.is_file():
            raise RuntimeError(f"swift build did not produce {built}")
        target = Path(self.build_lib) / "sparsedb"
        target.mkdir(parents=True, exist_ok=True)
        shutil.copy2(built, target / LIBRARY)
        shutil.copy2(root / "Sources" / "SparseDBCAPI" / "include" / "sparsedb.h", target / "sparsedb.h")


class platform_wheel(bdist_wheel):
    """The wheel holds a native library and the optional CPython extension `_fastpath` (built
    for the interpreter that builds the wheel): tagged for that interpreter and platform."""

    def finalize_options(self):
        super().finalize_options()
        self.root_is_pure = False


# The one-query search path in C (src/sparsedb/_fastpath.c). Optional: without a C compiler or
# Python's headers the build goes on without it, and the package takes the same path in Python.
fastpath = Extension("sparsedb._fastpath", ["src/sparsedb/_fastpath.c"], optional=True, extra_compile_args=["-O2"])

setup(cmdclass={"build_py": build_swift_then_py, "bdist_wheel": platform_wheel}, ext_modules=[fastpath])

"""Build the Cython kernels in ``skmk/_kernels``.

Metadata lives in ``pyproject.toml``; this file only describes the compiled extensions: optimised,
with OpenMP where the compiler has it and a clean serial fallback where it does not (the kernels'
``prange`` loops then run on one thread and ``_omp_compat.h`` reports a single thread).
"""

import os
import sys
import tempfile
from pathlib import Path

import numpy as np
from Cython.Build import cythonize
from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

KERNELS = Path("skmk") / "_kernels"


def _compiler_has_openmp(compiler) -> bool:
    """Compile and link a tiny OpenMP program; True when the toolchain supports ``-fopenmp``."""
    if os.environ.get("SKMK_DISABLE_OPENMP"):
        return False
    source = "#include <omp.h>\nint main(void){return omp_get_max_threads() > 0 ? 0 : 1;}\n"
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "check_openmp.c"
        path.write_text(source)
        try:
            objects = compiler.compile([str(path)], output_dir=tmp, extra_postargs=["-fopenmp"])
            compiler.link_executable(objects, "check_openmp", output_dir=tmp,
                                     extra_postargs=["-fopenmp"])
        except Exception:
            return False
    return True


class BuildKernels(build_ext):
    """``build_ext`` that switches OpenMP on only when the compiler can use it."""

    def build_extensions(self):
        openmp = sys.platform != "win32" and _compiler_has_openmp(self.compiler)
        if not openmp:
            print("skmk: no OpenMP found, building serial kernels", file=sys.stderr)
        for ext in self.extensions:
            if openmp:
                ext.extra_compile_args.append("-fopenmp")
                ext.extra_link_args.append("-fopenmp")
        super().build_extensions()


def _extension(name: str) -> Extension:
    return Extension(
        f"skmk._kernels.{name}",
        sources=[str(KERNELS / f"{name}.pyx")],
        include_dirs=[np.get_include(), str(KERNELS)],
        define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_9_API_VERSION")],
        extra_compile_args=["-O3"],
    )


KERNEL_MODULES = sorted(path.stem for path in KERNELS.glob("*.pyx"))

setup(
    ext_modules=cythonize(
        [_extension(name) for name in KERNEL_MODULES],
        compiler_directives={
            "language_level": 3,
            "boundscheck": False,
            "wraparound": False,
            "cdivision": True,
            "initializedcheck": False,
        },
    ),
    cmdclass={"build_ext": BuildKernels},
)

"""Build the optional compiled CPU signature kernel.

Everything else lives in pyproject.toml. The extension is optional: if no C compiler is
available the package still installs and the ``cpu`` backend reports itself unavailable
(``ROON_BACKEND=auto`` then falls back to the NumPy reference).
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "roon.kernels._cpu",
            sources=["roon/kernels/_cpu.c", "roon/kernels/_mitm.c"],
            depends=["roon/kernels/_mitm.h"],
            extra_compile_args=["-O3", "-std=c11", "-fno-strict-aliasing"],
            optional=True,
        )
    ]
)

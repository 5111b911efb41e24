"""Packaging metadata for gaffer-gevent (tool configuration lives in pyproject.toml)."""

import re
from pathlib import Path

from setuptools import find_packages, setup

HERE = Path(__file__).parent
VERSION = re.search(
    r'^__version__ = "([^"]+)"', (HERE / "gaffer_gevent" / "__init__.py").read_text(), re.M
).group(1)

setup(
    name="gaffer-gevent",
    version=VERSION,
    description="A process manager driven by gaffer 0.4's HTTP API, built on gevent and Flask",
    long_description=(HERE / "README.md").read_text(),
    long_description_content_type="text/markdown",
    license="MIT",
    python_requires=">=3.11",
    packages=find_packages(include=["gaffer_gevent", "gaffer_gevent.*"]),
    package_data={"gaffer_gevent": ["py.typed"]},
    install_requires=[
        "gevent>=24.2",
        "gevent-websocket>=0.10.1",
        "flask>=3.0",
        "psutil>=5.9",
        "prometheus_client>=0.26",
        "httpx>=0.27",
        # examples/echo_client.py, the README's websocket example, runs after `make run` alone
        "websocket-client>=1.7",
        # gafferctl top and the progress spinners (imported only by those code paths)
        "rich>=15.0",
    ],
    extras_require={
        "test": [
            "pytest>=8",
            "pytest-timeout>=2.3",
            "ruff>=0.6",
            "mypy>=1.10",
            "types-psutil",
            "websocket-client>=1.7",
            "gunicorn[gevent]>=22",
            "cryptography>=42",
            "import-linter>=2.1",
            "schemathesis>=4.32",
            "hypothesis>=6.100",
            "requests>=2.32",
            "jsonschema-rs>=0.20",
            # tests/api/test_metrics.py reads examples/prometheus.yml
            "PyYAML>=6",
        ],
        "gunicorn": ["gunicorn[gevent]>=22"],
    },
    entry_points={
        "console_scripts": [
            "gafferd = gaffer_gevent.daemon:main",
            "gafferctl = gaffer_gevent.cli.gafferctl:main",
            "gaffer = gaffer_gevent.cli.gaffer:main",
        ]
    },
    classifiers=[
        "Programming Language :: Python :: 3.11",
        "Framework :: Flask",
        "Operating System :: POSIX",
    ],
)

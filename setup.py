"""Build hook: generate the protobuf/gRPC modules from proto/ before packaging.

All metadata lives in pyproject.toml; this file only makes `pip install` (regular and
editable) run the code generator, so generated code is never committed or hand-edited.
"""

import importlib.util
import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent


def _generate() -> None:
    spec = importlib.util.spec_from_file_location("_protogen", ROOT / "gateway" / "_protogen.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.generate(ROOT / "proto", ROOT / "gateway" / "api")


class BuildPyWithProtos(build_py):
    def run(self) -> None:
        _generate()
        super().run()
        # The shipped policies travel inside the package, so that an installed (not editable)
        # gateway finds them: gateway.server.config.shipped_policy_dir looks there first.
        # So do the example source mappings the demo's partners run (deploy/source).
        package = Path(self.build_lib) / "gateway"
        for source, name in ((ROOT / "policies", "_shipped_policies"),
                             (ROOT / "deploy" / "source", "_shipped_source_examples")):
            shutil.rmtree(package / name, ignore_errors=True)
            shutil.copytree(source, package / name)


setup(cmdclass={"build_py": BuildPyWithProtos})

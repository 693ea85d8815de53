"""Build step: the package carries what it reads at run time.

The top-level `templates/` (the source of truth, edited in the checkout) and the
commented starter `maildesk.toml` (what `maildesk init` writes) are copied into
the built package as `maildesk/shipped/`, so a wheel, an sdist or pipx install
has them. A checkout (or an editable install) reads them where they are
(`maildesk.outbound.templates.shipped`). Everything else is in pyproject.toml.
"""
import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

SHIPPED = ("templates", "maildesk.toml")


class BuildWithShipped(build_py):
    def run(self):
        super().run()
        target = Path(self.build_lib) / "maildesk" / "shipped"
        for name in SHIPPED:
            source = Path(name)
            if source.is_dir():
                shutil.copytree(source, target / name, dirs_exist_ok=True,
                                ignore=shutil.ignore_patterns("*~", ".*"))
            else:
                target.mkdir(parents=True, exist_ok=True)
                shutil.copy2(source, target / name)


setup(cmdclass={"build_py": BuildWithShipped})

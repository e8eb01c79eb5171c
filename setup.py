"""Install the repository's top-level folders as one package, `agentlog`.

The repository keeps the design card's top level (`domain/`, `projections/`, `transport/`,
`infra/`), but an installed agentlog must not claim those import names: a team that runs its
own agent module beside us may have a `domain` package of its own. So each folder is installed
as `agentlog.<folder>` (setuptools' package_dir maps folders to names), and `agentlog` itself is
a namespace package. Everything else is in pyproject.toml.
"""

from setuptools import find_packages, setup

FOLDERS = ("domain", "projections", "transport", "infra")

packages: list[str] = []
package_dir: dict[str, str] = {}
for folder in FOLDERS:
    packages += [f"agentlog.{folder}"] + [f"agentlog.{folder}.{p}" for p in find_packages(folder)]
    package_dir[f"agentlog.{folder}"] = folder

setup(packages=packages, package_dir=package_dir)

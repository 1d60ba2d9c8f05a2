#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-3.0-or-later
"""A stand-in for ansible-test's pip bootstrap script (get-pip.py), for machines without ci-files.

``ansible-test sanity`` and ``ansible-test units`` make their virtual environments without pip and
then run ``get-pip.py`` downloaded from https://ci-files.testing.ansible.com/, which is not
reachable here (only PyPI is). ansible-test first looks for a cached copy at
``~/.ansible/test/cache/get_pip_<version>.py``; tools/quality/gates puts this file there.

It does what get-pip.py does with the same arguments: installs pip into the running interpreter
(from the interpreter's own ``ensurepip`` wheel), then the requested packages (``pip==X.Y``) from the
package index. get-pip's own options ``--no-setuptools`` and ``--no-wheel`` mean "do not install
them", which is already the case with ensurepip on Python >= 3.12.
"""

from __future__ import annotations

import subprocess
import sys

GET_PIP_ONLY = {"--no-setuptools", "--no-wheel"}


def main() -> int:
    args = [arg for arg in sys.argv[1:] if arg not in GET_PIP_ONLY]
    subprocess.run([sys.executable, "-m", "ensurepip", "--default-pip"], check=True, stdout=subprocess.DEVNULL)
    return subprocess.run([sys.executable, "-m", "pip", "install", *args], check=False).returncode


if __name__ == "__main__":
    sys.exit(main())

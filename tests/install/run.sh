#!/usr/bin/env bash
# The install tier: v6diag as users install it, outside the source tree.
#   1. build the wheel from this checkout;
#   2. a Debian box: a venv of Debian's /usr/bin/python3 with --system-site-packages on a
#      machine with python3-scapy, python3-numpy and python3-netaddr (what many users have);
#      install the wheel, run every bundled example from another folder, hold the --json to
#      tests/golden;
#   3. the floors: the lowest Python requires-python allows (a pyenv interpreter), every
#      dependency pinned to its floor in pyproject.toml; the same examples, then the unit
#      and integration tiers on those versions.
# Needs root for the integration tier (namespaces), network for pip. With CI=true a
# missing piece (pyenv's Python, Debian's packages) is a failure, not a skip.
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
ci=0; case "${CI:-}" in true|1|yes) ci=1 ;; esac
work=$(mktemp -d /tmp/v6diag-install.XXXXXX)
trap 'rm -rf "$work"' EXIT
pip_q=(-q --disable-pip-version-check)

unavailable() {
    if [ "$ci" = 1 ]; then echo "install tier: $1" >&2; exit 69; fi
    echo "install tier: SKIPPED (not a pass): $1" >&2; exit 0
}

echo "== install tier: building the wheel" >&2
"$repo/.venv/bin/python" -m pip wheel "${pip_q[@]}" --no-deps -w "$work/dist" "$repo" >&2
wheel=$(ls "$work"/dist/v6diag-*.whl)

echo "== install tier: a Debian box (Debian's python3 and its python3-scapy, system site-packages)" >&2
scapy_deb=$(dpkg-query -W -f='${Version}' python3-scapy 2>/dev/null | sed 's/+.*//;s/-.*//') \
    || unavailable "python3-scapy is not installed (bash .ci/setup --tests installs it)"
/usr/bin/python3 -m venv --system-site-packages "$work/debian"
"$work/debian/bin/pip" install "${pip_q[@]}" "$wheel" >&2
python3 "$repo/tests/install/check_examples.py" --cli "$work/debian/bin/v6diag" --expect "scapy==$scapy_deb"

echo "== install tier: every dependency at its floor, on the lowest Python declared" >&2
lowest=$(python3 "$repo/tests/install/floors.py" --python "$repo/pyproject.toml")
pyenv_root=${PYENV_ROOT:-$HOME/.pyenv}
py=$(ls -d "$pyenv_root"/versions/"$lowest".*/bin/python 2>/dev/null | sort -V | tail -n1 || true)
[ -x "$py" ] || unavailable "no Python $lowest under $pyenv_root (pyenv install $lowest)"
python3 "$repo/tests/install/floors.py" "$repo/pyproject.toml" > "$work/floors.txt"
"$py" -m venv "$work/floors"
"$work/floors/bin/python" -m pip install "${pip_q[@]}" --upgrade pip >&2
"$work/floors/bin/pip" install "${pip_q[@]}" -c "$work/floors.txt" "$wheel[test]" >&2
expect=(); while read -r pin; do expect+=(--expect "$pin"); done < "$work/floors.txt"
python3 "$repo/tests/install/check_examples.py" --cli "$work/floors/bin/v6diag" "${expect[@]}"
cd "$repo"
# the unit and integration tiers on the floors (the CLI they run is the floors venv's);
# the privilege-drop tests are left to the main run: setpriv's user cannot read a pyenv
# interpreter that lives under /root
"$work/floors/bin/python" -m pytest -q -p no:cacheprovider tests/unit tests/integration \
    -k "not without_root and not without_cap_net and not not_root"

"""Runs `rocketgate check-config` on every rocketgate.toml the deploy files ship.

The schemas prove the manifests are valid Kubernetes; this proves the configuration inside
them is valid rocketgate, with the binary just built. Secret files the config names
(`*_file = "/path"`) are replaced by stand-ins of the right shape in a temp dir, since the real
ones only exist in a cluster.

Usage: check_configs.py ROCKETGATE_BINARY MANIFEST.yaml...
"""

import re
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

# What a secret file must hold to be valid; anything else gets a plain word.
STAND_INS = {
    "cookie-secret": "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=",
    "admin-token": "a" * 40,
    "redis-url": "redis://redis.example.internal:6379/0",
}


def configs(manifest: Path):
    for doc in yaml.safe_load_all(manifest.read_text()):
        if doc and doc.get("kind") == "ConfigMap":
            for key, text in (doc.get("data") or {}).items():
                if key.endswith(".toml"):
                    yield f"{manifest.name}:{doc['metadata']['name']}/{key}", text


def check(binary: str, label: str, text: str) -> bool:
    with tempfile.TemporaryDirectory() as tmp:
        def stand_in(match):
            path = match.group(2)
            name = Path(path).name
            target = Path(tmp) / name
            target.write_text(STAND_INS.get(name, "stand-in-" + name) + "\n")
            return f'{match.group(1)}"{target}"'

        text = re.sub(r'(_file\s*=\s*)"([^"]+)"', stand_in, text)
        config = Path(tmp) / "rocketgate.toml"
        config.write_text(text)
        env = {"PATH": "/usr/bin:/bin"}
        run = subprocess.run(
            [binary, "check-config", "--config", str(config)],
            capture_output=True, text=True, env=env, timeout=30,
        )
        if run.returncode != 0:
            print(f"{label}: refused by rocketgate check-config\n{run.stderr}{run.stdout}")
            return False
        return True


def main() -> int:
    binary, manifests = sys.argv[1], [Path(p) for p in sys.argv[2:]]
    checked = failed = 0
    for manifest in manifests:
        for label, text in configs(manifest):
            checked += 1
            failed += not check(binary, label, text)
    if checked == 0:
        print("no rocketgate.toml found in the manifests")
        return 1
    print(f"rocketgate check-config: {checked - failed} of {checked} shipped configurations valid")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

"""bench/gpu_suite.sh parses, and its dry run lists an existing bench script for every entry, each limited."""

import subprocess


def test_gpu_suite_dry_run(repo_root):
    script = repo_root / "bench" / "gpu_suite.sh"
    assert subprocess.run(["bash", "-n", str(script)]).returncode == 0
    dry = subprocess.run(
        ["bash", str(script)], env={"DRY_RUN": "1", "PATH": "/usr/bin:/bin"}, capture_output=True, text=True
    )
    assert dry.returncode == 0, dry.stderr
    lines = dry.stdout.splitlines()
    assert len(lines) >= 4
    limits = [int(line.split()[1]) for line in lines]
    assert sum(limits) <= 8 * 60  # the whole suite fits the 8-minute budget
    for line in lines:
        bench = next(word for word in line.split() if word.startswith("bench/"))
        assert (repo_root / bench).is_file(), bench

"""The committed log-mel fixtures are what librosa itself computes (SPEC §3) for their WAV clips."""
import pathlib
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parents[2]


def test_fixtures_match_librosa():
    result = subprocess.run([sys.executable, str(ROOT / "Tools/make_logmel_fixtures.py"), "--check"],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "white_noise" in result.stdout and "violin" in result.stdout

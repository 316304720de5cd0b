"""The Debian package (`make deb`, Tools/package.sh) installed into a clean Debian root, and the systemd units.

The package is built once per test run in its own scratch folder (.build-deb: the release build with the Swift
runtime linked in takes several minutes the first time, seconds when nothing changed). The clean root is made
by mmdebstrap (Debian's essential set, apt, and the libraries the package's Depends names, nothing else) and
kept as a tarball in .cache/deb-root, keyed by that Depends line, so that later runs only unpack it. Then, in a
chroot: dpkg installs the package (it refuses when a Depends is unmet), `soundloc check` reads the conffile and
loads the installed model, `soundloc run` replays the installed demo clip, and a purge leaves the root as it was.
Needs root (chroot); Tools/setup.sh --test installs mmdebstrap and systemd-analyze."""

import hashlib
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CACHE = ROOT / ".cache/deb-root"
SUITE = "bookworm"

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="installing into a chroot needs root")


def run(cmd, timeout=600, **kw):
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, **kw)


@pytest.fixture(scope="module")
def deb(tmp_path_factory) -> Path:
    for tool in ("dpkg-deb", "mmdebstrap", "systemd-analyze", "objdump"):
        if shutil.which(tool) is None:
            pytest.fail(f"{tool} not found: install the test tools with Tools/setup.sh --test")
    out = tmp_path_factory.mktemp("deb")
    r = run([str(ROOT / "Tools/package.sh"), "deb", str(out)], timeout=3000)
    assert r.returncode == 0, r.stderr[-4000:]
    path = Path(r.stdout.strip().splitlines()[-1])
    assert path.is_file() and path.parent == out
    return path


def field(deb: Path, name: str) -> str:
    return run(["dpkg-deb", "-f", str(deb), name]).stdout.strip()


def depends_packages(deb: Path) -> list:
    return [re.match(r"[a-z0-9.+-]+", part.strip()).group(0) for part in field(deb, "Depends").split(",")]


def test_package_holds_the_binary_models_conffile_and_units(deb):
    listing = run(["dpkg-deb", "-c", str(deb)]).stdout
    names = {line.split()[-1].lstrip(".") for line in listing.splitlines()}
    for path in ("/usr/bin/soundloc", "/usr/share/soundloc/dsol-music-int8.safetensors",
                 "/usr/share/soundloc/dsol-music-fp32.safetensors", "/usr/share/soundloc/demo/clip.wav",
                 "/usr/share/soundloc/demo/scene.png", "/etc/soundloc/soundloc.yaml",
                 "/usr/lib/systemd/system/soundloc.service", "/usr/lib/systemd/system/soundloc.socket",
                 "/usr/share/doc/soundloc/examples/raspberry-pi-5.yaml"):
        assert path in names, path
    assert "root/root" in listing and not re.search(r"^\S+ (?!root/root)", listing, re.M), "files not owned by root"
    control = deb.parent / "control"
    run(["dpkg-deb", "-e", str(deb), str(control)])
    assert (control / "conffiles").read_text().split() == ["/etc/soundloc/soundloc.yaml"]
    assert field(deb, "Package") == "soundloc"
    # Every library the binary links comes from a Debian package named in Depends; the Swift runtime is inside.
    tree = deb.parent / "x"
    run(["dpkg-deb", "-x", str(deb), str(tree)])
    needed = re.findall(r"NEEDED\s+(\S+)", run(["objdump", "-p", str(tree / "usr/bin/soundloc")]).stdout)
    assert needed and not [n for n in needed if "swift" in n.lower() or "Foundation" in n or "dispatch" in n.lower()], needed
    deps = depends_packages(deb)
    for lib, package in (("libasound.so.2", "libasound2"), ("libfftw3.so.3", "libfftw3-double3"),
                         ("libz.so.1", "zlib1g"), ("libc.so.6", "libc6")):
        assert lib in needed and package in deps, (lib, deps)
    assert any(d.startswith("libopenblas0") for d in deps), deps
    # The installed settings name the installed model, and the examples too.
    config = (tree / "etc/soundloc/soundloc.yaml").read_text()
    assert "path: /usr/share/soundloc/dsol-music-int8.safetensors" in config
    assert "/opt/soundloc" not in (tree / "usr/share/doc/soundloc/examples/raspberry-pi-5.yaml").read_text()
    assert "ExecStart=/usr/bin/soundloc run --config /etc/soundloc/soundloc.yaml" in \
        (tree / "usr/lib/systemd/system/soundloc.service").read_text()


def clean_root_tarball(deb: Path) -> Path:
    """Debian's essential set, apt and the package's dependencies (no more): made once per Depends line."""
    deps = depends_packages(deb)
    key = hashlib.sha256((SUITE + field(deb, "Depends") + field(deb, "Architecture")).encode()).hexdigest()[:16]
    tarball = CACHE / f"{SUITE}-{key}.tar"
    if not tarball.is_file():
        CACHE.mkdir(parents=True, exist_ok=True)
        partial = tarball.with_suffix(".partial.tar")
        r = run(["mmdebstrap", "--variant=apt", "--mode=root", "--include=" + ",".join(deps), SUITE, str(partial)],
                timeout=1500)
        assert r.returncode == 0, r.stderr[-4000:]
        partial.rename(tarball)
    return tarball


def snapshot(root: Path) -> set:
    """Every path in the root outside dpkg's own records and logs."""
    skip = ("var/lib/dpkg", "var/log", "var/cache", "proc", "tmp", "dev")
    found = set()
    for dirpath, dirnames, filenames in os.walk(root):
        rel = os.path.relpath(dirpath, root)
        if rel.split(os.sep)[0] in skip or rel.startswith(skip):
            dirnames[:] = []
            continue
        found.update(os.path.join(rel, n) for n in dirnames + filenames)
    return found


def test_package_installs_into_a_clean_debian_root_and_runs_from_the_installed_files(deb, tmp_path):
    root = tmp_path / "root"
    root.mkdir()
    r = run(["tar", "-x", "-C", str(root), "-f", str(clean_root_tarball(deb))])
    assert r.returncode == 0, r.stderr
    assert not (root / "usr/bin/soundloc").exists()
    before = snapshot(root)
    shutil.copy(deb, root / "tmp" / deb.name)

    def chroot(*cmd, timeout=600):
        return run(["chroot", str(root), *cmd], timeout=timeout, env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8"})

    # A Swift program reads its command line from /proc/self/cmdline: the root needs /proc, as every system has.
    r = run(["mount", "-t", "proc", "proc", str(root / "proc")])
    assert r.returncode == 0, r.stderr
    try:
        installed_and_run(root, deb, chroot)
    finally:
        run(["umount", str(root / "proc")])
    assert not os.path.ismount(root / "proc")
    # Purged, the package leaves nothing behind: its maintainer scripts created nothing.
    r = chroot("dpkg", "--purge", "soundloc")
    assert r.returncode == 0, r.stdout + r.stderr
    assert snapshot(root) == before
    shutil.rmtree(root)  # 250 MB


def installed_and_run(root: Path, deb: Path, chroot):
    # dpkg, not apt: it installs nothing else, so an incomplete Depends would leave the binary unable to start.
    r = chroot("dpkg", "-i", f"/tmp/{deb.name}")
    assert r.returncode == 0, r.stdout + r.stderr
    assert chroot("dpkg-query", "-W", "-f", "${Status}", "soundloc").stdout == "install ok installed"
    assert chroot("ldd", "/usr/bin/soundloc").stdout.count("not found") == 0

    # The conffile as installed: the file reads, the installed model loads; the devices are absent here.
    r = chroot("soundloc", "check", "--config", "/etc/soundloc/soundloc.yaml", "--no-live")
    lines = r.stdout.splitlines() + r.stderr.splitlines()
    assert any(l.startswith("ok: config: /etc/soundloc/soundloc.yaml: board generic") for l in lines), lines
    assert any(l.startswith("ok: model.path:") and "/usr/share/soundloc/dsol-music-int8.safetensors" in l for l in lines), lines
    problems = [l for l in lines if l.startswith("/etc/soundloc/soundloc.yaml: ")]
    assert all(re.match(r"/etc/soundloc/soundloc.yaml: (audio\.pcm|video\.device|output\.socket): ", l) for l in problems), problems

    # A file replay of the installed demo with the installed settings (the socket left out: /run is not there).
    r = chroot("soundloc", "run", "--config", "/etc/soundloc/soundloc.yaml", "--socket", "none", "--fast",
               "--audio", "/usr/share/soundloc/demo/clip.wav", "--video", "/usr/share/soundloc/demo/scene.png",
               "--frames", "12", timeout=900)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert re.search(r"frames: \d+ captured, 12 processed", r.stdout), r.stdout[-2000:]
    assert "sounding: " in r.stdout  # one line per frame: the demo's first seconds have instruments playing



def test_service_unit_is_hardened(deb, tmp_path):
    tree = tmp_path / "x"
    run(["dpkg-deb", "-x", str(deb), str(tree)])
    unit = tree / "usr/lib/systemd/system/soundloc.service"
    r = run(["systemd-analyze", "security", "--offline=yes", f"--root={tree}", str(unit)])
    match = re.search(r"Overall exposure level for soundloc.service: (\d+\.\d+)", r.stdout)
    assert match, r.stdout[-2000:] + r.stderr[-2000:]
    assert float(match.group(1)) <= 2.0, r.stdout
    # systemd-analyze verify on this host's systemd (the clean root has none): the units as packaged, with the
    # packaged binary standing at /usr/bin/soundloc.
    units = tmp_path / "units"
    units.mkdir()
    for name in ("soundloc.socket", "soundloc.service"):
        text = (tree / "usr/lib/systemd/system" / name).read_text()
        (units / name).write_text(text.replace("/usr/bin/soundloc", str(tree / "usr/bin/soundloc")))
    r = run(["systemd-analyze", "verify", str(units / "soundloc.socket"), str(units / "soundloc.service")])
    assert r.returncode == 0 and not r.stderr.strip(), r.stderr
    text = unit.read_text()
    for line in ("Type=notify", "WatchdogSec=", "DynamicUser=yes", "Requires=soundloc.socket"):
        assert line in text
    socket = (tree / "usr/lib/systemd/system/soundloc.socket").read_text()
    assert "SocketMode=0660" in socket and "SocketGroup=audio" in socket

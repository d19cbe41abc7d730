#!/usr/bin/env python3
"""Run one command inside the nested SVM test host (docs/testing.md).

    tools/testhost/run [OPTIONS] [--] COMMAND [ARG...]

COMMAND runs as root in the test host, in the repository's own path (the
work disk holds the repository, the built Ember and guest kit, build/linux),
with a real SVM /dev/kvm. Its standard output and error come back on ours
as they are written; its exit status is ours. Files it leaves in
$TESTHOST_OUT come back into --out DIR.

Exit status: the command's; or, when the test host itself failed,
  90  QEMU crashed (e.g. TCG's `tcg_handle_interrupt: assertion failed`) or
      the test host powered off without the command's status
  91  the test host hung: no output for --silence seconds, or --timeout
  92  the test host could not be built or started
with a `testhost:` line on standard error saying which. A caller treats
these as "the host broke", never as a result of the command.

One QEMU process per run; it is killed when this program exits, however it
exits (PR_SET_PDEATHSIG), and nothing of the run outlives it.
"""
import argparse
import ctypes
import io
import os
import select
import shlex
import shutil
import signal
import subprocess
import sys
import tarfile
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
IMAGES = os.path.join(ROOT, "build", "testhost")
EXIT_CRASH, EXIT_HANG, EXIT_SETUP = 90, 91, 92
MARK = "TESTHOST-EXIT "
PACKED = "TESTHOST-OUT-PACKED"
# What of the repository goes onto the work disk: everything but .git and
# the build tree, plus these built parts (the unit tests and fuzzers run on
# the machine itself; their objects are not needed).
BUILD_PARTS = ["ember", "asan/ember", "guest", "linux/bzImage", "linux/vmlinux",
               "linux/initramfs.cpio.gz", "linux/modules", "linux/kernel.txt", "linux/.inputs"]
# Environment passed into the test host when set here.
PASS_ENV_PREFIXES = ("EMBER_", "KEEP_TMP", "FUZZ_", "ASAN_OPTIONS", "UBSAN_OPTIONS")


def say(msg):
    print("testhost: " + msg, file=sys.stderr, flush=True)


def set_pdeathsig():
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def build_images():
    subprocess.run([sys.executable, os.path.join(HERE, "build.py")], check=True)


def link_tree(src, dst):
    """Hard-link SRC into DST (same file system), or copy where links fail."""
    if os.path.isdir(src) and not os.path.islink(src):
        shutil.copytree(src, dst, symlinks=True, copy_function=link_or_copy)
    else:
        os.makedirs(os.path.dirname(dst), exist_ok=True)
        link_or_copy(src, dst)


def link_or_copy(src, dst):
    if os.path.islink(src):
        os.symlink(os.readlink(src), dst)
        return
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


def make_work_image(workdir, extra_mib):
    """The work disk: the repository at its own path. Several runs can share
    one: QEMU opens it with snapshot=on."""
    stage = os.path.join(workdir, "stage")
    os.makedirs(stage)
    for name in os.listdir(ROOT):
        if name in (".git", "build"):
            continue
        link_tree(os.path.join(ROOT, name), os.path.join(stage, name))
    for part in BUILD_PARTS:
        src = os.path.join(ROOT, "build", part)
        if os.path.lexists(src):
            link_tree(src, os.path.join(stage, "build", part))
    used = int(subprocess.run(["du", "-sm", stage], check=True, capture_output=True,
                              text=True).stdout.split()[0])
    image = os.path.join(workdir, "work.img")
    with open(image, "wb") as f:
        f.truncate((used + extra_mib) << 20)
    subprocess.run(["mke2fs", "-q", "-F", "-t", "ext4", "-O", "^has_journal",
                    "-E", "root_owner=0:0", "-d", stage, image], check=True)
    shutil.rmtree(stage)
    return image


def qemu_command(args, work_image, out_image, console, joblog):
    drive = "if=none,format=raw,cache=unsafe,aio=threads"
    cmd = ["qemu-system-x86_64", "-accel", "tcg,thread=multi", "-cpu", "max",
           "-smp", str(args.cpus), "-m", args.memory, "-nodefaults", "-no-reboot",
           "-display", "none", "-monitor", "none",
           "-serial", "file:" + console, "-serial", "file:" + joblog,
           "-kernel", os.path.join(IMAGES, "bzImage"),
           "-initrd", os.path.join(IMAGES, "initrd.gz"),
           "-append", "console=ttyS0 quiet panic=-1 testhost.work=" + ROOT,
           "-device", "virtio-rng-pci"]
    for serial, path, snap in (("system", os.path.join(IMAGES, "system.img"), True),
                               ("work", work_image, True), ("out", out_image, False)):
        cmd += ["-drive", "id=%s,file=%s,%s%s" % (serial, path, drive, ",snapshot=on" if snap else ""),
                "-device", "virtio-blk-pci,drive=%s,serial=%s" % (serial, serial)]
    return cmd


def env_text(extra):
    lines = []
    for k, v in sorted(os.environ.items()):
        if k.startswith(PASS_ENV_PREFIXES):
            lines.append("%s=%s" % (k, shlex.quote(v)))
    for kv in extra:
        k, _, v = kv.partition("=")
        lines.append("%s=%s" % (k, shlex.quote(v)))
    return "\n".join(lines) + "\n"


class Run:
    """One boot of the test host, its output followed as it is written."""

    def __init__(self, args, workdir, work_image, job):
        self.args = args
        self.dir = workdir
        self.console = os.path.join(workdir, "console.log")
        self.joblog = os.path.join(workdir, "job.log")
        # The out disk brings the job in (a tar of cmd and env) and the
        # job's files back (a tar of $TESTHOST_OUT), written over it.
        self.out_image = os.path.join(workdir, "out.img")
        with tarfile.open(self.out_image, "w", format=tarfile.USTAR_FORMAT) as t:
            for name, text in job.items():
                data = text.encode()
                info = tarfile.TarInfo(name)
                info.size, info.mode = len(data), 0o755
                t.addfile(info, io.BytesIO(data))
        with open(self.out_image, "r+b") as f:
            f.truncate(args.out_mib << 20)
        for p in (self.console, self.joblog):
            open(p, "w").close()
        self.qemu_err = open(os.path.join(workdir, "qemu.err"), "w+")
        self.proc = subprocess.Popen(qemu_command(args, work_image, self.out_image, self.console,
                                                  self.joblog),
                                     stdin=subprocess.DEVNULL, stdout=self.qemu_err,
                                     stderr=subprocess.STDOUT, preexec_fn=set_pdeathsig)

    def follow(self):
        """Copy the job's output to ours until its status line; return it
        (or one of the EXIT_ codes when the host broke)."""
        start = last = time.monotonic()
        pending = b""
        status = None
        with open(self.joblog, "rb") as log:
            while True:
                chunk = log.read()
                if chunk:
                    last = time.monotonic()
                    pending += chunk
                    *lines, pending = pending.split(b"\n")
                    for raw in lines:
                        line = raw.decode(errors="replace").rstrip("\r")
                        if line.startswith(MARK):
                            status = int(line[len(MARK):].strip() or 1)
                        elif line != PACKED:   # fetch_out looks for it
                            sys.stdout.write(line + "\n")
                    sys.stdout.flush()
                if status is not None:
                    break
                if self.proc.poll() is not None:
                    chunk = log.read()
                    if chunk:
                        continue
                    return self.broke(EXIT_CRASH, self.why_dead())
                now = time.monotonic()
                if now - start > self.args.timeout:
                    return self.broke(EXIT_HANG, "no status after %d s (--timeout)" % self.args.timeout)
                if now - last > self.args.silence:
                    return self.broke(EXIT_HANG, "silent for %d s (--silence); console: %s" % (
                        self.args.silence, self.console_tail()))
                time.sleep(0.2)
        # The job is done: give the host a moment to pack the out disk and
        # power off.
        try:
            self.proc.wait(timeout=120)
        except subprocess.TimeoutExpired:
            say("the test host did not power off after the job; killed")
            self.kill()
        return status

    def console_tail(self):
        """The test host kernel's last lines (a panic or lockup shows there)."""
        with open(self.console, errors="replace") as f:
            return " | ".join(f.read().strip().splitlines()[-5:]) or "(empty)"

    def why_dead(self):
        self.qemu_err.seek(0)
        err = self.qemu_err.read().strip()
        if "assertion failed" in err or self.proc.returncode < 0:
            return "QEMU died (status %d): %s" % (self.proc.returncode, err.splitlines()[-1] if err else "")
        return "the test host stopped without the command's status (QEMU status %d%s); console: %s" % (
            self.proc.returncode, ", " + err.splitlines()[-1] if err else "", self.console_tail())

    def broke(self, code, why):
        say(why)
        self.kill()
        return code

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def fetch_out(self, dest):
        os.makedirs(dest, exist_ok=True)
        with open(self.joblog, "rb") as f:
            packed = (PACKED + "\n").encode() in f.read()
        if packed:
            subprocess.run(["tar", "-C", dest, "-xf", self.out_image], check=False)


def main():
    p = argparse.ArgumentParser(prog="tools/testhost/run", description=__doc__.split("\n\n")[0])
    p.add_argument("--memory", default=os.environ.get("TESTHOST_MEMORY", "4G"),
                   help="the test host's RAM (default 4G)")
    p.add_argument("--cpus", type=int, default=2)
    p.add_argument("--timeout", type=int, default=3600, help="seconds for the whole run")
    p.add_argument("--silence", type=int, default=600,
                   help="seconds without output after which the host counts as hung")
    p.add_argument("--out", help="directory for the files the command left in $TESTHOST_OUT")
    p.add_argument("--out-mib", type=int, default=256, help="size of the out disk")
    p.add_argument("--work-image", help="a work disk made before (--make-work-image), shared")
    p.add_argument("--make-work-image", metavar="PATH",
                   help="only make the work disk for COMMAND at PATH and exit")
    p.add_argument("--env", action="append", default=[], metavar="K=V")
    p.add_argument("--keep", action="store_true", help="keep the run's directory (console log)")
    p.add_argument("command", nargs=argparse.REMAINDER)
    args = p.parse_args()
    cmd = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not cmd and not args.make_work_image:
        p.error("no command")
    if shutil.which("qemu-system-x86_64") is None:
        say("qemu-system-x86_64 not found (tools/install-deps.sh installs qemu-system-x86)")
        return EXIT_SETUP
    try:
        build_images()
    except subprocess.CalledProcessError:
        say("the test host images could not be built")
        return EXIT_SETUP
    os.makedirs(IMAGES, exist_ok=True)
    workdir = tempfile.mkdtemp(prefix="run.", dir=IMAGES)
    run = None
    try:
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
        if args.make_work_image:
            os.rename(make_work_image(workdir, 1024), args.make_work_image)
            return 0
        job = {"cmd": "#!/bin/bash\n" + " ".join(shlex.quote(c) for c in cmd) + "\n",
               "env": env_text(args.env)}
        work_image = args.work_image or make_work_image(workdir, 1024)
        run = Run(args, workdir, work_image, job)
        status = run.follow()
        if args.out:
            run.fetch_out(args.out)
        return status
    except KeyboardInterrupt:
        return 130
    finally:
        if run:
            run.kill()
        if args.keep:
            say("run directory kept: " + workdir)
        else:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())

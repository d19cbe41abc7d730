#!/usr/bin/env python3
"""Run integration test scripts inside nested SVM test hosts, two at once.

    tools/testhost/suite.py [--hosts N] SCRIPT...

Used by tests/run.sh where /dev/kvm is missing or is kvm_pvm. The scripts
are split over N test hosts (default 2) by their expected run time (longest
first onto the least loaded host); each host boots once and runs its share
with `tests/run.sh --inside SCRIPT...`, which brackets every script's lines
with begin/end marks. Only the lines of scripts that reached their end mark
are printed, each tagged with where it ran ([nested-svm]). When a test host
breaks (QEMU aborts, or goes silent: tools/testhost/run exits 90 or 91), the
scripts it had not finished run again in a fresh test host, up to RETRIES
times; a script whose host broke every time is reported as `not ok`, saying
the host broke, so a bug of the host never passes a test.
"""
import argparse
import os
import queue
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
RUN = os.path.join(HERE, "run.py")
HOST_BROKE = (90, 91)
RETRIES = 2
BEGIN, END, ALIVE = "# testhost-begin ", "# testhost-end ", "# testhost-alive"
# Seconds each script took in the test host (measured; a new script counts
# DEFAULT_COST until it is measured and added here).
COST = {
}
DEFAULT_COST = 60
print_lock = threading.Lock()


def emit(lines):
    with print_lock:
        for line in lines:
            sys.stdout.write(line + "\n")
        sys.stdout.flush()


def partition(scripts, hosts):
    bins = [[0, []] for _ in range(hosts)]
    for s in sorted(scripts, key=lambda s: -COST.get(os.path.basename(s), DEFAULT_COST)):
        b = min(bins, key=lambda b: b[0])
        b[0] += COST.get(os.path.basename(s), DEFAULT_COST)
        b[1].append(s)
    return [b[1] for b in bins if b[1]]


def run_share(share, work_image, memory):
    """Run SHARE in one test host after another until each script ended or
    ran out of retries."""
    tries = {s: 0 for s in share}
    todo = list(share)
    while todo:
        cmd = [sys.executable, RUN, "--work-image", work_image, "--memory", memory,
               "--silence", "300", "--timeout", "5400", "--",
               "bash", "tests/run.sh", "--inside"] + todo
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, errors="replace")
        current, lines, done = None, [], []
        for line in proc.stdout:
            line = line.rstrip("\n")
            if line == ALIVE:
                continue
            if line.startswith(BEGIN):
                current, lines = line[len(BEGIN):].strip(), []
            elif line.startswith(END) and current:
                secs = line[len(END):].split()[-1]
                emit(lines + ["# %s: %s s in the test host" % (current, secs)])
                done.append(current)
                current = None
            elif current:
                lines.append(line)
            else:
                emit(["#   " + line])
        rc = proc.wait()
        todo = [s for s in todo if s not in done]
        if not todo:
            break
        if rc not in HOST_BROKE:
            # The run ended without finishing a script: not the host's doing.
            for s in todo:
                emit(["not ok - [nested-svm] %s: the test host ran it but it never ended (exit %d)"
                      % (os.path.basename(s), rc)])
            break
        broke = todo[0]
        tries[broke] += 1
        emit(["# the test host broke (%s) while running %s; %s" % (
            "QEMU crashed" if rc == 90 else "hung", broke,
            "again in a fresh test host" if tries[broke] <= RETRIES else "giving up")])
        if tries[broke] > RETRIES:
            emit(["not ok - [nested-svm] %s: the test host broke %d times running it (QEMU TCG); "
                  "no result" % (os.path.basename(broke), tries[broke])])
            todo.remove(broke)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--hosts", type=int, default=int(os.environ.get("TESTHOST_COUNT", "2")))
    p.add_argument("--memory", default=os.environ.get("TESTHOST_MEMORY", "4G"))
    p.add_argument("scripts", nargs="+")
    args = p.parse_args()
    scratch = os.path.join(ROOT, "build", "testhost")
    os.makedirs(scratch, exist_ok=True)  # a fresh clone has no build/testhost yet
    with tempfile.TemporaryDirectory(prefix="suite.", dir=scratch) as d:
        work = os.path.join(d, "work.img")
        started = time.monotonic()
        rc = subprocess.run([sys.executable, RUN, "--make-work-image", work]).returncode
        if rc != 0:
            emit(["not ok - [nested-svm] test host: could not be set up (exit %d)" % rc])
            return 1
        emit(["# test host images ready in %.1f s" % (time.monotonic() - started)])
        threads = [threading.Thread(target=run_share, args=(share, work, args.memory))
                   for share in partition(args.scripts, args.hosts)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        emit(["# nested suite: %.0f s on %d test hosts" % (time.monotonic() - started, len(threads))])
    return 0


if __name__ == "__main__":
    sys.exit(main())

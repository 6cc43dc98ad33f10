#!/usr/bin/env python3
"""Start-up cost of commands measured side by side, interleaved: round after round, each command
once, so that load from other builds on the machine falls on all of them alike (hyperfine runs one
command's runs, then the next's, and a load change between them shows up as a difference).

    ROUNDS=1000 python3 benches/token_fast_path/interleave.py /bin/true "target/release-cli/tessera token"

Each command (split like a shell would, no shell started) is spawned directly with stdout and
stderr on /dev/null, 50 warm-up runs each first. Prints a markdown table: the median wall time
(spawn to reap) and its ratio to the first command's, the fastest run, and the median CPU time
of the child (user + system, from wait4) and its ratio. A command that exits non-zero stops it.
"""
import os
import shlex
import statistics
import sys
import time

rounds = int(os.environ.get("ROUNDS", "1000"))
commands = [shlex.split(command) for command in sys.argv[1:]]
devnull = os.open(os.devnull, os.O_WRONLY)
actions = [(os.POSIX_SPAWN_DUP2, devnull, 1), (os.POSIX_SPAWN_DUP2, devnull, 2)]


def run(argv):
    start = time.perf_counter_ns()
    pid = os.posix_spawn(argv[0], argv, os.environ, file_actions=actions)
    _, status, usage = os.wait4(pid, 0)
    wall = time.perf_counter_ns() - start
    if status != 0:
        sys.exit(f"{shlex.join(argv)}: wait status {status}")
    return wall, (usage.ru_utime + usage.ru_stime) * 1e9


for argv in commands:
    for _ in range(50):
        run(argv)
wall = [[] for _ in commands]
cpu = [[] for _ in commands]
for _ in range(rounds):
    for i, argv in enumerate(commands):
        w, c = run(argv)
        wall[i].append(w)
        cpu[i].append(c)
first_wall, first_cpu = statistics.median(wall[0]), statistics.median(cpu[0])
print(f"{rounds} rounds")
print("| command | wall median | × first | fastest | CPU median | × first |")
print("| --- | --- | --- | --- | --- | --- |")
for i, command in enumerate(sys.argv[1:]):
    w, c = statistics.median(wall[i]), statistics.median(cpu[i])
    print(f"| `{command}` | {w / 1e6:.3f} ms | {w / first_wall:.2f} | {min(wall[i]) / 1e6:.3f} ms "
          f"| {c / 1e6:.3f} ms | {c / first_cpu:.2f} |")

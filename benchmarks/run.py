#!/usr/bin/env python3
"""courier's benchmark suite: the four transports side by side, and nginx + nchan
on the same load. Usage: benchmarks/run.py BUILD_DIR [--full] [--out DIR]

Fair runs: the server is pinned to core 0 and the load generator to core 1;
courier and nchan run alternately inside each scenario, each scenario is
repeated, and the figures are medians with min and max. The ratio
courier / nchan is computed pair by pair (run i of courier against run i of
nchan) and its median printed. The deciding figure is server CPU time per
delivered message (from /proc, first publish to last delivery).

Writes BUILD_DIR/bench/results.json (every run), report.md and plots (gnuplot,
SVG and PNG) next to it; prints a table as it goes.
"""
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SERVER_CORE, LOAD_CORE = 0, 1
NCHAN_MODULE = "/usr/lib/nginx/modules/ngx_nchan_module.so"


def log(msg):
    print(msg, flush=True)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pinned(core):
    cores = os.sched_getaffinity(0)
    target = {core} if core in cores else cores
    return lambda: os.sched_setaffinity(0, target)


def wait_port(port, proc, seconds=10):
    end = time.time() + seconds
    while time.time() < end:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("server did not start listening")


def terminate(proc):
    """SIGTERM, then SIGKILL after 10 s. True when it had to be killed."""
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(10)
        return False
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        return True


def rss_bytes(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


class Courier:
    name = "courier"

    def __init__(self, build):
        self.hub = os.path.join(build, "examples", "courier-hub")

    def available(self):
        return os.access(self.hub, os.X_OK)

    def start(self):
        self.port = free_port()
        # History covers a whole run, so that no poller falls off its end.
        self.proc = subprocess.Popen(
            [self.hub, "--port", str(self.port), "--address", "127.0.0.1", "--threads", "1",
             "--history", "1000000"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, preexec_fn=pinned(SERVER_CORE))
        try:
            wait_port(self.port, self.proc)
        except Exception:
            self.stop()
            raise
        return self.proc.pid

    def stop(self):
        terminate(self.proc)


class Nchan:
    """nginx + nchan, one worker, from benchmarks/nchan/nginx.conf.in."""
    name = "nchan"

    def __init__(self, build):
        self.nginx = shutil.which("nginx") or "/usr/sbin/nginx"
        self.template = os.path.join(HERE, "nchan", "nginx.conf.in")

    def available(self):
        return os.access(self.nginx, os.X_OK) and os.path.exists(NCHAN_MODULE) and os.path.exists(self.template)

    def start(self):
        self.port = free_port()
        self.prefix = tempfile.mkdtemp(prefix="courier-nchan-")
        with open(self.template) as f:
            conf = f.read().replace("@PORT@", str(self.port)).replace("@PREFIX@", self.prefix)
        conf_path = os.path.join(self.prefix, "nginx.conf")
        with open(conf_path, "w") as f:
            f.write(conf)
        os.makedirs(os.path.join(self.prefix, "tmp"))
        os.chmod(self.prefix, 0o755)  # workers run as nobody when the master is root
        # The master stays in the foreground (daemon off); the one worker
        # does the work and inherits the pinning. -e: nginx opens its error
        # log before it reads the config.
        self.proc = subprocess.Popen([self.nginx, "-p", self.prefix + "/", "-c", conf_path, "-e",
                                      os.path.join(self.prefix, "error.log"), "-g", "daemon off;"],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                     preexec_fn=pinned(SERVER_CORE))
        try:
            wait_port(self.port, self.proc)
        except Exception:
            self.stop()
            raise
        return self.worker_pid()

    def worker_pid(self):
        """The worker: the master's child (found in /proc: no procps needed)."""
        for _ in range(50):
            for entry in os.listdir("/proc"):
                if not entry.isdigit():
                    continue
                try:
                    with open(f"/proc/{entry}/stat") as f:
                        fields = f.read().rsplit(")", 1)[1].split()
                except OSError:
                    continue
                if int(fields[1]) == self.proc.pid:  # field 4: ppid
                    self.worker = int(entry)
                    return self.worker
            time.sleep(0.05)
        self.stop()
        raise RuntimeError("nginx worker not found")

    def stop(self):
        if terminate(self.proc) and getattr(self, "worker", None):  # a killed master leaves its worker behind
            try:
                os.kill(self.worker, signal.SIGKILL)
            except OSError:
                pass
        shutil.rmtree(self.prefix, ignore_errors=True)


def loadgen(build, server, pid, args, timeout=120):
    cmd = [os.path.join(build, "benchmarks", "courier-loadgen"), "--server", server.name, "--port", str(server.port),
           "--server-pid", str(pid)] + [str(a) for a in args]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, preexec_fn=pinned(LOAD_CORE))
    if out.returncode != 0:
        raise RuntimeError(f"loadgen failed ({out.returncode}): {out.stderr.strip()[-300:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def idle_memory(build, server, transport, count):
    """RSS growth of the server per idle subscriber connection."""
    pid = server.start()
    try:
        time.sleep(0.3)
        before = rss_bytes(pid)
        cmd = [os.path.join(build, "benchmarks", "courier-loadgen"), "--server", server.name, "--port",
               str(server.port), "--transport", transport, "--idle", str(count), "--topic", "idle"]
        p = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                             preexec_fn=pinned(LOAD_CORE))
        line = p.stdout.readline()
        if not line.startswith('{"idle"'):
            p.kill()
            raise RuntimeError("idle connections did not open")
        time.sleep(1.0)
        after = rss_bytes(pid)
        p.stdin.close()
        p.wait(30)
        return {"server": server.name, "transport": transport, "connections": count,
                "bytes_per_connection": (after - before) / count}
    finally:
        server.stop()


def scenarios(full):
    """(name, transport, loadgen args, figures to report)."""
    subs = [100, 1000] if full else [1000]
    repeats = 3 if full else 2
    out = []
    # A poller that falls behind (nchan answers one message per poll) is cut
    # at the timeout; what it missed is reported, not waited for.
    limit = ["--timeout", 12 if full else 8]
    for s in subs:
        for t in ["sse", "ws", "lp", "poll"]:
            msgs = (2000 if s == 1000 else 5000) if full else 500
            args = ["--transport", t, "--subscribers", s, "--messages", msgs, "--depth", 10, "--interval-ms", 100]
            out.append((f"fan-out {s} subs", t, args + limit, repeats, FIGURES))
    for t in ["sse", "ws", "lp", "poll"]:
        rate, secs = 1000, (5 if full else 2)
        args = ["--transport", t, "--subscribers", 100, "--messages", rate * secs, "--rate", rate, "--interval-ms", 100]
        out.append((f"steady {rate} msg/s, 100 subs", t, args + limit, repeats, FIGURES))
    if full:
        for interval in [50, 250, 1000]:
            args = ["--transport", "poll", "--subscribers", 100, "--messages", 2000, "--rate", 200,
                    "--interval-ms", interval]
            out.append((f"poll every {interval} ms, 200 msg/s", "poll", args + limit, repeats, FIGURES))
    # The cost of one reconnect with resume: each subscriber reads a backlog,
    # dropping its connection after every 10 messages and resuming after the
    # last id it received.
    # (A long poll resumes from its cursor on every request anyway, and one
    # answer carries the whole backlog: its cost per request is in the
    # tables above.)
    backlog = 1000 if full else 500
    for t in ["sse", "ws"]:
        args = ["--transport", t, "--subscribers", 100, "--messages", backlog, "--reconnects", 10, "--depth", 10]
        out.append(("reconnect + resume every 10 messages", t, args + limit, repeats, RECONNECT_FIGURES))
    return out


RECONNECT_FIGURES = [("cpu_us_per_reconnect", "CPU us/rec", "{:.1f}"), ("reconnects_per_s", "rec/s", "{:.0f}"),
                     ("p50_us", "p50 us", "{:.0f}"), ("p99_us", "p99 us", "{:.0f}"),
                     ("bytes_per_reconnect", "B/rec", "{:.0f}"), ("requests_per_reconnect", "req/rec", "{:.2f}")]

FIGURES = [("cpu_us_per_msg", "CPU us/msg", "{:.2f}"), ("msg_per_s", "msg/s", "{:.0f}"),
           ("p50_us", "p50 us", "{:.0f}"), ("p90_us", "p90 us", "{:.0f}"), ("p99_us", "p99 us", "{:.0f}"),
           ("max_us", "max us", "{:.0f}"), ("bytes_per_msg", "B/msg", "{:.0f}"),
           ("requests_per_msg", "req/msg", "{:.3f}"), ("empty_answers", "empty polls", "{:.0f}"),
           ("loadgen_cpu_us_per_msg", "load us/msg", "{:.2f}")]


def summarise(runs, figures):
    """Median, min and max of every figure over runs."""
    out = {}
    for key, _, _ in figures:
        vals = [r[key] for r in runs]
        out[key] = {"median": statistics.median(vals), "min": min(vals), "max": max(vals)}
    out["lost"] = sum(r["lost"] for r in runs)
    out["missing"] = sum(r["missing"] for r in runs)
    out["duplicated"] = sum(r["duplicated"] for r in runs)
    return out


def pair_ratio(a_runs, b_runs, key):
    ratios = [a[key] / b[key] for a, b in zip(a_runs, b_runs) if b[key]]
    return statistics.median(ratios) if ratios else None


def main():
    if len(sys.argv) < 2:
        print(__doc__)
        return 2
    build = os.path.abspath(sys.argv[1])
    full = "--full" in sys.argv
    out_dir = os.path.join(build, "bench")
    if "--out" in sys.argv:
        out_dir = os.path.abspath(sys.argv[sys.argv.index("--out") + 1])
    os.makedirs(out_dir, exist_ok=True)
    servers = [Courier(build), Nchan(build)]
    servers = [s for s in servers if s.available()]
    if not servers or servers[0].name != "courier":
        print("courier-hub not built", file=sys.stderr)
        return 1
    if len(servers) == 1:
        log("nginx + nchan not found: courier only (./run.sh bench installs them)")
    log(f"courier benchmark suite ({'full' if full else 'quick'} run): server on core {SERVER_CORE}, "
        f"load on core {LOAD_CORE}; results in {out_dir}")
    started = time.time()
    results = {"machine": os.uname().nodename, "cores": os.cpu_count(), "full": full, "scenarios": [],
               "memory": []}
    header = f"{'scenario':34} {'transport':5} {'server':8} " + " ".join(f"{label:>11}" for _, label, _ in FIGURES) + \
             "  lost dup missing"
    log(header)
    plan = scenarios(full)
    for index, (name, transport, args, repeats, figures) in enumerate(plan, 1):
        print(f"  [{index}/{len(plan)}] {name}, {transport}: {repeats} x {len(servers)} runs", file=sys.stderr,
              flush=True)
        runs = {s.name: [] for s in servers}
        for i in range(repeats):
            for server in servers:  # alternate within each repeat
                try:
                    pid = server.start()
                except Exception as e:  # e.g. nginx cannot load the module: report, go on
                    log(f"  {server.name} did not start: {e}")
                    continue
                try:
                    r = loadgen(build, server, pid, args + ["--topic", f"t{i}"])
                    runs[server.name].append(r)
                except Exception as e:  # a failed run is reported, not fatal
                    log(f"  {name} {transport} {server.name}: {e}")
                finally:
                    server.stop()
        entry = {"scenario": name, "transport": transport, "args": [str(a) for a in args], "runs": runs,
                 "figures": [[k, label, fmt] for k, label, fmt in figures], "summary": {}, "ratio": {}}
        if figures is not FIGURES and index > 1 and plan[index - 2][4] is not figures:
            log(f"{'':34} {'':5} {'':8} " + " ".join(f"{label:>11}" for _, label, _ in figures))
        for server in servers:
            if not runs[server.name]:
                continue
            s = summarise(runs[server.name], figures)
            entry["summary"][server.name] = s
            cells = " ".join(f"{fmt.format(s[key]['median']):>11}" for key, _, fmt in figures)
            log(f"{name:34} {transport:5} {server.name:8} {cells}  {s['lost']:4} {s['duplicated']:3} {s['missing']:7}")
        if len(servers) == 2 and runs["courier"] and runs["nchan"]:
            for key, _, _ in figures:
                entry["ratio"][key] = pair_ratio(runs["courier"], runs["nchan"], key)
            cells = " ".join(f"{('' if v is None else f'{v:.2f}x'):>11}" for v in entry["ratio"].values())
            log(f"{'':34} {'':5} {'c/n':8} {cells}")
        results["scenarios"].append(entry)
    idle = 10000 if full else 2000
    for transport in ["sse", "ws"]:
        for server in servers:
            try:
                m = idle_memory(build, server, transport, idle)
                results["memory"].append(m)
                log(f"{'idle memory, ' + str(idle) + ' connections':34} {transport:5} {server.name:8} "
                    f"{m['bytes_per_connection']:>11.0f} bytes per connection")
            except Exception as e:
                log(f"  idle memory {transport} {server.name}: {e}")
    results["seconds"] = time.time() - started
    with open(os.path.join(out_dir, "results.json"), "w") as f:
        json.dump(results, f, indent=1)
    write_report(results, out_dir)
    log(f"done in {results['seconds']:.0f} s: {out_dir}/report.md, results.json, plots")
    return 0


def write_report(results, out_dir):
    lines = ["# courier benchmark report", "",
             f"{'Full' if results['full'] else 'Quick'} run on {results['machine']} ({results['cores']} cores). "
             f"Server pinned to core {SERVER_CORE}, load generator to core {LOAD_CORE}; medians (min-max) "
             "of the repeats; ratio = courier / nchan, pair by pair. Regenerate: `./run.sh bench` "
             "(quick) or `./run.sh bench --full`.", ""]
    def header(figures):
        lines.append("| scenario | transport | server | " + " | ".join(label for _, label, _ in figures) +
                     " | lost | dup | not delivered in time |")
        lines.append("|" + "---|" * (len(figures) + 6))

    def table_rows(e, figures):
        for server, s in e["summary"].items():
            cells = " | ".join(f"{fmt.format(s[k]['median'])} ({fmt.format(s[k]['min'])}-{fmt.format(s[k]['max'])})"
                               for k, _, fmt in figures)
            lines.append(f"| {e['scenario']} | {e['transport']} | {server} | {cells} | {s['lost']} | {s['duplicated']} "
                         f"| {s['missing']} |")
        if e["ratio"]:
            cells = " | ".join("" if v is None else f"{v:.2f}x" for v in e["ratio"].values())
            lines.append(f"| | | courier/nchan | {cells} | | | |")

    header(FIGURES)
    for e in results["scenarios"]:
        if e["figures"][0][0] == FIGURES[0][0]:
            table_rows(e, FIGURES)
    reconnects = [e for e in results["scenarios"] if e["figures"][0][0] == RECONNECT_FIGURES[0][0]]
    if reconnects:
        lines += ["", "## One reconnect with resume", "",
                  "Each subscriber reads a published backlog, dropping its connection after every 10 messages and "
                  "resuming after the last id it received (exactly-once checked across every reconnect). CPU is the "
                  "server's per reconnect, including the messages of that connection; p50/p99 the time a connection "
                  "lived, from connect to its last message.", ""]
        header(RECONNECT_FIGURES)
        for e in reconnects:
            table_rows(e, RECONNECT_FIGURES)
    lines += ["", "## Memory per idle connection (RSS growth)", "", "| transport | server | connections | bytes each |",
              "|---|---|---|---|"]
    for m in results["memory"]:
        lines.append(f"| {m['transport']} | {m['server']} | {m['connections']} | {m['bytes_per_connection']:.0f} |")
    lines += ["", "![server CPU per delivered message](cpu.svg)", "![p99 latency at a steady rate](latency.svg)"]
    if results["full"]:
        lines.append("![interval polling: latency against requests](poll-sweep.svg)")
    lines.append("")
    with open(os.path.join(out_dir, "report.md"), "w") as f:
        f.write("\n".join(lines))
    plot(results, out_dir)


def plot(results, out_dir):
    gnuplot = shutil.which("gnuplot")
    if not gnuplot:
        return
    def bars(prefix, key, title, ylabel):
        rows = [e for e in results["scenarios"] if e["scenario"].startswith(prefix)]
        if not rows:
            return
        data = os.path.join(out_dir, f"{key}-{prefix.split()[0]}.dat")
        servers = sorted({s for e in rows for s in e["summary"]})
        with open(data, "w") as f:
            for e in rows:
                vals = [str(e["summary"].get(s, {}).get(key, {}).get("median", 0)) for s in servers]
                f.write(f"\"{e['transport']}\\n{e['scenario'].split(',')[0]}\" " + " ".join(vals) + "\n")
        for term, ext in [("svg size 800,420", "svg"), ("pngcairo size 800,420", "png")]:
            out = os.path.join(out_dir, f"{'cpu' if key == 'cpu_us_per_msg' else 'latency'}.{ext}")
            script = (f"set terminal {term}; set output '{out}'; set title '{title}'; set ylabel '{ylabel}';"
                      "set style data histograms; set style fill solid 0.8; set boxwidth 0.9; set key top left;"
                      "set yrange [0:*]; set xtics font ',9';"
                      "plot " + ", ".join(f"'{data}' using {i + 2}:xtic(1) title '{s}'" for i, s in enumerate(servers)))
            subprocess.run([gnuplot, "-e", script], capture_output=True)
    bars("fan-out", "cpu_us_per_msg", "Server CPU per delivered message (fan-out, 64-byte messages)", "microseconds")
    bars("steady", "p99_us", "p99 latency at 1000 msg/s, 100 subscribers", "microseconds")
    sweep(results, out_dir, gnuplot)


def sweep(results, out_dir, gnuplot):
    """The polling-interval sweep (full run): latency against requests per message."""
    rows = [e for e in results["scenarios"] if e["scenario"].startswith("poll every") and "courier" in e["summary"]]
    if not rows:
        return
    data = os.path.join(out_dir, "poll-sweep.dat")
    with open(data, "w") as f:
        for e in rows:
            interval = e["scenario"].split()[2]
            s = e["summary"]["courier"]
            f.write(f"{interval} {s['p50_us']['median'] / 1000} {s['requests_per_msg']['median']}\n")
    for term, ext in [("svg size 800,420", "svg"), ("pngcairo size 800,420", "png")]:
        out = os.path.join(out_dir, f"poll-sweep.{ext}")
        script = (f"set terminal {term}; set output '{out}';"
                  "set title 'Interval polling, courier, 200 msg/s to 100 subscribers';"
                  "set xlabel 'poll interval (ms)'; set ylabel 'p50 latency (ms)'; set y2label 'requests per message';"
                  "set ytics nomirror; set y2tics; set key top left; set logscale x; set yrange [0:*]; set y2range [0:*];"
                  f"plot '{data}' using 1:2 with linespoints title 'p50 latency', "
                  f"'{data}' using 1:3 axes x1y2 with linespoints title 'requests per message'")
        subprocess.run([gnuplot, "-e", script], capture_output=True)


if __name__ == "__main__":
    sys.exit(main())

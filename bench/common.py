"""Shared by the benchmarks in bench/: the sandbox, SQL on its nodes, the manager in cron and
daemon mode (the binary: PXCRM_BIN, or the release build), measuring a command or a server, and
the machine's description. Not a benchmark by itself."""
import atexit, datetime, os, platform, signal, subprocess, sys, threading, time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
SANDBOX = os.path.join(REPO, "scripts", "sandbox")
BIN = os.environ.get("PXCRM_BIN") or os.path.join(REPO, "target", "release", "pxc-replication-manager")
DIR = os.environ.get("SANDBOX_DIR", "/tmp/pxcrm-sandbox")

# How the manager runs in each mode: [daemon] interval and [timeouts], in seconds. "cron" is the
# default settings (the sandbox's manager.toml); "compressed" is cron 3x faster, to compare with
# the figures measured before the daemon existed; "daemon" is the fast mode.
MODES = {
    "daemon": dict(interval=1, heartbeat=5, failed=15, connect=2, probe=1),
    "cron": dict(interval=60, heartbeat=179, failed=180, connect=20, probe=5),
    "compressed": dict(interval=20, heartbeat=60, failed=60, connect=20, probe=5),
}


def sh(*args, check=True, **kw):
    return subprocess.run(args, capture_output=True, text=True, check=check, **kw).stdout


def sql(node, q, check=True):
    """Runs SQL as root through the node's socket; tab-separated output without headers."""
    r = subprocess.run(
        ["mariadb", "--no-defaults", f"--socket={DIR}/{node}/mysqld.sock", "-uroot", "-N", "-B", "-e", q],
        capture_output=True, text=True)
    if check and r.returncode != 0:
        raise RuntimeError(f"{node}: {q}: {r.stderr.strip()}")
    return r.stdout.strip() if r.returncode == 0 else None


def status_value(node, name):
    v = sql(node, f"SELECT VARIABLE_VALUE FROM information_schema.GLOBAL_STATUS WHERE VARIABLE_NAME = '{name}'", check=False)
    return int(v) if v else None


def nodes(cluster=None):
    return sh(SANDBOX, "nodes", *([cluster] if cluster else [])).split()


def config_path(node, mode):
    return os.path.join(DIR, node, f"bench-{mode}.toml")


def fresh_clusters(table):
    """Fresh clusters, the state table made, and `table` (a CREATE TABLE in the bench schema)
    on DC2, whence it replicates: each series of kills starts from a clean GTID history."""
    sh(SANDBOX, "down", check=False)
    sh(SANDBOX, "up")
    for first in ("DC1-1", "DC2-1"):
        subprocess.run([BIN, "--config", f"{DIR}/{first}/manager.toml", "init"], capture_output=True, check=True)
    sql("DC2-1", f"CREATE DATABASE IF NOT EXISTS bench; {table}")


def write_configs(mode, links=None, extra="", only=None):
    """bench-<mode>.toml beside each node's manager.toml, with the mode's interval and timeouts;
    with `links`, only the first that many [[link]] sections; `extra` (TOML tables) is appended;
    with `only`, for those nodes alone."""
    m = MODES[mode]
    for n in only or nodes():
        text = open(os.path.join(DIR, n, "manager.toml")).read()
        if links is not None:
            parts = text.split("\n[[link]]\n")
            text = "\n[[link]]\n".join(parts[:links + 1])
        text += "\n" + extra
        out = []
        for line in text.splitlines():
            key = line.split("=")[0].strip()
            if line.startswith("[timeouts]"):
                out.append(f"[daemon]\ninterval = {m['interval']}\n")
            if key in ("heartbeat", "failed", "connect", "probe") and "=" in line:
                line = f"{key} = {m[key]}"
            out.append(line)
        with open(config_path(n, mode), "w") as f:
            f.write("\n".join(out) + "\n")


def manager(node, mode, *args, check=True):
    r = subprocess.run([BIN, "--config", config_path(node, mode), *args], capture_output=True, text=True)
    if check and r.returncode not in (0, 1):
        sys.exit(f"{node}: {' '.join(args)} exited {r.returncode}:\n{r.stderr}")
    return r


def is_up(node):
    return sql(node, "SELECT 1", check=False) == "1"


def channels(node):
    """{channel: (source host, io, sql)} of a node, or None when it does not answer."""
    out = subprocess.run(
        ["mariadb", "--no-defaults", f"--socket={DIR}/{node}/mysqld.sock", "-uroot", "-e", "SHOW ALL SLAVES STATUS\\G"],
        capture_output=True, text=True)
    if out.returncode != 0:
        return None
    chans, cur = {}, {}
    for line in out.stdout.splitlines():
        if ":" not in line:
            continue
        k, v = [x.strip() for x in line.split(":", 1)]
        cur[k] = v
        if k == "Connection_name":
            cur = {"Connection_name": v}
        if k == "Slave_SQL_Running":
            chans[cur["Connection_name"]] = (cur.get("Master_Host"), cur.get("Slave_IO_Running"), v)
    return chans


def replica_of(cluster, channel):
    """(node, source host) of the cluster's node whose channel runs both threads, or None."""
    found = []
    for n in nodes(cluster):
        c = channels(n) or {}
        if channel in c and c[channel][1] == "Yes" and c[channel][2] == "Yes":
            found.append((n, c[channel][0]))
    return found[0] if len(found) == 1 else None


def node_at(address):
    return next(n for n in nodes() if sql(n, "SELECT @@bind_address", check=False) == address)


def wait(what, timeout, f, every=0.2):
    end = time.time() + timeout
    while True:
        v = f()
        if v:
            return v
        if time.time() > end:
            raise TimeoutError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(every)


# The daemons a benchmark started, stopped when it exits, however it exits: a daemon left
# running would go on managing the next benchmark's clusters.
STARTED = []


def _stop_started():
    for p in STARTED:
        if p.poll() is None:
            p.terminate()
    for p in STARTED:
        try:
            p.wait(timeout=30)
        except subprocess.TimeoutExpired:
            p.kill()


atexit.register(_stop_started)
signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
signal.signal(signal.SIGINT, lambda *_: sys.exit(130))


class Daemons:
    """The manager's daemon on every live node."""

    def __init__(self, mode, cluster=None):
        self.mode, self.procs = mode, {}
        for n in nodes(cluster):
            self.start(n)

    def start(self, n):
        log = open(os.path.join(DIR, n, f"bench-{self.mode}.daemon.log"), "a")
        self.procs[n] = subprocess.Popen([BIN, "--config", config_path(n, self.mode), "daemon"],
                                         stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=log)
        STARTED.append(self.procs[n])

    def stop(self):
        for p in self.procs.values():
            p.terminate()
        for p in self.procs.values():
            p.wait(timeout=30)


def cron_round(mode, cluster=None):
    """One run on every live node (of `cluster`, or of every cluster), all at once. Each node's runs append their log to
    $SANDBOX_DIR/<node>/cron.log, after a line with the round's start time, as cron's mail or
    a redirection would keep it."""
    procs = []
    started = f"{time.time():.3f}"
    for n in nodes(cluster):
        if not is_up(n):
            continue
        log = open(os.path.join(DIR, n, "cron.log"), "a")
        log.write(f"--- round started at {started}\n")
        log.flush()
        procs.append((subprocess.Popen([BIN, "--config", config_path(n, mode), "run"],
                                       stdout=log, stderr=subprocess.STDOUT), log))
    for p, log in procs:
        p.wait()
        log.close()


class Cron:
    """Runs the manager on every live node at once every `period` seconds, like cron on each
    host."""

    def __init__(self, mode, period):
        self.mode, self.period, self.stopped = mode, period, False
        self.thread = threading.Thread(target=self.loop, daemon=True)
        self.thread.start()

    def loop(self):
        while not self.stopped:
            start = time.time()
            cron_round(self.mode)
            time.sleep(max(0.0, self.period - (time.time() - start)))

    def stop(self):
        self.stopped = True
        self.thread.join()


# Measuring a command or a server: shared by bench/cost and bench/sweep.

def counters(ns):
    """{node: (Connections, Questions)}. Each read is itself one connection and one question."""
    out = {}
    for n in ns:
        v = sql(n, "SELECT MAX(IF(VARIABLE_NAME = 'CONNECTIONS', VARIABLE_VALUE, NULL)), "
                   "MAX(IF(VARIABLE_NAME = 'QUESTIONS', VARIABLE_VALUE, NULL)) FROM information_schema.GLOBAL_STATUS "
                   "WHERE VARIABLE_NAME IN ('CONNECTIONS', 'QUESTIONS')").split()
        out[n] = (int(v[0]), int(v[1]))
    return out

def delta(before, after, reads=1):
    """Connections and questions between two counters() calls, without this script's reads."""
    return {n: (after[n][0] - before[n][0] - reads, after[n][1] - before[n][1] - reads) for n in before}

def timed(args):
    """Wall and CPU time (ms) of a command, and its exit code."""
    t = time.perf_counter()
    p = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, ru = os.wait4(p.pid, 0)
    wall = (time.perf_counter() - t) * 1000
    return wall, (ru.ru_utime + ru.ru_stime) * 1000, os.waitstatus_to_exitcode(status)

def peak_rss_mib(args):
    """Peak RSS of a command, through /usr/bin/time: a child forked from this Python process
    would inherit its high-water mark."""
    r = subprocess.run(["/usr/bin/time", "-f", "%M", *args], capture_output=True, text=True)
    return int(r.stderr.strip().splitlines()[-1]) / 1024

def proc_hwm_mib(pid):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def machine():
    cpu = sh("sh", "-c", "grep -m1 'model name' /proc/cpuinfo | cut -d: -f2", check=False).strip()
    mariadb = sh("mariadbd", "--version", check=False).split(" ", 1)[-1].strip()
    commit = sh("git", "-C", REPO, "rev-parse", "--short", "HEAD", check=False).strip()
    return (f"{datetime.date.today().isoformat()}, commit {commit}: {os.cpu_count()} CPUs ({cpu}), {mariadb}, "
            f"{platform.system()} {platform.release()}, all servers on one machine (loopback)")


def percentile(xs, p):
    xs = sorted(xs)
    if not xs:
        return float("nan")
    k = (len(xs) - 1) * p
    lo, hi = int(k), min(int(k) + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (k - lo)

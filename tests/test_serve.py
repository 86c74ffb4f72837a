#!/usr/bin/env python3
"""tests/test_serve.py — `attnlab serve` over raw HTTP: its answers, its refusals, its safety.

    python3 tests/test_serve.py BUILD/attnlab

POST /api/grad must answer exactly what `attnlab inspect grad --json` prints for the same flags;
paths that lead out of --runs (.., percent-encoded, absolute, symlinks) get 404; a Host that
is a name other than localhost gets 403; a run's status comes from its lock without taking it;
a taken port is one line and exit 1; Ctrl-C is exit 0. Raw sockets, since a browser or urllib
would normalise the '..' away before sending.
"""
import fcntl
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import unittest

BINARY = None


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def raw_request(port, method, path, body=b"", host=None, headers=(), content_type="application/json", raw_body=None):
    """One request as bytes on a socket, the path sent exactly as given. -> (status, body bytes)"""
    host = host if host is not None else f"127.0.0.1:{port}"
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}", "Connection: close"]
    lines += list(headers)
    if body:
        lines += [f"Content-Type: {content_type}", f"Content-Length: {len(body)}"]
    elif raw_body is not None:
        lines += [f"Content-Type: {content_type}"]
    data = ("\r\n".join(lines) + "\r\n\r\n").encode() + (body or raw_body or b"")
    with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
        s.sendall(data)
        reply = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            reply += chunk
    head, _, rest = reply.partition(b"\r\n\r\n")
    status = int(head.split(b" ")[1])
    return status, rest


def cli(*args):
    return subprocess.run([BINARY, *args], capture_output=True, text=True, timeout=120)


class Serving:
    """attnlab serve on a free port, stopped with SIGINT at the end."""

    def __init__(self, *args):
        self.port = free_port()
        self.proc = subprocess.Popen([BINARY, "serve", "--port", str(self.port), *args],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.banner = self.proc.stdout.readline()
        if "explorer" not in self.banner:
            self.proc.kill()
            raise AssertionError(f"no banner from attnlab serve: {self.banner!r} {self.proc.stderr.read()!r}")

    def stop(self):
        """Ctrl-C; its exit code. What it wrote to stderr is kept in self.err."""
        self.proc.send_signal(signal.SIGINT)
        _, self.err = self.proc.communicate(timeout=20)
        return self.proc.returncode


def make_run(dir, steps_done, finished, lock=None):
    dir = os.fsdecode(dir)  # a name given as bytes (not UTF-8) as the str Python maps it to
    os.makedirs(dir, exist_ok=True)
    with open(os.path.join(dir, "config.json"), "w") as f:
        json.dump({"variant": "qq", "steps": 100, "seed": 2, "lr": 0.003,
                   "model": {"arch": "seq2seq", "d_model": 32}}, f)
    with open(os.path.join(dir, "metrics.csv"), "w") as f:
        f.write("step,epoch,train_loss,lr,grad_norm,tokens_per_s,train_seconds,wall_seconds,valid_loss,valid_ppl,valid_bleu,valid_chrf\n")
        for s in range(25, steps_done + 1, 25):
            valid = f"{3.0 - s / 100:.3f},1,2.5,20" if s % 50 == 0 else ",,,"
            f.write(f"{s},0,{4.0 - s / 100:.3f},0.001,1.0,100,{s / 10},{s / 10 + 1},{valid}\n")
    if finished:
        with open(os.path.join(dir, "results.json"), "w") as f:
            json.dump({"params": 12345, "valid_loss": 2.0, "test_bleu": 12.5, "steps": steps_done}, f)
    if lock is not None:
        with open(os.path.join(dir, ".writer.lock"), "w") as f:
            f.write("pid 1 on host h\n")


class ServeTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory()
        root = cls.tmp.name
        cls.runs = os.path.join(root, "runs")
        grid = os.path.join(cls.runs, "grid")
        make_run(os.path.join(grid, "runs", "qq-s1"), 100, True)
        make_run(os.path.join(grid, "runs", "qq-s2"), 50, False, lock=True)  # lock file, not held
        make_run(os.path.join(cls.runs, "alone"), 75, False, lock=True)
        with open(os.path.join(grid, "report.md"), "w") as f:
            f.write("# A grid\n\n| variant | loss |\n|---|---|\n| qq | 2.0 |\n")
        with open(os.path.join(grid, "plot.csv"), "w") as f:
            f.write("a,b\n1,2\n")
        # ways out: a symlinked folder and a symlinked file leading to /etc, and a secret beside the root
        os.symlink("/etc", os.path.join(cls.runs, "etc-link"))
        os.symlink("/etc/passwd", os.path.join(cls.runs, "passwd-link"))
        with open(os.path.join(root, "secret.txt"), "w") as f:
            f.write("SECRET beside the runs folder\n")
        # a grid and a run whose own files lead out, a run whose weights are a FIFO (a reader
        # that opened it would wait for a writer forever), a folder whose name is not UTF-8
        os.makedirs(os.path.join(cls.runs, "leaky", "runs"))
        os.symlink(os.path.join(root, "secret.txt"), os.path.join(cls.runs, "leaky", "report.md"))
        os.makedirs(os.path.join(cls.runs, "leakyrun"))
        shutil.copy(os.path.join(grid, "runs", "qq-s1", "config.json"), os.path.join(cls.runs, "leakyrun"))
        os.symlink(os.path.join(root, "secret.txt"), os.path.join(cls.runs, "leakyrun", "metrics.csv"))
        os.symlink(os.path.join(root, "secret.txt"), os.path.join(cls.runs, "leakyrun", "results.json"))
        make_run(os.path.join(cls.runs, "fifo"), 25, False)
        os.mkfifo(os.path.join(cls.runs, "fifo", "model.best.safetensors"))
        make_run(os.path.join(cls.runs.encode(), b"name\xff"), 25, False)
        # "alone" is running: its lock held by another process, as a training's is
        cls.holder = subprocess.Popen([sys.executable, "-c",
                                       "import fcntl,sys,time\n"
                                       f"f=open({os.path.join(cls.runs, 'alone', '.writer.lock')!r},'r+')\n"
                                       "fcntl.flock(f, fcntl.LOCK_EX)\nprint('held', flush=True)\ntime.sleep(600)\n"],
                                      stdout=subprocess.PIPE, text=True)
        assert cls.holder.stdout.readline().strip() == "held"
        cls.server = Serving("--runs", cls.runs)
        cls.port = cls.server.port

    @classmethod
    def tearDownClass(cls):
        code = cls.server.stop()
        cls.holder.kill()
        cls.holder.communicate()
        cls.tmp.cleanup()
        assert code == 0, f"attnlab serve exited {code} on SIGINT, expected 0"

    def post(self, path, obj):
        status, body = raw_request(self.port, "POST", path, json.dumps(obj).encode())
        return status, json.loads(body)

    # ---- /api/grad is inspect grad --json ------------------------------------------------

    def test_grad_equals_inspect_grad_json_for_your_matrices(self):
        q, k, v, o, dout = "1 0.5; -0.25 2; 0 1", "0.5 1; 1 0; -1 0.5", "1 0; 0 1; 1 1", "1 2; 0 1", "1 0; 0 1; 0.5 0.5"
        for variant, extra in [("all", {}), ("qq", {}), ("qk", {"causal": True})]:
            body = {"variant": variant, "q": q, "v": v, "o": o, "dout": dout, **extra}
            flags = ["--variant", variant, "--q", q, "--v", v, "--o", o, "--dout", dout] + (["--causal"] if extra else [])
            if variant != "qq":
                body["k"] = k
                flags += ["--k", k]
            status, raw = raw_request(self.port, "POST", "/api/grad", json.dumps(body).encode())
            self.assertEqual(status, 200, raw)
            out = cli("inspect", "grad", *flags, "--json")
            self.assertEqual(out.returncode, 0, out.stderr)
            self.assertEqual(raw.decode(), out.stdout, f"{variant}: the server's JSON differs from inspect grad --json")
            answer = json.loads(raw)
            self.assertIn("dQ", answer[0]["matrices"])

    def test_grad_equals_inspect_grad_json_for_the_random_example(self):
        status, raw = raw_request(self.port, "POST", "/api/grad",
                                  json.dumps({"variant": "all", "tokens": 4, "dim": 3, "seed": 7}).encode())
        self.assertEqual(status, 200)
        out = cli("inspect", "grad", "--variant", "all", "--tokens", "4", "--dim", "3", "--seed", "7", "--json")
        self.assertEqual(raw.decode(), out.stdout)
        names = [r["variant"] for r in json.loads(raw)]
        self.assertEqual(names, ["qk", "qq", "qq-noself"])
        qq = json.loads(raw)[1]["matrices"]
        # the two paths into Q add up to dQ
        for i in range(4):
            for j in range(3):
                self.assertAlmostEqual(qq["dQ as query"][i][j] + qq["dQ as key"][i][j], qq["dQ"][i][j], places=5)

    def test_bad_matrix_gets_inspect_grads_error_and_names_the_field(self):
        status, answer = self.post("/api/grad", {"variant": "qk", "q": "1 2; 3", "k": "1 2; 3 4"})
        self.assertEqual(status, 400)
        self.assertEqual(answer["field"], "q")
        out = cli("inspect", "grad", "--variant", "qk", "--q", "1 2; 3", "--k", "1 2; 3 4")
        self.assertEqual(out.returncode, 2)
        self.assertEqual(out.stderr.strip(), "attnlab: error: " + answer["error"])
        status, answer = self.post("/api/grad", {"variant": "qk", "q": "1 2; 3 4", "k": "1 2 3; 4 5 6"})
        self.assertEqual((status, answer["field"]), (400, "k"))
        status, answer = self.post("/api/grad", {"variant": "qq", "q": "1 x; 3 4"})
        self.assertEqual((status, answer["field"]), (400, "q"))
        self.assertIn("'x'", answer["error"])

    def test_sizes_types_and_bodies_are_bounded(self):
        status, answer = self.post("/api/grad", {"tokens": 9})
        self.assertEqual((status, answer["field"]), (400, "tokens"))
        status, answer = self.post("/api/grad", {"q": "; ".join(["1 2"] * 9)})
        self.assertEqual((status, answer["field"]), (400, "q"))
        self.assertIn("8x8", answer["error"])
        status, answer = self.post("/api/grad", {"q": "@/etc/passwd"})
        self.assertEqual((status, answer["field"]), (400, "q"))
        status, answer = self.post("/api/grad", {"causal": "yes"})
        self.assertEqual((status, answer["field"]), (400, "causal"))
        status, answer = self.post("/api/grad", {"variant": "qz"})
        self.assertEqual((status, answer["field"]), (400, "variant"))
        status, answer = self.post("/api/grad", {"qq": "1"})
        self.assertEqual((status, answer["field"]), (400, "qq"))
        status, body = raw_request(self.port, "POST", "/api/grad", b"{not json")
        self.assertEqual(status, 400)
        # deep nesting is refused as it is read, not printed back (a 64 KiB nest of [ would be ~1 GB indented)
        status, body = raw_request(self.port, "POST", "/api/grad", b'{"causal": ' + b"[" * 30000 + b"]" * 30000 + b"}")
        self.assertEqual(status, 400)
        self.assertLess(len(body), 1000)
        self.assertEqual(len(json.loads(body)["error"].splitlines()), 1)
        # whole numbers as the command line takes them: no casting of -1, 2.9, true or 1e300
        for name, value in [("seed", -1), ("seed", 1.5), ("seed", 1e300), ("seed", 2 ** 64), ("tokens", 2.9),
                            ("tokens", True), ("dim", 4294967297), ("tokens", 0)]:
            status, answer = self.post("/api/grad", {name: value})
            self.assertEqual((status, answer["field"]), (400, name), (name, value))
        out = cli("inspect", "grad", "--seed", "-1")
        status, answer = self.post("/api/grad", {"seed": -1})
        self.assertIn(answer["error"], out.stderr)
        status, answer = self.post("/api/grad", {"dout": "1 2; 3 4"})
        self.assertEqual((status, answer["field"]), (400, "dout"))
        # a body the API does not take: chunked (it would pass the size limit), or not JSON by its
        # type (a form or text/plain is what a page elsewhere can send without asking first)
        chunked = b"10000\r\n" + b" " * 0x10000 + b"\r\n0\r\n\r\n"
        status, _ = raw_request(self.port, "POST", "/api/grad", headers=["Transfer-Encoding: chunked"], raw_body=chunked)
        self.assertEqual(status, 411)
        for ctype in ["text/plain", "application/x-www-form-urlencoded"]:
            status, _ = raw_request(self.port, "POST", "/api/grad", b'{"variant": "qq"}', content_type=ctype)
            self.assertEqual(status, 415, ctype)
        status, body = raw_request(self.port, "POST", "/api/grad", b"[" + b"1," * 40000 + b"1]")
        self.assertEqual(status, 413)

    # ---- what may be read -----------------------------------------------------------------

    def test_paths_out_of_the_runs_folders_get_404(self):
        ok, body = raw_request(self.port, "GET", "/files/0/grid/plot.csv")
        self.assertEqual((ok, body), (200, b"a,b\n1,2\n"))
        for path in ["/../../etc/passwd", "/files/0/../../../../etc/passwd", "/files/0/..%2f..%2f..%2fetc%2fpasswd",
                     "/files/0/%2e%2e/%2e%2e/%2e%2e/etc/passwd", "/files/0/%252e%252e/etc/passwd",
                     "/files/0//etc/passwd", "/files/0/etc-link/passwd", "/files/0/passwd-link",
                     "/files/0/../secret.txt", "/files/1/etc/passwd", "/files//etc/passwd", "/static/../../etc/passwd",
                     "/files/0/grid/..%5c..%5csecret.txt", "/api/report?grid=0/../..", "/api/metrics?run=0/../secret.txt"]:
            status, body = raw_request(self.port, "GET", path)
            self.assertEqual(status, 404, f"{path}: {status} {body[:80]!r}")
            self.assertNotIn(b"root:", body, path)
            self.assertNotIn(b"SECRET", body, path)

    def test_a_host_that_is_a_name_is_refused(self):
        for host, expected in [(f"evil.example:{self.port}", 403), ("evil.example", 403), (f"127.0.0.1:{self.port + 1}", 403),
                               (f"localhost%00.evil.example:{self.port}", 403), ("1.2.3.999", 403), ("[abcd]", 403),
                               (f"LOCALHOST:{self.port}", 200),
                               (f"localhost:{self.port}", 200), (f"127.0.0.1:{self.port}", 200), (f"[::1]:{self.port}", 200)]:
            status, _ = raw_request(self.port, "GET", "/api/runs", host=host)
            self.assertEqual(status, expected, host)

    def test_pages_are_built_in(self):
        for path, needle in [("/", b"<html"), ("/runs", b"<html"), ("/tutorial", b"<html"), ("/static/tutorial.md", b"QQ")]:
            status, body = raw_request(self.port, "GET", path)
            self.assertEqual(status, 200, path)
            self.assertIn(needle, body, path)
        self.assertEqual(raw_request(self.port, "GET", "/static/nope.js")[0], 404)

    # ---- the runs ---------------------------------------------------------------------------

    def test_runs_status_step_and_results_from_their_files(self):
        status, body = raw_request(self.port, "GET", "/api/runs")
        self.assertEqual(status, 200)
        answer = json.loads(body)
        runs = {r["name"]: r for r in answer["runs"]}
        self.assertEqual(set(runs), {"grid/runs/qq-s1", "grid/runs/qq-s2", "alone", "leakyrun", "fifo", "name\ufffd"})
        self.assertEqual(runs["grid/runs/qq-s1"]["status"], "finished")
        self.assertEqual(runs["grid/runs/qq-s1"]["params"], 12345)
        self.assertEqual(runs["grid/runs/qq-s1"]["bleu"], 12.5)
        self.assertEqual(runs["grid/runs/qq-s2"]["status"], "interrupted")  # a lock file no one holds
        self.assertEqual(runs["alone"]["status"], "running")                 # held, as a training holds it
        self.assertEqual(runs["alone"]["step"], 75)
        self.assertEqual(runs["alone"]["valid_loss"], 2.5)
        self.assertEqual(runs["grid/runs/qq-s2"]["grid"], "0/grid")
        self.assertEqual(answer["grids"], [{"id": "0/grid", "name": "grid", "report": True},
                                           {"id": "0/leaky", "name": "leaky", "report": True}])
        self.assertEqual(runs["leakyrun"]["step"], 0)  # its metrics.csv leads out: not read
        self.assertNotIn(b"SECRET", body)
        # reading took no lock: the holder still has it, and a second one cannot get it
        with open(os.path.join(self.runs, "alone", ".writer.lock")) as f:
            with self.assertRaises(BlockingIOError):
                fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        status, body = raw_request(self.port, "GET", "/api/metrics?run=0/alone")
        cols = json.loads(body)["columns"]
        self.assertEqual(cols["step"], [25.0, 50.0, 75.0])
        self.assertEqual(cols["valid_loss"], [None, 2.5, None])
        status, body = raw_request(self.port, "GET", "/api/report?grid=0/grid")
        self.assertEqual(status, 200)
        self.assertIn("| qq | 2.0 |", json.loads(body)["markdown"])
        status, answer = self.post("/api/attention", {"run": "0/alone", "text": "hello"})
        self.assertEqual(status, 400)  # a run without weights: an error, not a crash
        status, answer = self.post("/api/attention", {"run": "0/../x", "text": "hello"})
        self.assertEqual(status, 404)

    def test_a_runs_own_files_that_lead_out_or_block_are_not_read(self):
        for path in ["/api/report?grid=0/leaky", "/api/metrics?run=0/leakyrun"]:
            status, body = raw_request(self.port, "GET", path)
            self.assertNotIn(b"SECRET", body, path)
        self.assertEqual(raw_request(self.port, "GET", "/api/report?grid=0/leaky")[0], 404)
        status, body = raw_request(self.port, "GET", "/api/metrics?run=0/leakyrun")
        self.assertEqual((status, json.loads(body)["columns"]), (200, {}))
        started = time.monotonic()
        status, answer = self.post("/api/attention", {"run": "0/fifo", "text": "hello"})
        self.assertEqual(status, 400)
        self.assertIn("model.best.safetensors", answer["error"])
        self.assertLess(time.monotonic() - started, 10)
        status, answer = self.post("/api/attention", {"run": "0/leakyrun", "text": "hello"})
        self.assertEqual(status, 400)
        self.assertNotIn("SECRET", answer["error"])


class CommandTest(unittest.TestCase):
    def test_a_taken_port_is_one_line_and_exit_1(self):
        first = Serving()
        try:
            out = subprocess.run([BINARY, "serve", "--port", str(first.port)], capture_output=True, text=True, timeout=30)
            self.assertEqual(out.returncode, 1)
            self.assertEqual(len(out.stderr.strip().splitlines()), 1, out.stderr)
            self.assertIn(f"--port {first.port}", out.stderr)
        finally:
            self.assertEqual(first.stop(), 0)

    def test_another_host_warns_that_the_network_can_read_the_runs(self):
        s = Serving("--host", "0.0.0.0")
        try:
            time.sleep(0.3)
        finally:
            self.assertEqual(s.stop(), 0)
        self.assertIn("warning", s.err)

    def test_ctrl_c_does_not_wait_for_slow_clients(self):
        s = Serving()
        slow = []
        for _ in range(4):  # each has sent half a request line, and then nothing
            c = socket.create_connection(("127.0.0.1", s.port))
            c.sendall(b"GET /api/ru")
            slow.append(c)
        time.sleep(0.5)
        started = time.monotonic()
        try:
            self.assertEqual(s.stop(), 0)
        finally:
            for c in slow:
                c.close()
        self.assertLess(time.monotonic() - started, 5)

    def test_a_runs_folder_that_is_a_run_itself_is_listed(self):
        with tempfile.TemporaryDirectory() as d:
            make_run(os.path.join(d, "one"), 50, True)
            s = Serving("--runs", os.path.join(d, "one"))
            try:
                status, body = raw_request(s.port, "GET", "/api/runs")
                runs = json.loads(body)["runs"]
                self.assertEqual([(r["id"], r["name"], r["step"]) for r in runs], [("0", "one", 50)])
                status, body = raw_request(s.port, "GET", "/api/metrics?run=0")
                self.assertEqual(json.loads(body)["columns"]["step"], [25.0, 50.0])
            finally:
                self.assertEqual(s.stop(), 0)

    def test_runs_that_is_not_a_folder_is_refused(self):
        out = subprocess.run([BINARY, "serve", "--runs", "/nonexistent/runs"], capture_output=True, text=True, timeout=30)
        self.assertEqual(out.returncode, 2)
        self.assertIn("--runs /nonexistent/runs", out.stderr)


if __name__ == "__main__":
    BINARY = os.path.abspath(sys.argv.pop(1))
    unittest.main(verbosity=2)

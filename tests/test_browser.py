#!/usr/bin/env python3
"""tests/test_browser.py — `attnlab serve`'s two pages in a real browser (headless Chromium).

    python3 tests/test_browser.py BUILD/attnlab [--screenshots DIR]

The explorer: load it, change one entry of Q, read the dQ it shows and compare it with
`attnlab inspect grad --json` for the same matrices; switch qk -> qq and see the two paths into
Q add up to dQ; 20 edits, the median time from the edit to the redrawn dQ printed (a figure for
docs/benchmarks.md, not a pass/fail line). The runs page: a training started here appears, and a
new evaluation shows in its row and on the chart without a reload, and once stopped (Ctrl-C) it reads
interrupted; a grid's report.md renders;
the trained run's attention maps for a typed sentence. Exits 77 (skipped) without Chromium,
its driver or Selenium (`make test` installs them).
"""
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.parse

SKIP = 77
BINARY = None
SHOTS = None

try:
    from selenium import webdriver
    from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select, WebDriverWait
except ImportError:
    webdriver = None


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def browser():
    opts = webdriver.ChromeOptions()
    for a in ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1280,900"]:
        opts.add_argument(a)  # --no-sandbox: Chromium refuses to run as root otherwise
    opts.binary_location = shutil.which("chromium")
    service = Service(executable_path=shutil.which("chromedriver"))
    return webdriver.Chrome(options=opts, service=service)


def matrix_of(driver, section, name):
    """The numbers a heatmap shows, from its cells' data-value (the server's JSON numbers)."""
    table = driver.find_element(By.CSS_SELECTOR, f'section[data-variant="{section}"] table[data-matrix="{name}"]')
    cells = table.find_elements(By.CSS_SELECTOR, "td[data-row]")
    rows = 1 + max(int(c.get_attribute("data-row")) for c in cells)
    cols = 1 + max(int(c.get_attribute("data-col")) for c in cells)
    m = [[None] * cols for _ in range(rows)]
    for c in cells:
        m[int(c.get_attribute("data-row"))][int(c.get_attribute("data-col"))] = float(c.get_attribute("data-value"))
    return m


def renders(driver):
    return int(driver.find_element(By.ID, "status").get_attribute("data-renders") or 0)


class BrowserTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory()
        cls.runs = os.path.join(cls.tmp.name, "runs")
        grid = os.path.join(cls.runs, "grid")
        os.makedirs(os.path.join(grid, "runs"))
        with open(os.path.join(grid, "report.md"), "w") as f:
            f.write("# Tiny grid\n\n| variant | valid loss |\n|---|---|\n| qk | 1.23 |\n| qq | 1.45 |\n")
        cls.port = free_port()
        cls.server = subprocess.Popen([BINARY, "serve", "--runs", cls.runs, "--port", str(cls.port)],
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        assert "explorer" in cls.server.stdout.readline()
        cls.url = f"http://127.0.0.1:{cls.port}"
        cls.driver = browser()

    @classmethod
    def tearDownClass(cls):
        cls.driver.quit()
        cls.server.send_signal(signal.SIGINT)
        assert cls.server.wait(timeout=20) == 0
        cls.tmp.cleanup()

    def wait(self, cond, timeout=30, what="the page"):
        # a redraw may replace what a condition is reading: read again at the next poll
        return WebDriverWait(self.driver, timeout, poll_frequency=0.05,
                             ignored_exceptions=[StaleElementReferenceException, NoSuchElementException]).until(
            lambda d: cond(d), f"{what} did not appear")

    def shot(self, name, height=900):
        if SHOTS:
            os.makedirs(SHOTS, exist_ok=True)
            self.driver.set_window_size(1280, height)
            time.sleep(0.5)
            self.driver.save_screenshot(os.path.join(SHOTS, name))
            self.driver.set_window_size(1280, 900)

    def test_1_explorer_edit_one_entry_of_q_and_read_dq(self):
        q, k, dout = "1 0.5; -0.5 1; 0.25 -1", "0.5 -1; 1 0.5; -0.25 0.75", "0.1 -0.2 0.3; 0 0.5 -0.5; -0.3 0.2 0.1"
        enc = urllib.parse.quote
        self.driver.get(f"{self.url}/#variant=qk&seed=1&q={enc(q)}&k={enc(k)}&dout={enc(dout)}")
        self.wait(lambda d: renders(d) >= 1, what="the first results")
        q2 = "1 0.5; 2 1; 0.25 -1"
        out = subprocess.run([BINARY, "inspect", "grad", "--variant", "qk", "--q", q2, "--k", k, "--dout", dout,
                              "--json"], capture_output=True, text=True, check=True)
        expected = json.loads(out.stdout)[0]["matrices"]["dQ"]
        self.assertNotEqual(matrix_of(self.driver, "qk", "dQ"), expected, "the edit must change dQ")
        cell = self.driver.find_element(By.CSS_SELECTOR, '#edit-Q input.cell[data-row="1"][data-col="0"]')
        cell.clear()  # fires input: a redraw with the cell empty (an error) or the rest of the matrix
        cell.send_keys("2")
        # the page's URL holds the edited Q once the edit is drawn; then the dQ it shows is compared
        self.wait(lambda d: f"q={enc(q2, safe='')}" in d.current_url, what="the edited Q in the URL")
        self.wait(lambda d: matrix_of(d, "qk", "dQ") == expected, 10, "inspect grad's dQ for the edited Q")
        self.shot("explorer-qk.png")

    def test_2_explorer_qq_shows_the_two_paths_into_q(self):
        Select(self.driver.find_element(By.ID, "variant")).select_by_value("qq")
        self.wait(lambda d: d.find_elements(By.CSS_SELECTOR, 'section[data-variant="qq"] .paths'), what="qq's two paths")
        time.sleep(0.3)
        as_query = matrix_of(self.driver, "qq", "dQ as query")
        as_key = matrix_of(self.driver, "qq", "dQ as key")
        dq = matrix_of(self.driver, "qq", "dQ")
        for i in range(len(dq)):
            for j in range(len(dq[0])):
                self.assertAlmostEqual(as_query[i][j] + as_key[i][j], dq[i][j], places=5)
        self.assertIn("variant=qq", self.driver.current_url)
        self.shot("explorer-qq.png")

    def test_3_explorer_twenty_edits(self):
        latencies = []
        for n in range(20):
            before = renders(self.driver)
            cell = self.driver.find_element(By.CSS_SELECTOR, '#edit-Q input.cell[data-row="0"][data-col="1"]')
            cell.send_keys("\b" * 8 + f"{0.1 * (n + 1):.1f}")
            self.wait(lambda d: renders(d) > before, what="a redraw")
            time.sleep(0.05)
            latencies.append(float(self.driver.find_element(By.ID, "status").get_attribute("data-latency-ms")))
        print(f"explorer: edit -> redrawn dQ, median of 20 edits: {statistics.median(latencies):.1f} ms "
              f"(min {min(latencies):.1f}, max {max(latencies):.1f})", flush=True)

    def test_4_runs_page_follows_a_training(self):
        # long enough that it is still training when the page is up, on any machine; stopped
        # with Ctrl-C (a checkpoint, exit 130) once the page has shown a new evaluation
        out = os.path.join(self.runs, "grid", "runs", "reverse-qq-s1")
        train = subprocess.Popen([BINARY, "train", "--task", "reverse", "--task-train", "400", "--variant", "qq",
                                  "--d-model", "16", "--heads", "2", "--d-ff", "32", "--threads", "1", "--steps", "20000",
                                  "--eval-every", "40", "--log-every", "20", "--eval-sentences", "20", "--out", out],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        row = 'tr[data-run="0/grid/runs/reverse-qq-s1"]'
        try:
            self.driver.get(f"{self.url}/runs")
            self.driver.execute_script("window.__not_reloaded = true;")
            self.wait(lambda d: d.find_elements(By.CSS_SELECTOR, row), what="the training's row")
            self.driver.find_element(By.CSS_SELECTOR, f"{row} input.overlay").click()
            first = self.wait(lambda d: len(d.find_elements(By.CSS_SELECTOR, "circle.valid-point")), 60,
                              "a first evaluation on the chart")
            self.assertIsNone(train.poll(), "the training ended before the page could follow it")
            self.wait(lambda d: len(d.find_elements(By.CSS_SELECTOR, "circle.valid-point")) > first, 120,
                      "a new evaluation without reload")
            self.assertTrue(self.driver.execute_script("return window.__not_reloaded === true;"), "the page reloaded")
            self.assertEqual(self.driver.find_element(By.CSS_SELECTOR, f'{row} td[data-key="status"]').text.strip(), "running")
            valid = self.driver.find_element(By.CSS_SELECTOR, f'{row} td[data-key="valid_loss"]').text
            self.assertRegex(valid, r"\d")
            self.shot("runs.png")
        finally:
            train.send_signal(signal.SIGINT)
            code = train.wait(timeout=120)
            err = train.stderr.read()
            train.stderr.close()
        self.assertEqual(code, 130, err)
        # stopped: the status changes in place
        self.wait(lambda d: "interrupted" in d.find_element(By.CSS_SELECTOR, f'{row} td[data-key="status"]').text, 30,
                  "interrupted")
        # the grid's report
        Select(self.driver.find_element(By.ID, "grid")).select_by_value("0/grid")
        self.wait(lambda d: d.find_elements(By.CSS_SELECTOR, "#report table"), what="the report's table")
        self.assertIn("1.45", self.driver.find_element(By.ID, "report").text)
        # the attention maps of the trained run, for a typed sentence
        self.wait(lambda d: d.find_elements(By.CSS_SELECTOR, '#attn-run option[value="0/grid/runs/reverse-qq-s1"]'),
                  what="the run among those with attention maps")
        Select(self.driver.find_element(By.ID, "attn-run")).select_by_value("0/grid/runs/reverse-qq-s1")
        self.driver.find_element(By.ID, "attn-text").send_keys("a b c d")
        self.driver.find_element(By.ID, "attn-go").click()
        self.wait(lambda d: d.find_elements(By.CSS_SELECTOR, "#attn-out table.heatmap"), 60, "attention heatmaps")

    def test_5_every_tutorial_link_opens_the_explorer_on_its_commands_numbers(self):
        tutorial = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "docs", "tutorial.md")
        links = re.findall(r"\((http://127\.0\.0\.1:8765/#[^)\s]+)\)", open(tutorial, encoding="utf-8").read())
        self.assertGreaterEqual(len(links), 7, "the tutorial's links to the explorer")
        for link in links:
            params = dict(urllib.parse.parse_qsl(link.split("#", 1)[1]))
            flags = ["--variant", params.get("variant", "both"), "--seed", params.get("seed", "1")]
            for name in ["q", "k", "v", "o", "dout", "tokens", "dim"]:
                if name in params:
                    flags += [f"--{name}", params[name]]
            if params.get("causal") in ("1", "true"):
                flags.append("--causal")
            expected = json.loads(subprocess.run([BINARY, "inspect", "grad", *flags, "--json"], capture_output=True,
                                                 text=True, check=True).stdout)
            self.driver.get("about:blank")
            self.driver.get(link.replace("http://127.0.0.1:8765", self.url))
            self.wait(lambda d: renders(d) >= 1, what=f"the explorer at {link}")
            time.sleep(0.3)
            for r in expected:
                shown = matrix_of(self.driver, r["variant"], "dQ")
                if "q" in params:  # the command's own matrices: the same numbers
                    self.assertEqual(shown, r["matrices"]["dQ"], link)
                else:  # the random example, put into the editors to 6 significant digits
                    for row, want in zip(shown, r["matrices"]["dQ"]):
                        for a, b in zip(row, want):
                            self.assertAlmostEqual(a, b, delta=1e-4 * max(1, abs(b)), msg=link)
            if link == links[0]:
                self.shot("explorer.png", 1500)

    def test_6_the_readmes_runs_link_shows_its_chart_and_report(self):
        # the committed grids of docs/results, served as the README shows them
        results = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "docs", "results")
        readme = open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "README.md"), encoding="utf-8").read()
        link = re.search(r"(http://127\.0\.0\.1:8765/runs#[^)\s`]+)", readme).group(1)
        port = free_port()
        server = subprocess.Popen([BINARY, "serve", "--runs", results, "--port", str(port)],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            self.assertIn("explorer", server.stdout.readline())
            self.driver.get(link.replace("http://127.0.0.1:8765", f"http://127.0.0.1:{port}"))
            params = dict(urllib.parse.parse_qsl(link.split("#", 1)[1]))
            ticked = params["runs"].split(",")
            self.wait(lambda d: len(d.find_elements(By.CSS_SELECTOR, "input.overlay:checked")) == len(ticked), 60,
                      "the ticked runs of the link")
            self.wait(lambda d: d.find_elements(By.CSS_SELECTOR, "svg#chart path.valid-line"), 60, "their curves")
            self.wait(lambda d: d.find_elements(By.CSS_SELECTOR, "#report table"), 60, "the grid's report")
            time.sleep(0.5)
            self.shot("runs-results.png", 1700)
        finally:
            server.send_signal(signal.SIGINT)
            self.assertEqual(server.wait(timeout=20), 0)


if __name__ == "__main__":
    BINARY = os.path.abspath(sys.argv.pop(1))
    if "--screenshots" in sys.argv:
        i = sys.argv.index("--screenshots")
        SHOTS = os.path.abspath(sys.argv[i + 1])
        del sys.argv[i:i + 2]
    missing = [m for m, ok in [("python3-selenium", webdriver is not None), ("chromium", shutil.which("chromium")),
                               ("chromium-driver", shutil.which("chromedriver"))] if not ok]
    if missing:
        print(f"SKIPPED: {', '.join(missing)} not installed (make test installs them)")
        sys.exit(SKIP)
    unittest.main(verbosity=2)

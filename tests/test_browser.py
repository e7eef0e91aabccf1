"""The sparsity explorer in a real browser: JupyterLab from .venv, headless Debian chromium, a slider moved by keys.

The test opens tests/browser/explorer.ipynb, runs all cells, moves the sparsity slider and checks that the
readout shows exactly what the plain twin `explore_sparsity` computes for the new setting in this process.
It fails (does not skip) when the widget front end is missing or a kernel-side update raises.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from contextlib import contextmanager
from pathlib import Path

import pytest

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOK_DIR = ROOT / "tests" / "browser"
NOTEBOOK = "explorer.ipynb"
ARTIFACTS = ROOT / "tests" / "artifacts"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
ERROR_OUTPUT = '.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"]'
SPARSITY, SCOPE = ".course-sparsity-explorer", ".course-scope-explorer"
SHAPE = (1, 28, 28)
STEP = 0.01              # the sparsity slider's step
KEY_PRESSES = 10         # ArrowRight presses: 0.50 -> 0.60


def _free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_for_server(url: str, proc: subprocess.Popen, log: Path, timeout: float = 60.0) -> None:
    """Poll the server's REST API until it answers 200, or fail with the end of the server's log."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"JupyterLab exited with code {proc.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.25)
    raise AssertionError(f"JupyterLab did not answer {url} within {timeout:.0f} s:\n{log.read_text()[-3000:]}")


def _write_json(path: Path, data: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data))


@contextmanager
def running_lab(tmp: Path, *, disabled_extensions: tuple[str, ...] = (), extra_cells: tuple[str, ...] = ()):
    """JupyterLab from this venv on 127.0.0.1 (free port, token), serving a temporary copy of tests/browser.

    Runtime, config and data folders are temporary; the news pop-up is off. `extra_cells` are inserted after the
    set-up cell of the copied notebook (the self-tests use it to break an update). The server and the kernels it
    started are stopped by the server's PID (its process group) on exit, whatever happened.
    """
    root, config = tmp / "root", tmp / "config"
    shutil.copytree(NOTEBOOK_DIR, root, ignore=shutil.ignore_patterns(".ipynb_checkpoints"))
    if extra_cells:
        nb = json.loads((root / NOTEBOOK).read_text())
        nb["cells"][2:2] = [{"cell_type": "code", "execution_count": None, "id": f"extra{i}", "metadata": {},
                             "outputs": [], "source": src} for i, src in enumerate(extra_cells)]
        (root / NOTEBOOK).write_text(json.dumps(nb))
    _write_json(config / "lab" / "user-settings" / "@jupyterlab" / "apputils-extension"
                / "notification.jupyterlab-settings", {"fetchNews": "false", "checkForUpdates": False})
    if disabled_extensions:
        _write_json(config / "labconfig" / "page_config.json",
                    {"disabledExtensions": {name: True for name in disabled_extensions}})
    env = dict(os.environ, JUPYTER_RUNTIME_DIR=str(tmp / "runtime"), JUPYTER_CONFIG_DIR=str(config),
               JUPYTER_DATA_DIR=str(tmp / "data"), JUPYTER_PLATFORM_DIRS="1", PYTHONUNBUFFERED="1")
    env.pop("COURSE_FAST", None)
    port, token = _free_port(), uuid.uuid4().hex
    log = tmp / "server.log"
    cmd = [sys.executable, "-m", "jupyter", "lab", "--no-browser", "--allow-root", "--ip=127.0.0.1",
           f"--port={port}", "--port-retries=0", f"--IdentityProvider.token={token}",
           f"--ServerApp.root_dir={root}", "--LabApp.news_url=None"]
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=root,
                                start_new_session=True)
    try:
        base = f"http://127.0.0.1:{port}"
        _wait_for_server(f"{base}/api/status?token={token}", proc, log)
        yield {"base": base, "token": token, "root": root, "log": log}
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)           # the server and the kernels it started (same session)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)


def _need_chromium() -> None:
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} does not exist: install Debian's chromium (apt-get install -y chromium)")


@pytest.fixture(scope="module")
def browser():
    """Headless Debian chromium driven by playwright."""
    _need_chromium()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        try:
            yield b
        finally:
            b.close()


@pytest.fixture(scope="module")
def baseline():
    """The shipped baseline and held-out batch the notebook uses, loaded in the test process for the twin."""
    from course import held_out_batch, train_or_load

    model, _ = train_or_load("lenet300", "mnist", progress=False)
    X, y = held_out_batch("mnist", 1000)
    return model, X, y


def _kernel_errors(page) -> list[str]:
    """Texts of every error or stderr output in the notebook (cell tracebacks, tracebacks inside widgets)."""
    return [t.strip() for t in page.locator(ERROR_OUTPUT).all_inner_texts()]


def _with_errors(message: str, page) -> str:
    errors = _kernel_errors(page)
    return message + ("\nkernel errors:\n" + "\n---\n".join(e[-2000:] for e in errors) if errors else "")


def _wait(page, js: str, arg, timeout_ms: float, message: str) -> None:
    """Wait until the JS predicate `js(arg)` is true; on timeout fail with `message` plus any kernel error."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    try:
        page.wait_for_function(js, arg=arg, timeout=timeout_ms)
    except PlaywrightTimeout:
        raise AssertionError(_with_errors(message, page)) from None


def _text(page, selector: str) -> str:
    loc = page.locator(selector)
    return loc.first.inner_text().strip() if loc.count() else "<absent>"


def _open_and_run_all(page, lab: dict) -> None:
    """Open the notebook, wait for an idle kernel, Run -> Run All Cells, wait until every code cell has run."""
    page.goto(f"{lab['base']}/lab/tree/{NOTEBOOK}?token={lab['token']}")
    page.wait_for_selector(".jp-Notebook", timeout=30_000)
    _wait_idle(page, "the kernel never became Idle (status bar)", 45_000)
    page.locator(".jp-SideBar.jp-mod-left .lm-TabBar-tab.lm-mod-current").first.click()   # fold the file browser
    page.locator(".lm-MenuBar-itemLabel", has_text="Run").first.click()
    page.locator(".lm-Menu-itemLabel", has_text="Run All Cells").first.click()
    _wait(page, """() => { const p = [...document.querySelectorAll('.jp-CodeCell .jp-InputPrompt')];
                           return p.length > 0 && p.every(e => /\\[\\d+\\]/.test(e.innerText)); }""", None,
          90_000, "the notebook's cells did not all finish running within 90 s")


def _wait_idle(page, message: str, timeout_ms: float = 20_000) -> None:
    """Wait for the status bar's kernel status to read Idle."""
    _wait(page, "() => (document.querySelector('#jp-main-statusbar')?.innerText ?? '').includes('Idle')", None,
          timeout_ms, message)


def _expect_text(page, selector: str, expected: str, timeout_ms: float, what: str) -> None:
    """Wait until `selector` reads `expected`; stop early and fail if an error output appears meanwhile."""
    _wait(page, "([sel, want, err]) => (document.querySelector(sel)?.innerText ?? '').trim() === want"
                " || document.querySelector(err) !== null",
          [selector, expected, ERROR_OUTPUT], timeout_ms,
          f"{what}: expected {expected!r}, the page shows {_text(page, selector)!r}")
    _assert_no_kernel_errors(page, f"({what})")


def check_explorer(page, lab: dict, baseline, shot: Path | None = None) -> dict:
    """Run the notebook, move the sparsity slider by keys and compare the readout with the twin. Returns timings."""
    from course import compare_scopes, explore_sparsity

    model, X, y = baseline
    t0 = time.monotonic()
    _open_and_run_all(page, lab)
    ran = time.monotonic() - t0
    handle = f"{SPARSITY} .widget-slider .noUi-handle"
    if not page.locator(handle).count():
        try:
            page.wait_for_selector(handle, state="visible", timeout=10_000)
        except Exception:
            raise AssertionError(_with_errors(
                "the sparsity explorer's slider never rendered although every cell ran: the widget front end is "
                "missing (is @jupyter-widgets/jupyterlab-manager installed and enabled? `jupyter labextension "
                f"list`). The cell shows: {_text(page, '.jp-OutputArea-output')!r}", page)) from None
    _assert_no_kernel_errors(page, "while running the notebook")
    start = float(_text(page, f"{SPARSITY} .widget-readout"))
    assert start == 0.5, f"the slider should start at 0.50, shows {start}"
    first, _ = explore_sparsity(model, X, y, start, input_shape=SHAPE)
    _expect_text(page, f"{SPARSITY} .course-readout", first.readout(), 10_000, "initial readout")
    scopes, _ = compare_scopes(model, X, y, 0.9, input_shape=SHAPE)
    _expect_text(page, f"{SCOPE} .course-readout", scopes.readout(), 10_000, "scope explorer readout")
    image = page.locator(f"{SPARSITY} img").first.get_attribute("src")

    moved = time.monotonic()
    page.locator(handle).first.focus()
    for _ in range(KEY_PRESSES):
        page.keyboard.press("ArrowRight")
    want = f"{start + KEY_PRESSES * STEP:.2f}"
    _expect_text(page, f"{SPARSITY} .widget-readout", want, 5_000, "slider value after the key presses")
    twin, _ = explore_sparsity(model, X, y, float(want), input_shape=SHAPE)
    assert twin.readout() != first.readout()
    _expect_text(page, f"{SPARSITY} .course-readout", twin.readout(), 20_000,
                 f"readout after moving the slider to {want}")
    update = time.monotonic() - moved
    _wait_idle(page, "the kernel stayed busy after the readout reached the twin's numbers")
    _assert_no_kernel_errors(page, "after moving the slider")
    assert page.locator(f"{SPARSITY} img").first.get_attribute("src") != image, "the figure did not re-render"
    if shot is not None:
        shot.parent.mkdir(parents=True, exist_ok=True)
        page.locator(SPARSITY).scroll_into_view_if_needed()
        page.screenshot(path=str(shot))
    return {"run_all_s": ran, "slider_to_readout_s": update, "readout": twin.readout()}


def _assert_no_kernel_errors(page, when: str) -> None:
    errors = _kernel_errors(page)
    assert not errors, f"the kernel printed an error {when}:\n" + "\n---\n".join(e[-2000:] for e in errors)


def test_slider_updates_readout_to_the_twins_numbers(tmp_path, browser, baseline):
    """The real thing: JupyterLab + ipywidgets front end + kernel, a slider moved by keys, the twin's numbers."""
    t0 = time.monotonic()
    with running_lab(tmp_path) as lab:
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        try:
            timings = check_explorer(page, lab, baseline, ARTIFACTS / "browser_explorer.png")
        finally:
            page.close()
    timings["wall_s"] = time.monotonic() - t0
    print("browser check:", {k: round(v, 1) if isinstance(v, float) else v for k, v in timings.items()})


@pytest.mark.slow
def test_check_fails_without_the_widget_front_end(tmp_path, browser, baseline):
    """Self-test: with ipywidgets' JupyterLab extension disabled the check fails (it does not skip or pass)."""
    with running_lab(tmp_path, disabled_extensions=("@jupyter-widgets/jupyterlab-manager",)) as lab:
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        try:
            with pytest.raises(AssertionError, match="widget front end is missing"):
                check_explorer(page, lab, baseline)
        finally:
            page.close()


@pytest.mark.slow
def test_check_fails_when_an_update_raises_in_the_kernel(tmp_path, browser, baseline):
    """Self-test: an exception inside a slider update shows as a traceback in the explorer, and the check fails."""
    sabotage = ("from course.widgets.engine import PruningEngine\n"
                "_run = PruningEngine.run\n"
                "def _broken(self, setting, *args, **kwargs):\n"
                "    if 0.55 < setting < 0.8:                  # the slider's new range, not the initial settings\n"
                "        raise RuntimeError('sabotaged update')\n"
                "    return _run(self, setting, *args, **kwargs)\n"
                "PruningEngine.run = _broken")
    with running_lab(tmp_path, extra_cells=(sabotage,)) as lab:
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        try:
            with pytest.raises(AssertionError, match=r"error \(readout after moving the slider(.|\n)*sabotaged update"):
                check_explorer(page, lab, baseline)
        finally:
            page.close()

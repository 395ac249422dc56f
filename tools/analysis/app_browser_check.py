"""Check the web demo (``tools/app.py``) in a real browser, screenshot it.

    python tools/analysis/app_browser_check.py CONFIG CKPT \
        [--compare CONFIG2 CKPT2] [--image IMG] [--family strokes] \
        [--removed 0.3] [--no-brush] [--out docs/web_demo.png] [--install]

Serves the demo on a free local port, opens it in headless Chromium
(Debian's ``chromium`` and ``chromium-driver``, driven by Selenium), uploads
the image (default: the first of the demo's examples), draws one brush
stroke, sets the mask family and the removed fraction, presses Predict and
checks the page: every model's clean labels and the table's clean scores
equal what ``tools/app.py``'s functions compute in-process on the same
image, the table lists every class, and the removed fraction shown is at
least the slider's (more with the stroke). Writes a screenshot of the whole
page and exits 0 when every check passes. ``--install`` first installs
what is missing: chromium and chromium-driver (apt, as root), gradio and
selenium (pip, into the running Python).
"""
import argparse
import importlib.util
import os.path as osp
import re
import shutil
import socket
import subprocess
import sys
import time

import numpy as np

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
PIP = ['gradio>=5,<7', 'selenium>=4.10']


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('config')
    p.add_argument('checkpoint')
    p.add_argument('--compare', nargs=2, metavar=('CONFIG2', 'CKPT2'))
    p.add_argument('--names', nargs='+')
    p.add_argument('--image', help='image to submit (default: an example)')
    p.add_argument('--family', default='strokes')
    p.add_argument('--removed', type=float, default=0.3)
    p.add_argument('--no-brush', action='store_true',
                   help='do not draw a brush stroke')
    p.add_argument('--out', default=osp.join(REPO, 'docs', 'web_demo.png'))
    p.add_argument('--timeout', type=float, default=120,
                   help='seconds to wait for each step of the page')
    p.add_argument('--install', action='store_true',
                   help='install chromium (apt) and gradio, selenium (pip)')
    return p.parse_args(argv)


def install():
    """apt's chromium + chromium-driver and pip's gradio + selenium, where
    missing."""
    if not (shutil.which('chromium') and shutil.which('chromedriver')):
        subprocess.run(['apt-get', 'update', '-q'], check=True)
        subprocess.run(['apt-get', 'install', '-y', '-q', 'chromium',
                        'chromium-driver'], check=True)
    missing = [spec for spec, mod in zip(PIP, ('gradio', 'selenium'))
               if importlib.util.find_spec(mod) is None]
    if missing:
        subprocess.run([sys.executable, '-m', 'pip', 'install', '-q'] +
                       missing, check=True)


def load_app():
    spec = importlib.util.spec_from_file_location(
        'mmmsl_app', osp.join(REPO, 'tools', 'app.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def open_browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    chromium, driver = shutil.which('chromium'), shutil.which('chromedriver')
    if not (chromium and driver):
        sys.exit('No chromium / chromedriver on PATH: apt-get install '
                 'chromium chromium-driver (or pass --install)')
    opts = webdriver.ChromeOptions()
    opts.binary_location = chromium
    for flag in ('--headless=new', '--no-sandbox', '--disable-gpu',
                 '--disable-dev-shm-usage', '--window-size=1280,1000',
                 '--force-device-scale-factor=1'):
        opts.add_argument(flag)
    return webdriver.Chrome(service=Service(driver), options=opts)


def check(cond, what):
    print(('ok    ' if cond else 'FAIL  ') + what)
    return bool(cond)


def main(argv=None):
    args = parse_args(argv)
    if args.install:
        install()
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    app = load_app()
    specs = [(args.config, args.checkpoint)] + (
        [tuple(args.compare)] if args.compare else [])
    names = args.names or app.default_names([c for c, _ in specs])
    models = [app.load_model(c, k, n) for (c, k), n in zip(specs, names)]
    examples = app.default_examples(args.config)
    image = args.image or (examples[0] if examples else None)
    if image is None:
        sys.exit('No --image and no example images (bash tools/demo.sh '
                 'writes the demo canvases)')
    import mmcv
    rgb = mmcv.imread(image, channel_order='rgb')
    expected = app.run_demo(models, rgb)  # clean predictions in-process
    _, _, exp_rows = app.format_results(models, expected['records'])

    port = free_port()
    page = app.build_ui(models, examples)
    page.launch(server_name='127.0.0.1', server_port=port,
                prevent_thread_lock=True, quiet=True)
    driver = open_browser()
    wait = WebDriverWait(driver, args.timeout)
    ok = True
    try:
        t0 = time.time()
        driver.get(f'http://127.0.0.1:{port}/')
        upload = wait.until(ec.presence_of_element_located(
            (By.CSS_SELECTOR, '#image input[type=file]')))
        ok &= check(True, f'page loads ({time.time() - t0:.1f} s)')
        upload.send_keys(osp.abspath(image))
        canvas = wait.until(ec.visibility_of_element_located(
            (By.CSS_SELECTOR, '#image canvas')))
        time.sleep(1.0)  # the background is drawn after the canvas exists
        if not args.no_brush:  # one horizontal stroke through the middle
            driver.find_element(
                By.CSS_SELECTOR, '#image button[aria-label=Brush]').click()
            time.sleep(0.5)
            w = canvas.size['width']
            drag = ActionChains(driver).move_to_element(canvas)
            drag = drag.move_by_offset(-w // 4, 0).click_and_hold()
            for _ in range(16):
                drag = drag.move_by_offset(w // 32, 0).pause(0.05)
            drag.release().perform()
        if args.family != app.mask_families()[0]:
            fam = driver.find_element(By.CSS_SELECTOR, '#family input')
            fam.click()
            wait.until(ec.element_to_be_clickable(
                (By.CSS_SELECTOR, f'#family li[aria-label="{args.family}"]'
                 ))).click()
        num = driver.find_element(By.CSS_SELECTOR,
                                  '#removed input[type=number]')
        num.clear()
        num.send_keys(str(args.removed))
        num.send_keys('\t')
        driver.find_element(By.CSS_SELECTOR, '#predict').click()
        wait.until(lambda d: 'removed' in d.find_element(
            By.CSS_SELECTOR, '#status').text)
        status = driver.find_element(By.CSS_SELECTOR, '#status').text
        shown = float(re.search(r'([\d.]+)% of the pixels', status).group(1))
        ok &= check(shown / 100 >= args.removed - app.RATIO_TOL,
                    f'removed {shown}% >= slider {args.removed:.0%} - '
                    f'{app.RATIO_TOL:.0%}')
        ok &= check(f'{args.family} mask' in status,
                    f'the {args.family} mask family was used')
        if not args.no_brush:
            ok &= check(shown / 100 > args.removed + app.RATIO_TOL,
                        'the brush stroke removed more than the slider')
        for i, m in enumerate(models):
            top = driver.find_element(By.CSS_SELECTOR, f'#labels-{i}-clean '
                                      '[data-testid=label-output-value]')
            clean = expected['records'][m.name][0]['labels']
            want = clean[0]['label'] if clean else '(no label)'
            ok &= check(top.text.strip() == want,
                        f'{m.name}: clean top label {want!r} on the page')
        grid = driver.find_element(By.CSS_SELECTOR, '#table [role=grid]')
        nrows = int(grid.get_attribute('aria-rowcount')) - 1  # the header
        ok &= check(nrows == len(models[0].classes),
                    f'the table has a row per class ({nrows})')
        cells = {}  # the rendered ones (the table is virtual)
        for td in grid.find_elements(By.CSS_SELECTOR, '[role=gridcell]'):
            cells[int(td.get_attribute('data-row')),
                  int(td.get_attribute('data-col'))] = td.text.strip()
        want = {r[0]: r for r in exp_rows}  # by class: the order differs
        cols = [1] + list(range(2, len(exp_rows[0]), 2))
        shown = {cells[r, 0]: r for r, c in cells if c == 0}
        same = [cells.get((r, c)) == want[name][c]
                for name, r in shown.items() for c in cols]
        ok &= check(shown and set(shown) <= set(want) and all(same),
                    f'threshold and clean scores of the {len(shown)} rows '
                    'shown equal the in-process ones')
        height = driver.execute_script(
            'return document.documentElement.scrollHeight')
        driver.set_window_size(1280, height + 40)
        time.sleep(0.5)
        driver.save_screenshot(args.out)
        print(f'Wrote {args.out}')
    finally:
        driver.quit()
        page.close()
    print('browser check: ' + ('passed' if ok else 'FAILED'))
    sys.exit(0 if ok else 1)


if __name__ == '__main__':
    np.set_printoptions(precision=3)
    main()

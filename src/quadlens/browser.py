"""Open a report in headless Chromium (Debian's chromium + chromium-driver, driven by Selenium)
and check it as a reader would see it: every image loaded, no console errors, which tables are
there; optionally save a full-page screenshot.

    python -m quadlens.browser runs/pizza-seed0/report/index.html --screenshot shot.png
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
from pathlib import Path
from typing import Any

from quadlens.errors import QuadlensError

CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
FLAGS = ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage")  # fmt: skip


def check_page(page: Path, screenshot: Path | None = None, width: int = 1280) -> dict[str, Any]:
    """{"images": [[alt, loaded]], "tables": [ids], "errors": [console messages], "title"}."""
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        raise QuadlensError("the browser check needs selenium: pip install -e '.[dev]'") from None
    for tool in (CHROMIUM, CHROMEDRIVER):
        if not Path(tool).exists():
            raise QuadlensError(f"{tool} not found: apt-get install chromium chromium-driver")
    page = Path(page).resolve()
    if not page.is_file():
        raise QuadlensError(f"{page}: no such page")
    profile = tempfile.mkdtemp(prefix="quadlens-chromium-")
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for flag in (*FLAGS, f"--user-data-dir={profile}", f"--window-size={width},1000"):
        opts.add_argument(flag)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=opts)
    try:
        driver.get(page.as_uri())
        images = driver.execute_script(
            "return Array.from(document.images).map(i => [i.alt, i.complete && i.naturalWidth > 0])"
        )
        tables = driver.execute_script(
            "return Array.from(document.querySelectorAll('table[id]')).map(t => t.id)"
        )
        errors = [e["message"] for e in driver.get_log("browser") if e["level"] == "SEVERE"]
        if screenshot is not None:
            height = driver.execute_script("return document.documentElement.scrollHeight")
            driver.set_window_size(width, min(int(height) + 100, 16000))
            Path(screenshot).parent.mkdir(parents=True, exist_ok=True)
            driver.save_screenshot(str(screenshot))
        return {"title": driver.title, "images": images, "tables": tables, "errors": errors}
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("page")
    ap.add_argument("--screenshot")
    args = ap.parse_args()
    res = check_page(Path(args.page), Path(args.screenshot) if args.screenshot else None)
    print(json.dumps(res, indent=2))


if __name__ == "__main__":
    main()

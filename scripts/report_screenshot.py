"""Render an evaluation report (``RUN/reports/evaluation.html``) to a PNG for the README.

Needs a display (``xvfb-run -a``) and Qt WebEngine, which is not a dependency of axonseg:
``pip install PyQtWebEngine==5.15.7 PyQtWebEngine-Qt5==<your PyQt5-Qt5 version>``.

    xvfb-run -a python scripts/report_screenshot.py demo_out/run/reports/evaluation.html docs/images/demo_report.png
"""

from __future__ import annotations

import sys
from pathlib import Path


def main(html: str, png: str, width: int = 1100, height: int = 1400) -> None:
    import os

    os.environ.setdefault("QTWEBENGINE_CHROMIUM_FLAGS", "--no-sandbox --disable-gpu")  # root in containers and CI
    from PyQt5.QtCore import QTimer, QUrl
    from PyQt5.QtWebEngineWidgets import QWebEngineView
    from PyQt5.QtWidgets import QApplication

    app = QApplication(sys.argv[:1])
    view = QWebEngineView()
    view.resize(width, height)

    def grab(ok: bool) -> None:
        if not ok:
            raise SystemExit(f"error: could not load {html}")
        QTimer.singleShot(1500, lambda: (view.grab().save(png), app.quit()))

    view.loadFinished.connect(grab)
    view.load(QUrl.fromLocalFile(str(Path(html).resolve())))
    view.show()
    app.exec_()
    print(f"wrote {png}")


if __name__ == "__main__":
    if len(sys.argv) != 3:
        raise SystemExit("usage: report_screenshot.py REPORT.html OUT.png")
    main(sys.argv[1], sys.argv[2])

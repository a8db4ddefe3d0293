"""Text of scanned PDF pages, by the ``tesseract`` command when it is installed (optional).

A scanned page is a picture: its images are taken out with pypdf (which uses Pillow, there with
python-pptx) and each is read by tesseract, one process per image.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile

INSTALL_HINT = "OCR would read it: install tesseract (apt-get install tesseract-ocr)"
# A page image that takes longer than this is given up (tesseract on one A4 page at 300 dpi
# takes a few seconds on one core).
TIMEOUT_SECONDS = 120


def tesseract() -> str | None:
    """The tesseract command, or None when it is not on the PATH."""
    return shutil.which("tesseract")


def read_page(page) -> str:
    """The text tesseract reads in the images of one pypdf page, one image after another."""
    command = tesseract()
    texts = []
    with tempfile.TemporaryDirectory(prefix="qa-ocr-") as folder:
        for number, image in enumerate(page.images):
            suffix = os.path.splitext(image.name)[1] or ".png"
            path = os.path.join(folder, f"{number}{suffix}")
            with open(path, "wb") as handle:
                handle.write(image.data)
            try:
                done = subprocess.run([command, path, "stdout"], capture_output=True,
                                      timeout=TIMEOUT_SECONDS, check=False)
            except (OSError, subprocess.TimeoutExpired):
                continue
            texts.append(done.stdout.decode("utf-8", "replace").strip())
    return "\n\n".join(t for t in texts if t)

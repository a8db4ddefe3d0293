"""qa: local, offline, extractive question answering over a folder of documents."""

import os

__version__ = "0.1.0"

# qa's numpy products are small (a question against a few dozen passages), and OpenBLAS's threads
# keep spinning after each one, on the core the answer scorer's second thread needs: warm answer
# p50 on SQuAD 22.8 -> 20.0 ms, and a SQuAD build 44 -> 41 s. Set before numpy is first imported
# (a program that imported numpy earlier keeps its own setting); the user's own setting wins.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

"""The browser chat's entry point: ``python app.py`` (or ``make run``, or ``rag serve``).

The page lives in the package (``rag/ui/``); this file only starts it.
"""
import sys

from rag.ui.app import main

if __name__ == "__main__":
    sys.exit(main())

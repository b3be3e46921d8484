"""The browser chat (gradio): the page in ``app.py``, its handlers, source cards, uploads, the document
library and browser-kept conversations. Importing this package does not import gradio.

Example: ``from rag.ui.app import main; main()  # serves RAG_HOST:RAG_PORT``
"""

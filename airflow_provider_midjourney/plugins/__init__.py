"""The "Midjourney" gallery in the Airflow UI: the plugin (:mod:`.plugin`), its FastAPI app
(:mod:`.app`) and the pure reading of task results (:mod:`.results`) the operators share.

Kept empty so that operators importing :mod:`.results` do not load FastAPI or the plugin.
"""

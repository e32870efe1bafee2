"""Prefect flows: the pipeline, prediction and the UI, composed from tasks; and the `reviewlstm` command."""

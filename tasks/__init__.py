"""Prefect tasks: one module per stage. Each reads its inputs, calls the library, writes its
output folder atomically and returns a small JSON record; the numbers and rules live in
`reviewlstm`."""

"""QA against a running stack: golden cases replayed through the sandbox caller (`replay`) and scenario suites
with expectations (`scenario` the YAML model, `runner` the calls, `observe` what the stack recorded, `checks` the
verdicts, `output` the table and JUnit XML, `cli` the ``python -m agent qa`` command)."""

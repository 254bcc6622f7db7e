"""The CLI run in a child process (``python -c f"HEAVY = {names!r}" + CHILD args…``): it prints its exit
code and which of the modules named in ``HEAVY`` it imported, so tests pin what a command loads."""

CHILD = r"""
import json, sys
from embsr_core.cli import main
try:
    main(sys.argv[1:], prog_name="embsr")
except SystemExit as exc:
    code = exc.code
else:
    code = 0
print("\nMODULES " + json.dumps({"code": code, "loaded": sorted(m for m in HEAVY if m in sys.modules)}))
"""

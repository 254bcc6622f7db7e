"""`python -m embsr_core.cli` (also what `torchrun -m embsr_core.cli train --distributed` runs)."""

from embsr_core.cli import main

if __name__ == "__main__":
    main()

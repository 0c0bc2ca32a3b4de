import gc
import sys

# Off until the sandbox is built, imports included: see sandbox.cli._serve.
gc.disable()

from sandbox.cli import main  # noqa: E402

sys.exit(main())

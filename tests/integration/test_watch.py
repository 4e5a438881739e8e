import os, sys
sys.path.insert(0, os.path.dirname(__file__))
from harness import main  # noqa: E402
if __name__ == "__main__":
    sys.exit(main(globals()))

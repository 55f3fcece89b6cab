#!/bin/bash
# The image has python3 but no pytest: the tests print pytest's -rA summary lines themselves
# (what Terminal-Bench's pytest parser reads).
python3 "$TEST_DIR/test_outputs.py"

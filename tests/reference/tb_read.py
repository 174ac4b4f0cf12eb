# The reader of tests/test_tensorboard.cpp: TensorBoard's own EventAccumulator (not our reading of
# the format) loads event files and prints what it holds as JSON:
#   {"scalars": {tag: [[step, value, wall_time], ...]}, "text": {tag: [[step, text], ...]}}
# Not part of infini: the C++ never imports Python at run time.
#
#   PY tests/reference/tb_read.py PATH OUT.json [--no-purge]    PATH: a run directory or one event file
# PY is a Python with tensorboard (scripts/setup.sh pins the version); --no-purge keeps what a
# SessionLog START would drop (to show that there was something to drop).
import json
import math
import sys

from tensorboard.backend.event_processing import event_accumulator


def main():
    path, out_path = sys.argv[1], sys.argv[2]
    purge = "--no-purge" not in sys.argv[3:]
    acc = event_accumulator.EventAccumulator(
        path, size_guidance={event_accumulator.SCALARS: 0, event_accumulator.TENSORS: 0},
        purge_orphaned_data=purge)
    acc.Reload()
    tags = acc.Tags()
    out = {"scalars": {}, "text": {}}
    for tag in tags["scalars"]:
        out["scalars"][tag] = [[e.step, e.value if math.isfinite(e.value) else str(e.value), e.wall_time]
                               for e in acc.Scalars(tag)]
    for tag in tags["tensors"]:
        out["text"][tag] = [[e.step, b"".join(e.tensor_proto.string_val).decode("utf-8")]
                            for e in acc.Tensors(tag)]
    with open(out_path, "w") as f:
        json.dump(out, f)


if __name__ == "__main__":
    main()

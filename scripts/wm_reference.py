#!/usr/bin/env python3
"""numpy + scipy reference of gmfuse's weight matching on two random 4 x 1024 MLPs.

The same weights as `gmfuse bench` (src/cli/bench.rs `random_weights`: an LCG, uniform in
±1/sqrt(fan-in)), the same algorithm (DESIGN.md "Weight matching": identity start, groups in
layer order, a LAP per group maximising S = sum over the group's axes of W_B rows · W_A rowsᵀ with
the other groups' permutations applied, a new permutation taken only when it raises the group's
score, stop after a sweep with no change). Prints the sweeps, the objective and the median time
of REPEAT runs, to compare with `gmfuse bench` in the same window:

    python3 scripts/wm_reference.py [REPEAT]
"""
import sys
import time

import numpy as np
from scipy.optimize import linear_sum_assignment

WIDTHS = [784, 1024, 1024, 1024, 1024, 10]
M64 = (1 << 64) - 1


def random_weights(seed):
    state = ((seed * 0x9E3779B97F4A7C15) & M64) | 1
    out = {}
    for k in range(1, len(WIDTHS)):
        scale = 1.0 / np.sqrt(WIDTHS[k - 1])
        for name, shape in ((f"fc{k}.weight", (WIDTHS[k], WIDTHS[k - 1])), (f"fc{k}.bias", (WIDTHS[k],))):
            n = int(np.prod(shape))
            vals = np.empty(n)
            for i in range(n):
                state = (state * 6364136223846793005 + 1442695040888963407) & M64
                vals[i] = (state >> 11) / float(1 << 52) - 1.0
            # gmfuse stores them as f32 tensors, read back as f64.
            out[name] = (vals * scale).astype(np.float32).astype(np.float64).reshape(shape)
    return out


def weight_matching(a, b, max_sweeps=100):
    hidden = len(WIDTHS) - 2
    perms = [np.arange(WIDTHS[g + 1]) for g in range(hidden)]

    def permuted(g):
        """A's tensors of group g's layer pair with every other group's permutation applied."""
        w_in = a[f"fc{g + 1}.weight"]
        if g > 0:
            w_in = w_in[:, perms[g - 1]]
        w_out = a[f"fc{g + 2}.weight"]
        if g + 1 < hidden:
            w_out = w_out[perms[g + 1], :]
        return w_in, a[f"fc{g + 1}.bias"], w_out

    sweeps = 0
    for _ in range(max_sweeps):
        changed = False
        for g in range(hidden):
            w_in, bias, w_out = permuted(g)
            s = (b[f"fc{g + 1}.weight"] @ w_in.T + np.outer(b[f"fc{g + 1}.bias"], bias)
                 + b[f"fc{g + 2}.weight"].T @ w_out)
            # s[i, j]: B's unit i against A's unit j.
            old = s[np.arange(len(perms[g])), perms[g]].sum()
            _, cols = linear_sum_assignment(s, maximize=True)
            new = s[np.arange(len(cols)), cols].sum()
            if new > old + 1e-12 * max(abs(old), 1.0):
                perms[g] = cols
                changed = True
        sweeps += 1
        if not changed:
            break
    return perms, sweeps


def main():
    repeat = int(sys.argv[1]) if len(sys.argv) > 1 else 3
    a, b = random_weights(1), random_weights(2)
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        _, sweeps = weight_matching(a, b)
        times.append(time.perf_counter() - t)
    times.sort()
    print(f"numpy weight matching, two random 4 x 1024 MLPs: {times[len(times) // 2]:.3f} s "
          f"({sweeps} sweeps, median of {repeat})")


if __name__ == "__main__":
    main()

"""Minimising the Rosenbrock function on plain Python floats with symdiff gradients.

f(x, y) = (1 - x)**2 + 100 * (y - x**2)**2 has its minimum at (1, 1) at the bottom of a
long curved valley. We run gradient descent from (-1.2, 1.0), choosing each step size by
backtracking line search (Armijo condition). Float arguments give float gradients, and
the generated code uses plain arithmetic. Exits with status 1 if it does not reach (1, 1).
"""

import sys

import symdiff


def rosenbrock(x, y):
    return (1 - x) ** 2 + 100 * (y - x ** 2) ** 2


def main():
    f_and_grad = symdiff.value_and_grad(rosenbrock, argnums=(0, 1))
    x, y = -1.2, 1.0
    f_and_grad(x, y)  # compile for float arguments
    print("Generated gradient code:\n" + f_and_grad.source)

    for step in range(10000):
        f, (dx, dy) = f_and_grad(x, y)
        if step % 1000 == 0:
            print(f"step {step:5d}  f {f:.3e}  (x, y) = ({x:.6f}, {y:.6f})")
        slope = dx * dx + dy * dy
        if slope < 1e-16:  # gradient norm below 1e-8: converged
            break
        t = 1.0  # backtracking: halve t until the step decreases f enough (Armijo)
        while rosenbrock(x - t * dx, y - t * dy) > f - 1e-4 * t * slope:
            t *= 0.5
        x, y = x - t * dx, y - t * dy

    print(f"final: f {rosenbrock(x, y):.3e}  (x, y) = ({x:.6f}, {y:.6f})")
    if abs(x - 1) > 1e-3 or abs(y - 1) > 1e-3:
        sys.exit("did not converge to (1, 1)")


if __name__ == "__main__":
    main()
